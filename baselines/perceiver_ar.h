#pragma once
// Perceiver AR (Hawthorne et al. 2022, arXiv 2202.07765), as lucidrains' perceiver-ar-pytorch
// 0.0.10 builds it. The first prefix_len tokens of the window are a prefix that the
// latent positions (the rest of the window) cross-attend to, causally, in the perceive layers;
// then ordinary causal self-attention layers run over the latents only. Logits and the loss cover
// the latent positions only.
//
//   auto model = PerceiverAR(PerceiverAROptions(/*num_tokens=*/256, /*dim=*/512, /*depth=*/8,
//                                               /*seq_len=*/4096, /*prefix_len=*/3072));
//   auto logits = model->forward(x);                  // (B, n - 3072, 256)
//   auto loss = model->forward(x, {}, labels);        // labels (B, n), as the reference
//   auto out = model->generate(prime, 512);           // cached decoding: (B, L + 512)
//
// Parameter names match the reference's state_dict (token_emb, pos_emb, rotary_pos_emb.inv_freq,
// perceive_layers.i.{0,1}, layers.i.{0,1}, to_logits), so a Python checkpoint loads by name.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "models/decoding.h"
#include "models/layers.h"

namespace megabench {

/// What cached decoding does once the window is full and slides by one byte per step.
///  kRecompute: the reference's semantics. The window is rerun for every byte: each token's
///    learned position changes as the window moves, so no cached key or value stays valid.
///  kSlide: streaming. The oldest latent joins the prefix (its prefix keys/values are computed
///    once, from the embedding it got as the newest token), the oldest prefix token leaves, and
///    every other cached key/value is kept: a latent's self-attention keys stay those computed
///    when it was newest, with the context it had then. New bytes take the last window position's
///    embedding, as in the reference; rotary angles use absolute positions (only their differences
///    matter). Exact where the cached values depend on their token alone (no self-attention layers
///    and a position table that does not vary); otherwise an approximation, at one latent's cost
///    per byte instead of a window's.
enum class DecodeWindow { kRecompute, kSlide };
/// JSON "recompute" | "slide"; anything else throws std::invalid_argument naming `where`.
DecodeWindow decode_window_of(const std::string& name, const std::string& where);
const char* decode_window_name(DecodeWindow w);

struct PerceiverAROptions {
  PerceiverAROptions(int64_t num_tokens, int64_t dim, int64_t depth, int64_t seq_len,
                     int64_t prefix_len)
      : num_tokens_(num_tokens),
        dim_(dim),
        depth_(depth),
        seq_len_(seq_len),
        prefix_len_(prefix_len) {}
  /// Vocabulary size: 256 for bytes.
  TORCH_ARG(int64_t, num_tokens);
  /// Model width, e.g. 512.
  TORCH_ARG(int64_t, dim);
  /// Self-attention layers over the latents, e.g. 8.
  TORCH_ARG(int64_t, depth);
  /// Window in bytes (prefix + latents), e.g. 4096; the reference's max_seq_len. Also the size
  /// of the learned position table.
  TORCH_ARG(int64_t, seq_len);
  /// Prefix length, e.g. 3072; must be below seq_len. The reference's cross_attn_seq_len.
  TORCH_ARG(int64_t, prefix_len);
  /// Default 64.
  TORCH_ARG(int64_t, dim_head) = 64;
  /// Default 8.
  TORCH_ARG(int64_t, heads) = 8;
  /// Attention dropout of the perceive layers and the dropout of every feedforward. Default 0.
  TORCH_ARG(double, dropout) = 0.0;
  /// Fraction of prefix positions each batch row drops while training. Default 0.
  TORCH_ARG(double, cross_attn_dropout) = 0.0;
  /// Feedforward hidden width multiplier. Default 4.
  TORCH_ARG(double, ff_mult) = 4;
  /// Cross-attention (perceive) layers. Default 1.
  TORCH_ARG(int64_t, perceive_depth) = 1;
  /// Heads the perceive layers score at once (bounds the (n, prefix) score memory of the explicit
  /// path; the fused path never builds the scores and takes all heads at once). Default 2.
  TORCH_ARG(int64_t, perceive_max_heads_process) = 2;
  /// kSdpa: LibTorch's fused scaled_dot_product_attention (flash kernel: no score matrix, causal
  /// blocks skipped; the same math as the reference up to rounding). kExplicit: the reference's
  /// explicit masked softmax. Default kSdpa (the reference has only the explicit path).
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kSdpa;
  /// Cached decoding after the window fills: kRecompute (the reference's semantics) or kSlide
  /// (streaming; see DecodeWindow). Default kRecompute.
  TORCH_ARG(DecodeWindow, decode_window) = DecodeWindow::kRecompute;

