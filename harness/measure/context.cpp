#include "harness/measure/context.h"

#include <stdexcept>

namespace megabench {

MetricContext::MetricContext(const Point& point, const json& calibration, std::string profile_dir,
                             PointRecord& record)
    : point_(point),
      spec_(Registry::instance().get(point.model)),
      calibration_(calibration),
      profile_dir_(std::move(profile_dir)),
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
  Timing t = time_repeats(fn, warmup, repeat, device_);
  timed_ms_ += t.measured_ms;
  loop_ms_ += t.loop_ms;
  return t;
}

}  // namespace megabench
