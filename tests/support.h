#pragma once
// Helpers shared by the tests.
#include <torch/torch.h>

#include <iostream>
#include <string>

// A GPU test calls this first: without a CUDA device it prints "SKIPPED:" (CTest then reports the
// test as skipped, see tests/CMakeLists.txt) and returns before any assertion runs.
#define MEGABENCH_REQUIRE_CUDA()                                         \
  do {                                                                   \
    if (!torch::cuda::is_available()) {                                  \
      std::cout << "SKIPPED: no CUDA device on this machine" << std::endl; \
      return;                                                            \
    }                                                                    \
  } while (0)

namespace megabench::test {

inline std::string source_path(const std::string& rel) {
  return std::string(MEGABENCH_SOURCE_DIR) + "/" + rel;
}

}  // namespace megabench::test
