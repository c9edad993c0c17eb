#include "kernels/short_attention.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <vector>

#include "kernels/attention_rows.h"
#include "kernels/target_clones.h"  // the small matrix products and the softmax rows below
#include "kernels/vec16.h"

namespace megabench::kernels {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// ---------------------------------------------------------------------------------------------
// Small matrix products on row-major float / double blocks, each with its own row stride (ld): a
// slice's rows are read from and written to the tensors in place where they hold the math type.

// C (m x n) = alpha A B^T; A (m x k), B (n x k).
template <class A>
[[gnu::always_inline]] inline void gemm_nt_impl(const A* a, int64_t lda, const A* b, int64_t ldb,
                                                A* c, int64_t ldc, int64_t m, int64_t n, int64_t k,
                                                A alpha) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = alpha * dot(a + i * lda, b + j * ldb, k);
  }
}

// C (m x n) = A B; A (m x k), B (k x n): row updates, skipping zero weights (masked keys).
template <class A>
[[gnu::always_inline]] inline void gemm_nn_impl(const A* a, int64_t lda, const A* b, int64_t ldb,
                                                A* c, int64_t ldc, int64_t m, int64_t n,
                                                int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    A* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) ci[j] = 0;
    for (int64_t l = 0; l < k; ++l) {
      const A w = a[i * lda + l];
      if (w == A(0)) continue;
      const A* bl = b + l * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += w * bl[j];
    }
  }
}

// C (k x n) = A^T B; A (m x k), B (m x n).
template <class A>
[[gnu::always_inline]] inline void gemm_tn_impl(const A* a, int64_t lda, const A* b, int64_t ldb,
                                                A* c, int64_t ldc, int64_t m, int64_t n,
                                                int64_t k) {
  for (int64_t l = 0; l < k; ++l) {
    for (int64_t j = 0; j < n; ++j) c[l * ldc + j] = 0;
  }
  for (int64_t i = 0; i < m; ++i) {
    const A* bi = b + i * ldb;
    for (int64_t l = 0; l < k; ++l) {
      const A w = a[i * lda + l];
      if (w == A(0)) continue;
      A* cl = c + l * ldc;
      for (int64_t j = 0; j < n; ++j) cl[j] += w * bi[j];
    }
  }
}

// float rows of a multiple of 16 in 16-float vectors (kernels/vec16.h; one AVX-512 register):
// the dot products of gemm_nt over k, and the row combinations of gemm_nn / gemm_tn, whose
// output rows stay in registers until they are stored once. The plain loops above run 8-wide
// at best and reduce each dot product in scalars.

[[gnu::always_inline]] inline void store16(float* p, F16 x) {
  std::memcpy(p, &x, sizeof x);
}

// C (m x n) = alpha A B^T with k % 16 == 0: four columns at a time, whose dot products share
// the loads of A's row and run as independent chains.
[[gnu::always_inline]] inline void gemm_nt16(const float* a, int64_t lda, const float* b,
                                             int64_t ldb, float* c, int64_t ldc, int64_t m,
                                             int64_t n, int64_t k, float alpha) {
  for (int64_t i = 0; i < m; ++i) {
    const float* ai = a + i * lda;
    float* ci = c + i * ldc;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      const float* bj = b + j * ldb;
      F16 s0{}, s1{}, s2{}, s3{};
      for (int64_t e = 0; e < k; e += 16) {
        const F16 x = load16(ai + e);
        s0 += x * load16(bj + e);
        s1 += x * load16(bj + ldb + e);
        s2 += x * load16(bj + 2 * ldb + e);
        s3 += x * load16(bj + 3 * ldb + e);
      }
      ci[j] = alpha * hsum(s0);
      ci[j + 1] = alpha * hsum(s1);
      ci[j + 2] = alpha * hsum(s2);
      ci[j + 3] = alpha * hsum(s3);
    }
    for (; j < n; ++j) {
      F16 acc{};
      for (int64_t e = 0; e < k; e += 16) acc += load16(ai + e) * load16(b + j * ldb + e);
      ci[j] = alpha * hsum(acc);
    }
  }
}

