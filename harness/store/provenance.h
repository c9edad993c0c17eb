#pragma once
// Where a number came from: the source tree, the build and the libraries. The context record of a
// run holds it, and so does every point record, so that `report` can warn about (and `report
// --strict` refuse) results that mix commits or come from a dirty tree.
//
//   const json& p = provenance();   // computed once per process
//   p["git_commit"], p["git_dirty"], p["build_type"], p["blas"], p["onednn_version"], ...
#include <nlohmann/json.hpp>

namespace megabench {

/// {"host", "cpu" (the CPU model: with the host, what names a machine), "git_commit" (null outside
/// a git checkout), "git_dirty" (tracked changes outside results/: a running sweep appends to
/// tracked files there), "build_type", "cxx_flags", "compiler", "libtorch_version", "blas",
/// "mkl_version", "onednn_version", "openmp_version", "cpu_capability", "allocator"
/// (harness/measure/allocator.h), "cuda_version" (null without CUDA)}. Git is asked about the
/// source tree the binary was built from.
const nlohmann::json& provenance();

}  // namespace megabench
