#pragma once
// Mean cross-entropy of logits (N, V) against class targets (N) on the CPU, in one pass over the
// logits forward (each row's log-sum-exp, nothing of their size written) and one backward
// (dx = (softmax - onehot) / count, from the saved log-sum-exp). LibTorch's cross_entropy is
// log_softmax + nll_loss: it writes the log-probabilities forward, and backward a zero-filled
// one-hot gradient and then the softmax gradient, about five passes over a tensor of the logits'
// size. For a byte model's 256 classes at a small width that is a large part of a train step.
// cross_entropy_reference() is LibTorch's, the naive version the tests compare against.
//
//   auto loss = kernels::cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}), ignore);
#include <torch/torch.h>

namespace megabench::kernels {

/// logits (N, V) on the CPU in float32 or float64, targets (N) int64 on the CPU.
bool cross_entropy_supported(const torch::Tensor& logits, const torch::Tensor& targets);

/// Mean over the rows whose target is not ignore_index of -log softmax(logits)[target]; NaN when
/// every row is ignored, as LibTorch's. Logits (..., V) with targets (...) are read as their
/// (N, V) and (N) flattening (a model's (B, L, V) against its (B, L) bytes). Differentiable in
/// logits (first order). bf16 / fp16 CPU logits are widened to fp32 first (as autocast does for
/// LibTorch's loss); elsewhere (CUDA, other shapes) it is cross_entropy_reference(). A target
/// outside [0, V) other than ignore_index is an error naming it.
torch::Tensor cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets,
                            int64_t ignore_index = -100);

/// Mean cross-entropy of the logits hidden W^T (+ bias) against targets, without writing the
/// logits: rows go through in chunks of a few hundred (the chunk's logits stay in cache), each
/// chunk's product, log-sum-exp and -- when a gradient is wanted -- its gradients (dlogits =
/// softmax - onehot, dhidden = dlogits W, dW += dlogits^T hidden, db += column sums) before the
/// next. The gradients are computed in the forward and scaled by the loss's incoming gradient in
/// the backward (the loss is a scalar), so the backward is one multiply. hidden (..., D), weight
/// (V, D), bias (V) or undefined, targets (...); ignore_index as cross_entropy(). Chunks run in
/// parallel with per-thread dW / db sums added in thread order (the same result for the same
/// thread count). Differentiable in hidden, weight and bias (first order). CPU float32 / float64
/// without CPU autocast; elsewhere it is linear_cross_entropy_reference(). For a byte model's
/// 256 classes the unfused logits are the largest activation of a small model's step.
torch::Tensor linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& bias, const torch::Tensor& targets,
                                   int64_t ignore_index = -100);

/// The fused path's conditions (hidden, weight and bias of one CPU float dtype, 2-D shapes that
/// agree, int64 targets, no CPU autocast).
bool linear_cross_entropy_supported(const torch::Tensor& hidden, const torch::Tensor& weight,
                                    const torch::Tensor& bias, const torch::Tensor& targets);

/// cross_entropy(at::linear(hidden, weight, bias), targets): the reference, and the path
/// elsewhere.
torch::Tensor linear_cross_entropy_reference(const torch::Tensor& hidden,
                                             const torch::Tensor& weight, const torch::Tensor& bias,
                                             const torch::Tensor& targets,
                                             int64_t ignore_index = -100);

/// torch::nn::functional::cross_entropy with that ignore_index: the reference.
torch::Tensor cross_entropy_reference(const torch::Tensor& logits, const torch::Tensor& targets,
                                      int64_t ignore_index = -100);

}  // namespace megabench::kernels
