#include "kernels/rms_norm.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/target_clones.h"

namespace megabench::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kRowGrain = 16;  // rows per parallel task

// sum_d a[d] b[d] c[d] (c may be null: 1) in T's math type, over 8 partial sums so that the
// compiler can keep them in vector registers (the order of a plain loop forbids that).
template <class T>
[[gnu::always_inline]] inline at::opmath_type<T> sum_products(const T* a, const T* b, const T* c,
                                                              int64_t n) {
  using A = at::opmath_type<T>;
  A part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) {
    for (int k = 0; k < 8; ++k) {
      part[k] += static_cast<A>(a[d + k]) * b[d + k] * (c ? static_cast<A>(c[d + k]) : A(1));
    }
  }
  A total = 0;
  for (; d < n; ++d) total += static_cast<A>(a[d]) * b[d] * (c ? static_cast<A>(c[d]) : A(1));
  for (int k = 0; k < 8; ++k) total += part[k];
  return total;
}

// Rows [begin, end): y, inv[r] = 1 / max(rms, eps) and clamped[r], whether the clamp was active
// (the gradient is then dy * g / eps, with no term through the norm).
template <class T>
[[gnu::always_inline]] inline void forward_range_impl(const T* x, const T* g, T* y, T* inv,
                                                      bool* clamped, int64_t begin, int64_t end,
                                                      int64_t D, double eps) {
  using A = at::opmath_type<T>;
  const A rsqrt_d = static_cast<A>(1.0 / std::sqrt(static_cast<double>(D)));
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = x + r * D;
    const A rms = std::sqrt(sum_products<T>(xr, xr, nullptr, D)) * rsqrt_d;
    clamped[r] = !(rms > eps);
    const A iv = A(1) / std::max(rms, static_cast<A>(eps));
    inv[r] = static_cast<T>(iv);
    T* yr = y + r * D;  // bf16: one rounding per element, of the fp32 product
    for (int64_t d = 0; d < D; ++d) {
      yr[d] = static_cast<T>(static_cast<A>(xr[d]) * iv * static_cast<A>(g[d]));
    }
  }
}

// Rows [begin, end): dx = dy g inv - x inv^3 / D * sum(dy g x)  (rms > eps);  dy g inv
// (clamped); acc[d] += dy x inv, the rows' share of dg.
template <class T>
[[gnu::always_inline]] inline void backward_range_impl(const T* dy, const T* x, const T* g,
                                                       const T* inv, const bool* clamped, T* dx,
                                                       double* acc, int64_t begin, int64_t end,
                                                       int64_t D) {
  using A = at::opmath_type<T>;
  for (int64_t r = begin; r < end; ++r) {
    const T *dyr = dy + r * D, *xr = x + r * D;
    const T iv = inv[r];
    const A dot = sum_products<T>(dyr, g, xr, D);
    const T c = clamped[r] ? T(0) : static_cast<T>(dot * iv * iv * iv / static_cast<A>(D));
    T* dxr = dx + r * D;
    for (int64_t d = 0; d < D; ++d) dxr[d] = dyr[d] * g[d] * iv - xr[d] * c;
    for (int64_t d = 0; d < D; ++d) acc[d] += static_cast<double>(dyr[d] * xr[d] * iv);
  }
}

// float and double once per x86-64 level (the row loops are what vectorizes); bf16 (forward only,
// inference weights) at the baseline.
MEGABENCH_CLONES void forward_range(const float* x, const float* g, float* y, float* inv,
                                    bool* clamped, int64_t begin, int64_t end, int64_t D,
                                    double eps) {
  forward_range_impl(x, g, y, inv, clamped, begin, end, D, eps);
}
MEGABENCH_CLONES void forward_range(const double* x, const double* g, double* y, double* inv,
                                    bool* clamped, int64_t begin, int64_t end, int64_t D,
                                    double eps) {
  forward_range_impl(x, g, y, inv, clamped, begin, end, D, eps);
}
void forward_range(const c10::BFloat16* x, const c10::BFloat16* g, c10::BFloat16* y,
                   c10::BFloat16* inv, bool* clamped, int64_t begin, int64_t end, int64_t D,
                   double eps) {
  forward_range_impl(x, g, y, inv, clamped, begin, end, D, eps);
}
MEGABENCH_CLONES void backward_range(const float* dy, const float* x, const float* g,
                                     const float* inv, const bool* clamped, float* dx, double* acc,
                                     int64_t begin, int64_t end, int64_t D) {
  backward_range_impl(dy, x, g, inv, clamped, dx, acc, begin, end, D);
}
MEGABENCH_CLONES void backward_range(const double* dy, const double* x, const double* g,
                                     const double* inv, const bool* clamped, double* dx,
                                     double* acc, int64_t begin, int64_t end, int64_t D) {
  backward_range_impl(dy, x, g, inv, clamped, dx, acc, begin, end, D);
}

