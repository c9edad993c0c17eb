#pragma once
// Attention of a few queries over a long key cache on the CPU, without gradients: the decoding
// step. For each (batch, head) slice, one pass over the keys computes every query's scores (each
// key row widened to float once), a softmax per query over the keys it sees, and one pass over
// the values accumulates the weighted sums in float; each output is rounded once. Keys and values
// are each read once per step, at the memory's speed.
//
// What it replaces: LibTorch's CPU flash kernel, built for long query blocks, reads a single
// query's bf16 cache at about 3 GB/s (its block products go through a bf16 GEMV), and at 25-45
// GB/s in fp32; a batch-1 decoding step of a byte Transformer spent a quarter of its time there.
// `megabench_micro --benchmark_filter=decode_attention` compares the two.
//
// The inputs are views: q (B, H, n, d) and k, v (B, H, k_len, d) with a contiguous last dimension
// (the layer cache's buffers narrowed to the kept positions). The output is written as
// (B, n, H, d) and returned as its (B, H, n, d) transpose, so that the caller's
// transpose(1, 2).reshape(B, n, H d) is a view. Semantics are short_attention_reference()'s
// (short_attention.h): query i of n sees key j when j <= i + k_len - n (causal) and keep[.., i, j]
// (a padding mask; undefined: every key), and a query that sees no key attends to all equally.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace megabench::kernels {

/// Most queries attend() sends to the kernel: one, the decoding step. At two queries LibTorch's
/// flash kernel is already fast (a block product instead of a GEMV: 2048 keys, 16 heads of 64,
/// 2 threads, fp32 141 us against the kernel's 493, bf16 211 against 372), while at one it
/// reads the cache at 2-3 GB/s in bf16 (3253 us against the kernel's 195) and 18-36 GB/s in fp32
/// (946 against 174). The kernel itself takes any n: query by query, it rereads the cache.
constexpr int64_t kDecodeAttentionMaxQueries = 1;

/// Whether the kernel takes these inputs: what short_attention_supported() asks of q, k, v and
/// keep (CPU, one dtype among float32 / float64 / bfloat16 / float16, (B, H, n, d) /
/// (B, H, k_len, d), last dimension contiguous, keep bool and broadcastable to (B, H, n, k_len)),
/// k_len >= 1, 1 <= n <= max_queries, and no gradient wanted (grad mode off, or
/// none of q, k, v requires one). If not, `why` says which condition failed.
bool decode_attention_supported(const torch::Tensor& q, const torch::Tensor& k,
                                const torch::Tensor& v, const torch::Tensor& keep = {},
                                int64_t max_queries = kDecodeAttentionMaxQueries,
                                std::string* why = nullptr);

/// softmax(q k^T * scale, causal, keep) v, (B, H, n, d) in q's dtype (float math; double for
/// double).
/// Not differentiable. Throws, naming the condition, unless decode_attention_supported() with any
/// max_queries, and for causal attention with fewer keys than queries.
torch::Tensor decode_attention(const torch::Tensor& q, const torch::Tensor& k,
                               const torch::Tensor& v, double scale, bool causal,
                               const torch::Tensor& keep = {});

}  // namespace megabench::kernels
