#pragma once
// Fused causal attention for MEGABYTE's local stage: many short sequences (one per patch, n = P + 1
// <= 64 positions) where launching SDPA per (sequence, head) pair wastes the GPU. One CUDA thread
// block takes several (sequence, head) slices, one warp each, with K/V in shared memory and the
// softmax fused; fp32 accumulation for fp32, bf16 and fp16 inputs. Forward and backward.
//
// Beside it, local_attention_reference() is the naive LibTorch softmax(QK^T * scale + causal)V
// that the tests compare it against, and models pick between the two through
// AttendOptions::kernel (models/layers.h).
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace megabench::kernels {

/// Longest sequence the kernel takes (one key per lane, two lanes' worth per warp).
constexpr int64_t kLocalAttentionMaxLen = 64;

/// Naive LibTorch attention with a causal mask, in the inputs' dtype: q, k, v (B, H, n, d) ->
/// (B, H, n, d). Query i sees keys j <= i. Any device, any floating dtype.
torch::Tensor local_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, double scale);

/// Throws (c10::Error, a std::exception) unless q, k, v suit the kernel: same shape (B, H, n, d)
/// with 1 <= n <= 64 and d in {32, 64, 128}, same dtype among fp32/bf16/fp16, contiguous, and, when
/// `need_cuda`, all on one CUDA device. The message names the argument and what was expected.
void check_local_attention_inputs(const torch::Tensor& q, const torch::Tensor& k,
                                  const torch::Tensor& v, bool need_cuda = true);

/// Whether the kernel can run on these inputs (shape, dtype, CUDA device, built with CUDA),
/// ignoring contiguity (local_attention() makes its inputs contiguous). If not, `why` says why.
bool local_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, std::string* why = nullptr);

/// The kernel, wrapped as a torch::autograd::Function: q, k, v (B, H, n, d) on CUDA -> (B, H, n,
/// d), causal, softmax scale `scale`. Backward computes dq, dk, dv with a second fused kernel.
/// Inputs are made contiguous; anything else the kernel cannot take throws.
torch::Tensor local_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, double scale);

/// The raw launchers (no autograd), for tests and benchmarks. Forward returns {out (B, H, n, d),
/// lse (B, H, n) fp32: the log-sum-exp of each row's scaled scores}. Inputs must pass
/// check_local_attention_inputs(need_cuda = true).
std::pair<torch::Tensor, torch::Tensor> local_attention_forward(const torch::Tensor& q,
                                                                const torch::Tensor& k,
                                                                const torch::Tensor& v,
                                                                double scale);
/// Returns {dq, dk, dv}. dout (B, H, n, d) in the inputs' dtype; lse from the forward.
std::vector<torch::Tensor> local_attention_backward(const torch::Tensor& dout,
                                                    const torch::Tensor& q, const torch::Tensor& k,
                                                    const torch::Tensor& v,
                                                    const torch::Tensor& lse, double scale);

}  // namespace megabench::kernels
