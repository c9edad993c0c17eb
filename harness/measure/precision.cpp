#include "harness/measure/precision.h"

#include <ATen/autocast_mode.h>

namespace megabench {

AutocastGuard::AutocastGuard(const torch::Device& device, torch::ScalarType dtype) {
  if (dtype == torch::kFloat32) return;
  type_ = device.type();
  active_ = true;
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

bool LossScaler::unscale(torch::optim::Optimizer& opt) {
  if (!enabled_) return true;
  bool finite = true;
  for (auto& group : opt.param_groups()) {
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      p.mutable_grad().div_(scale_);
      if (!torch::isfinite(p.grad()).all().item<bool>()) finite = false;
    }
  }
  if (!finite) {
    scale_ /= 2;
    clean_ = 0;
  } else if (++clean_ == kGrowthInterval) {
    scale_ *= 2;
    clean_ = 0;
  }
  return finite;
}
void cast_inference_weights(torch::nn::Module& module, const std::string& weights) {
  if (weights == "float32") return;
  if (weights != "bfloat16") {
    throw std::invalid_argument("weights: expected \"float32\" or \"bfloat16\", got \"" + weights +
                                "\"");
  }
  module.to(torch::kBFloat16);
}

int64_t weight_bytes(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel() * static_cast<int64_t>(p.element_size());
  for (const auto& b : module.buffers()) n += b.numel() * static_cast<int64_t>(b.element_size());
  return n;
}

}  // namespace megabench
