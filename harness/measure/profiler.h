#pragma once
// Profiling a measured region, broken down by model component.
//
// On CUDA the CUPTI Activity API records every kernel (name, start, end, grid, block, registers,
// shared memory) and memcpy; each is attributed to the innermost profile::Range open when it was
// launched, through CUPTI external correlation ids (exact, unlike overlapping CPU and GPU times).
// On CPU, LibTorch's profiler (Kineto) records the ops and the Ranges (USER_SCOPE RecordFunctions).
// The two never run at once: profile::acquire() throws if the other one holds the process.
// Ranges are per thread: work launched from a thread that pushed no range (e.g. autograd's CUDA
// backward threads) counts as "other" unless that code pushes ranges of its own.
//
//   megabench::Profiler prof(torch::kCUDA);
//   prof.start();
//   model.loss(bytes).backward();            // models push profile::Range("feedforward") etc.
//   ProfileResult r = prof.stop();           // r.component_ms["feedforward"], r.table_markdown()
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernels/profile_range.h"

namespace megabench {

struct KernelRecord {
  std::string name;       // demangled kernel name, memcpy kind, or LibTorch op name
  std::string kind;       // "kernel" | "memcpy" (CUPTI) | "cpu_op" (LibTorch profiler)
  std::string component;  // innermost Range around its launch, or "other"
  uint64_t start_ns = 0;  // relative to Profiler::start()
  uint64_t end_ns = 0;
  std::array<int, 3> grid{0, 0, 0};
  std::array<int, 3> block{0, 0, 0};
  int registers = 0;            // per thread
  int64_t shared_memory = 0;    // static + dynamic bytes per block
  int64_t bytes = 0;            // memcpy size
  uint64_t correlation_id = 0;  // CUPTI's link to the launching API call (0 on CPU)
  double duration_ms() const { return static_cast<double>(end_ns - start_ns) * 1e-6; }
};

/// One profile::Range as a span of time (CPU: as LibTorch's profiler saw it; CUDA: the stretch of
/// consecutive GPU work attributed to it).
struct RangeSpan {
  std::string name;
  uint64_t start_ns = 0;  // relative to Profiler::start()
  uint64_t end_ns = 0;
  uint64_t thread = 0;  // CPU: the thread; CUDA: 0 (the GPU timeline)
};

struct ProfileResult {
  std::string device;  // "cuda:0", "cpu"
  std::string source;  // "cupti" | "libtorch"
  /// CUDA: kernels and memcpys in order of start. CPU: top-level LibTorch ops.
  std::vector<KernelRecord> kernels;
  /// Milliseconds per component, exclusive of nested ranges. CUDA: summed GPU time of the kernels
  /// and copies attributed to it. CPU: wall time inside the range. "other": CUDA, work outside any
  /// range; CPU, the region's wall time not inside any range.
  std::map<std::string, double> component_ms;
  /// Wall time of the measured region (CUDA: after synchronizing at start() and stop()).
  double total_ms = 0;
  /// FLOPs of the matrix products (aten::mm, addmm, bmm, baddbmm) as LibTorch's profiler counts
  /// them from their shapes (2 per multiply-add); -1 where not counted (the CUPTI path).
  double measured_matmul_flops = -1;
  /// The component ranges as spans, in order of start.
  std::vector<RangeSpan> ranges;
  std::string table_markdown() const;
  nlohmann::json to_json() const;
  /// Chrome trace events (the "traceEvents" array of the JSON Object Format, which Perfetto and
  /// chrome://tracing open): one complete ("X") event per range on a "components" track and per
  /// op or kernel on an "ops" / "gpu" track, under process `pid` named `section`, shifted by
  /// `offset_us`.
  nlohmann::json chrome_trace_events(int pid, const std::string& section, double offset_us) const;
};

class Profiler {
 public:
  /// Whether the CUPTI path can run here; if not and `why` is given, the reason.
  static bool cupti_available(std::string* why = nullptr);

  /// CPU: LibTorch's profiler. CUDA: CUPTI; throws std::runtime_error with the reason when CUPTI
  /// or the GPU is missing.
  explicit Profiler(torch::Device device);
  ~Profiler();
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  /// Begins the measured region. Throws if this profiler already runs, or another one (CUPTI or
  /// LibTorch's) is active in the process.
  void start();
  /// Ends it and returns the records. Throws if start() was not called.
  ProfileResult stop();

  struct Impl;

 private:
  torch::Device device_;
  std::unique_ptr<Impl> impl_;
};

/// How a process that may have profiled on CPU ends: `return megabench::end_process(rc);` from
/// main. The first start() of LibTorch's profiler starts Kineto's config thread, and that thread
/// can still be building its first Config when exit() destroys Kineto's statics: valgrind shows
/// it reading the freed config-factory map, and now and then the process aborts at exit ("malloc():
/// unsorted double linked list corrupted") after all its work is done. Once that thread exists,
/// this flushes stdio and the C++ streams and leaves with std::_Exit(rc), so no static destructor
/// runs; otherwise it returns rc and main returns as usual. Files the process wrote must be
/// closed by then (every writer in megabench closes its file when it goes out of scope).
int end_process(int rc);

}  // namespace megabench
