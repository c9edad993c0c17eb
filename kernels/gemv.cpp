#include "kernels/gemv.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/target_clones.h"  // the fp32 row loops
#include "kernels/vec16.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MEGABENCH_GEMV_X86 1
#endif

namespace megabench::kernels {
namespace {

using BF16 = c10::BFloat16;

// Rows per parallel task: at least 32 KB of weights each (rows of K elements of `bytes` each).
int64_t row_grain(int64_t K, int64_t bytes) {
  return std::max<int64_t>(1, (32768 + bytes * K - 1) / (bytes * K));
}

float finish(float sum, const BF16* b, int64_t r) {
  return b ? sum + static_cast<float>(b[r]) : sum;
}

// bf16 -> fp32: the bf16 bits are the high half of the fp32 ones.
inline float widen(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// The portable path (xf: x widened to fp32 once): 16 fp32 partial sums per row, which the compiler
// may keep in vector registers.
void rows_portable(const BF16* w, const float* xf, const BF16* b, BF16* y, int64_t begin,
                   int64_t end, int64_t K) {
  for (int64_t r = begin; r < end; ++r) {
    const auto* wr = reinterpret_cast<const uint16_t*>(w + r * K);
    float part[16] = {};
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      for (int j = 0; j < 16; ++j) part[j] += widen(wr[k + j]) * xf[k + j];
    }
    float sum = 0;
    for (; k < K; ++k) sum += widen(wr[k]) * xf[k];
    for (float p : part) sum += p;
    y[r] = BF16(finish(sum, b, r));
  }
}

#ifdef MEGABENCH_GEMV_X86
// One vdpbf16ps step: acc += pairwise products of 32 bf16 weights and 32 bf16 inputs.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) inline __m512 dot32(__m512 acc, __m512i w,
                                                                           __m512i x) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh&>(w), reinterpret_cast<__m512bh&>(x));
}

// The sum of the 16 lanes (_mm512_reduce_add_ps trips a false -Wmaybe-uninitialized in GCC 12's
// headers; once per row, this costs nothing beside the row's K / 32 steps).
__attribute__((target("avx512f"))) inline float lane_sum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0;
  for (float l : lanes) sum += l;
  return sum;
}

// Weight streams: each row is read front to back, and two rows far apart are read in step (the
// first and second halves of a task's rows), so the memory sees two long sequential streams, which
// the hardware prefetcher follows at the memory's read rate. On a 1-core Zen 4, reading from DRAM
// (bench: gemv_stream/ and its note in the commit): four adjacent rows at once (sharing each load
// of x) drew 12-13 GB/s, one row at a time 18-22, two far-apart rows in step 22-26.

// Row a (and row b when given) dotted with x: 64-column steps (two accumulators per row), a
// 32-column step, then the last K % 32 columns through masked loads (masked-off lanes load zero).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) inline void dot_rows(
    const uint16_t* wa, const uint16_t* wb, const uint16_t* xs, int64_t K, float& ya, float& yb) {
  const int64_t wide = K / 64 * 64, body = K / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (K - body)) - 1);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
  for (int64_t k = 0; k < wide; k += 64) {
    const __m512i x0 = _mm512_loadu_si512(xs + k), x1 = _mm512_loadu_si512(xs + k + 32);
    a0 = dot32(a0, _mm512_loadu_si512(wa + k), x0);
    a1 = dot32(a1, _mm512_loadu_si512(wa + k + 32), x1);
    if (wb) {
      b0 = dot32(b0, _mm512_loadu_si512(wb + k), x0);
      b1 = dot32(b1, _mm512_loadu_si512(wb + k + 32), x1);
    }
  }
  if (wide < body) {
    const __m512i x0 = _mm512_loadu_si512(xs + wide);
    a0 = dot32(a0, _mm512_loadu_si512(wa + wide), x0);
    if (wb) b0 = dot32(b0, _mm512_loadu_si512(wb + wide), x0);
  }
  if (tail) {
    const __m512i x0 = _mm512_maskz_loadu_epi16(tail, xs + body);
    a1 = dot32(a1, _mm512_maskz_loadu_epi16(tail, wa + body), x0);
    if (wb) b1 = dot32(b1, _mm512_maskz_loadu_epi16(tail, wb + body), x0);
  }
  ya = lane_sum(_mm512_add_ps(a0, a1));
  if (wb) yb = lane_sum(_mm512_add_ps(b0, b1));
}