// Row r of C (n columns, n % 16 == 0) = sum_t w[r wr + t wt] B[t]: gemm_nn (wr = lda, wt = 1) and
// gemm_tn (wr = 1, wt = lda). Four vectors of a row at a time, then one.
[[gnu::always_inline]] inline void combine_rows16(const float* w, int64_t wr, int64_t wt,
                                                  const float* b, int64_t ldb, float* c,
                                                  int64_t ldc, int64_t rows, int64_t terms,
                                                  int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    float* cr = c + r * ldc;
    int64_t e = 0;
    for (; e + 64 <= n; e += 64) {
      F16 a0{}, a1{}, a2{}, a3{};
      for (int64_t t = 0; t < terms; ++t) {
        const float x = w[r * wr + t * wt];
        const float* bt = b + t * ldb + e;
        a0 += x * load16(bt);
        a1 += x * load16(bt + 16);
        a2 += x * load16(bt + 32);
        a3 += x * load16(bt + 48);
      }
      store16(cr + e, a0);
      store16(cr + e + 16, a1);
      store16(cr + e + 32, a2);
      store16(cr + e + 48, a3);
    }
    for (; e < n; e += 16) {
      F16 acc{};
      for (int64_t t = 0; t < terms; ++t) acc += w[r * wr + t * wt] * load16(b + t * ldb + e);
      store16(cr + e, acc);
    }
  }
}

MEGABENCH_CLONES void gemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                              int64_t ldc, int64_t m, int64_t n, int64_t k, float alpha) {
  if (k % 16 == 0) return gemm_nt16(a, lda, b, ldb, c, ldc, m, n, k, alpha);
  gemm_nt_impl(a, lda, b, ldb, c, ldc, m, n, k, alpha);
}
MEGABENCH_CLONES void gemm_nn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                              int64_t ldc, int64_t m, int64_t n, int64_t k) {
  if (n % 16 == 0) return combine_rows16(a, lda, 1, b, ldb, c, ldc, m, k, n);
  gemm_nn_impl(a, lda, b, ldb, c, ldc, m, n, k);
}
MEGABENCH_CLONES void gemm_tn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                              int64_t ldc, int64_t m, int64_t n, int64_t k) {
  if (n % 16 == 0) return combine_rows16(a, 1, lda, b, ldb, c, ldc, k, m, n);
  gemm_tn_impl(a, lda, b, ldb, c, ldc, m, n, k);
}

// double: the plain loops.
MEGABENCH_CLONES void gemm_nt(const double* a, int64_t lda, const double* b, int64_t ldb, double* c,
                              int64_t ldc, int64_t m, int64_t n, int64_t k, double alpha) {
  gemm_nt_impl(a, lda, b, ldb, c, ldc, m, n, k, alpha);
}
MEGABENCH_CLONES void gemm_nn(const double* a, int64_t lda, const double* b, int64_t ldb, double* c,
                              int64_t ldc, int64_t m, int64_t n, int64_t k) {
  gemm_nn_impl(a, lda, b, ldb, c, ldc, m, n, k);
}
MEGABENCH_CLONES void gemm_tn(const double* a, int64_t lda, const double* b, int64_t ldb, double* c,
                              int64_t ldc, int64_t m, int64_t n, int64_t k) {
  gemm_tn_impl(a, lda, b, ldb, c, ldc, m, n, k);
}

// ---------------------------------------------------------------------------------------------
// One (batch, head) slice at a time.

// A (B, H, rows, d) tensor's slice (b, h) as pointer + row stride (the last dimension is
// contiguous).
template <class T>
struct Slices {
  T* base;
  int64_t sb, sh, sr;
  explicit Slices(const torch::Tensor& t)
      : base(t.data_ptr<T>()), sb(t.stride(0)), sh(t.stride(1)), sr(t.stride(2)) {}
  T* row(int64_t b, int64_t h, int64_t r) const { return base + b * sb + h * sh + r * sr; }
};

