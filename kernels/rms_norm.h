#pragma once
// RMSNorm over the last dimension on the CPU, forward and backward in one pass over the rows each:
//   y = x / max(||x|| / sqrt(D), eps) * g
// as MEGABYTE's reference writes it (it clamps the RMS, it does not add eps). The composite ATen
// expression (norm, scale, clamp, divide, multiply, and five backward ops) makes about five passes
// over x forward and eight backward; this makes one and two. rms_norm_reference() is that
// composite expression, the naive version the tests compare against.
//
//   if (kernels::rms_norm_supported(x, g)) y = kernels::rms_norm(x, g, eps);
#include <torch/torch.h>

namespace megabench::kernels {

/// x on the CPU in float32 or float64, or in bfloat16 where no gradient is needed (inference
/// weights: fp32 math, one rounding per output), g of x's dtype with x.size(-1) elements.
bool rms_norm_supported(const torch::Tensor& x, const torch::Tensor& g);

/// The fused RMSNorm; differentiable in x and g (first order). Throws unless supported.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& g, double eps);

/// x / max(||x|| * D^-1/2, eps) * g with ATen ops: the reference.
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& g, double eps);

}  // namespace megabench::kernels