 public:  // TORCH_ARG leaves the section private
  /// Rotated features per head: max(32, dim_head / 2), as the reference (it must fit dim_head).
  int64_t rotary_dim() const { return std::max<int64_t>(32, dim_head() / 2); }
  /// Latent positions: the bytes one window predicts, seq_len - prefix_len.
  int64_t num_latents() const { return seq_len() - prefix_len(); }
  /// Throws naming the option that is out of range.
  void validate() const;
};

// ---------------------------------------------------------------------------------------------
// The cross-attention block, Perceiver AR's own: LayerNorm pre-norm on the latents and on the
// prefix, q scaled before rotary (as the reference), attend() for the core. The self-attention
// layers use the shared Attention block (models/layers.h) in the reference's parameter layout.

/// Cross-attention from the latents to [prefix, latents] (causal over the latents).
/// Parameters: norm, context_norm (LayerNorm), to_q, to_kv (no bias), to_out (with bias).
class CausalPrefixAttentionImpl : public torch::nn::Cloneable<CausalPrefixAttentionImpl> {
 public:
  CausalPrefixAttentionImpl(int64_t dim, int64_t dim_head, int64_t heads, int64_t max_heads_process,
                            double dropout, AttentionPath attention);
  void reset() override;
  /// Prefix keys and values (B, H, C, d), rotated by prefix_rotary (C, r) or (B, 1, C, r).
  std::pair<torch::Tensor, torch::Tensor> prefix_kv(const torch::Tensor& context,
                                                    const torch::Tensor& prefix_rotary);
  /// x (B, n, D): the n newest latents; their keys/values are appended to `cache`. Either the
  /// prefix keys/values come in prefix_k / prefix_v (a forward: `cache` is empty) or `cache` holds
  /// them before the earlier latents (decoding: prefix_k undefined; one buffer, so a step copies
  /// no prefix). prefix_keep (B, C) bool or undefined. rotary (n, r) for the n latents.
  /// Returns (B, n, D).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& prefix_k,
                        const torch::Tensor& prefix_v, const torch::Tensor& prefix_keep,
                        const torch::Tensor& rotary, LayerCache& cache);
  int64_t dim, dim_head, heads, max_heads_process;
  double dropout;
  AttentionPath attention;
  torch::nn::LayerNorm norm{nullptr}, context_norm{nullptr};
  Linear to_q{nullptr}, to_kv{nullptr}, to_out{nullptr};
};
TORCH_MODULE(CausalPrefixAttention);

// ---------------------------------------------------------------------------------------------

/// Incremental decoding state. `tokens` holds the whole sequence, left-padded when the prime was
/// not longer than the prefix (`valid` false there; those positions are masked via prefix_mask).
/// The caches describe the window starting at tokens[:, origin] and are used while it has not
/// slid, or, under DecodeWindow::kSlide, as it slides.
struct PerceiverARDecodeState {
  torch::Tensor tokens;  // (B, T) int64
  torch::Tensor valid;   // (B, T) bool
  int64_t pad = 0;       // left-padding positions
  bool use_cache = true;
  bool cache_live = false;                 // the caches cover tokens[:, origin:T]
  int64_t origin = 0;                      // first token of the prefilled window
  torch::Tensor latent_h;                  // (B, m, D) embeddings of the window's latents
  torch::Tensor prefix_keep;               // (B, C) bool or undefined
  std::vector<LayerCache> perceive_cache;  // per perceive layer: prefix then latent keys/values
  std::vector<LayerCache> layer_cache;     // latent keys/values of each self-attention layer
  torch::Tensor logits;                    // (B, V): distribution of the next token
};

