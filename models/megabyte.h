#pragma once
// MEGABYTE (Yu et al. 2023, arXiv 2305.07185), as lucidrains' MEGABYTE-pytorch 0.3.6 builds it:
// any number of stages, coarsest first. Stage 0 is the global model over patches; each finer stage
// is a local model inside one unit of the stage above; the finest stage predicts bytes.
//
//   auto model = MEGABYTE(MEGABYTEOptions(/*num_tokens=*/256, /*dim=*/{512, 256},
//                                         /*depth=*/{6, 4}, /*seq_len=*/4096, /*patch=*/{4}));
//   auto loss = model->forward(x, /*return_loss=*/true);
//   loss.backward();
//   auto sampled = model->generate();
//
// Parameter names match the reference's state_dict, so a Python checkpoint loads by name.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "models/decoding.h"
#include "models/layers.h"

namespace megabench {

/// How a middle stage's start position gets context from the stage above (3 or more stages).
enum class ContextMode {
  /// As the reference: the start position of every finer stage receives zero from the stage above,
  /// so with 3+ stages the first sub-patch of each patch sees no earlier patch.
  kReference,
  /// Middle stages: position i (the start token at 0) receives the i-th context chunk, so every
  /// byte sees all earlier bytes. Same parameters; 1- and 2-stage models are unchanged.
  kCorrected,
};

struct MEGABYTEOptions {
  MEGABYTEOptions(int64_t num_tokens, std::vector<int64_t> dim, std::vector<int64_t> depth,
                  int64_t seq_len, std::vector<int64_t> patch)
      : num_tokens_(num_tokens),
        dim_(std::move(dim)),
        depth_(std::move(depth)),
        seq_len_(seq_len),
        patch_(std::move(patch)) {}
  /// Vocabulary size: 256 for bytes.
  TORCH_ARG(int64_t, num_tokens);
  /// Width per stage, coarsest first; one value means the same width at every stage.
  TORCH_ARG(std::vector<int64_t>, dim);
  /// Layers per stage, e.g. {6, 4}.
  TORCH_ARG(std::vector<int64_t>, depth);
  /// Context in bytes, a multiple of the global patch (the product of `patch`), e.g. 4096.
  TORCH_ARG(int64_t, seq_len);
  /// Patch length of each finer stage, coarsest first: {4} for two stages, {4, 4} for three, {}
  /// for one. The reference's max_seq_len is {seq_len / prod(patch), patch...}.
  TORCH_ARG(std::vector<int64_t>, patch);
  /// Width of an attention head. Default 64.
  TORCH_ARG(int64_t, dim_head) = 64;
  /// Attention heads. Default 8.
  TORCH_ARG(int64_t, heads) = 8;
  /// Dropout on the attention probabilities. Default 0.
  TORCH_ARG(double, attn_dropout) = 0.0;
  /// Feedforward hidden width / dim. Default 4.
  TORCH_ARG(double, ff_mult) = 4;
  /// Dropout inside the feedforward. Default 0.
  TORCH_ARG(double, ff_dropout) = 0.0;
  /// Padding id: flat input is right-padded with it, and the loss ignores it (as the reference).
  TORCH_ARG(int64_t, pad_id) = 0;
  /// Rotary embeddings in every stage. Default false, as the reference.
  TORCH_ARG(bool, rel_pos) = false;
  /// A learned absolute position embedding per stage. Default false, as the reference.
  TORCH_ARG(bool, pos_emb) = false;
  /// Explicit attention or at::scaled_dot_product_attention (the reference's flash_attn). Default
  /// kExplicit, as the reference.
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kExplicit;
  /// Context wiring for 3+ stages. New models default to the corrected mode; parity with the
  /// reference and its checkpoints needs kReference.
  TORCH_ARG(ContextMode, context) = ContextMode::kCorrected;
  /// Attention implementation of the local stages: kLocalCuda runs kernels/local_attention's fused
  /// kernel on CUDA tensors (short causal sequences); anything else takes the generic path.
  TORCH_ARG(AttentionKernel, local_attn_kernel) = AttentionKernel::kGeneric;
  /// Cross-patch attention (Yu et al. 2023, Table 10): in every layer of the finest stage, a unit's
  /// keys and values also include the last r positions of the unit before it (its last r bytes),
  /// at relative rotary positions when rel_pos is on. 0 <= r <= patch.back(). Default 0, as the
  /// reference.
  TORCH_ARG(int64_t, cross_patch_attention) = 0;
  /// Convolutional patch encoder (Yu et al. 2023, Table 10): each patch embedder runs causal
  /// convolutions with filter sizes 3, 5 and 7 (CausalConvStack, `patch_convs`) over the byte
  /// embeddings of the whole stream before they are cut into patches. Default false, as the
  /// reference.
  TORCH_ARG(bool, conv_patch_encoder) = false;

