// Fused causal attention for many short sequences: see local_attention.h.
//
// Layout: q, k, v are `slices` = B * H contiguous (n, D) matrices. A block has `warps` warps and
// each warp owns one slice, so a block covers `warps` consecutive (sequence, head) pairs: several
// sequences with all their heads when H divides `warps`. Everything a warp touches sits in its own
// shared-memory area, in fp32, so warps never synchronize with each other (only __syncwarp).
// K-like rows are padded to D + 1 floats so that lanes reading different rows hit different banks.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda_convert.cuh"
#include "kernels/cuda_launch.h"

namespace megabench::kernels::launch {
namespace {

constexpr int kWarp = 32;
constexpr int kMaxLen = 64;    // keys per row: two per lane
constexpr int kMaxWarps = 16;  // slices per block

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float warp_max(float x) {
  for (int o = kWarp / 2; o > 0; o /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ __forceinline__ float warp_sum(float x) {
  for (int o = kWarp / 2; o > 0; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// Dot product of two D-float rows in shared memory.
template <int D>
__device__ __forceinline__ float dot_row(const float* a, const float* b) {
  float acc = 0.f;
#pragma unroll 8
  for (int c = 0; c < D; ++c) acc += a[c] * b[c];
  return acc;
}

// Copies a contiguous (n, D) matrix into shared memory rows of stride `ld`, as fp32.
template <typename T, int D>
__device__ __forceinline__ void load_rows(const T* __restrict__ src, float* dst, int n, int ld,
                                          int lane) {
  for (int idx = lane; idx < n * D; idx += kWarp)
    dst[(idx / D) * ld + idx % D] = to_float(src[idx]);
}

// Floats of shared memory per warp.
template <int D>
__host__ __device__ constexpr int fwd_floats(int n) {
  return n * (D + 1) + n * D + D + kMaxLen;
}
template <int D>
__host__ __device__ constexpr int bwd_floats(int n) {
  return 4 * n * (D + 1) + 2 * n * n;
}

template <typename T, int D>
__global__ void local_attention_fwd_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                           const T* __restrict__ v, T* __restrict__ out,
                                           float* __restrict__ lse, int64_t slices, int n,
                                           float scale) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t slice = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (slice >= slices) return;  // the whole warp leaves together
  constexpr int ldk = D + 1;
  float* sk = smem + static_cast<size_t>(warp) * fwd_floats<D>(n);  // (n, D + 1)
  float* sv = sk + n * ldk;                                         // (n, D)
  float* sq = sv + n * D;                                           // (D)
  float* sp = sq + D;                                               // (kMaxLen) probabilities
  const size_t base = static_cast<size_t>(slice) * n * D;
  load_rows<T, D>(k + base, sk, n, ldk, lane);
  load_rows<T, D>(v + base, sv, n, D, lane);
  __syncwarp();

  const int j0 = lane, j1 = lane + kWarp;  // the two keys this lane scores
  for (int i = 0; i < n; ++i) {
    for (int c = lane; c < D; c += kWarp)
      sq[c] = to_float(q[base + static_cast<size_t>(i) * D + c]);
    __syncwarp();
    const float s0 = j0 <= i ? dot_row<D>(sq, sk + j0 * ldk) * scale : -INFINITY;
    const float s1 = j1 <= i ? dot_row<D>(sq, sk + j1 * ldk) * scale : -INFINITY;
    const float m = warp_max(fmaxf(s0, s1));  // finite: key 0 is always visible
    const float e0 = j0 <= i ? expf(s0 - m) : 0.f;
    const float e1 = j1 <= i ? expf(s1 - m) : 0.f;
    const float sum = warp_sum(e0 + e1);
    const float inv = 1.f / sum;
    if (j0 < n) sp[j0] = e0 * inv;
    if (j1 < n) sp[j1] = e1 * inv;
    __syncwarp();
    for (int c = lane; c < D; c += kWarp) {
      float acc = 0.f;
      for (int j = 0; j <= i; ++j) acc += sp[j] * sv[j * D + c];
      out[base + static_cast<size_t>(i) * D + c] = from_float<T>(acc);
    }
    if (lane == 0) lse[static_cast<size_t>(slice) * n + i] = m + logf(sum);
    __syncwarp();  // sq and sp are rewritten by the next row
  }
}

// P_ij = exp(scale q_i.k_j - lse_i), dP_ij = do_i.v_j, D_i = sum_j P_ij dP_ij,
// dS_ij = P_ij (dP_ij - D_i); dq_i = scale sum_j dS_ij k_j, dk_j = scale sum_i dS_ij q_i,
// dv_j = sum_i P_ij do_i.
// one piece: a kernel body whose shared-memory tiles and per-thread accumulators live across all
// four phases; splitting it into device functions would only pass them all back and forth.
template <typename T, int D>
__global__ void local_attention_bwd_kernel(const T* __restrict__ dout, const T* __restrict__ q,
                                           const T* __restrict__ k, const T* __restrict__ v,
                                           const float* __restrict__ lse, T* __restrict__ dq,
                                           T* __restrict__ dk, T* __restrict__ dv, int64_t slices,
                                           int n, float scale) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t slice = static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarp) + warp;
  if (slice >= slices) return;
  constexpr int ld = D + 1;
  float* sq = smem + static_cast<size_t>(warp) * bwd_floats<D>(n);  // (n, D + 1) each
  float* sk = sq + n * ld;
  float* sv = sk + n * ld;
  float* sdo = sv + n * ld;
  float* sp = sdo + n * ld;  // (n, n) probabilities
  float* sds = sp + n * n;   // (n, n) score gradients
  const size_t base = static_cast<size_t>(slice) * n * D;
  load_rows<T, D>(q + base, sq, n, ld, lane);
  load_rows<T, D>(k + base, sk, n, ld, lane);
  load_rows<T, D>(v + base, sv, n, ld, lane);
  load_rows<T, D>(dout + base, sdo, n, ld, lane);
  __syncwarp();

  for (int i = 0; i < n; ++i) {
    const float lse_i = lse[static_cast<size_t>(slice) * n + i];
    float p[2] = {0.f, 0.f}, dp[2] = {0.f, 0.f};
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int j = lane + t * kWarp;
      if (j <= i) {
        p[t] = expf(dot_row<D>(sq + i * ld, sk + j * ld) * scale - lse_i);
        dp[t] = dot_row<D>(sdo + i * ld, sv + j * ld);
      }
    }
    const float d_i = warp_sum(p[0] * dp[0] + p[1] * dp[1]);
#pragma unroll
    for (int t = 0; t < 2; ++t) {
      const int j = lane + t * kWarp;
      if (j < n) {
        sp[i * n + j] = p[t];
        sds[i * n + j] = p[t] * (dp[t] - d_i);
      }
    }
  }
  __syncwarp();

