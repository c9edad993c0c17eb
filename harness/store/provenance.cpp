#include "harness/store/provenance.h"

#include <ATen/Version.h>
#include <torch/version.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "harness/measure/allocator.h"
#include "harness/measure/denormals.h"

#ifdef MEGABENCH_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#ifndef MEGABENCH_SOURCE_DIR
#define MEGABENCH_SOURCE_DIR "."
#endif
#ifndef MEGABENCH_BUILD_TYPE
#define MEGABENCH_BUILD_TYPE "unknown"
#endif
#ifndef MEGABENCH_CXX_FLAGS
#define MEGABENCH_CXX_FLAGS ""
#endif

namespace megabench {
namespace {

// stdout of a shell command, trailing whitespace removed ("" when it fails).
std::string command_output(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
  }
  return "unknown";
}

// The value of KEY= in LibTorch's build settings line ("BLAS_INFO=mkl, ...").
std::string config_value(const std::string& config, const std::string& key) {
  const auto at = config.find(key + "=");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 1;
  return config.substr(start, config.find_first_of(",\n", start) - start);
}

nlohmann::json compute() {
  const std::string git = std::string("git -C '") + MEGABENCH_SOURCE_DIR + "' ";
  const std::string commit = command_output(git + "rev-parse HEAD 2>/dev/null");
  const std::string config = at::show_config();
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  nlohmann::json p = {
      {"host", host},
      {"cpu", cpu_model()},
      {"git_commit", commit.size() == 40 ? nlohmann::json(commit) : nlohmann::json(nullptr)},
      {"git_dirty", nullptr},
      {"build_type", MEGABENCH_BUILD_TYPE},
      {"cxx_flags", MEGABENCH_CXX_FLAGS},
      {"compiler", std::string(__VERSION__)},
      {"libtorch_version", TORCH_VERSION},
      {"blas", config_value(config, "BLAS_INFO")},
      {"mkl_version", at::get_mkl_version()},
      {"onednn_version", at::get_mkldnn_version()},
      {"openmp_version", at::get_openmp_version()},
      {"cpu_capability", at::get_cpu_capability()},
      {"allocator", allocator::name()},
      {"denormals", denormals::state()},
      {"cuda_version", nullptr}};
  if (!p["git_commit"].is_null()) {
    const auto changes = command_output(
        git + "status --porcelain --untracked-files=no -- . ':(exclude)results' 2>/dev/null");
    p["git_dirty"] = !changes.empty();
  }
#ifdef MEGABENCH_WITH_CUDA
  p["cuda_version"] =
      std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
#endif
  return p;
}

}  // namespace

const nlohmann::json& provenance() {
  static const nlohmann::json p = compute();
  return p;
}

}  // namespace megabench
