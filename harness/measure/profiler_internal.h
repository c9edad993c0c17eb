#pragma once
// Shared between profiler.cpp (LibTorch's CPU profiler, the Profiler class) and profiler_cupti.cpp
// (CUPTI on CUDA). Not for use outside measure/.
#include <chrono>
#include <cstdint>
#include <string>

#include "harness/measure/profiler.h"

namespace megabench {

// Shared state of one profiling run

struct Profiler::Impl {
  bool running = false;
  profile::Mode mode = profile::Mode::kOff;
  std::chrono::steady_clock::time_point wall_start;
  uint64_t gpu_start_ns = 0;  // CUPTI timestamp at start()
};

namespace profiler_detail {

/// Components of time outside any profile::Range.
inline constexpr const char* kOther = "other";

#ifdef MEGABENCH_WITH_CUPTI
/// Why CUPTI cannot be used here ("" when it can).
std::string cupti_problem();
void cupti_start(Profiler::Impl& impl);
void cupti_stop(Profiler::Impl& impl, ProfileResult& r);
#endif

}  // namespace profiler_detail
}  // namespace megabench
