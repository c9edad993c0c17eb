#include "harness/measure/context.h"

#include <stdexcept>

#include "harness/api/stats.h"

namespace megabench {

MetricContext::MetricContext(const Point& point, const json& calibration, std::string out_dir,
                             PointRecord& record)
    : point_(point),
      spec_(Registry::instance().get(point.model)),
      calibration_(calibration),
      out_dir_(std::move(out_dir)),
      record_(record),
      device_(point.run.torch_device()),
      dtype_(point.run.scalar_type()) {}

ByteModel& MetricContext::model() {
  if (!model_) {
    model_ = spec_.build(options());
    model_->module().to(device_);  // fp32 master weights; autocast lowers the compute
  }
  return *model_;
}

ByteModel& MetricContext::fresh_model() {
  if (!model_) return model();  // nothing has touched the weights yet (or the RNG since the seed)
  model_.reset();
  torch::manual_seed(static_cast<uint64_t>(point_.run.seed));
  return model();
}

const FlopBreakdown& MetricContext::flops() {
  if (!flops_) {
    if (!spec_.flops)
      throw std::runtime_error("model '" + point_.model + "' does not count its FLOPs");
    flops_ = std::make_unique<FlopBreakdown>(spec_.flops(options()));
  }
  return *flops_;
}

torch::Tensor MetricContext::random_bytes(int64_t batch, int64_t len) const {
  return torch::randint(0, 256, {batch, len}, torch::TensorOptions().dtype(torch::kLong))
      .to(device_);
}

Timing MetricContext::time(const std::function<void()>& fn) {
  return time(fn, point_.run.warmup, point_.run.repeat);
}

Timing MetricContext::time(const std::function<void()>& fn, int64_t warmup, int64_t repeat) {
  Timing t =
      time_repeats(fn, warmup, repeat, device_, point_.run.min_time_ms, point_.run.max_repeat);
  timed_ms_ += t.measured_ms;
  loop_ms_ += t.loop_ms;
  return t;
}

void MetricContext::record_timing(const std::string& name, const Timing& t, double scale) {
  std::vector<double> samples = t.samples_ms;
  for (auto& v : samples) v *= scale;
  const stats::Summary s = stats::summarize(samples);
  auto& m = record_.metrics;
  m[name] = s.median;
  m[name + "_min"] = s.min;
  m[name + "_max"] = s.max;
  record_.extra["timing"][name] = {
      {"n", s.n},     {"median", s.median}, {"mean", s.mean},   {"ci_exact", s.ci_exact},
      {"std", s.std}, {"iqr", s.iqr},       {"ci_lo", s.ci_lo}, {"ci_hi", s.ci_hi},
      {"cv", s.cv}};
  record_.extra["samples"][name] = samples;
  if (s.n > 1 && s.cv > point_.run.noisy_cv) {
    record_.extra["noisy"].push_back(name);
    record_.warnings.push_back("noisy: " + name + " has a coefficient of variation of " +
                               std::to_string(s.cv) + " over " + std::to_string(s.n) + " repeats");
  }
}

}  // namespace megabench
