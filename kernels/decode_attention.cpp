#include "kernels/decode_attention.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/attention_rows.h"
#include "kernels/short_attention.h"  // short_attention_supported: the same input contract
#include "kernels/target_clones.h"    // the row loops of one slice below
#include "kernels/vec16.h"

namespace megabench::kernels {
namespace {

// One (batch, head) slice: row pointers with their row strides (the last dimension is contiguous).
template <class T>
struct Slice {
  const T *q, *k, *v;
  T* out;
  int64_t q_stride, k_stride, v_stride, out_stride;
  int64_t n, k_len, d;
  bool causal;
  const bool* keep;  // keep expanded to (B, H, n, k_len), at (b, h); nullptr: every key
  int64_t keep_i, keep_j;
};

// max_j x[j] and sum_j x[j] over 16 partials each (one AVX-512 register of floats; a plain loop's
// order forbids vectorizing it).
template <class A>
[[gnu::always_inline]] inline A row_max(const A* x, int64_t n) {
  A part[16];
  for (int t = 0; t < 16; ++t) part[t] = -std::numeric_limits<A>::infinity();
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    for (int t = 0; t < 16; ++t) part[t] = std::max(part[t], x[j + t]);
  }
  A m = -std::numeric_limits<A>::infinity();
  for (int t = 0; t < 16; ++t) m = std::max(m, part[t]);
  for (; j < n; ++j) m = std::max(m, x[j]);
  return m;
}

template <class A>
[[gnu::always_inline]] inline A row_sum(const A* x, int64_t n) {
  A part[16] = {};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    for (int t = 0; t < 16; ++t) part[t] += x[j + t];
  }
  A total = 0;
  for (int t = 0; t < 16; ++t) total += part[t];
  for (; j < n; ++j) total += x[j];
  return total;
}

// Softmax numerators of one query's scores p[0, len) in place (len: the causally visible keys),
// keys whose keep is false hidden; sets *inv to 1 / their sum and returns how many keys the
// weighted sum runs over. A query that sees no key attends to all k_len equally, as the
// references' -finfo.max fill makes it.
template <class A>
[[gnu::always_inline]] inline int64_t softmax_row(A* p, int64_t len, int64_t k_len,
                                                  const bool* keep, int64_t keep_stride, A* inv) {
  if (keep) {
    int64_t visible = 0;
    for (int64_t j = 0; j < len; ++j) {
      if (keep[j * keep_stride]) {
        ++visible;
      } else {
        p[j] = -std::numeric_limits<A>::infinity();  // exp_row gives 0
      }
    }
    if (visible == 0) {
      for (int64_t j = 0; j < k_len; ++j) p[j] = A(1);
      *inv = A(1) / static_cast<A>(k_len);
      return k_len;
    }
  }
  const A mx = row_max(p, len);
  for (int64_t j = 0; j < len; ++j) p[j] = exp_row(p[j] - mx);
  *inv = A(1) / row_sum(p, len);
  return len;
}

// Query i's visible range [0, len) under causality, and its keep row (or nullptr).
template <class T>
[[gnu::always_inline]] inline int64_t causal_len(const Slice<T>& s, int64_t i) {
  return s.causal ? s.k_len - s.n + i + 1 : s.k_len;
}
template <class T>
[[gnu::always_inline]] inline const bool* keep_row(const Slice<T>& s, int64_t i) {
  return s.keep ? s.keep + i * s.keep_i : nullptr;
}

// Any d, any accumulator, plain loops, query by query. work: 3 d + k_len.
template <class T, class A>
[[gnu::always_inline]] inline void attend_slice_impl(const Slice<T>& s, A scale, A* work) {
  const int64_t kl = s.k_len, d = s.d;
  A* qf = work;      // (d) the query, scaled
  A* row = qf + d;   // (d) one key or value row, widened
  A* acc = row + d;  // (d) the weighted sum of values
  A* p = acc + d;    // (k_len) scores, then unnormalized probabilities
  for (int64_t i = 0; i < s.n; ++i) {
    const T* qi = s.q + i * s.q_stride;
    for (int64_t e = 0; e < d; ++e) qf[e] = static_cast<A>(qi[e]) * scale;
    const int64_t len = causal_len(s, i);
    for (int64_t j = 0; j < len; ++j) {  // one pass over the keys
      const T* kj = s.k + j * s.k_stride;
      for (int64_t e = 0; e < d; ++e) row[e] = static_cast<A>(kj[e]);
      p[j] = dot(qf, row, d);
    }
    A inv;
    const int64_t used = softmax_row(p, len, kl, keep_row(s, i), s.keep_j, &inv);
    for (int64_t e = 0; e < d; ++e) acc[e] = 0;
    for (int64_t j = 0; j < used; ++j) {  // one pass over the values
      const T* vj = s.v + j * s.v_stride;
      const A w = p[j];
      for (int64_t e = 0; e < d; ++e) acc[e] += w * static_cast<A>(vj[e]);
    }
    T* oi = s.out + i * s.out_stride;
    for (int64_t e = 0; e < d; ++e) oi[e] = static_cast<T>(acc[e] * inv);
  }
}

// ---------------------------------------------------------------------------------------------
// The common head sizes (d = 32, 64, 128) with float math, in 16-float vectors (GCC's vector
// extensions, lowered to each clone's widest registers): a query's d / 16 vectors and its
// weighted sum stay in registers across the keys, and each key costs d / 16 fused products and
// one horizontal sum. Query by query: for n > 1 the keys and values are read again from cache.

