#pragma once
// MEGABYTE as the paper writes it (Yu et al. 2023, arXiv 2305.07185, section 2.2, Eq. 1-6, and the
// pseudocode of Appendix B), two stages: a global model over patches of P bytes and a local model
// inside each patch. The open reference (models/megabyte.h, MEGABYTE-pytorch) differs: it embeds a
// patch through LayerNorm + Linear, prepends start tokens instead of shifting by a whole patch,
// and projects the global output with one wide Linear. This is the JSON option
// `"formulation": "paper"` of the `megabyte` model.
//
//   Eq. 1  h_embed[t]        = E_global[x_t] + E_pos[t]                          (B, T, D_G)
//   Eq. 2  h_global_in[k]    = global_pad if k = 0 else h_embed[(k-1)P : kP]      (B, K, P*D_G)
//   Eq. 3  h_global_out      = transformer_global(h_global_in)                    (B, K, P*D_G)
//   Eq. 4  h_local_in[k, p]  = w_GL h_global_out[k, p*D_G : (p+1)*D_G]
//                              + (local_pad if p = 0 else E_local[x_{kP+p-1}])     (B*K, P, D_L)
//   Eq. 5  h_local_out[k]    = transformer_local(h_local_in[k])                   (B*K, P, D_L)
//   Eq. 6  p(x_t | x_<t)     = softmax(E_local h_local_out[k, p])                 t = kP + p
//
// The global model's width is P * D_G (the `dim[0]` of the config), the local model's D_L
// (`dim[1]`). Both stacks are megabench's shared Transformer (models/layers.h) with one head per
// dim_head features (heads * dim_head = width, as in the FLOP formula) and no token shift. The
// output is tied to the local embedding, as Eq. 6 writes it.
//
//   auto model = MEGABYTEPaper(MEGABYTEPaperOptions(/*dim=*/{2048, 1024}, /*depth=*/{14, 18},
//                                                   /*seq_len=*/8192, /*patch=*/8));
//   auto loss = model->loss(bytes);  // bytes (B, L), L <= seq_len
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "models/decoding.h"
#include "models/layers.h"

namespace megabench {

struct MEGABYTEPaperOptions {
  MEGABYTEPaperOptions(std::vector<int64_t> dim, std::vector<int64_t> depth, int64_t seq_len,
                       int64_t patch)
      : dim_(std::move(dim)), depth_(std::move(depth)), seq_len_(seq_len), patch_(patch) {}
  /// Widths {global P*D_G, local D_L}; the global width must be a multiple of the patch.
  TORCH_ARG(std::vector<int64_t>, dim);
  /// Layers {global, local}; the local depth may be 0 (the paper's "w/o local model").
  TORCH_ARG(std::vector<int64_t>, depth);
  /// Context T in bytes, a multiple of the patch.
  TORCH_ARG(int64_t, seq_len);
  /// Patch size P.
  TORCH_ARG(int64_t, patch);
  /// Vocabulary size V: 256 for bytes.
  TORCH_ARG(int64_t, num_tokens) = 256;
  /// Width of an attention head; each stack has width / dim_head heads. Default 64.
  TORCH_ARG(int64_t, dim_head) = 64;
  TORCH_ARG(double, ff_mult) = 4;
  TORCH_ARG(double, attn_dropout) = 0.0;
  TORCH_ARG(double, ff_dropout) = 0.0;
  /// Rotary embeddings in both stacks, besides Eq. 1's learned positions. Default false.
  TORCH_ARG(bool, rel_pos) = false;
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kExplicit;
  /// Standard deviation of the initial embeddings, position table and pads (the paper gives
  /// none; 0.02 keeps the tied logits near 0 at the start). The stacks keep their own init.
  TORCH_ARG(double, init_std) = 0.02;

 public:  // TORCH_ARG leaves the section private
  int64_t dim_global() const { return dim_.at(0); }
  int64_t dim_local() const { return dim_.at(1); }
  /// D_G: the global model's width per byte of a patch.
  int64_t dim_byte() const { return dim_.at(0) / patch_; }
  /// Throws c10::Error naming the option on an inconsistent set.
  void validate() const;
};

/// Decoding state: the global cache grows once per patch, the local cache holds the current patch.
struct MEGABYTEPaperDecodeState {
  KVCache global, local;
  torch::Tensor ctx;    // (B, P, D_L): w_GL of the current patch's global output slices
  torch::Tensor bytes;  // (B, seq_len) bytes so far, int64
  int64_t len = 0;
  torch::Tensor empty_logits;  // (B, V): distribution of byte 0
};

class MEGABYTEPaperImpl : public torch::nn::Cloneable<MEGABYTEPaperImpl> {
 public:
  explicit MEGABYTEPaperImpl(MEGABYTEPaperOptions options);
  void reset() override;

  /// ids (B, L), L <= seq_len -> logits (B, L, V); row t is the distribution of byte t + 1.
  torch::Tensor forward(const torch::Tensor& ids);
  /// ids (B, L) -> logits (B, L, V); row t is the distribution of byte t (row 0: the pads only).
  torch::Tensor next_byte_logits(const torch::Tensor& ids);
  /// Mean cross-entropy in nats over every byte of ids.
  torch::Tensor loss(const torch::Tensor& ids);

  /// Cached (the global model once per patch) or uncached (a full forward per byte) decoder.
  std::unique_ptr<Decoder> decoder(bool use_cache = true);
  MEGABYTEPaperDecodeState begin(int64_t batch);
  /// One byte per sequence (B) -> the next byte's logits (B, V), undefined once the context is
  /// full.
  torch::Tensor append(MEGABYTEPaperDecodeState& state, const torch::Tensor& byte);
  torch::Tensor generate(const torch::Tensor& prime, std::optional<int64_t> length = {},
                         double temperature = 1.0, double filter_thres = 0.9,
                         bool use_cache = true);

  MEGABYTEPaperOptions options;
  torch::nn::Embedding global_emb{nullptr};  // E_global (V, D_G)
  torch::nn::Embedding global_pos{nullptr};  // E_pos (T, D_G)
  torch::Tensor global_pad;                  // (P * D_G): the first global input
  Transformer global_model{nullptr};
  Linear w_gl{nullptr};                     // w_GL (D_G -> D_L), bias-free
  torch::nn::Embedding local_emb{nullptr};  // E_local (V, D_L), also the output matrix
  torch::Tensor local_pad;                  // (D_L): the first local input of every patch
  Transformer local_model{nullptr};

 private:
  torch::Tensor check_ids(const torch::Tensor& ids) const;
  /// Local outputs (B, K*P, D_L) of bytes 0..K*P-1 (row t predicts byte t) for the bytes ids
  /// (B, L), with K = ceil(rows / P) patches; rows <= L + 1.
  torch::Tensor run_hidden(const torch::Tensor& ids, int64_t rows);
  /// to_logits of it: (B, K*P, V).
  torch::Tensor run(const torch::Tensor& ids, int64_t rows);
  /// Eq. 1-2 for one patch of bytes (B, P) starting at byte `start`: (B, 1, P * D_G).
  torch::Tensor global_input(const torch::Tensor& patch_bytes, int64_t start);
  /// Eq. 4's first term: global outputs (B', n, P * D_G) -> (B' * n, P, D_L).
  torch::Tensor global_to_local(const torch::Tensor& global_out);
  /// Eq. 6: tied output, (..., D_L) -> (..., V).
  torch::Tensor to_logits(const torch::Tensor& local_out);
};
TORCH_MODULE(MEGABYTEPaper);

}  // namespace megabench
