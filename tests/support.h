#pragma once
// Helpers shared by the tests.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "harness/cli/run.h"
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

/// An experiment run in-process (workers still in their own processes): the summary, the point
/// records in file order, and the run's log.
struct ExperimentRun {
  RunSummary summary;
  std::vector<json> points;
  std::string log;
};

/// Writes `doc` to DIR/exp.json and runs it into DIR/out.
inline ExperimentRun run_doc(const json& doc, const std::string& dir) {
  RunOptions o;
  o.experiment_path = write_file(dir + "/exp.json", doc.dump());
  o.outdir = dir + "/out";
  o.progress = 0;
  std::ostringstream log;
  ExperimentRun r;
  r.summary = run_experiment(o, log);
  r.log = log.str();
  r.points = points_of(dir + "/out/results.jsonl");
  return r;
}

/// Starts argv with stdout and stderr to the file `log`; returns the pid (waitpid it).
inline pid_t spawn_logged(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

struct CommandResult {
  int status;       // the exit status
  std::string out;  // stdout and stderr together
};

/// Runs a shell command line and collects its stdout and stderr.
inline CommandResult run_command(const std::string& cmd) {
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

}  // namespace megabench::test