 public:  // TORCH_ARG leaves the section private
  /// Number of stages, and dim expanded to one entry per stage. Throw on inconsistent options.
  int64_t stages() const;
  std::vector<int64_t> stage_dims() const;
  /// Positions of each stage (the reference's max_seq_len): the global length in patches
  /// (seq_len / patch_size()), then the patch lengths, e.g. {1024, 4}.
  std::vector<int64_t> stage_lens() const;
  /// Bytes in one unit of `stage` (the product of patch[stage:]); a global patch is unit_bytes(0).
  int64_t unit_bytes(int64_t stage) const;
  int64_t patch_size() const { return unit_bytes(0); }
  void validate() const;
};

/// Decoding state for cached generation: one KV cache per stage for the unit being filled.
struct MEGABYTEDecodeState {
  struct Stage {
    KVCache cache;
    torch::Tensor ctx;  // (B, d_s, D_s) context chunks from the stage above for the current unit
  };
  std::vector<Stage> stages;
  torch::Tensor bytes;  // (B, seq_len) bytes so far, int64
  int64_t len = 0;
  torch::Tensor empty_logits;  // (B, V): distribution of byte 0, from the initial state
};

class MEGABYTEImpl : public torch::nn::Cloneable<MEGABYTEImpl> {
 public:
  explicit MEGABYTEImpl(MEGABYTEOptions options);
  void reset() override;

  /// ids: (B, L) flat bytes (right-padded with pad_id to whole patches), or pre-shaped
  /// (B, m, patch[0], ...). Returns logits of the input's shape plus V, where position t
  /// predicts byte t + 1 -- or, with return_loss, the mean cross-entropy in nats ignoring pad_id.
  torch::Tensor forward(const torch::Tensor& ids, bool return_loss = false);

  /// Logits for every byte of flat ids (B, L): row t is the distribution of byte t given bytes
  /// < t (row 0 comes from the start tokens). (B, L, V). Unlike the loss, pads nothing away.
  torch::Tensor next_byte_logits(const torch::Tensor& ids);
  /// Mean cross-entropy (nats) of next_byte_logits(ids) against ids (B, L), every byte counted
  /// (pad_id too); the same value, computed without building the (B, L, V) logits.
  torch::Tensor next_byte_loss(const torch::Tensor& ids);

  /// The reference's forward_empty: distribution of byte 0, (B, 1, V).
  torch::Tensor forward_empty(int64_t batch);

  /// Samples `length` bytes after `prime` (B, L) (default: until the context is full) and
  /// returns the whole sequence (B, L + length). Top-k keeps max(int((1 - filter_thres) * V), 1)
  /// logits; temperature 0 is greedy. use_cache = false reruns the full forward for every byte,
  /// as the reference does.
  torch::Tensor generate(const torch::Tensor& prime = {}, std::optional<int64_t> length = {},
                         double temperature = 1.0, double filter_thres = 0.9, int64_t batch = 1,
                         bool use_cache = true);

  /// The decoder that generate() samples from: cached (begin/append below) or, with use_cache
  /// false, the reference's full forward per byte (next_logits_uncached). Must not outlive the
  /// model.
  std::unique_ptr<Decoder> decoder(bool use_cache = true);

  /// The cached byte step. begin() returns the state before any byte; append() feeds one byte
  /// per sequence (B) and returns the logits of the next byte (B, V) -- undefined once full.
  MEGABYTEDecodeState begin(int64_t batch);
  torch::Tensor append(MEGABYTEDecodeState& state, const torch::Tensor& byte);
  /// Logits for the byte after the whole of `seq` (B, L) without a cache (L may be 0), (B, V).
  torch::Tensor next_logits_uncached(const torch::Tensor& seq);

  /// Stage `stage`'s token embedding (stage 0 = global): the patch embedder of a coarser stage, the
  /// byte embedding (Embedding) of the finest. The reference lists them finest first, so this is
  /// token_embs[S-1-stage]: the one place that order is translated.
  std::shared_ptr<torch::nn::Module> token_emb(int64_t stage) const;