// A slice's rows as the small products read them: in place when the tensor holds the math type
// A (float, double), else widened into `buf` (bf16, fp16).
template <class A>
struct Rows {
  A* p;
  int64_t ld;
};

template <class T, class A>
Rows<const A> read_rows(const Slices<T>& s, int64_t b, int64_t h, int64_t rows, int64_t d, A* buf) {
  if constexpr (std::is_same_v<T, A>) {
    return {s.row(b, h, 0), s.sr};
  } else {
    for (int64_t r = 0; r < rows; ++r) {
      const T* src = s.row(b, h, r);
      for (int64_t e = 0; e < d; ++e) buf[r * d + e] = static_cast<A>(src[e]);
    }
    return {buf, d};
  }
}

// Where a slice's output rows are computed: in place (A = T), else in `buf`, then write_rows().
template <class T, class A>
Rows<A> output_rows(const Slices<T>& s, int64_t b, int64_t h, int64_t d, A* buf) {
  if constexpr (std::is_same_v<T, A>) {
    return {s.row(b, h, 0), s.sr};
  } else {
    return {buf, d};
  }
}

template <class T, class A>
void write_rows(const Rows<A>& src, int64_t rows, int64_t d, const Slices<T>& s, int64_t b,
                int64_t h) {
  if constexpr (!std::is_same_v<T, A>) {
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = s.row(b, h, r);
      for (int64_t e = 0; e < d; ++e) dst[e] = static_cast<T>(src.p[r * src.ld + e]);
    }
  }
}

// Which keys each query of a slice sees: causal (j <= i + k_len - n) and keep.
struct Visibility {
  bool causal;
  int64_t n, k_len;
  const bool* keep = nullptr;  // keep expanded to (B, H, n, k_len): strides may be 0
  int64_t kb = 0, kh = 0, ki = 0, kj = 0;
  bool sees(int64_t b, int64_t h, int64_t i, int64_t j) const {
    if (causal && j > i + k_len - n) return false;
    return !keep || keep[b * kb + h * kh + i * ki + j * kj];
  }
};

// ---------------------------------------------------------------------------------------------
// exp over a block, vectorized.

MEGABENCH_CLONES void exp_block(float* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = exp_nonpositive(p[i]);
}
void exp_block(double* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) p[i] = std::exp(p[i]);
}

// P (n x k_len) from the scaled scores S in place: softmax over the visible keys, 0 elsewhere;
// a row with no visible key is uniform (the references' -finfo.max fill gives equal scores).
// lse[i] = the row's log-sum-exp, NaN for a uniform row. The exps of the whole slice at once.
template <class A>
void softmax_rows(A* s, A* lse, const Visibility& vis, int64_t b, int64_t h) {
  const int64_t n = vis.n, kl = vis.k_len;
  constexpr A kHidden = -std::numeric_limits<A>::infinity();
  for (int64_t i = 0; i < n; ++i) {  // each row less its maximum, hidden keys -inf
    A* row = s + i * kl;
    A mx = kHidden;
    for (int64_t j = 0; j < kl; ++j) {
      if (vis.sees(b, h, i, j)) mx = std::max(mx, row[j]);
    }
    lse[i] = mx;
    for (int64_t j = 0; j < kl; ++j) row[j] = vis.sees(b, h, i, j) ? row[j] - mx : kHidden;
  }
  exp_block(s, n * kl);
  for (int64_t i = 0; i < n; ++i) {
    A* row = s + i * kl;
    if (lse[i] == kHidden) {
      for (int64_t j = 0; j < kl; ++j) row[j] = A(1) / static_cast<A>(kl);
      lse[i] = std::numeric_limits<A>::quiet_NaN();
      continue;
    }
    A sum = 0;
    for (int64_t j = 0; j < kl; ++j) sum += row[j];
    const A inv = A(1) / sum;
    for (int64_t j = 0; j < kl; ++j) row[j] *= inv;
    lse[i] += std::log(sum);
  }
}

