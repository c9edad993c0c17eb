#include "kernels/gemv_bf16.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MEGABENCH_GEMV_X86 1
#endif

namespace megabench::kernels {
namespace {

using BF16 = c10::BFloat16;

// Rows per parallel task: at least 32 KB of weights each, a multiple of the 4-row block.
int64_t row_grain(int64_t K) {
  const int64_t rows = std::max<int64_t>(4, (32768 + 2 * K - 1) / (2 * K));
  return (rows + 3) / 4 * 4;
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

// Rows [begin, end): four at a time (four weight streams share each load of x), then one at a
// time; the last K % 32 columns through masked loads (masked-off lanes load zero).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void rows_avx512bf16(
    const BF16* w, const BF16* x, const BF16* b, BF16* y, int64_t begin, int64_t end, int64_t K) {
  const int64_t body = K / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (K - body)) - 1);
  const auto* xs = reinterpret_cast<const uint16_t*>(x);
  int64_t r = begin;
  for (; r + 4 <= end; r += 4) {
    const auto* w0 = reinterpret_cast<const uint16_t*>(w + r * K);
    const uint16_t* w1 = w0 + K;
    const uint16_t* w2 = w1 + K;
    const uint16_t* w3 = w2 + K;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t k = 0; k < body; k += 32) {
      const __m512i xv = _mm512_loadu_si512(xs + k);
      a0 = dot32(a0, _mm512_loadu_si512(w0 + k), xv);
      a1 = dot32(a1, _mm512_loadu_si512(w1 + k), xv);
      a2 = dot32(a2, _mm512_loadu_si512(w2 + k), xv);
      a3 = dot32(a3, _mm512_loadu_si512(w3 + k), xv);
    }
    if (tail) {
      const __m512i xv = _mm512_maskz_loadu_epi16(tail, xs + body);
      a0 = dot32(a0, _mm512_maskz_loadu_epi16(tail, w0 + body), xv);
      a1 = dot32(a1, _mm512_maskz_loadu_epi16(tail, w1 + body), xv);
      a2 = dot32(a2, _mm512_maskz_loadu_epi16(tail, w2 + body), xv);
      a3 = dot32(a3, _mm512_maskz_loadu_epi16(tail, w3 + body), xv);
    }
    y[r] = BF16(finish(lane_sum(a0), b, r));
    y[r + 1] = BF16(finish(lane_sum(a1), b, r + 1));
    y[r + 2] = BF16(finish(lane_sum(a2), b, r + 2));
    y[r + 3] = BF16(finish(lane_sum(a3), b, r + 3));
  }
  for (; r < end; ++r) {
    const auto* wr = reinterpret_cast<const uint16_t*>(w + r * K);
    __m512 a = _mm512_setzero_ps();
    for (int64_t k = 0; k < body; k += 32) {
      a = dot32(a, _mm512_loadu_si512(wr + k), _mm512_loadu_si512(xs + k));
    }
    if (tail) {
      a = dot32(a, _mm512_maskz_loadu_epi16(tail, wr + body),
                _mm512_maskz_loadu_epi16(tail, xs + body));
    }
    y[r] = BF16(finish(lane_sum(a), b, r));
  }
}
#endif

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
  auto y = torch::empty({N}, w.options());
  if (K == 0) return b.defined() ? bc.clone() : y.zero_();
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
  at::parallel_for(0, N, row_grain(K), [&](int64_t begin, int64_t end) {
#ifdef MEGABENCH_GEMV_X86
    if (path == GemvPath::kAvx512Bf16) return rows_avx512bf16(wp, xp, bp, yp, begin, end, K);
#endif
    rows_portable(wp, xf.data(), bp, yp, begin, end, K);
  });
  return y;
}

torch::Tensor gemv_bf16_reference(const torch::Tensor& w, const torch::Tensor& x,
                                  const torch::Tensor& b) {
  auto y = at::mv(w, x.reshape({w.size(1)}));
  if (b.defined()) y.add_(b.reshape({w.size(0)}));
  return y;
}

}  // namespace megabench::kernels
