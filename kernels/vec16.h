#pragma once
// 16-float vectors (GCC's vector extensions) for the CPU kernels' loops that run inside
// target_clones (kernels/target_clones.h): each clone lowers them to its widest registers (one
// AVX-512 register, two AVX2 ones, four SSE ones). load16 widens bf16 and fp16 on the way in; hsum
// adds the 16 lanes as a tree. Used by decode_attention, gemv and short_attention.
//
// The helpers are always inlined into the clones, so their by-value vectors never cross a call:
// GCC's note that an AVX-512 vector argument changes the ABI does not apply (hence the pragma,
// which holds for the kernel files that include this header).
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>

#pragma GCC diagnostic ignored "-Wpsabi"

namespace megabench::kernels {

using F16 = float __attribute__((vector_size(64)));
using U16x16 = uint16_t __attribute__((vector_size(32)));
using U32x16 = uint32_t __attribute__((vector_size(64)));

[[gnu::always_inline]] inline F16 load16(const float* p) {
  F16 x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
[[gnu::always_inline]] inline F16 load16(const c10::BFloat16* p) {
  U16x16 h;
  std::memcpy(&h, p, sizeof h);
  const U32x16 w = __builtin_convertvector(h, U32x16) << 16;  // bf16 = float's upper half
  F16 x;
  std::memcpy(&x, &w, sizeof x);
  return x;
}
[[gnu::always_inline]] inline F16 load16(const c10::Half* p) {
  float t[16];
  for (int e = 0; e < 16; ++e) t[e] = static_cast<float>(p[e]);
  return load16(t);
}

[[gnu::always_inline]] inline float hsum(F16 x) {
  using F8 = float __attribute__((vector_size(32)));
  using F4 = float __attribute__((vector_size(16)));
  const F8 a = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
  const F4 b =
      __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
  return (b[0] + b[2]) + (b[1] + b[3]);
}

}  // namespace megabench::kernels
