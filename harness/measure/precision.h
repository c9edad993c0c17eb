#pragma once
// Mixed precision as the harness trains and measures: fp32 master weights, autocast compute in the
// run's dtype, and loss scaling for float16.
#include <torch/torch.h>

#include <string>

namespace megabench {

/// While the guard lives, autocast runs matmuls and attention in `dtype` on `device`; weights stay
/// fp32 (the master copy the optimizer updates). A no-op for float32.
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

// Loss scaling for float16 training (bfloat16 and float32 need none): scale the loss, unscale the
// gradients, skip the step and halve the scale when a gradient overflows, double it after
// `growth_interval` clean steps. LibTorch has no C++ GradScaler, hence this small one.
class LossScaler {
 public:
  explicit LossScaler(bool enabled) : enabled_(enabled) {}
  torch::Tensor scale(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  /// Unscales the gradients; false when they hold inf/NaN (the caller skips the step).
  bool unscale(torch::optim::Optimizer& opt);

 private:
  static constexpr int kGrowthInterval = 2000;
  bool enabled_;
  double scale_ = 65536.0;
  int clean_ = 0;
};

/// Inference weights: "float32" keeps the fp32 weights (autocast computes in the run's dtype);
/// "bfloat16" casts every parameter and buffer to bf16 in place, no fp32 copy kept, so that
/// generation and evaluation read half the bytes. Throws std::invalid_argument on another name.
void cast_inference_weights(torch::nn::Module& module, const std::string& weights);
/// Bytes of the module's parameters and buffers, as stored.
int64_t weight_bytes(const torch::nn::Module& module);

}  // namespace megabench