// Rows [begin, end): row begin + i in step with row begin + half + i, then the odd one out alone.
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void rows_avx512bf16(
    const BF16* w, const BF16* x, const BF16* b, BF16* y, int64_t begin, int64_t end, int64_t K) {
  const auto* ws = reinterpret_cast<const uint16_t*>(w);
  const auto* xs = reinterpret_cast<const uint16_t*>(x);
  const int64_t half = (end - begin) / 2;
  float ya = 0, yb = 0;
  for (int64_t r = begin; r < begin + half; ++r) {
    dot_rows(ws + r * K, ws + (r + half) * K, xs, K, ya, yb);
    y[r] = BF16(finish(ya, b, r));
    y[r + half] = BF16(finish(yb, b, r + half));
  }
  if ((end - begin) % 2) {
    dot_rows(ws + (end - 1) * K, nullptr, xs, K, ya, yb);
    y[end - 1] = BF16(finish(ya, b, end - 1));
  }
}
#endif

// The fp32 kernel: the same two far-apart rows in step, in 16-float vectors (kernels/vec16.h)
// compiled once per x86-64 level, so AVX2 machines run it in two 8-float halves.

// Row a (and row b with kTwo) dotted with x: 32-column steps (two accumulators per row), a
// 16-column step, then the last K % 16 columns one by one.
template <bool kTwo>
[[gnu::always_inline]] inline void dot_rows_f32(const float* wa, const float* wb, const float* x,
                                                int64_t K, float& ya, float& yb) {
  F16 a0 = {}, a1 = {}, b0 = {}, b1 = {};
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    const F16 x0 = load16(x + k), x1 = load16(x + k + 16);
    a0 += load16(wa + k) * x0;
    a1 += load16(wa + k + 16) * x1;
    if (kTwo) {
      b0 += load16(wb + k) * x0;
      b1 += load16(wb + k + 16) * x1;
    }
  }
  if (k + 16 <= K) {
    const F16 x0 = load16(x + k);
    a0 += load16(wa + k) * x0;
    if (kTwo) b0 += load16(wb + k) * x0;
    k += 16;
  }
  float ta = 0, tb = 0;
  for (; k < K; ++k) {
    ta += wa[k] * x[k];
    if (kTwo) tb += wb[k] * x[k];
  }
  ya = hsum(a0 + a1) + ta;
  if (kTwo) yb = hsum(b0 + b1) + tb;
}

MEGABENCH_CLONES void rows_f32(const float* w, const float* x, const float* b, float* y,
                               int64_t begin, int64_t end, int64_t K) {
  const int64_t half = (end - begin) / 2;
  float ya = 0, yb = 0;
  for (int64_t r = begin; r < begin + half; ++r) {
    dot_rows_f32<true>(w + r * K, w + (r + half) * K, x, K, ya, yb);
    y[r] = b ? ya + b[r] : ya;
    y[r + half] = b ? yb + b[r + half] : yb;
  }
  if ((end - begin) % 2) {
    dot_rows_f32<false>(w + (end - 1) * K, nullptr, x, K, ya, yb);
    y[end - 1] = b ? ya + b[end - 1] : ya;
  }
}

}  // namespace

bool gemv_bf16_path_available(GemvPath path) {
#ifdef MEGABENCH_GEMV_X86
  static const bool avx512bf16 = __builtin_cpu_supports("avx512f") &&
                                 __builtin_cpu_supports("avx512bw") &&
                                 __builtin_cpu_supports("avx512bf16");
#else
  constexpr bool avx512bf16 = false;
#endif
  return path != GemvPath::kAvx512Bf16 || avx512bf16;
}

GemvPath gemv_bf16_auto_path() {
  return gemv_bf16_path_available(GemvPath::kAvx512Bf16) ? GemvPath::kAvx512Bf16
                                                         : GemvPath::kPortable;
}

bool gemv_bf16_supported(const torch::Tensor& w, const torch::Tensor& x) {
  return w.defined() && x.defined() && w.device().is_cpu() && x.device().is_cpu() &&
         w.scalar_type() == torch::kBFloat16 && x.scalar_type() == torch::kBFloat16 &&
         w.dim() == 2 && w.stride(1) == 1 && w.stride(0) == w.size(1) && x.numel() == w.size(1);
}