  for (int i = 0; i < n; ++i) {
    for (int c = lane; c < D; c += kWarp) {
      float acc = 0.f;
      for (int j = 0; j <= i; ++j) acc += sds[i * n + j] * sk[j * ld + c];
      dq[base + static_cast<size_t>(i) * D + c] = from_float<T>(acc * scale);
    }
  }
  for (int j = 0; j < n; ++j) {
    for (int c = lane; c < D; c += kWarp) {
      float acc_k = 0.f, acc_v = 0.f;
      for (int i = j; i < n; ++i) {
        acc_k += sds[i * n + j] * sq[i * ld + c];
        acc_v += sp[i * n + j] * sdo[i * ld + c];
      }
      dk[base + static_cast<size_t>(j) * D + c] = from_float<T>(acc_k * scale);
      dv[base + static_cast<size_t>(j) * D + c] = from_float<T>(acc_v);
    }
  }
}

std::string error_text(cudaError_t err) {
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

// How many warps (slices) a block gets: as many as fit in the opt-in shared memory, up to
// kMaxWarps.
std::string plan_block(size_t floats_per_warp, int* warps, size_t* smem_bytes) {
  int device = 0, max_smem = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess)
    err = cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return error_text(err);
  const size_t per_warp = floats_per_warp * sizeof(float);
  const int fit = static_cast<int>(static_cast<size_t>(max_smem) / per_warp);
  if (fit < 1) {
    return "needs " + std::to_string(per_warp) +
           " bytes of shared memory per (sequence, head), "
           "the device allows " +
           std::to_string(max_smem) + " per block";
  }
  *warps = std::min(fit, kMaxWarps);
  *smem_bytes = per_warp * static_cast<size_t>(*warps);
  return {};
}

template <typename T, int D>
std::string fwd_typed(const void* q, const void* k, const void* v, void* out, float* lse,
                      int64_t slices, int n, float scale, cudaStream_t stream) {
  int warps = 0;
  size_t smem = 0;
  std::string why = plan_block(fwd_floats<D>(n), &warps, &smem);
  if (!why.empty()) return why;
  auto kernel = local_attention_fwd_kernel<T, D>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return error_text(err);
  const auto blocks = static_cast<unsigned>((slices + warps - 1) / warps);
  kernel<<<blocks, warps * kWarp, smem, stream>>>(
      static_cast<const T*>(q), static_cast<const T*>(k), static_cast<const T*>(v),
      static_cast<T*>(out), lse, slices, n, scale);
  return error_text(cudaGetLastError());
}

template <typename T, int D>
std::string bwd_typed(const void* dout, const void* q, const void* k, const void* v,
                      const float* lse, void* dq, void* dk, void* dv, int64_t slices, int n,
                      float scale, cudaStream_t stream) {
  int warps = 0;
  size_t smem = 0;
  std::string why = plan_block(bwd_floats<D>(n), &warps, &smem);
  if (!why.empty()) return why;
  auto kernel = local_attention_bwd_kernel<T, D>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) return error_text(err);
  const auto blocks = static_cast<unsigned>((slices + warps - 1) / warps);
  kernel<<<blocks, warps * kWarp, smem, stream>>>(
      static_cast<const T*>(dout), static_cast<const T*>(q), static_cast<const T*>(k),
      static_cast<const T*>(v), lse, static_cast<T*>(dq), static_cast<T*>(dk), static_cast<T*>(dv),
      slices, n, scale);
  return error_text(cudaGetLastError());
}

