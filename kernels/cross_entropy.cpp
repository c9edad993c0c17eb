#include "kernels/cross_entropy.h"

#include <ATen/Dispatch.h>
#include <ATen/Version.h>

#include <limits>
#include <string>

#include "kernels/cross_entropy_rows.h"

namespace megabench::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace rows = cross_entropy_rows;

// ATen's own choice (ATEN_CPU_CAPABILITY may lower it), so that this kernel's exp is the one
// LibTorch's kernels use on this machine.
enum class Isa { kGeneric, kAvx2, kAvx512 };
Isa isa() {
  static const Isa chosen = [] {
    const std::string c = at::get_cpu_capability();
    return c == "AVX512" ? Isa::kAvx512 : c == "AVX2" ? Isa::kAvx2 : Isa::kGeneric;
  }();
  return chosen;
}

template <class T>
rows::Sums forward_rows(const T* x, const int64_t* t, T* lse, int64_t N, int64_t V,
                        int64_t ignore) {
  switch (isa()) {
    case Isa::kAvx512:
      return rows::avx512::forward(x, t, lse, N, V, ignore);
    case Isa::kAvx2:
      return rows::avx2::forward(x, t, lse, N, V, ignore);
    default:
      return rows::generic::forward(x, t, lse, N, V, ignore);
  }
}

template <class T>
void backward_rows(const T* x, const int64_t* t, const T* lse, T* dx, int64_t N, int64_t V,
                   int64_t ignore, T scale) {
  switch (isa()) {
    case Isa::kAvx512:
      return rows::avx512::backward(x, t, lse, dx, N, V, ignore, scale);
    case Isa::kAvx2:
      return rows::avx2::backward(x, t, lse, dx, N, V, ignore, scale);
    default:
      return rows::generic::backward(x, t, lse, dx, N, V, ignore, scale);
  }
}

struct CrossEntropyFunction : public torch::autograd::Function<CrossEntropyFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in,
                               const torch::Tensor& targets_in, int64_t ignore) {
    auto x = logits_in.contiguous();
    auto t = targets_in.contiguous();
    const int64_t N = x.size(0), V = x.size(1);
    auto lse = torch::empty({N}, x.options());
    rows::Sums sums;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cross_entropy_forward", [&] {
      sums = forward_rows<scalar_t>(x.data_ptr<scalar_t>(), t.data_ptr<int64_t>(),
                                    lse.data_ptr<scalar_t>(), N, V, ignore);
    });
    const auto* tp = t.data_ptr<int64_t>();
    TORCH_CHECK(sums.bad_row < 0, "cross_entropy: targets[", sums.bad_row,
                "] = ", sums.bad_row < 0 ? 0 : tp[sums.bad_row], " is outside [0, ", V,
                ") and not ignore_index ", ignore);
    const int64_t count = sums.count;
    const double total = sums.total;
    ctx->save_for_backward({x, t, lse});
    ctx->saved_data["ignore"] = ignore;
    ctx->saved_data["count"] = count;
    const double mean =
        count > 0 ? total / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
    return torch::full({}, mean, x.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &t = saved[1], &lse = saved[2];
    const int64_t ignore = ctx->saved_data["ignore"].toInt();
    const int64_t count = ctx->saved_data["count"].toInt();
    const int64_t N = x.size(0), V = x.size(1);
    auto dx = torch::empty_like(x);
    const double g = grads[0].item<double>();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "cross_entropy_backward", [&] {
      // count == 0: every row is ignored and every gradient 0 (LibTorch's too).
      const auto scale = static_cast<scalar_t>(count > 0 ? g / static_cast<double>(count) : 0.0);
      backward_rows<scalar_t>(x.data_ptr<scalar_t>(), t.data_ptr<int64_t>(),
                              lse.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), N, V, ignore,
                              scale);
    });
    return {dx, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool cross_entropy_supported(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto t = logits.scalar_type();
  return logits.device().is_cpu() && targets.device().is_cpu() &&
         (t == torch::kFloat || t == torch::kDouble) && targets.scalar_type() == torch::kLong &&
         logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0) &&
         logits.size(1) > 0;
}

torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                            int64_t ignore_index) {
  if (logits.dim() > 2) {
    TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1),
                "cross_entropy: targets must have the shape of logits without its last dimension ",
                logits.sizes(), ", got ", targets.sizes());
    return cross_entropy(logits.reshape({-1, logits.size(-1)}), targets.reshape({-1}),
                         ignore_index);
  }
  // bf16 / fp16 logits (autocast's matmuls): fp32 math, as autocast gives LibTorch's loss.
  const auto t = logits.scalar_type();
  if ((t == torch::kBFloat16 || t == torch::kHalf) && logits.device().is_cpu()) {
    auto wide = logits.to(torch::kFloat);
    if (cross_entropy_supported(wide, targets))
      return CrossEntropyFunction::apply(wide, targets, ignore_index);
  }
  if (!cross_entropy_supported(logits, targets))
    return cross_entropy_reference(logits, targets, ignore_index);
  return CrossEntropyFunction::apply(logits, targets, ignore_index);
}

torch::Tensor cross_entropy_reference(const torch::Tensor& logits, const torch::Tensor& targets,
                                      int64_t ignore_index) {
  return torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index));
}

}  // namespace megabench::kernels
