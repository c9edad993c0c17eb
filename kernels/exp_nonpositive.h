#pragma once
// A branch-free exp for softmax rows, shared by the CPU attention kernels (short_attention,
// decode_attention): inlined into their target_clones loops, where it vectorizes (std::exp does
// not).
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

}  // namespace megabench::kernels