template <class T>
void forward_slices(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                    const torch::Tensor& out, const torch::Tensor& lse, const Visibility& vis,
                    double scale) {
  using A = at::opmath_type<T>;
  const int64_t B = q.size(0), H = q.size(1), n = q.size(2), kl = k.size(2), d = q.size(3);
  const Slices<T> Q(q), K(k), V(v), O(out);
  A* lse_p = lse.data_ptr<A>();
  at::parallel_for(0, B * H, slice_grain(n, kl, d), [&](int64_t begin, int64_t end) {
    std::vector<A> qb(n * d), kb(kl * d), vb(kl * d), s(n * kl), ob(n * d);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto qr = read_rows(Q, b, h, n, d, qb.data());
      const auto kr = read_rows(K, b, h, kl, d, kb.data());
      const auto vr = read_rows(V, b, h, kl, d, vb.data());
      const auto o = output_rows(O, b, h, d, ob.data());
      gemm_nt(qr.p, qr.ld, kr.p, kr.ld, s.data(), kl, n, kl, d, static_cast<A>(scale));
      softmax_rows(s.data(), lse_p + bh * n, vis, b, h);
      gemm_nn(s.data(), kl, vr.p, vr.ld, o.p, o.ld, n, d, kl);
      write_rows(o, n, d, O, b, h);
    }
  });
}

// dP -> dS (scaled) in place, from P = exp(S - lse) (recomputed in p): dS = P (dP - D) scale
// with D_i = sum_j P_ij dP_ij (= dO_i . O_i). A uniform row (NaN lse: constant scores) gets no
// gradient to q or k.
template <class A>
void softmax_backward_rows(A* p, A* dp, const A* lse, const Visibility& vis, int64_t b, int64_t h,
                           A scale) {
  const int64_t n = vis.n, kl = vis.k_len;
  for (int64_t i = 0; i < n; ++i) {  // the exps of the slice at once
    A* pi = p + i * kl;
    for (int64_t j = 0; j < kl; ++j) {
      pi[j] = !std::isnan(lse[i]) && vis.sees(b, h, i, j) ? pi[j] - lse[i]
                                                          : -std::numeric_limits<A>::infinity();
    }
  }
  exp_block(p, n * kl);
  for (int64_t i = 0; i < n; ++i) {
    A* pi = p + i * kl;
    A* dpi = dp + i * kl;
    if (std::isnan(lse[i])) {
      for (int64_t j = 0; j < kl; ++j) {
        pi[j] = A(1) / static_cast<A>(kl);
        dpi[j] = 0;
      }
      continue;
    }
    A dsum = 0;
    for (int64_t j = 0; j < kl; ++j) dsum += pi[j] * dpi[j];
    for (int64_t j = 0; j < kl; ++j) dpi[j] = pi[j] * (dpi[j] - dsum) * scale;
  }
}

