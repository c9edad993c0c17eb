#pragma once
// Point isolation: `megabench run` measures its points in a worker child process, one after
// another, so that a segfault, an abort, an OOM kill or a hang inside one point fails that point
// and the sweep goes on. The parent keeps the results file; the worker only measures.
//
//   Worker w({"/proc/self/exe", kWorkerArg}, experiment_doc, outdir);
//   PointOutcome o = w.run(point, index, calibration, limits, stop_signal);
//   // o.record: the worker's record, or a failed one with the cause ("crashed: SIGSEGV ...",
//   // "killed (SIGKILL): out of memory?", "timeout after 5 s", "out of memory: ..."), or
//   // nullopt when a stop signal abandoned the point.
//
// The protocol is one JSON line each way on two pipes (fd 3: requests, fd 4: records); the
// worker's stdout and stderr go to a third pipe, whose last lines a failed record keeps.
// The worker is started on first use and again after a crash: one process start per sweep, plus
// one per crash.
#include <sys/types.h>

#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include "harness/api/record.h"
#include "harness/config/expand.h"

namespace megabench {

/// argv[1] of a worker: `megabench __worker` (any binary whose main hands this to worker_main).
inline constexpr const char* kWorkerArg = "__worker";

/// The worker side: reads the header and the requests, measures, answers. Returns the exit code.
int worker_main();

struct PointLimits {
  std::optional<double> timeout_s;
  std::optional<double> max_memory_gb;
};

struct PointOutcome {
  std::optional<PointRecord> record;  // nullopt: abandoned by a stop signal
  double overhead_ms = 0;  // wall time around the worker's own elapsed_s (protocol, parsing)
};

class Worker {
 public:
  Worker(std::vector<std::string> command, json experiment, std::string out_dir);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  /// Measures `points[index]` (== point) in the worker. `stop` is polled: non-zero abandons the
  /// point (the worker is killed) and returns no record.
  PointOutcome run(const Point& point, size_t index, const json& calibration,
                   const PointLimits& limits, const volatile std::sig_atomic_t& stop);

  size_t starts() const { return starts_; }
  double start_ms() const { return start_ms_; }  // total time from spawn to ready

 private:
  struct Child;
  void start();
  void stop_child();
  std::vector<std::string> command_;
  json header_;
  Child* child_ = nullptr;
  size_t starts_ = 0;
  double start_ms_ = 0;
};

}  // namespace megabench
