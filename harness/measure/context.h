#pragma once
// What a metric sees while it runs (harness/api/metrics.h names this class; measure/ defines it).
//
//   void run_forward(MetricContext& ctx) {
//     ByteModel& model = ctx.model();
//     auto x = ctx.random_bytes(ctx.run().batch, model.seq_len());
//     EvalScope eval(model, ctx.run());
//     Timing t = ctx.time([&] { model.logits(x); });
//     ctx.metrics()["forward_ms"] = t.median_ms;
//   }
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "harness/api/metrics.h"
#include "harness/api/model.h"
#include "harness/api/record.h"
#include "harness/api/registry.h"
#include "harness/config/expand.h"
#include "harness/measure/timing.h"

namespace megabench {

class MetricContext {
 public:
  /// `out_dir`: the results folder (profiles/, curves/ and checkpoints/ go under it).
  MetricContext(const Point& point, const json& calibration, std::string out_dir,
                PointRecord& record);

  const Point& point() const { return point_; }
  const RunSettings& run() const { return point_.run; }
  const ModelSpec& spec() const { return spec_; }
  const ModelOptions& options() const { return *point_.options; }
  const torch::Device& device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }
  const json& calibration() const { return calibration_; }
  const std::string& out_dir() const { return out_dir_; }
  std::string profile_dir() const { return out_dir_ + "/profiles"; }
  bool wants(const std::string& metric) const { return point_.run.wants(metric); }

  /// The model, built on first use (fp32 master weights on the point's device).
  ByteModel& model();
  /// The model rebuilt from the point's seed, as it was before any metric trained it (bpb
  /// starts from here, so the timed training steps before it do not change its result).
  ByteModel& fresh_model();
  /// The point's analytical FLOPs (throws when the model does not count them).
  const FlopBreakdown& flops();

  PointRecord& record() { return record_; }
  PointRecord::ojson& metrics() { return record_.metrics; }

  /// Uniform random bytes (B, T) on the device.
  torch::Tensor random_bytes(int64_t batch, int64_t len) const;
  /// time_repeats with the run's warmup, repeat, min_time_ms and max_repeat (or the given warmup
  /// and repeat); the harness's time between the repeats is added to the record's overhead.
  Timing time(const std::function<void()>& fn);
  Timing time(const std::function<void()>& fn, int64_t warmup, int64_t repeat);
  /// Writes a timing as metric `name` (the median) with `name`_min and `name`_max, its summary
  /// (n, mean, std, IQR, 95% CI of the median, cv) under the record's "timing", and the samples
  /// under "samples", each times `scale` (e.g. 1/n for a per-byte time). A coefficient of
  /// variation above the run's noisy_cv marks the metric noisy ("noisy" list and a warning).
  void record_timing(const std::string& name, const Timing& t, double scale = 1.0);

  double timed_ms() const { return timed_ms_; }
  double loop_ms() const { return loop_ms_; }

 private:
  const Point& point_;
  const ModelSpec& spec_;
  const json& calibration_;
  std::string out_dir_;
  PointRecord& record_;
  torch::Device device_;
  torch::ScalarType dtype_;
  std::unique_ptr<ByteModel> model_;
  std::unique_ptr<FlopBreakdown> flops_;
  double timed_ms_ = 0, loop_ms_ = 0;
};

}  // namespace megabench