template <class T>
void backward_slices(const torch::Tensor& dout, const torch::Tensor& q, const torch::Tensor& k,
                     const torch::Tensor& v, const torch::Tensor& lse, const torch::Tensor& dq,
                     const torch::Tensor& dk, const torch::Tensor& dv, const Visibility& vis,
                     double scale) {
  using A = at::opmath_type<T>;
  const int64_t B = q.size(0), H = q.size(1), n = q.size(2), kl = k.size(2), d = q.size(3);
  const Slices<T> dO(dout), Q(q), K(k), V(v), dQ(dq), dK(dk), dV(dv);
  const A* lse_p = lse.data_ptr<A>();
  const A sc = static_cast<A>(scale);
  at::parallel_for(0, B * H, slice_grain(n, kl, d), [&](int64_t begin, int64_t end) {
    std::vector<A> qb(n * d), kb(kl * d), vb(kl * d), dob(n * d), p(n * kl), dp(n * kl), dqb(n * d),
        dkb(kl * d), dvb(kl * d);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      const auto qr = read_rows(Q, b, h, n, d, qb.data());
      const auto kr = read_rows(K, b, h, kl, d, kb.data());
      const auto vr = read_rows(V, b, h, kl, d, vb.data());
      const auto dor = read_rows(dO, b, h, n, d, dob.data());
      gemm_nt(qr.p, qr.ld, kr.p, kr.ld, p.data(), kl, n, kl, d, sc);       // scaled scores
      gemm_nt(dor.p, dor.ld, vr.p, vr.ld, dp.data(), kl, n, kl, d, A(1));  // dP = dO V^T
      softmax_backward_rows(p.data(), dp.data(), lse_p + bh * n, vis, b, h, sc);
      const auto dqr = output_rows(dQ, b, h, d, dqb.data());
      const auto dkr = output_rows(dK, b, h, d, dkb.data());
      const auto dvr = output_rows(dV, b, h, d, dvb.data());
      gemm_nn(dp.data(), kl, kr.p, kr.ld, dqr.p, dqr.ld, n, d, kl);   // dQ = dS K
      gemm_tn(dp.data(), kl, qr.p, qr.ld, dkr.p, dkr.ld, n, d, kl);   // dK = dS^T Q
      gemm_tn(p.data(), kl, dor.p, dor.ld, dvr.p, dvr.ld, n, d, kl);  // dV = P^T dO
      write_rows(dqr, n, d, dQ, b, h);
      write_rows(dkr, kl, d, dK, b, h);
      write_rows(dvr, kl, d, dV, b, h);
    }
  });
}

Visibility visibility(const torch::Tensor& q, const torch::Tensor& k, bool causal,
                      const torch::Tensor& keep_expanded) {
  Visibility vis{causal, q.size(2), k.size(2)};
  if (keep_expanded.defined()) {
    vis.keep = keep_expanded.data_ptr<bool>();
    vis.kb = keep_expanded.stride(0);
    vis.kh = keep_expanded.stride(1);
    vis.ki = keep_expanded.stride(2);
    vis.kj = keep_expanded.stride(3);
  }
  return vis;
}

struct ShortAttentionFunction : public torch::autograd::Function<ShortAttentionFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, double scale, bool causal,
                               const std::optional<torch::Tensor>& keep_opt) {
    // keep travels as an optional: autograd records every Tensor argument as an input, and an
    // undefined one has no device to record.
    const torch::Tensor keep = keep_opt.value_or(torch::Tensor());
    const int64_t B = q.size(0), H = q.size(1), n = q.size(2), d = q.size(3);
    auto out = heads_view(B, H, n, d, q.options());
    auto lse = torch::empty({B, H, n}, q.options().dtype(at::toOpMathType(q.scalar_type())));
    const auto vis = visibility(q, k, causal, keep);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kBFloat16, at::kHalf, q.scalar_type(), "short_attention",
        [&] { forward_slices<scalar_t>(q, k, v, out, lse, vis, scale); });
    ctx->save_for_backward({q, k, v, lse, keep});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["causal"] = causal;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &q = saved[0], &k = saved[1], &v = saved[2], &lse = saved[3], &keep = saved[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    const bool causal = ctx->saved_data["causal"].toBool();
    auto dout = grads[0];
    if (dout.stride(-1) != 1) dout = dout.contiguous();
    const int64_t B = q.size(0), H = q.size(1), n = q.size(2), kl = k.size(2), d = q.size(3);
    auto dq = heads_view(B, H, n, d, q.options());
    auto dk = heads_view(B, H, kl, d, k.options());
    auto dv = heads_view(B, H, kl, d, v.options());
    const auto vis = visibility(q, k, causal, keep);
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kBFloat16, at::kHalf, q.scalar_type(), "short_attention_backward",
        [&] { backward_slices<scalar_t>(dout, q, k, v, lse, dq, dk, dv, vis, scale); });
    return {dq, dk, dv, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor short_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, double scale, bool causal,
                                        const torch::Tensor& keep) {
  const int64_t n = q.size(-2), kl = k.size(-2);
  auto sim = torch::matmul(q, k.transpose(-1, -2)) * scale;  // (B, H, n, k_len)
  torch::Tensor visible = keep;
  if (causal) {
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(q.device());
    auto qi = torch::arange(kl - n, kl, opts).unsqueeze(1);
    auto kj = torch::arange(0, kl, opts).unsqueeze(0);
    auto c = kj <= qi;
    visible = visible.defined() ? visible & c : c;
  }
  if (visible.defined()) {
    double lowest = 0;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, sim.scalar_type(), "lowest", [&] {
      lowest = -static_cast<double>(std::numeric_limits<scalar_t>::max());
    });
    sim = sim.masked_fill(visible.logical_not(), lowest);
  }
  return torch::matmul(sim.softmax(-1), v);
}

