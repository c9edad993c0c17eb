#pragma once
// The decoder-only byte Transformer baseline, built from the same blocks as a MEGABYTE stage:
// a start token, a byte embedding, an optional learned position embedding, the shared Transformer
// (token shift, RMSNorm, rotary, GELU feedforward) and a linear map to logits. With the same
// weights it computes exactly what a one-stage MEGABYTE computes. Sliding-window attention
// (window W) gives the strong byte baseline of the SpaceByte paper.
#include <torch/torch.h>

#include <memory>
#include <optional>

#include "models/decoding.h"
#include "models/layers.h"

namespace megabench {

enum class PositionKind { kRotary, kLearned, kNone };

struct ByteTransformerOptions {
  ByteTransformerOptions(int64_t dim, int64_t depth, int64_t seq_len)
      : dim_(dim), depth_(depth), seq_len_(seq_len) {}
  TORCH_ARG(int64_t, num_tokens) = 256;
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, depth);
  /// Context: the longest input in bytes.
  TORCH_ARG(int64_t, seq_len);
  TORCH_ARG(int64_t, dim_head) = 64;
  TORCH_ARG(int64_t, heads) = 8;
  TORCH_ARG(double, ff_mult) = 4;
  TORCH_ARG(double, attn_dropout) = 0.0;
  TORCH_ARG(double, ff_dropout) = 0.0;
  /// Rotary embeddings (default), a learned absolute embedding, or none.
  TORCH_ARG(PositionKind, positions) = PositionKind::kRotary;
  /// Explicit attention or SDPA. Default kExplicit.
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kExplicit;
  /// Sliding-window attention over the last `window` positions; 0 = full causal attention.
  TORCH_ARG(int64_t, window) = 0;
  /// RWKV token shift, as in MEGABYTE's blocks.
  TORCH_ARG(bool, token_shift) = true;
};

/// Decoding state: the KV cache (only the window under window attention) and the length so far.
struct ByteTransformerDecodeState {
  KVCache cache;
  int64_t len = 0;
  torch::Tensor empty_logits;  // (B, V): distribution of byte 0
};

class ByteTransformerImpl : public torch::nn::Cloneable<ByteTransformerImpl> {
 public:
  explicit ByteTransformerImpl(ByteTransformerOptions options);
  void reset() override;

  /// ids (B, L) -> logits (B, L, V); row t is the distribution of byte t + 1.
  torch::Tensor forward(const torch::Tensor& ids);
  /// ids (B, L) -> logits (B, L, V); row t is the distribution of byte t (row 0 from the start
  /// token).
  torch::Tensor next_byte_logits(const torch::Tensor& ids);
  /// Mean cross-entropy in nats over every byte of ids (none is ignored).
  torch::Tensor loss(const torch::Tensor& ids);

  /// The decoder that generate() samples from: cached (begin/append below) or, with use_cache
  /// false, a full forward over the sequence per byte. Must not outlive the model.
  std::unique_ptr<Decoder> decoder(bool use_cache = true);

  /// The cached byte step: begin() returns the state before any byte (empty_logits: byte 0).
  ByteTransformerDecodeState begin(int64_t batch);
  /// Feeds one byte per sequence (B); returns the next byte's logits (B, V), undefined when full.
  torch::Tensor append(ByteTransformerDecodeState& state, const torch::Tensor& byte);
  /// Samples `length` bytes after prime (B, L) (default: to seq_len); returns (B, L + length).
  torch::Tensor generate(const torch::Tensor& prime, std::optional<int64_t> length = {},
                         double temperature = 1.0, double filter_thres = 0.9,
                         bool use_cache = true);

  ByteTransformerOptions options;
  torch::Tensor start_token;
  torch::nn::Embedding token_emb{nullptr};
  torch::nn::Embedding pos_emb{nullptr};
  Transformer transformer{nullptr};
  Linear to_logits{nullptr};

 private:
  torch::Tensor check_ids(const torch::Tensor& ids) const;
  torch::Tensor run_hidden(const torch::Tensor& ids);  // (B, L + 1, D) over start token + bytes
  torch::Tensor run(const torch::Tensor& ids);         // to_logits of it: (B, L + 1, V)
};
TORCH_MODULE(ByteTransformer);

}  // namespace megabench
