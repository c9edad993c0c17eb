#pragma once
// `megabench run`: validates an experiment, expands its sweep, measures every point through the
// registry and the ByteModel interface, and appends one record per point to the results store.
//
//   RunOptions opts;
//   opts.experiment_path = "experiments/quickstart.json";
//   opts.sets = {"train.steps=20"};
//   RunSummary s = run_experiment(opts, std::cout);   // throws on a bad file; failed points are records
#include <torch/torch.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "harness/config/experiment.h"
#include "harness/store/results.h"

namespace megabench {

struct RunOptions {
  std::string experiment_path;
  std::vector<std::string> sets;  // "path=value" overrides, applied in order
  std::string outdir;             // default: results/<experiment name>
  Shard shard;
  bool dry_run = false;           // validate and list the points; measure nothing
  int progress = -1;              // -1: a progress line when stdout is a terminal; 0: log lines; 1: progress line
};

struct RunSummary {
  size_t points = 0;   // in the whole sweep
  size_t in_shard = 0;
  size_t skipped = 0;  // already recorded with status ok
  size_t ok = 0;
  size_t failed = 0;
  std::string results_file;
  double timed_ms = 0;        // inside the measured regions
  double timing_overhead_ms = 0;  // harness time between the measured repeats (timer, bookkeeping)
  double store_ms = 0;        // writing + fsyncing records
};

/// Mixed precision as the runner trains and measures: weights stay fp32 (the master copy the
/// optimizer updates) and, while the guard lives, autocast runs matmuls and attention in `dtype`
/// on `device`. A no-op for float32.
class AutocastGuard {
 public:
  AutocastGuard(const torch::Device& device, torch::ScalarType dtype);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool prev_enabled_ = false;
  torch::ScalarType prev_dtype_ = torch::kFloat32;
};

/// The whole command. Throws ConfigError / std::runtime_error for a bad experiment, outdir or
/// device (the CLI exits non-zero); a point that fails becomes a "failed" record and the run goes on.
RunSummary run_experiment(const RunOptions& options, std::ostream& log);

/// Median / min / max over `repeat` timed calls after `warmup` untimed ones. On CUDA each call is
/// timed with events (MEGABENCH_WITH_CUDA) or synchronize + wall clock.
struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  double measured_ms = 0;  // sum of the timed calls
  double loop_ms = 0;      // wall time of the timed loop; loop_ms - measured_ms is harness overhead
  std::vector<double> samples_ms;
};
Timing time_repeats(const std::function<void()>& fn, int64_t warmup, int64_t repeat, const torch::Device& device);

/// {"matmul_gflops_per_s", "matmul_n", "matmul_dtype"}: the best of a few square n x n matmuls
/// in `dtype` on `device` -- the peak that flops_utilization divides by. n = 0 picks a size that
/// reaches the peak: 1024 on CPU, 8192 on CUDA.
json calibrate_matmul(const torch::Device& device, torch::ScalarType dtype = torch::kFloat32,
                      int64_t n = 0);

/// Measures one point; never throws: a failure becomes status "failed" with the metrics so far.
/// With the run setting "profile": true it also profiles one forward pass (and one training step
/// when "train_step" is measured) after the timed metrics, writes `profile_dir`/<point>.md and .json
/// (default dir: "profiles") and adds the profile_* and attention_forward_* metrics; a profiler
/// failure becomes the record's "profile_error" and a "warnings" entry, not a failed point.
json measure_point(const Point& point, const json& calibration, const std::string& profile_dir = "");

}  // namespace megabench
