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
};

/// The whole command. Throws ConfigError / std::runtime_error for a bad experiment, outdir or
/// device (the CLI exits non-zero); a point that fails becomes a "failed" record and the run goes
/// on.
RunSummary run_experiment(const RunOptions& options, std::ostream& log);

}  // namespace megabench
