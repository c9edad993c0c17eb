#pragma once
// SpaceByte (Slagle 2024, arXiv 2404.14408; reference code kjslag/spacebyte): a byte-level
// Transformer with wider "global" blocks inserted in the middle, applied only at patch boundaries.
//
//   bytes -> embedding (D_local) -> initial local blocks (windowed attention, every byte)
//         -> at the boundaries: gather, zero-pad to D, global blocks (D, causal over boundaries),
//            scatter the last D_local features back and add them to the residual stream
//         -> final local blocks (windowed) -> RMSNorm -> logits
//
// Boundaries (paper Section 2, "Patching rule"; reference `spacebyte.py`, patch_method 'utf8'):
// a byte is *spacelike* when it is not an ASCII letter or digit and not a UTF-8 continuation byte
// (0x80-0xBF); so spaces, punctuation, control bytes and UTF-8 leading bytes (>= 0xC0) are. A
// global block runs after a spacelike byte that does not follow another spacelike byte. The start
// token counts as spacelike and is always a boundary (the reference's BOS rule). SpaceByte-P
// (patching "periodic") puts a boundary at every P-th position instead (the reference's
// patch_method 'periodic', `x[:, ::P]`).
//
// The cap (paper Section 2 and Appendix A; the reference's global_context_size T_G): at most T_G
// positions per sequence run the global blocks, T_G = ceil((T + 1) / P) by default for the T bytes
// and the start token, with P the expected patch length (6 for text, 8 for code in the paper). The
// global blocks always run over min(T_G, positions) entries, padded after the last boundary, as the
// reference does, so the FLOPs are those of T_G positions whatever the text. Bytes after the
// (T_G+1)-th boundary get no global contribution; unlike the reference's training loss, which
// drops them (targets -1), the harness counts every byte.
//
// Differences from the reference, all from megabench's shared blocks (models/layers.h): RMSNorm
// instead of LayerNorm, GELU instead of ReLU, rotary positions (the reference's runs use rope too,
// besides learned absolute embeddings) without the learned tables, no QK layer norm, biased
// feedforward and logits. The boundary rule, the cap, the zero-padding into the global width and
// the add-back of the last D_local features are the reference's.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "models/decoding.h"
#include "models/layers.h"

namespace megabench {

/// Where the global blocks run: after spacelike bytes (SpaceByte) or every `patch` positions
/// (SpaceByte-P).
enum class Patching { kSpacelike, kPeriodic };

/// The paper's spacelike rule for one byte: not [0-9A-Za-z] and not a continuation byte 0x80-0xBF.
bool is_spacelike(int64_t byte);
/// The same over a tensor of byte ids: bool, same shape.
torch::Tensor spacelike(const torch::Tensor& bytes);

/// The positions that run the global blocks, before the cap, for bytes (B, L): (B, L + 1) bool
/// over the start token (position 0, always true) and the bytes (position t + 1 holds byte t).
/// kSpacelike: byte t is spacelike and byte t - 1 is not (the start token counts as spacelike);
/// kPeriodic: the position is a multiple of `patch`. Position p depends on bytes < p only.
torch::Tensor boundary_mask(const torch::Tensor& bytes, Patching patching, int64_t patch);

struct SpaceByteOptions {
  SpaceByteOptions(int64_t dim, int64_t dim_local, int64_t depth, int64_t depth_local,
                   int64_t seq_len)
      : dim_(dim),
        dim_local_(dim_local),
        depth_(depth),
        depth_local_(depth_local),
        seq_len_(seq_len) {}
  TORCH_ARG(int64_t, num_tokens) = 256;
  /// Global width D (the paper's D; the reference's d_model).
  TORCH_ARG(int64_t, dim);
  /// Local width D_local <= D (the reference's d_local, default D/2).
  TORCH_ARG(int64_t, dim_local);
  /// Global layers L_global (the reference's n_layers).
  TORCH_ARG(int64_t, depth);
  /// Local layers L_local, initial and final together (the reference's n_local_layers).
  TORCH_ARG(int64_t, depth_local);
  /// Local layers before the global blocks; -1 = depth_local / 2 (the reference's default).
  TORCH_ARG(int64_t, depth_initial) = -1;
  /// Context T in bytes.
  TORCH_ARG(int64_t, seq_len);
  /// Expected patch length P: the period of SpaceByte-P, and what the default cap divides by.
  /// Default 6 (the paper's text setting; 8 for code).
  TORCH_ARG(int64_t, patch) = 6;
  /// Cap T_G on global positions per sequence; 0 = ceil((seq_len + 1) / patch).
  TORCH_ARG(int64_t, global_len) = 0;
  /// Local attention window W_local (keys per query); -1 = dim_local (the reference's default),
  /// 0 = full causal attention.
  TORCH_ARG(int64_t, window) = -1;
  TORCH_ARG(Patching, patching) = Patching::kSpacelike;
  /// Width of an attention head in both stacks; heads = width / dim_head (the reference's d_key).
  TORCH_ARG(int64_t, dim_head) = 64;
  TORCH_ARG(double, ff_mult) = 4;
  TORCH_ARG(double, attn_dropout) = 0.0;
  TORCH_ARG(double, ff_dropout) = 0.0;
  TORCH_ARG(AttentionPath, attention) = AttentionPath::kExplicit;
  /// RWKV token shift in every block (MEGABYTE's blocks have it; the reference has none).
  TORCH_ARG(bool, token_shift) = false;

