#pragma once
// Helpers shared by the tests.
#include <stdlib.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "harness/store/results.h"

// A GPU test calls this first: without a CUDA device it prints "SKIPPED:" (CTest then reports the
// test as skipped, see tests/CMakeLists.txt) and returns before any assertion runs.
#define MEGABENCH_REQUIRE_CUDA()                                           \
  do {                                                                     \
    if (!torch::cuda::is_available()) {                                    \
      std::cout << "SKIPPED: no CUDA device on this machine" << std::endl; \
      return;                                                              \
    }                                                                      \
  } while (0)

namespace megabench::test {

/// max |a - ref| / max |ref| in float64 on the CPU, the parity tests' error measure. The shapes
/// must agree (a broadcast would hide a wrong one). `floor` bounds the denominator when ref is 0.
inline double rel_err(const torch::Tensor& a, const torch::Tensor& ref, double floor = 1e-300) {
  TORCH_CHECK(a.sizes() == ref.sizes(), "rel_err: shapes differ: ", a.sizes(), " vs ", ref.sizes());
  auto r = ref.to(torch::kCPU, torch::kFloat64);
  const double scale = std::max(r.abs().max().item<double>(), floor);
  return (a.to(torch::kCPU, torch::kFloat64) - r).abs().max().item<double>() / scale;
}

inline std::string source_path(const std::string& rel) {
  return std::string(MEGABENCH_SOURCE_DIR) + "/" + rel;
}

/// A new empty folder under /tmp. mkdtemp, not std::filesystem::remove_all: libtorch exports its
/// own copy of the std::filesystem functions, and its remove_all crashes in this binary.
inline std::string fresh_dir(const std::string& name) {
  std::string pattern = "/tmp/megabench_test_" + name + "_XXXXXX";
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

inline std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

/// The point records of a results file.
inline std::vector<json> points_of(const std::string& file) {
  std::vector<json> out;
  for (const auto& r : load_results(file).records) {
    if (r.value("type", "") == "point") out.push_back(r);
  }
  return out;
}

}  // namespace megabench::test
