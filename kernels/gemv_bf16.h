#pragma once
// y = W x + b on the CPU with bf16 weights, one input row: the matrix-vector product that batch-1
// decoding with inference weights runs for every Linear. It reads the weights once, at the
// memory's speed: LibTorch's bf16 at::mv reads them at about half the bytes/s of its fp32 GEMV
// on AVX512-BF16 CPUs (it converts through an fp32 buffer); this kernel accumulates bf16 pairs into
// fp32 with AVX512-BF16 dot products (vdpbf16ps), each row read front to back, two far-apart rows
// in step (two long streams: the hardware prefetcher's best case), the rows split across threads,
// and rounds each output once (bias added in fp32 first). Other CPUs take a portable path (weights
// widened to fp32 in plain loops), which is no faster than at::mv: Linear calls the kernel only
// where the AVX512-BF16 path runs. The tests run every path the CPU has.
//
// Differences from the fp32 product of the same bf16 values: the fp32 summation order, the final
// rounding to bf16, and (AVX512-BF16 path) denormal inputs and outputs flushed to zero.
//
//   if (kernels::gemv_bf16_supported(w, x)) y = kernels::gemv_bf16(w, x, b);   // (N)
#include <torch/torch.h>

namespace megabench::kernels {

enum class GemvPath {
  kAuto,        ///< the first of the others this CPU runs
  kAvx512Bf16,  ///< bf16 dot products (vdpbf16ps)
  kPortable,    ///< plain loops
};

/// Whether this CPU runs `path` (kAuto and kPortable: always).
bool gemv_bf16_path_available(GemvPath path);

/// The path kAuto takes here.
GemvPath gemv_bf16_auto_path();

/// w (N, K) bf16 on the CPU with contiguous rows, x bf16 on the CPU with K elements.
bool gemv_bf16_supported(const torch::Tensor& w, const torch::Tensor& x);

/// (N) bf16: w x + b (b: undefined, or N bf16 values). Not differentiable. Throws unless supported,
/// and for a path this CPU cannot run.
torch::Tensor gemv_bf16(const torch::Tensor& w, const torch::Tensor& x,
                        const torch::Tensor& b = torch::Tensor(), GemvPath path = GemvPath::kAuto);

/// The plain LibTorch version the kernel replaces: at::mv in bf16, then the bias added.
torch::Tensor gemv_bf16_reference(const torch::Tensor& w, const torch::Tensor& x,
                                  const torch::Tensor& b = torch::Tensor());

}  // namespace megabench::kernels
