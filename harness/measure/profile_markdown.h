#pragma once
// The files a profiled point writes: PROFILE_DIR/<stem>.md (component shares and top kernels/ops)
// and .json (every record).
#include <cstddef>
#include <string>

#include "harness/measure/profiler.h"

namespace megabench {

/// A file name for a point: "megabyte/seq_len=1024/patch=8" -> "megabyte__seq_len=1024__patch=8".
std::string profile_file_stem(const std::string& point_name);

/// The component table (ProfileResult::table_markdown) and the kernels (CUDA) or top-level ops
/// (CPU) that took the most time, summed by name within each component.
std::string profile_section_markdown(const std::string& title, const ProfileResult& r,
                                     size_t top = 15);

}  // namespace megabench
