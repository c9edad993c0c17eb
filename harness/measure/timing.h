#pragma once
// Timed repeats and the matmul calibration that utilization divides by.
//
//   Timing t = time_repeats([&] { model.logits(x); }, /*warmup=*/2, /*repeat=*/5, device);
//   t.median_ms, t.min_ms, t.max_ms, t.samples_ms
#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

namespace megabench {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Median / min / max over the timed calls after `warmup` untimed ones: at least `repeat` calls,
/// then more until they add up to `min_time_ms`, at most `max_repeat` in all (in the spirit of
/// torch.utils.benchmark's adaptive_autorange). On CUDA each call is timed with events
/// (MEGABENCH_WITH_CUDA) or synchronize + wall clock.
struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  double measured_ms = 0;  // sum of the timed calls
  double loop_ms = 0;      // wall time of the timed loop; loop_ms - measured_ms is harness overhead
  std::vector<double> samples_ms;
};
Timing time_repeats(const std::function<void()>& fn, int64_t warmup, int64_t repeat,
                    const torch::Device& device, double min_time_ms = 0, int64_t max_repeat = 0);

/// {"matmul_gflops_per_s", "matmul_n", "matmul_dtype", "device_type"}: the best of a few square
/// n x n matmuls in `dtype` on `device` -- the peak that flops_utilization divides by. n = 0 picks
/// a size that reaches the peak: 1024 on CPU, 8192 on CUDA.
json calibrate_matmul(const torch::Device& device, torch::ScalarType dtype = torch::kFloat32,
                      int64_t n = 0);

/// {"triad_gb_per_s", "triad_n"}: memory bandwidth of a STREAM-like triad a = b + s c over
/// float32 vectors of n elements (n = 0: 16M on CPU, 64M on CUDA), the best of 5.
json calibrate_triad(const torch::Device& device, int64_t n = 0);

/// {"read_gb_per_s", "read_kernel", "read_mv_gb_per_s", "read_amax_gb_per_s",
/// "read_gemv_bf16_gb_per_s", "read_bytes"}: the bandwidth of reading a matrix of `bytes` (0: 256
/// MB) once, the fastest of a float32 matrix-vector product (what decoding at batch 1 does to its
/// weights), a float32 amax reduction and, on a CPU where kernels::gemv_bf16 runs its AVX512-BF16
/// path, that kernel over the same bytes as bf16 (what decoding with bf16 weights runs; the key
/// is absent elsewhere). "read_kernel" names the fastest; each is the best of 5. Reads only, so it
/// runs faster than the triad, which also writes.
json calibrate_read(const torch::Device& device, int64_t bytes = 0);

/// The machine's state now: calibrate_matmul in `dtype`, calibrate_triad, calibrate_read, and
/// the UTC "date".
/// A run measures it at its start, every run.calibrate_every_s and at its end; `report` flags
/// points measured while it read more than 15% below the machine's best.
json calibrate(const torch::Device& device, torch::ScalarType dtype);

/// The matmul peak (FLOP/s) for a device, dtype and (CPU) intra-op thread count: the run's
/// calibration when it matches (the usual case), else one measured once per process for that
/// combination (run-level axes may sweep device, dtype or threads).
double matmul_peak(const json& calibration, const torch::Device& device, torch::ScalarType dtype);

/// The read bandwidth (bytes/s, calibrate_read) at the current (CPU) intra-op thread count, as
/// matmul_peak finds its peak: the calibration's when its threads match, else measured once per
/// process for that device and thread count. One core cannot draw the bandwidth that all of them
/// do, so a 1-thread point's roofline is its own thread count's.
double read_bandwidth(const json& calibration, const torch::Device& device);

}  // namespace megabench
