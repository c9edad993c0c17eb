#include "kernels/cross_entropy.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

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

template <class T>
rows::Sums forward_backward_rows(const T* x, const int64_t* t, T* lse, T* dx, int64_t N, int64_t V,
                                 int64_t ignore, T scale) {
  switch (isa()) {
    case Isa::kAvx512:
      return rows::avx512::forward_backward(x, t, lse, dx, N, V, ignore, scale);
    case Isa::kAvx2:
      return rows::avx2::forward_backward(x, t, lse, dx, N, V, ignore, scale);
    default:
      return rows::generic::forward_backward(x, t, lse, dx, N, V, ignore, scale);
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

// ---------------------------------------------------------------------------------------------
// The logits projection fused with the loss.

// Rows per chunk: about 128K logits (512 KB in float32), so that a chunk's logits stay in L2
// between the product that writes them and the three passes that read them.
int64_t chunk_rows(int64_t V) {
  return std::clamp<int64_t>((int64_t{1} << 17) / V, 16, 4096);
}

// Count of the targets that are not ignored; the first one outside [0, V) is an error naming it.
int64_t count_targets(const torch::Tensor& t, int64_t V, int64_t ignore) {
  const int64_t* tp = t.data_ptr<int64_t>();
  int64_t count = 0;
  for (int64_t r = 0; r < t.numel(); ++r) {
    if (tp[r] == ignore) continue;
    TORCH_CHECK(tp[r] >= 0 && tp[r] < V, "linear_cross_entropy: targets[", r, "] = ", tp[r],
                " is outside [0, ", V, ") and not ignore_index ", ignore);
    ++count;
  }
  return count;
}

// One chunk's logits lc (n, V), in place: each row's log-sum-exp into lse (n) and its loss term,
// and with_grad the logits' gradient, (softmax - onehot) / count.
rows::Sums chunk_loss(const torch::Tensor& lc, const int64_t* tc, const torch::Tensor& lse,
                      int64_t ignore, int64_t count, bool with_grad) {
  const int64_t n = lc.size(0), V = lc.size(1);
  rows::Sums s;
  AT_DISPATCH_FLOATING_TYPES(lc.scalar_type(), "linear_cross_entropy_rows", [&] {
    scalar_t* l = lc.data_ptr<scalar_t>();
    scalar_t* lse_c = lse.data_ptr<scalar_t>();
    const auto scale = static_cast<scalar_t>(count > 0 ? 1.0 / static_cast<double>(count) : 0.0);
    s = with_grad ? forward_backward_rows<scalar_t>(l, tc, lse_c, l, n, V, ignore, scale)
                  : forward_rows<scalar_t>(l, tc, lse_c, n, V, ignore);
  });
  return s;
}

struct LinearCrossEntropyFunction : public torch::autograd::Function<LinearCrossEntropyFunction> {
  // bias travels as an optional: autograd records every Tensor argument as an input, and an
  // undefined one has no device to record.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight,
                               const std::optional<torch::Tensor>& bias,
                               const torch::Tensor& targets, int64_t ignore, bool with_grad) {
    // Detached: the chunks' products run on worker threads, whose grad mode is their own.
    const auto x = hidden.detach().contiguous();  // (N, D)
    const auto w = weight.detach().contiguous();  // (V, D)
    const auto b = bias ? bias->detach().contiguous() : torch::Tensor();
    const auto t = targets.contiguous();
    const int64_t N = x.size(0), D = x.size(1), V = w.size(0);
    const int64_t count = count_targets(t, V, ignore);
    const int64_t R = chunk_rows(V), chunks = (N + R - 1) / R;
    const int threads = at::get_num_threads();
    const auto o = x.options();
    auto logits = torch::empty({threads, R, V}, o);  // one chunk per thread
    auto lse = torch::empty({N}, o);
    torch::Tensor dx, dw, db, colsum;
    if (with_grad) {
      dx = torch::empty({N, D}, o);
      dw = torch::zeros({threads, V, D}, o);
      if (b.defined()) db = torch::zeros({threads, V}, o), colsum = torch::empty({threads, V}, o);
    }
    std::vector<rows::Sums> part(threads);
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      const int tid = at::get_thread_num();
      at::NoGradGuard no_grad;
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t r0 = c * R, n = std::min(R, N - r0);
        auto xc = x.narrow(0, r0, n);                     // (n, D)
        auto lc = logits.select(0, tid).narrow(0, 0, n);  // (n, V)
        if (b.defined()) {
          at::addmm_out(lc, b, xc, w.t());
        } else {
          at::mm_out(lc, xc, w.t());
        }
        const rows::Sums s = chunk_loss(lc, t.data_ptr<int64_t>() + r0, lse.narrow(0, r0, n),
                                        ignore, count, with_grad);
        part[tid].total += s.total;
        part[tid].count += s.count;
        if (!with_grad) continue;
        auto dxc = dx.narrow(0, r0, n);
        at::mm_out(dxc, lc, w);                // (n, D)
        dw.select(0, tid).addmm_(lc.t(), xc);  // (V, D)
        if (b.defined()) {
          auto cs = colsum.select(0, tid);
          db.select(0, tid).add_(at::sum_out(cs, lc, {0}));  // (V)
        }
      }
    });
    const double total = rows::combine(part).total;  // in thread order
    if (with_grad) {
      ctx->save_for_backward({dx, dw.sum(0), b.defined() ? db.sum(0) : torch::Tensor()});
    }
    const double mean =
        count > 0 ? total / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
    return torch::full({}, mean, o);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    TORCH_CHECK(!saved.empty(), "linear_cross_entropy: backward through a call made without ",
                "gradients (no input required one, or grad mode was off)");
    const auto& g = grads[0];  // () : the loss's incoming gradient
    auto db = saved[2].defined() ? saved[2] * g : torch::Tensor();
    return {saved[0] * g, saved[1] * g, db, torch::Tensor(), torch::Tensor(), torch::Tensor()};
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

