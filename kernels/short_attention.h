#pragma once
// Attention over short key ranges on the CPU, fused: for each (batch, head) slice, the scores
// q k^T * scale, the causal and keep masks, the softmax and the weighted sum of v in one task, with
// only the row log-sum-exp kept for the backward (which recomputes the probabilities, as flash
// attention does). MEGABYTE's local stages attend over a patch (P + 1 positions, plus the
// cross-patch keys): thousands of slices of a few positions each. There the unfused path runs
// about ten passes over (B, H, n, k) tensors and batched matmuls of 5 x 64 matrices, and LibTorch's
// flash kernel, built for long rows, spends more on its blocking than on the arithmetic.
//
// The output is written as (B, n, H, d) and returned as its (B, H, n, d) transpose, so that the
// caller's transpose(1, 2).reshape(B, n, H d) is a view; inputs may be any strided view whose last
// dimension is contiguous (the split heads of a projection). Gradients come back in the same
// layout. Math in float (double for double inputs).
//
// short_attention_reference() is the unfused expression the tests compare it against: the
// references' einsum / masked_fill(-finfo.max) / softmax / einsum. Models reach the kernel through
// attend() (models/layers.h), which picks it for short keys on the CPU.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace megabench::kernels {

/// Longest key range attend() sends to the kernel: forward + backward at 8 heads of 64, fp32, it is
/// 1.5x LibTorch's flash kernel over 5 keys and 1.2x over 9, even over 17, and slower beyond
/// (`megabench_micro --benchmark_filter=short_attention`). The kernel itself takes any length.
constexpr int64_t kShortAttentionMaxKeys = 16;

/// softmax(q k^T * scale + masks) v with ATen ops, in the inputs' dtype. Query i of n sees key j of
/// k_len when (causal: j <= i + k_len - n) and keep[..., i, j] (keep: bool, broadcastable to
/// (B, H, n, k_len); undefined: all). Masked scores are -finfo(dtype).max, as in the references, so
/// a query that sees no key attends to all of them equally.
torch::Tensor short_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                        const torch::Tensor& v, double scale, bool causal,
                                        const torch::Tensor& keep = {});

/// Whether the kernel takes these inputs: q (B, H, n, d), k and v (B, H, k_len, d) on the CPU, one
/// dtype among float32 / float64 / bfloat16 / float16, 1 <= n <= k_len (any n without causal),
/// k_len <= max_keys, the last dimension contiguous, keep (if defined) bool and broadcastable to
/// (B, H, n, k_len). If not, `why` says which condition failed.
bool short_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& keep = {},
                               int64_t max_keys = kShortAttentionMaxKeys,
                               std::string* why = nullptr);

/// The kernel as a torch::autograd::Function (first order in q, k and v). Same semantics as the
/// reference. Throws, naming the argument, unless short_attention_supported() with any max_keys.
torch::Tensor short_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, double scale, bool causal,
                              const torch::Tensor& keep = {});

}  // namespace megabench::kernels
