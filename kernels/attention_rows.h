#pragma once
// Row helpers shared by the CPU attention kernels (short_attention, decode_attention): a dot
// product and a branch-free exp, inlined into their target_clones loops, where they vectorize
// (a plain summation loop and std::exp do not); how many (batch, head) slices a parallel task
// takes; the (B, n, H, d) storage both write their outputs to.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace megabench::kernels {

// exp(x) for x <= 0 (a score less its row's maximum or log-sum-exp), as Cephes' expf: x = n ln2 +
// r with |r| <= ln2 / 2 (ln2 in two parts), e^r by a degree-6 polynomial, 2^n from the exponent
// bits; within 2 ulp of std::exp. Branch-free, so that the loop calling it vectorizes; 0 below
// -87.3 (where 2^n leaves float's normal range), and for -inf (a hidden key).
[[gnu::always_inline]] inline float exp_nonpositive(float x) {
  const float xc = std::max(x, -87.0f);
  const float t = xc * 1.44269504088896341f + 12582912.0f;  // + 1.5 * 2^23: rounds to an integer
  const float n = t - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float two_n;
  std::memcpy(&two_n, &bits, sizeof two_n);
  return x < -87.0f ? 0.0f : er * two_n;
}

/// exp for softmax rows: the polynomial in float, std::exp in double.
[[gnu::always_inline]] inline float exp_row(float x) {
  return exp_nonpositive(x);
}
[[gnu::always_inline]] inline double exp_row(double x) {
  return std::exp(x);
}

// sum_l a[l] b[l] over 8 partial sums (a plain loop's order forbids vectorizing it).
template <class A>
[[gnu::always_inline]] inline A dot(const A* a, const A* b, int64_t k) {
  A part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t l = 0;
  for (; l + 8 <= k; l += 8) {
    for (int t = 0; t < 8; ++t) part[t] += a[l + t] * b[l + t];
  }
  A total = 0;
  for (; l < k; ++l) total += a[l] * b[l];
  for (int t = 0; t < 8; ++t) total += part[t];
  return total;
}

/// (batch, head) slices per parallel task: about 32K elements of one slice's scores x features.
inline int64_t slice_grain(int64_t n, int64_t k_len, int64_t d) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, n * k_len * d));
}

/// (B, rows, H, d) storage seen as (B, H, rows, d).
inline torch::Tensor heads_view(int64_t B, int64_t H, int64_t rows, int64_t d,
                                const torch::TensorOptions& o) {
  return torch::empty({B, rows, H, d}, o).transpose(1, 2);
}

}  // namespace megabench::kernels