bool linear_cross_entropy_supported(const torch::Tensor& hidden, const torch::Tensor& weight,
                                    const torch::Tensor& bias, const torch::Tensor& targets) {
  const auto t = hidden.scalar_type();
  const bool cpu = hidden.device().is_cpu() && weight.device().is_cpu() &&
                   targets.device().is_cpu() && (!bias.defined() || bias.device().is_cpu());
  return cpu && (t == torch::kFloat || t == torch::kDouble) && weight.scalar_type() == t &&
         (!bias.defined() ||
          (bias.scalar_type() == t && bias.dim() == 1 && bias.size(0) == weight.size(0))) &&
         targets.scalar_type() == torch::kLong && hidden.dim() == 2 && weight.dim() == 2 &&
         targets.dim() == 1 && hidden.size(1) == weight.size(1) &&
         targets.size(0) == hidden.size(0) && hidden.size(0) > 0 && weight.size(0) > 0 &&
         !at::autocast::is_autocast_enabled(at::kCPU);
}

torch::Tensor linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& bias, const torch::Tensor& targets,
                                   int64_t ignore_index) {
  if (hidden.dim() > 2) {
    TORCH_CHECK(targets.sizes() == hidden.sizes().slice(0, hidden.dim() - 1),
                "linear_cross_entropy: targets must have the shape of hidden without its last ",
                "dimension ", hidden.sizes(), ", got ", targets.sizes());
    return linear_cross_entropy(hidden.reshape({-1, hidden.size(-1)}), weight, bias,
                                targets.reshape({-1}), ignore_index);
  }
  if (!linear_cross_entropy_supported(hidden, weight, bias, targets)) {
    return linear_cross_entropy_reference(hidden, weight, bias, targets, ignore_index);
  }
  const bool with_grad =
      torch::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad() ||
                                        (bias.defined() && bias.requires_grad()));
  return LinearCrossEntropyFunction::apply(
      hidden, weight, bias.defined() ? std::optional<torch::Tensor>(bias) : std::nullopt, targets,
      ignore_index, with_grad);
}

torch::Tensor linear_cross_entropy_reference(const torch::Tensor& hidden,
                                             const torch::Tensor& weight, const torch::Tensor& bias,
                                             const torch::Tensor& targets, int64_t ignore_index) {
  return cross_entropy(at::linear(hidden, weight, bias), targets, ignore_index);
}

torch::Tensor cross_entropy_reference(const torch::Tensor& logits, const torch::Tensor& targets,
                                      int64_t ignore_index) {
  return torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index));
}

}  // namespace megabench::kernels
