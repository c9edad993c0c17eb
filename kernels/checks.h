#pragma once
// Input checks at the kernels' API boundary, in the style of flash-attention: each names the
// argument and what was expected, and throws c10::Error through TORCH_CHECK.
#include <torch/torch.h>

#define MEGABENCH_CHECK_CUDA(fn, x) \
  TORCH_CHECK((x).is_cuda(), fn ": " #x " must be a CUDA tensor, got one on ", (x).device())
#define MEGABENCH_CHECK_CONTIGUOUS(fn, x) \
  TORCH_CHECK((x).is_contiguous(), fn ": " #x " must be contiguous")
#define MEGABENCH_CHECK_SHAPE(fn, x, ...)                                                       \
  TORCH_CHECK((x).sizes() == torch::IntArrayRef({__VA_ARGS__}), fn ": " #x " must have shape ", \
              torch::IntArrayRef({__VA_ARGS__}), ", got ", (x).sizes())
#define MEGABENCH_CHECK_SAME_DEVICE(fn, x, y)                                                     \
  TORCH_CHECK((x).device() == (y).device(), fn ": " #x " and " #y " must be on one device, got ", \
              (x).device(), " and ", (y).device())

namespace megabench::kernels {

/// fp32, fp16 or bf16: the dtypes the kernels take.
inline bool is_kernel_dtype(c10::ScalarType t) {
  return t == torch::kFloat32 || t == torch::kFloat16 || t == torch::kBFloat16;
}

}  // namespace megabench::kernels
