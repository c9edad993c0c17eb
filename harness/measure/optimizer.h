#pragma once
// The training optimizer: AdamW, either LibTorch's torch::optim::AdamW (one ATen op per update
// term and parameter: weight decay, two moment updates, a square root, a division, the update) or
// the same update through ATen's fused kernel at::_fused_adamw_ (one pass over each parameter,
// its gradient and both moments; the kernel PyTorch's `AdamW(fused=True)` calls). The fused one
// keeps AdamW's state, so a checkpoint written by either loads into the other.
//
//   auto opt = make_adamw(module.parameters(), AdamWOptions(lr).weight_decay(0.1), /*fused=*/true);
//   opt->zero_grad(); loss.backward(); clip_grad_norm(params, 1.0); opt->step();
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace megabench {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  /// One AdamW step through at::_fused_adamw_. When a gradient is one the kernel does not take
  /// (sparse, non-contiguous, or of another dtype or device than its parameter), the whole step
  /// goes through AdamW::step instead.
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  torch::optim::AdamWParamState& state_of(const torch::Tensor& p, bool amsgrad);
};

/// Scales the gradients of `params` so that their joint L2 norm is at most max_norm and returns
/// the norm before scaling: torch::nn::utils::clip_grad_norm_'s result, with the squared norms
/// of fp32 / fp64 gradients taken as BLAS dot products (LibTorch's norm is a second pass slower)
/// and no multiply when nothing is clipped.
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

/// AdamW over `params`: FusedAdamW when `fused`, else torch::optim::AdamW.
std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params,
                                                const torch::optim::AdamWOptions& options,
                                                bool fused);

}  // namespace megabench