 public:  // TORCH_ARG leaves the struct in a private section
  /// The resolved values of the -1 / 0 defaults.
  int64_t initial_layers() const { return depth_initial_ < 0 ? depth_local_ / 2 : depth_initial_; }
  int64_t global_cap() const {
    return global_len_ > 0 ? global_len_ : (seq_len_ + 1 + patch_ - 1) / patch_;
  }
  int64_t local_window() const { return window_ < 0 ? dim_local_ : window_; }
};

/// Decoding state of one sequence: the three KV caches (the global one grows at boundaries only).
struct SpaceByteRowState {
  KVCache initial, global, final;
  int64_t pos = 0;             // positions so far, the start token included
  int64_t global_count = 0;    // global positions so far (<= the cap)
  bool prev_spacelike = true;  // the start token counts as spacelike
};
struct SpaceByteDecodeState {
  std::vector<SpaceByteRowState> rows;
  torch::Tensor empty_logits;  // (B, V): distribution of byte 0
};

class SpaceByteImpl : public torch::nn::Cloneable<SpaceByteImpl> {
 public:
  explicit SpaceByteImpl(SpaceByteOptions options);
  void reset() override;

  /// ids (B, L) -> logits (B, L, V); row t is the distribution of byte t + 1.
  torch::Tensor forward(const torch::Tensor& ids);
  /// ids (B, L) -> logits (B, L, V); row t is the distribution of byte t (row 0 from the start).
  torch::Tensor next_byte_logits(const torch::Tensor& ids);
  /// Mean cross-entropy in nats over every byte of ids.
  torch::Tensor loss(const torch::Tensor& ids);

  /// Cached (begin/append below) or uncached (a full forward per byte) decoder.
  std::unique_ptr<Decoder> decoder(bool use_cache = true);
  SpaceByteDecodeState begin(int64_t batch);
  /// One byte per sequence (B) -> the next byte's logits (B, V), undefined when the context is
  /// full.
  torch::Tensor append(SpaceByteDecodeState& state, const torch::Tensor& byte);
  torch::Tensor generate(const torch::Tensor& prime, std::optional<int64_t> length = {},
                         double temperature = 1.0, double filter_thres = 0.9,
                         bool use_cache = true);

  SpaceByteOptions options;
  torch::Tensor start_token;
  torch::nn::Embedding token_emb{nullptr};
  Transformer initial_blocks{nullptr}, global_blocks{nullptr}, final_blocks{nullptr};
  Linear to_logits{nullptr};

 private:
  torch::Tensor check_ids(const torch::Tensor& ids) const;
  torch::Tensor run_hidden(const torch::Tensor& ids);  // (B, L + 1, D) over start token + bytes
  torch::Tensor run(const torch::Tensor& ids);         // to_logits of it: (B, L + 1, V)
  /// The global blocks on x (B, n, D_local) at `positions` (B, L + 1) bool: x plus their output.
  torch::Tensor add_global(const torch::Tensor& x, const torch::Tensor& positions);
  /// One position of one row: x (1, 1, D_local) embedded -> logits (1, V).
  torch::Tensor step(SpaceByteRowState& row, const torch::Tensor& x, bool boundary);
};
TORCH_MODULE(SpaceByte);

}  // namespace megabench
