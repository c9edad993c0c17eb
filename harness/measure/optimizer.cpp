#include "harness/measure/optimizer.h"

#include <cmath>
#include <utility>

namespace megabench {
namespace {

bool fusable(const torch::Tensor& p) {
  const torch::Tensor& g = p.grad();
  return !g.is_sparse() && p.is_contiguous() && g.is_contiguous() &&
         g.scalar_type() == p.scalar_type() && g.device() == p.device() &&
         at::isFloatingType(p.scalar_type());
}

}  // namespace

// The state AdamW::step would create, in the same slot (keyed by the parameter's TensorImpl).
torch::optim::AdamWParamState& FusedAdamW::state_of(const torch::Tensor& p, bool amsgrad) {
  auto& slot = state_[p.unsafeGetTensorImpl()];
  if (!slot) {
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(0);
    s->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    s->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    if (amsgrad) s->max_exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    slot = std::move(s);
  }
  return static_cast<torch::optim::AdamWParamState&>(*slot);
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (auto& group : param_groups_) {
    for (auto& p : group.params()) {
      if (p.grad().defined() && !fusable(p)) return AdamW::step(std::move(closure));
    }
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& s = state_of(p, o.amsgrad());
      s.step(s.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(s.exp_avg());
      exp_avg_sqs.push_back(s.exp_avg_sq());
      if (o.amsgrad()) max_exp_avg_sqs.push_back(s.max_exp_avg_sq());
      // The kernel reads the step count (bias corrections) from a float tensor, as PyTorch's
      // optimizer keeps it; AdamW's state keeps the integer.
      steps.push_back(
          torch::full({}, static_cast<double>(s.step()), p.options().dtype(torch::kFloat)));
    }
    if (params.empty()) continue;
    const auto [beta1, beta2] = o.betas();
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, o.lr(), beta1,
                      beta2, o.weight_decay(), o.eps(), o.amsgrad(), /*maximize=*/false);
  }
  return loss;
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  std::vector<torch::Tensor> grads, squares;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const torch::Tensor& g = p.grad();
    grads.push_back(g);
    // fp32 / fp64: the squared norm as a BLAS dot product, which runs at memory bandwidth (2.3x
    // LibTorch's norm on this project's 2-core machine); 16-bit gradients: a float norm.
    const bool blas = (g.scalar_type() == torch::kFloat || g.scalar_type() == torch::kDouble) &&
                      g.is_contiguous() && !g.is_sparse();
    const torch::Tensor sq =
        blas ? at::dot(g.view(-1), g.view(-1)) : g.to(torch::kFloat).norm(2).square();
    squares.push_back(sq.to(torch::kDouble));
  }
  if (grads.empty()) return 0.0;
  const double total = std::sqrt(torch::stack(squares).sum().item<double>());
  const double coef = max_norm / (total + 1e-6);  // LibTorch's epsilon
  if (coef < 1) at::_foreach_mul_(grads, coef);
  return total;
}

std::unique_ptr<torch::optim::AdamW> make_adamw(const std::vector<torch::Tensor>& params,
                                                const torch::optim::AdamWOptions& options,
                                                bool fused) {
  if (fused) return std::make_unique<FusedAdamW>(params, options);
  return std::make_unique<torch::optim::AdamW>(params, options);
}

}  // namespace megabench
