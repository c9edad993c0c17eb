#pragma once
// y = W x + b on the CPU for one input row, the matrix-vector product batch-1 decoding runs for
// every Linear: gemv_bf16 for bf16 weights (inference weights), gemv_f32 for float32 ones.
//
// gemv_bf16, with bf16 weights and one input row: the matrix-vector product that batch-1
// decoding with inference weights runs for every Linear. It reads the weights once, at the
// memory's speed: LibTorch's bf16 at::mv reads them at about half the bytes/s of its fp32 GEMV
// on AVX512-BF16 CPUs (it converts through an fp32 buffer); this kernel accumulates bf16 pairs into
// fp32 with AVX512-BF16 dot products (vdpbf16ps), each row read front to back, two far-apart rows
// in step (two long streams: the hardware prefetcher's best case), the rows split across threads,
// and rounds each output once (bias added in fp32 first). Other CPUs take a portable path (weights
// widened to fp32 in plain loops), which is no faster than at::mv: Linear calls the kernel only
// where the AVX512-BF16 path runs. The tests run every gemv_bf16 path the CPU has.
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

// gemv_f32, with float32 weights: the rows read as gemv_bf16 reads them (front to back, two
// far-apart rows in step), fp32 products summed over 32 partial sums per row, in 16-float vectors
// compiled once per x86-64 level (kernels/target_clones.h). LibTorch's at::mv runs the BLAS
// sgemv, which read 15-17 GB/s from DRAM at one and two threads on a 2-core Zen 4 where an amax
// over the same bytes drew 22-24 at one thread and 29-41 at two (MKL's sgemv runs on one thread
// there); the kernel drew 22-23 and 25-36 (bench: gemv_stream/). Differences from at::mv: the fp32
// summation order. Linear calls it where gemv_f32_fast() (a build with the clones, on an x86-64-v3
// CPU or better: AVX2 and FMA, where the vectors run wide); elsewhere at::linear.
//
//   if (kernels::gemv_f32_supported(w, x)) y = kernels::gemv_f32(w, x, b);   // (N)

/// Whether the fp32 kernel runs in wide vectors here: built with the clones (GCC on x86-64 Linux,
/// kernels/target_clones.h) and an x86-64-v3 CPU or better.
bool gemv_f32_fast();

/// w (N, K) float32 on the CPU with contiguous rows, x float32 on the CPU with K elements.
bool gemv_f32_supported(const torch::Tensor& w, const torch::Tensor& x);

/// (N) float32: w x + b (b: undefined, or N float32 values). Not differentiable. Throws unless
/// supported.
torch::Tensor gemv_f32(const torch::Tensor& w, const torch::Tensor& x,
                       const torch::Tensor& b = torch::Tensor());

}  // namespace megabench::kernels
