#pragma once
// `megabench run`: validates an experiment, expands its sweep, measures every point and appends
// one record per point to the results store, then writes the report.
//
//   RunOptions opts;
//   opts.experiment_path = "experiments/quickstart.json";
//   opts.sets = {"train.steps=20"};
//   RunSummary s = run_experiment(opts, std::cout);   // throws on a bad file; failed points are
//   records
#include <ostream>
#include <string>
#include <vector>

#include "harness/store/results.h"

namespace megabench {

struct RunOptions {
  std::string experiment_path;
  std::vector<std::string> sets;  // "path=value" overrides, applied in order
  std::string outdir;             // default: results/<experiment name>
  Shard shard;
  bool dry_run = false;  // validate and list the points; measure nothing
  /// -1: a progress line when stdout is a terminal; 0: log lines; 1: progress line.
  int progress = -1;
  /// Seconds between calibrations (matmul and triad) during the run; also one at the start and
  /// one at the end. Each point record carries the latest.
  double calibrate_every_s = 300;
  /// The worker process for isolation "process" (argv): default {"/proc/self/exe", "__worker"}.
  /// Any binary whose main() hands kWorkerArg to worker_main() will do (the tests use theirs).
  std::vector<std::string> worker_command;
};

struct RunSummary {
  size_t points = 0;  // in the whole sweep
  size_t in_shard = 0;
  size_t skipped = 0;  // already recorded with status ok
  size_t ok = 0;
  size_t failed = 0;
  std::string results_file;
  double timed_ms = 0;            // inside the measured regions
  double timing_overhead_ms = 0;  // harness time between the measured repeats (timer, bookkeeping)
  double store_ms = 0;            // writing + fsyncing records
  size_t worker_starts = 0;       // isolation "process": one, plus one per crash
  double worker_start_ms = 0;     // spawn to ready, all starts together
  std::vector<double> isolation_overhead_ms;  // per point: worker round trip minus its elapsed_s
  int stopped_by = 0;  // SIGINT / SIGTERM when a stop signal ended the run early; 0 otherwise
};

/// The whole command. Throws ConfigError / std::runtime_error for a bad experiment, outdir or
/// device, FolderBusy when another run writes into the folder, std::runtime_error when the disk
/// is full (the CLI exits non-zero); a point that fails becomes a "failed" record and the run goes
/// on. A first SIGINT / SIGTERM stops after (or, isolated, abandons) the point in flight and
/// returns with stopped_by set; a second one exits at once.
RunSummary run_experiment(const RunOptions& options, std::ostream& log);

}  // namespace megabench
