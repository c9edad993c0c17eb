#pragma once
// Exact memory accounting for the benchmarks' peak_memory_* metrics.
//
// CPU: install_cpu_tracking() puts a counting wrapper in front of LibTorch's CPU allocator. It
// counts the bytes each allocation requests (numel * itemsize for a tensor), not the allocator's
// rounding or the wrapper's own header, so live and peak are exact sums of what tensors asked for.
// CUDA (builds with MEGABENCH_WITH_CUDA): the caching allocator's own device statistics
// (allocated_bytes, as torch.cuda.max_memory_allocated reports: block sizes, rounded to 512 B).
#include <torch/torch.h>

#include <cstdint>

namespace megabench::memory {

/// Installs, once (later calls do nothing), a counting wrapper around the current CPU allocator
/// via c10::SetCPUAllocator with a priority above LibTorch's default. Tensors allocated before
/// it keep their own deleters, are not counted, and free as before. Throws std::runtime_error
/// when the current allocator has no raw interface or a higher-priority allocator wins.
void install_cpu_tracking();

/// Bytes held by CPU allocations made through the wrapper, now and at the peak since the last
/// reset_cpu_peak(). 0 before install_cpu_tracking().
int64_t cpu_live_bytes();
int64_t cpu_peak_bytes();
void reset_cpu_peak();  // peak := live

/// Peak memory on one device. There is one peak per device (process-wide), so trackers of the
/// same device share it: reset() by one restarts the others. Constructing one resets it (and
/// installs CPU tracking for a CPU device). Throws std::invalid_argument for a device other
/// than CPU or CUDA, std::runtime_error for CUDA in a build without it.
class PeakTracker {
 public:
  explicit PeakTracker(torch::Device device);

  void reset();                // peak := live; baseline := live
  int64_t peak_bytes() const;  // highest live since reset
  int64_t live_bytes() const;
  int64_t baseline_bytes() const { return baseline_; }  // live at the last reset
  /// peak_bytes() - baseline_bytes(): what the measured code added on top of what it found
  /// (parameters, inputs), the figure the peak_memory_* metrics report.
  int64_t peak_above_baseline() const { return peak_bytes() - baseline_; }

  torch::Device device() const { return device_; }

 private:
  torch::Device device_;
  int64_t baseline_ = 0;
};

}  // namespace megabench::memory
