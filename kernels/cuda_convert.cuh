#pragma once
// Device-side conversions shared by the CUDA kernels (local_attention.cu, sampling.cu): every
// element type the kernels read, to the float they compute in.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace megabench::kernels::launch {

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

}  // namespace megabench::kernels::launch
