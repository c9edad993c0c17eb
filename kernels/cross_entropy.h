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

/// torch::nn::functional::cross_entropy with that ignore_index: the reference.
torch::Tensor cross_entropy_reference(const torch::Tensor& logits, const torch::Tensor& targets,
                                      int64_t ignore_index = -100);

}  // namespace megabench::kernels