  MEGABYTEOptions options;
  /// Registered as the reference's state_dict has them; all but token_embs are in stage order.
  torch::nn::ParameterList start_tokens{nullptr};
  torch::nn::ModuleList pos_embs{nullptr};
  torch::nn::ModuleList token_embs{nullptr};
  torch::nn::ModuleList transformers{nullptr};
  torch::nn::ModuleList to_next_transformer_projections{nullptr};
  Linear to_logits{nullptr};
  /// The convolutional patch encoders of the coarser stages, in stage order (conv_patch_encoder
  /// only; registered last, so the other modules draw the same initial weights as without them).
  torch::nn::ModuleList patch_convs{nullptr};

 private:
  struct Forward {
    torch::Tensor hidden;      // (B, d_0, ..., d_{S-2}, d_{S-1} + 1, D): the last stage's output
    torch::Tensor all_logits;  // to_logits(hidden), (..., V): every position, start tokens
                               // included; undefined when forward_all was asked for none
    torch::Tensor labels;      // (B, N) padded ids
    int64_t seq_len = 0;       // unpadded length for flat input, -1 for pre-shaped
  };
  /// logits = false: hidden only (the loss projects it itself).
  Forward forward_all(const torch::Tensor& ids, bool logits = true);
  /// (B, N, V): row t predicts byte t (row 0 from the start tokens).
  torch::Tensor flat_logits(const Forward& f) const;
  /// Mean cross-entropy of flat_logits(f) against `labels` (B, N), ignoring the label `ignore`:
  /// the logits projection fused with the loss (kernels::linear_cross_entropy) on hidden in
  /// place, so that neither the flat logits nor the logits are written.
  torch::Tensor loss(const Forward& f, const torch::Tensor& labels, int64_t ignore) const;
  torch::Tensor check_ids(const torch::Tensor& ids) const;
  /// Checked ids in the reference's shape (B, m, patch[0], ...); flat ids (B, L) are right-padded
  /// with pad_id to whole patches and seq_len set to L (-1 for pre-shaped ids).
  torch::Tensor shape_ids(const torch::Tensor& ids, int64_t& seq_len) const;
  /// The input tokens of every stage, stage s: (B, d_0, ..., d_s, D_s) (with position embeddings).
  std::vector<torch::Tensor> embed_stages(const torch::Tensor& shaped_ids);
  /// The Transformer of `stage`, as the reference builds it (plus cross-patch attention).
  TransformerOptions stage_options(int64_t stage) const;
  /// The embedding module of `stage`, as the reference builds it.
  std::shared_ptr<torch::nn::Module> make_token_emb(int64_t stage) const;

  /// Stage s's embedding of its units: the finest stage embeds bytes (..., n) -> (..., n, D_s), a
  /// coarser stage its patches (B, ..., n, unit_bytes(s)) -> (B, ..., n, D_s). With the
  /// convolutional encoder the patches must be consecutive in the stream; `context` (B, c) holds
  /// the c bytes just before them (decoding), which the convolutions see but nothing embeds.
  torch::Tensor embed(int64_t stage, const torch::Tensor& units, const torch::Tensor& context = {});
  /// Projection from stage s's outputs (..., n, D_s) to the chunks of stage s + 1 (-1, d, D_{s+1}).
  torch::Tensor project(int64_t stage, const torch::Tensor& x);
  /// Context from above added at stage s, position p of a unit whose chunks are ctx (B', d_s, D_s).
  torch::Tensor context_at(int64_t stage, int64_t p, const torch::Tensor& ctx) const;
  /// Pads the chunks (B', d, D) to the d + 1 positions of stage s (start token included).
  torch::Tensor pad_context(int64_t stage, const torch::Tensor& chunks) const;
  bool corrected_at(int64_t stage) const;
  torch::Tensor feed(MEGABYTEDecodeState& st, int64_t stage, const torch::Tensor& x);
  void open_units(MEGABYTEDecodeState& st, int64_t stage, torch::Tensor ctx);

  int64_t S_ = 0;
  std::vector<int64_t> dims_;
  std::vector<int64_t> lens_;  // options.stage_lens(): positions per stage
  std::vector<Transformer> stage_transformers_;
  std::vector<Linear> projections_;  // S - 1 of them
  std::vector<torch::nn::Embedding> pos_table_;
  torch::nn::Embedding byte_emb_{nullptr};
  std::vector<torch::nn::Sequential> patch_embs_;  // by stage: patch_embs_[s] == token_emb(s)
  std::vector<CausalConvStack> convs_;             // by stage, conv_patch_encoder only
};
TORCH_MODULE(MEGABYTE);

}  // namespace megabench
