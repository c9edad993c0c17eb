#pragma once
// Analytical FLOP counts. A multiply-add counts as 2 FLOPs; training counts 3x the forward pass.
// Attention follows the MEGABYTE / SpaceByte convention: every query scores its whole window
// (no causal halving), QK^T and AV each 2 * W * inner FLOPs per token and layer.
//
// Two families live here:
//  - building blocks, from which each model's plugin counts its own architecture exactly
//    (the plugin knows its layout; the harness knows none);
//  - the papers' closed formulas (SpaceByte Appendix A.1), for the calibration against
//    ../shared/paper_claims.json.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "harness/api/model.h"

namespace megabench::flops {

/// One pre-norm decoder layer, per token: attention projections (q, k, v, out: 4 * dim * inner
/// MACs), the feedforward (2 * dim * hidden MACs), and attention over `context` keys.
struct LayerShape {
  int64_t dim = 0;
  int64_t inner = 0;      // heads * dim_head
  int64_t ff_hidden = 0;  // dim * ff_mult
  int64_t context = 0;    // keys each query attends to (the window W, or the sequence length)
};
/// FLOPs per token of that layer: attention = 2 * (2 * context * inner) (QK^T and AV),
/// dense = 2 * (4 * dim * inner + 2 * dim * ff_hidden). Throws std::invalid_argument naming the
/// field when dim, inner or context is not positive or ff_hidden is negative.
FlopBreakdown layer_per_token(const LayerShape& s);

/// Parameters of one such layer: q, k, v, out (4 * dim * inner, bias-free), the feedforward
/// (2 * dim * ff_hidden, plus ff_hidden + dim biases when ff_bias), and `norms` weight vectors of
/// size dim (an RMSNorm is 1, a LayerNorm with bias 2).
int64_t layer_params(int64_t dim, int64_t inner, int64_t ff_hidden, bool ff_bias, int64_t norms);

/// A dense projection applied once per token: in x out MACs, returned as 2 * in * out FLOPs.
double linear_per_token(int64_t in, int64_t out);

/// The breakdown as a small table (part, FLOPs per byte, share, and the 3x training total),
/// for `megabench flops` and logs. `title` heads the table; empty for none.
std::string format_breakdown(const FlopBreakdown& b,
                             const std::string& title = "forward FLOPs per byte");

/// The breakdown as record metrics, in this order: flops_forward_per_byte (the total),
/// flops_attention_forward_per_byte, flops_dense_forward_per_byte,
/// flops_embed_logits_forward_per_byte, flops_train_per_byte (3x the total).
nlohmann::ordered_json flop_metrics(const FlopBreakdown& b);
/// The inverse: the three parts read back from a point's metrics (the total and the training
/// figure follow from them). Throws std::invalid_argument naming a part that is missing or not a
/// number.
FlopBreakdown flop_breakdown(const nlohmann::ordered_json& metrics);

// --- the papers' formulas (SpaceByte Appendix A.1, Tables 5-6), inference FLOPs per byte
struct PaperTransformer {
  double params = 0;  // m; 0 means count it as L*4*D^2 + L*2*e_ff*D^2 + D*V
  int64_t layers = 0, dim = 0, context = 0, vocab = 256;
  double e_ff = 4;
};
struct PaperMegabyte {
  double params_global = 0, params_local = 0;  // m_g, m_l; 0 means count from the terms
  int64_t layers_global = 0, dim_global = 0, layers_local = 0, dim_local = 0;
  int64_t patch = 8, context = 0, vocab = 256;
  double e_ff = 4;
};
// Both map the formula's terms onto FlopBreakdown as: attention = the 2*L*(2*W*D) terms;
// embed_logits = 2*D*V (2*D_l*V for MEGABYTE, whose logits come from the local model);
// dense = the rest of 2*m (2*m_g/P + 2*m_l for MEGABYTE). Inputs are checked
// (std::invalid_argument).
FlopBreakdown paper_transformer(const PaperTransformer& t);
FlopBreakdown paper_megabyte(const PaperMegabyte& m);

/// m counted from the formula's architecture terms (what params = 0 stands for):
/// transformer L*4*D^2 + L*2*e_ff*D^2 + D*V; global L_g*4*D^2 + L_g*2*e_ff*D^2;
/// local D_l*D/P + L_l*(4 + 2*e_ff)*D_l^2 + D_l*V.
int64_t paper_transformer_params(const PaperTransformer& t);
int64_t paper_megabyte_global_params(const PaperMegabyte& m);
int64_t paper_megabyte_local_params(const PaperMegabyte& m);

/// The formulas' additive terms, named, in the order the formulas write them:
/// Transformer [2m, 2L(2WD)]; MEGABYTE [2m_g/P, 2L_g(2(T/P)D)/P, 2m_l, 2L_l(2P D_l)].
using NamedTerms = std::vector<std::pair<std::string, double>>;
NamedTerms paper_transformer_terms(const PaperTransformer& t);
NamedTerms paper_megabyte_terms(const PaperMegabyte& m);

}  // namespace megabench::flops