bool short_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& keep, int64_t max_keys,
                               std::string* why) {
  auto no = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  for (const auto* t : {&q, &k, &v}) {
    if (!t->defined()) return no("q, k and v must be defined");
  }
  if (!q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu()) {
    return no("q, k and v must be on the CPU");
  }
  const auto t = q.scalar_type();
  if (t != torch::kFloat && t != torch::kDouble && t != torch::kBFloat16 && t != torch::kHalf) {
    return no("q must be float32, float64, bfloat16 or float16");
  }
  if (k.scalar_type() != t || v.scalar_type() != t) return no("k and v must have q's dtype");
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) return no("q, k and v must be (B, H, n, d)");
  if (k.sizes() != v.sizes() || k.size(0) != q.size(0) || k.size(1) != q.size(1) ||
      k.size(3) != q.size(3)) {
    return no("k and v must be (B, H, k_len, d) with q's B, H and d");
  }
  if (q.size(2) < 1 || q.size(3) < 1) return no("q must have at least one query and feature");
  if (k.size(2) > max_keys) return no("k_len must be at most " + std::to_string(max_keys));
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) {
    return no("the last dimension of q, k and v must be contiguous");
  }
  if (keep.defined()) {
    if (keep.scalar_type() != torch::kBool || !keep.device().is_cpu() || keep.dim() > 4) {
      return no("keep must be a CPU bool tensor of at most 4 dimensions");
    }
    const std::vector<int64_t> full{q.size(0), q.size(1), q.size(2), k.size(2)};
    for (int64_t i = 0; i < keep.dim(); ++i) {
      const int64_t s = keep.size(keep.dim() - 1 - i), f = full[3 - i];
      if (s != 1 && s != f) return no("keep must broadcast to (B, H, n, k_len)");
    }
  }
  return true;
}

torch::Tensor short_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, double scale, bool causal,
                              const torch::Tensor& keep) {
  std::string why;
  TORCH_CHECK(short_attention_supported(q, k, v, keep, std::numeric_limits<int64_t>::max(), &why),
              "short_attention: ", why, "; got q ", q.sizes(), " ", q.scalar_type(), ", k ",
              k.sizes(), ", v ", v.sizes());
  TORCH_CHECK(!causal || k.size(2) >= q.size(2), "short_attention: causal attention needs at ",
              "least as many keys (", k.size(2), ") as queries (", q.size(2), ")");
  torch::Tensor keep_full;
  if (keep.defined()) keep_full = keep.expand({q.size(0), q.size(1), q.size(2), k.size(2)});
  return ShortAttentionFunction::apply(
      q, k, v, scale, causal,
      keep_full.defined() ? std::optional<torch::Tensor>(keep_full) : std::nullopt);
}

}  // namespace megabench::kernels
