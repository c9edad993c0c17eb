#pragma once
// The boundary between the LibTorch-side launchers (*.cpp) and the CUDA kernels (*.cu). The .cu
// files see no torch headers, which keeps nvcc fast and independent of LibTorch's CUDA headers;
// the .cpp side checks every input before it gets here. Each function returns "" on success, else
// the CUDA error text.
#include <cstdint>
#include <string>

namespace megabench::kernels::launch {

/// Element types the kernels take (fp16 and bf16 are their 2-byte storage; math is fp32).
enum class DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

/// q, k, v, out: `slices` contiguous (n, d) matrices; lse: slices * n floats.
std::string local_attention_fwd(DType dtype, const void* q, const void* k, const void* v, void* out,
                                float* lse, int64_t slices, int n, int d, float scale,
                                void* stream);

/// dout, q, k, v, dq, dk, dv: `slices` contiguous (n, d) matrices; lse from the forward.
std::string local_attention_bwd(DType dtype, const void* dout, const void* q, const void* k,
                                const void* v, const float* lse, void* dq, void* dk, void* dv,
                                int64_t slices, int n, int d, float scale, void* stream);

/// logits: rows x vocab. noise: rows x vocab uniforms in [0, 1), or null to draw them with Philox
/// from (seed, offset); noise_out (may be null) receives the uniforms used. out: rows int64.
std::string fused_sample(DType dtype, const void* logits, int64_t rows, int vocab, int top_k,
                         float temperature, const float* noise, uint64_t seed, uint64_t offset,
                         float* noise_out, int64_t* out, void* stream);

}  // namespace megabench::kernels::launch