class PerceiverARImpl : public torch::nn::Cloneable<PerceiverARImpl> {
 public:
  explicit PerceiverARImpl(PerceiverAROptions options);
  void reset() override;

  /// x (B, n) ids with prefix_len < n <= seq_len. prefix_mask (B, prefix_len)
  /// bool: false hides that prefix position. Returns logits for the latent positions
  /// (B, n - prefix_len, V), or, with labels (B, n), the reference's loss: mean
  /// cross-entropy of labels[:, prefix_len:] ignoring label 0.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& prefix_mask = {},
                        const torch::Tensor& labels = {});

  /// Samples `length` tokens after prime (B, L), L >= 1, and returns prime and them
  /// (B, L + length). Top-k keeps
  /// max(int((1 - filter_thres) * V), 1) logits, then Gumbel-max; temperature 0 is greedy. The
  /// window is the last seq_len tokens, as the reference's wrapper. A prime not longer than
  /// the prefix is left-padded and the padding masked. use_cache reuses the prefix keys/values
  /// and the latent caches until the window slides; false recomputes the window for every token.
  torch::Tensor generate(const torch::Tensor& prime, int64_t length, double temperature = 1.0,
                         double filter_thres = 0.9, bool use_cache = true);

  /// The decoder that generate() samples from (begin/append below, cached or recomputing the
  /// window per token). Must not outlive the model.
  std::unique_ptr<Decoder> decoder(bool use_cache = true);

  /// Incremental decoding: begin() consumes the prime and sets state.logits to the distribution
  /// of the next token; append() adds one token per row (B) and updates state.logits.
  PerceiverARDecodeState begin(const torch::Tensor& prime, bool use_cache = true);
  void append(PerceiverARDecodeState& state, const torch::Tensor& token);

  PerceiverAROptions options;
  torch::nn::Embedding token_emb{nullptr}, pos_emb{nullptr};
  RotaryEmbedding rotary_pos_emb{nullptr};
  torch::nn::ModuleList perceive_layers{nullptr}, layers{nullptr};
  Linear to_logits{nullptr};

 private:
  torch::Tensor check_ids(const torch::Tensor& x, const char* what) const;
  /// token_emb(ids) + pos_emb(positions), both through kernels::embedding: (B, n, D).
  torch::Tensor embed_tokens(const torch::Tensor& ids, const torch::Tensor& positions) const;
  /// Runs the latents x (B, n, D) at absolute positions [start, start + n) through every layer,
  /// appending to the caches, and returns their logits (B, n, V), or with project = false their
  /// outputs before to_logits (B, n, D). pk / pv: each perceive layer's prefix keys/values, or
  /// empty when its cache holds them (decoding).
  torch::Tensor run_latents(torch::Tensor x, int64_t start, const std::vector<torch::Tensor>& pk,
                            const std::vector<torch::Tensor>& pv, const torch::Tensor& prefix_keep,
                            std::vector<LayerCache>& perceive_cache,
                            std::vector<LayerCache>& layer_cache, bool project = true);
  /// Next-token logits (B, V) of the window ending at the last token of state, without caches.
  torch::Tensor window_logits(const PerceiverARDecodeState& state);
  /// Builds the caches for the window tokens[:, origin:T] (at most seq_len tokens, more than
  /// prefix_len) and sets state.logits.
  void prefill(PerceiverARDecodeState& state);
  /// DecodeWindow::kSlide: moves the cached window one token on to the token just appended to
  /// state.tokens and sets state.logits.
  void slide(PerceiverARDecodeState& state, const torch::Tensor& token);

  std::vector<CausalPrefixAttention> perceive_attn_;
  std::vector<torch::nn::Sequential> perceive_ff_;
  std::vector<Attention> attn_;  // self-attention: the shared block of models/layers.h
  std::vector<torch::nn::Sequential> ff_;
};
TORCH_MODULE(PerceiverAR);

}  // namespace megabench
