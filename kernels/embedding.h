#pragma once
// Embedding lookup on the CPU whose backward adds each output row's gradient into its table row in
// one parallel pass: each task owns a range of table rows and scans the ids for them, so every
// row sums its gradients in id order (deterministic, whatever the thread count). LibTorch's CPU
// backward index_adds one id at a time, an ATen call per id: about 1 ms for a batch of 16384
// bytes at width 32, a few percent of a small byte model's train step.
// embedding_reference() is LibTorch's, the naive version the tests compare against.
//
//   auto x = kernels::embedding(emb->weight, ids);  // (..., D)
#include <torch/torch.h>

namespace megabench::kernels {

/// weight (V, D) on the CPU in float32 or float64, ids int64 on the CPU (any shape).
bool embedding_supported(const torch::Tensor& weight, const torch::Tensor& ids);

/// weight[ids]: (ids..., D). Differentiable in weight (first order). Where not supported it is
/// embedding_reference(). An id outside [0, V) is an error naming it.
torch::Tensor embedding(const torch::Tensor& weight, const torch::Tensor& ids);

/// torch::nn::functional::embedding(ids, weight): the reference.
torch::Tensor embedding_reference(const torch::Tensor& weight, const torch::Tensor& ids);

}  // namespace megabench::kernels
