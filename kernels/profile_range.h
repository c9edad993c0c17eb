#pragma once
// Named profiling ranges that models push around their components, e.g.
//   megabench::profile::Range r("global_attention");
// It lives beside the kernels (in the model library) because models push ranges and must not depend
// on the harness; harness/measure/profiler.h consumes them.
//
// A Range costs one atomic load when nothing profiles. Under LibTorch's profiler (or anything else
// that listens to at::RecordFunction) it is a USER_SCOPE RecordFunction with the range's name.
// Under the CUPTI profiler it calls the hooks that profiler installed (external correlation ids,
// our own range stack with timestamps); no NVTX.
#include <ATen/record_function.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace megabench::profile {

/// The component names models use, in report order.
const std::vector<std::string>& component_names();

/// Which profiler holds the process. They exclude each other: CUPTI and LibTorch's profiler (which
/// drives CUPTI through Kineto on CUDA) must never be active at once.
enum class Mode : int { kOff = 0, kLibTorch = 1, kCupti = 2 };
Mode active_mode();
const char* mode_name(Mode m);
/// Claims the process for `m`; throws std::runtime_error naming the holder if another mode has it.
void acquire(Mode m);
/// Releases a claim made by acquire(m); a no-op if `m` does not hold it.
void release(Mode m);

/// Called at range entry (with the range's id) and exit while the CUPTI profiler runs.
struct RangeHooks {
  void (*push)(uint64_t id) = nullptr;
  void (*pop)(uint64_t id) = nullptr;
};
void set_range_hooks(const RangeHooks& hooks);

/// Stable id (>= 1) of a range name in this process, and back ("" for an unknown id).
uint64_t range_id(const std::string& name);
std::string range_name(uint64_t id);
/// Whether `name` was ever used by a Range (or registered through range_id).
bool is_range_name(const std::string& name);

/// RAII range; see the file comment. Not copyable; pops on destruction.
class Range {
 public:
  explicit Range(const char* name);
  ~Range();
  Range(const Range&) = delete;
  Range& operator=(const Range&) = delete;

 private:
  std::optional<at::RecordFunction> record_;
  uint64_t hook_id_ = 0;
};

}  // namespace megabench::profile