template <class T>
void forward_rows(const T* x, const T* g, T* y, T* inv, bool* clamped, int64_t rows, int64_t D,
                  double eps) {
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    forward_range(x, g, y, inv, clamped, begin, end, D, eps);
  });
}

// dg = sum over rows of dy x inv, from per-thread partial sums added in thread order.
template <class T>
void backward_rows(const T* dy, const T* x, const T* g, const T* inv, const bool* clamped, T* dx,
                   T* dg, int64_t rows, int64_t D) {
  const int threads = at::get_num_threads();
  std::vector<double> partial(static_cast<size_t>(threads) * D, 0.0);
  at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
    double* acc = partial.data() + static_cast<size_t>(at::get_thread_num()) * D;
    backward_range(dy, x, g, inv, clamped, dx, acc, begin, end, D);
  });
  for (int64_t d = 0; d < D; ++d) {
    double s = 0;
    for (int t = 0; t < threads; ++t) s += partial[static_cast<size_t>(t) * D + d];
    dg[d] = static_cast<T>(s);
  }
}

struct RMSNormFunction : public torch::autograd::Function<RMSNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in,
                               const torch::Tensor& g_in, double eps) {
    auto x = x_in.contiguous();
    auto g = g_in.contiguous();
    const int64_t D = x.size(-1), rows = D > 0 ? x.numel() / D : 0;
    auto y = torch::empty_like(x);
    auto inv = torch::empty({rows}, x.options());
    auto clamped = torch::empty({rows}, x.options().dtype(torch::kBool));
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "rms_norm_forward", [&] {
      forward_rows<scalar_t>(x.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                             inv.data_ptr<scalar_t>(), clamped.data_ptr<bool>(), rows, D, eps);
    });
    ctx->save_for_backward({x, g, inv, clamped});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &g = saved[1], &inv = saved[2], &clamped = saved[3];
    auto dy = grads[0].contiguous();
    const int64_t D = x.size(-1), rows = D > 0 ? x.numel() / D : 0;
    auto dx = torch::empty_like(x);
    auto dg = torch::empty_like(g);
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rms_norm_backward", [&] {
      backward_rows<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                              g.data_ptr<scalar_t>(), inv.data_ptr<scalar_t>(),
                              clamped.data_ptr<bool>(), dx.data_ptr<scalar_t>(),
                              dg.data_ptr<scalar_t>(), rows, D);
    });
    return {dx, dg, torch::Tensor()};
  }
};

}  // namespace

bool rms_norm_supported(const torch::Tensor& x, const torch::Tensor& g) {
  const auto t = x.scalar_type();
  // bf16 forward only (inference weights): the backward keeps its math in T.
  const bool bf16_inference = t == torch::kBFloat16 && !(torch::GradMode::is_enabled() &&
                                                         (x.requires_grad() || g.requires_grad()));
  return x.device().is_cpu() && g.device().is_cpu() &&
         (t == torch::kFloat || t == torch::kDouble || bf16_inference) && g.scalar_type() == t &&
         x.dim() >= 1 && g.dim() == 1 && g.size(0) == x.size(-1);
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& g, double eps) {
  TORCH_CHECK(rms_norm_supported(x, g), "rms_norm: needs x on the CPU in float32 or float64 (or ",
              "bfloat16 without gradients) and g of its dtype with x.size(-1) elements; got x ",
              x.sizes(), " ", x.scalar_type(), " on ", x.device(), ", g ", g.sizes(), " ",
              g.scalar_type());
  return RMSNormFunction::apply(x, g, eps);
}

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& g, double eps) {
  const double scale = std::pow(static_cast<double>(x.size(-1)), -0.5);
  auto norm = torch::linalg_vector_norm(x, 2, {-1}, /*keepdim=*/true, c10::nullopt) * scale;
  return x / norm.clamp_min(eps) * g;
}

}  // namespace megabench::kernels
