// Fused top-k + temperature + Gumbel-max sampling: see sampling.h.
//
// One block per row. The row sits in shared memory as fp32; each thread ranks its elements by
// counting the larger ones (V^2 / threads comparisons: 256 per thread at V = 256, cheaper than a
// sort), keeps the top k, perturbs them with Gumbel noise and reduces to the arg max.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <curand_kernel.h>

#include <climits>
#include <cmath>

#include "kernels/cuda_convert.cuh"
#include "kernels/cuda_launch.h"

namespace megabench::kernels::launch {
namespace {

constexpr int kThreads = 256;

// (value, index) order of the arg max: larger value first, then the lower index, as torch.argmax.
__device__ __forceinline__ bool better(float v, int i, float best_v, int best_i) {
  return v > best_v || (v == best_v && i < best_i);
}

template <typename T>
__global__ void fused_sample_kernel(const T* __restrict__ logits, int vocab, int top_k,
                                    float temperature, const float* __restrict__ noise,
                                    unsigned long long seed, unsigned long long offset,
                                    float* __restrict__ noise_out, int64_t* __restrict__ out) {
  extern __shared__ float row[];  // (vocab)
  __shared__ float red_v[kThreads];
  __shared__ int red_i[kThreads];
  const int tid = threadIdx.x;
  const size_t base = static_cast<size_t>(blockIdx.x) * vocab;
  for (int i = tid; i < vocab; i += blockDim.x) row[i] = to_float(logits[base + i]);
  __syncthreads();

  float best_v = -INFINITY;
  int best_i = INT_MAX;
  for (int i = tid; i < vocab; i += blockDim.x) {
    const float x = row[i];
    int rank = 0;  // elements ahead of i: larger, or equal with a lower index
    for (int j = 0; j < vocab; ++j) rank += (row[j] > x) || (row[j] == x && j < i);
    float u;
    if (noise) {
      u = noise[base + i];
    } else {
      curandStatePhilox4_32_10_t state;
      curand_init(seed, base + i, offset, &state);
      u = curand_uniform(&state);
    }
    if (noise_out) noise_out[base + i] = u;
    float score = -INFINITY;
    if (rank < top_k) {
      if (temperature == 0.f) {
        score = x;
      } else {
        const float gumbel = -logf(fmaxf(-logf(fmaxf(u, 1e-20f)), 1e-20f));
        score = x / temperature + gumbel;
      }
    }
    if (better(score, i, best_v, best_i)) {
      best_v = score;
      best_i = i;
    }
  }
  red_v[tid] = best_v;
  red_i[tid] = best_i;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (tid < s && better(red_v[tid + s], red_i[tid + s], red_v[tid], red_i[tid])) {
      red_v[tid] = red_v[tid + s];
      red_i[tid] = red_i[tid + s];
    }
    __syncthreads();
  }
  if (tid == 0) out[blockIdx.x] = red_i[0];
}

template <typename T>
std::string run(const void* logits, int64_t rows, int vocab, int top_k, float temperature,
                const float* noise, uint64_t seed, uint64_t offset, float* noise_out, int64_t* out,
                cudaStream_t stream) {
  const size_t smem = static_cast<size_t>(vocab) * sizeof(float);
  fused_sample_kernel<T><<<static_cast<unsigned>(rows), kThreads, smem, stream>>>(
      static_cast<const T*>(logits), vocab, top_k, temperature, noise, seed, offset, noise_out,
      out);
  const cudaError_t err = cudaGetLastError();
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

}  // namespace

std::string fused_sample(DType dtype, const void* logits, int64_t rows, int vocab, int top_k,
                         float temperature, const float* noise, uint64_t seed, uint64_t offset,
                         float* noise_out, int64_t* out, void* stream) {
  if (rows == 0) return {};
  auto s = static_cast<cudaStream_t>(stream);
  switch (dtype) {
    case DType::kFloat32:
      return run<float>(logits, rows, vocab, top_k, temperature, noise, seed, offset, noise_out,
                        out, s);
    case DType::kFloat16:
      return run<__half>(logits, rows, vocab, top_k, temperature, noise, seed, offset, noise_out,
                         out, s);
    case DType::kBFloat16:
      return run<__nv_bfloat16>(logits, rows, vocab, top_k, temperature, noise, seed, offset,
                                noise_out, out, s);
  }
  return "unknown dtype";
}

}  // namespace megabench::kernels::launch