torch::Tensor gemv_bf16(const torch::Tensor& w, const torch::Tensor& x, const torch::Tensor& b,
                        GemvPath path) {
  TORCH_CHECK(gemv_bf16_supported(w, x), "gemv_bf16: needs w (N, K) bf16 on the CPU with ",
              "contiguous rows and x bf16 on the CPU with K elements; got w ", w.sizes(), " ",
              w.scalar_type(), " on ", w.device(), ", x ", x.sizes(), " ", x.scalar_type());
  const int64_t N = w.size(0), K = w.size(1);
  TORCH_CHECK(!b.defined() ||
                  (b.device().is_cpu() && b.scalar_type() == torch::kBFloat16 && b.numel() == N),
              "gemv_bf16: b must be undefined or ", N, " bf16 values on the CPU; got ", b.sizes(),
              " ", b.scalar_type());
  if (path == GemvPath::kAuto) path = gemv_bf16_auto_path();
  TORCH_CHECK(gemv_bf16_path_available(path), "gemv_bf16: this CPU cannot run path ",
              static_cast<int>(path), " (1: AVX512-BF16)");
  auto xc = x.reshape({K}).contiguous();
  auto bc = b.defined() ? b.reshape({N}).contiguous() : b;
  auto y = torch::empty({N}, w.options());  // K >= 1: supported() needs stride(0) == K
  const BF16* wp = w.data_ptr<BF16>();
  const BF16* xp = xc.data_ptr<BF16>();
  const BF16* bp = bc.defined() ? bc.data_ptr<BF16>() : nullptr;
  BF16* yp = y.data_ptr<BF16>();
  // The portable path reads x widened to fp32, once per call.
  std::vector<float> xf;
  if (path != GemvPath::kAvx512Bf16) {
    xf.resize(static_cast<size_t>(K));
    const auto* xs = reinterpret_cast<const uint16_t*>(xp);
    for (int64_t k = 0; k < K; ++k) xf[k] = widen(xs[k]);
  }
  at::parallel_for(0, N, row_grain(K, 2), [&](int64_t begin, int64_t end) {
#ifdef MEGABENCH_GEMV_X86
    if (path == GemvPath::kAvx512Bf16) return rows_avx512bf16(wp, xp, bp, yp, begin, end, K);
#endif
    rows_portable(wp, xf.data(), bp, yp, begin, end, K);
  });
  return y;
}

bool gemv_f32_fast() {
#if MEGABENCH_HAS_CLONES
  // The level whose clone rows_f32 runs in 8- or 16-float registers (AVX2 and FMA with it).
  static const bool fast = __builtin_cpu_supports("x86-64-v3");
  return fast;
#else
  return false;  // rows_f32 built for the baseline only: at::linear's BLAS sgemv is no slower
#endif
}

bool gemv_f32_supported(const torch::Tensor& w, const torch::Tensor& x) {
  return w.defined() && x.defined() && w.device().is_cpu() && x.device().is_cpu() &&
         w.scalar_type() == torch::kFloat32 && x.scalar_type() == torch::kFloat32 && w.dim() == 2 &&
         w.stride(1) == 1 && w.stride(0) == w.size(1) && x.numel() == w.size(1);
}

torch::Tensor gemv_f32(const torch::Tensor& w, const torch::Tensor& x, const torch::Tensor& b) {
  TORCH_CHECK(gemv_f32_supported(w, x), "gemv_f32: needs w (N, K) float32 on the CPU with ",
              "contiguous rows and x float32 on the CPU with K elements; got w ", w.sizes(), " ",
              w.scalar_type(), " on ", w.device(), ", x ", x.sizes(), " ", x.scalar_type());
  const int64_t N = w.size(0), K = w.size(1);
  TORCH_CHECK(
      !b.defined() || (b.device().is_cpu() && b.scalar_type() == torch::kFloat32 && b.numel() == N),
      "gemv_f32: b must be undefined or ", N, " float32 values on the CPU; got ", b.sizes(), " ",
      b.scalar_type());
  auto xc = x.reshape({K}).contiguous();
  auto bc = b.defined() ? b.reshape({N}).contiguous() : b;
  auto y = torch::empty({N}, w.options());
  const float* wp = w.data_ptr<float>();
  const float* xp = xc.data_ptr<float>();
  const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, N, row_grain(K, 4),
                   [&](int64_t begin, int64_t end) { rows_f32(wp, xp, bp, yp, begin, end, K); });
  return y;
}

torch::Tensor gemv_bf16_reference(const torch::Tensor& w, const torch::Tensor& x,
                                  const torch::Tensor& b) {
  auto y = at::mv(w, x.reshape({w.size(1)}));
  if (b.defined()) y.add_(b.reshape({w.size(0)}));
  return y;
}

}  // namespace megabench::kernels