template <class T, int V>
[[gnu::always_inline]] inline void attend_slice_vec(const Slice<T>& s, float scale, float* p) {
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t len = causal_len(s, i);
    F16 q[V], o[V];
    for (int v = 0; v < V; ++v) q[v] = load16(s.q + i * s.q_stride + 16 * v) * scale;
    for (int64_t j = 0; j < len; ++j) {
      const T* kj = s.k + j * s.k_stride;
      F16 acc = q[0] * load16(kj);
      for (int v = 1; v < V; ++v) acc += q[v] * load16(kj + 16 * v);
      p[j] = hsum(acc);
    }
    float inv;
    const int64_t used = softmax_row(p, len, s.k_len, keep_row(s, i), s.keep_j, &inv);
    for (int v = 0; v < V; ++v) o[v] = F16{};
    for (int64_t j = 0; j < used; ++j) {
      const T* vj = s.v + j * s.v_stride;
      for (int v = 0; v < V; ++v) o[v] += p[j] * load16(vj + 16 * v);
    }
    T* oi = s.out + i * s.out_stride;
    for (int v = 0; v < V; ++v) {
      const F16 r = o[v] * inv;
      for (int e = 0; e < 16; ++e) oi[16 * v + e] = static_cast<T>(r[e]);
    }
  }
}

// One clone set per dtype (target_clones does not apply to templates); float math takes the
// vector path for d = 32, 64 and 128.
template <class T>
[[gnu::always_inline]] inline void attend_slice_float(const Slice<T>& s, float scale, float* work) {
  switch (s.d) {
    case 32:
      return attend_slice_vec<T, 2>(s, scale, work);
    case 64:
      return attend_slice_vec<T, 4>(s, scale, work);
    case 128:
      return attend_slice_vec<T, 8>(s, scale, work);
    default:
      return attend_slice_impl(s, scale, work);
  }
}
MEGABENCH_CLONES void attend_slice(const Slice<float>& s, float scale, float* work) {
  attend_slice_float(s, scale, work);
}
MEGABENCH_CLONES void attend_slice(const Slice<double>& s, double scale, double* work) {
  attend_slice_impl(s, scale, work);
}
MEGABENCH_CLONES void attend_slice(const Slice<c10::BFloat16>& s, float scale, float* work) {
  attend_slice_float(s, scale, work);
}
MEGABENCH_CLONES void attend_slice(const Slice<c10::Half>& s, float scale, float* work) {
  attend_slice_float(s, scale, work);
}

template <class T>
void attend_slices(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& keep, const torch::Tensor& out, double scale, bool causal) {
  using A = at::opmath_type<T>;
  const int64_t B = q.size(0), H = q.size(1), n = q.size(2), kl = k.size(2), d = q.size(3);
  at::parallel_for(0, B * H, slice_grain(n, kl, d), [&](int64_t begin, int64_t end) {
    std::vector<A> work(3 * d + kl);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / H, h = bh % H;
      Slice<T> s{q.const_data_ptr<T>() + b * q.stride(0) + h * q.stride(1),
                 k.const_data_ptr<T>() + b * k.stride(0) + h * k.stride(1),
                 v.const_data_ptr<T>() + b * v.stride(0) + h * v.stride(1),
                 out.data_ptr<T>() + b * out.stride(0) + h * out.stride(1),
                 q.stride(2),
                 k.stride(2),
                 v.stride(2),
                 out.stride(2),
                 n,
                 kl,
                 d,
                 causal,
                 nullptr,
                 0,
                 0};
      if (keep.defined()) {  // (B, H, n, k_len), strides 0 where broadcast
        s.keep = keep.const_data_ptr<bool>() + b * keep.stride(0) + h * keep.stride(1);
        s.keep_i = keep.stride(2);
        s.keep_j = keep.stride(3);
      }
      attend_slice(s, static_cast<A>(scale), work.data());
    }
  });
}

}  // namespace

bool decode_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& keep,
                                int64_t max_queries, std::string* why) {
  if (!short_attention_supported(q, k, v, keep, std::numeric_limits<int64_t>::max(), why)) {
    return false;
  }
  if (k.size(2) < 1) {
    if (why) *why = "k_len must be at least 1";
    return false;
  }
  if (q.size(2) > max_queries) {
    if (why) *why = "n must be at most " + std::to_string(max_queries) + " queries";
    return false;
  }
  if (at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) {
    if (why) *why = "q, k and v must not require gradients (the kernel has no backward)";
    return false;
  }
  return true;
}

torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, double scale, bool causal,
                               const torch::Tensor& keep) {
  std::string why;
  TORCH_CHECK(decode_attention_supported(q, k, v, keep, std::numeric_limits<int64_t>::max(), &why),
              "decode_attention: ", why, "; got q ", q.sizes(), " ", q.scalar_type(), ", k ",
              k.sizes(), ", v ", v.sizes());
  TORCH_CHECK(!causal || k.size(2) >= q.size(2), "decode_attention: causal attention needs at ",
              "least as many keys (", k.size(2), ") as queries (", q.size(2), ")");
  const int64_t B = q.size(0), H = q.size(1), n = q.size(2), d = q.size(3);
  auto out = heads_view(B, H, n, d, q.options());
  torch::Tensor keep_full;
  if (keep.defined()) keep_full = keep.expand({B, H, n, k.size(2)});
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kBFloat16, at::kHalf, q.scalar_type(), "decode_attention",
      [&] { attend_slices<scalar_t>(q, k, v, keep_full, out, scale, causal); });
  return out;
}

}  // namespace megabench::kernels