// Runtime (dtype, d) -> template instance.
template <template <typename, int> class Fn, typename... Args>
std::string dispatch(DType dtype, int d, Args... args) {
  auto by_d = [&](auto tag) -> std::string {
    using T = decltype(tag);
    switch (d) {
      case 32:
        return Fn<T, 32>::run(args...);
      case 64:
        return Fn<T, 64>::run(args...);
      case 128:
        return Fn<T, 128>::run(args...);
      default:
        return "head dim " + std::to_string(d) + " is not one of 32, 64, 128";
    }
  };
  switch (dtype) {
    case DType::kFloat32:
      return by_d(float{});
    case DType::kFloat16:
      return by_d(__half{});
    case DType::kBFloat16:
      return by_d(__nv_bfloat16{});
  }
  return "unknown dtype";
}

template <typename T, int D>
struct Fwd {
  template <typename... A>
  static std::string run(A... a) {
    return fwd_typed<T, D>(a...);
  }
};
template <typename T, int D>
struct Bwd {
  template <typename... A>
  static std::string run(A... a) {
    return bwd_typed<T, D>(a...);
  }
};

}  // namespace

std::string local_attention_fwd(DType dtype, const void* q, const void* k, const void* v, void* out,
                                float* lse, int64_t slices, int n, int d, float scale,
                                void* stream) {
  if (n < 1 || n > kMaxLen) return "sequence length " + std::to_string(n) + " is not in [1, 64]";
  if (slices == 0) return {};
  return dispatch<Fwd>(dtype, d, q, k, v, out, lse, slices, n, scale,
                       static_cast<cudaStream_t>(stream));
}

std::string local_attention_bwd(DType dtype, const void* dout, const void* q, const void* k,
                                const void* v, const float* lse, void* dq, void* dk, void* dv,
                                int64_t slices, int n, int d, float scale, void* stream) {
  if (n < 1 || n > kMaxLen) return "sequence length " + std::to_string(n) + " is not in [1, 64]";
  if (slices == 0) return {};
  return dispatch<Bwd>(dtype, d, dout, q, k, v, lse, dq, dk, dv, slices, n, scale,
                       static_cast<cudaStream_t>(stream));
}

}  // namespace megabench::kernels::launch
