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

#include "harness/model.h"

namespace megabench::flops {

/// One pre-norm decoder layer, per token: attention projections (q, k, v, out: 4 * dim * inner
/// MACs), the feedforward (2 * dim * hidden MACs), and attention over `context` keys.
struct LayerShape {
  int64_t dim = 0;
  int64_t inner = 0;      // heads * dim_head
  int64_t ff_hidden = 0;  // dim * ff_mult
  int64_t context = 0;    // keys each query attends to (the window W, or the sequence length)
};
FlopBreakdown layer_per_token(const LayerShape& s);

/// Parameters of one such layer (weights and biases as given).
int64_t layer_params(int64_t dim, int64_t inner, int64_t ff_hidden, bool ff_bias, int64_t norms);

/// A dense projection applied once per token: in x out MACs.
double linear_per_token(int64_t in, int64_t out);

// --- the papers' formulas (SpaceByte Appendix A.1, Tables 5-6), inference FLOPs per byte
struct PaperTransformer {
  double params = 0;   // m; 0 means count it as L*4*D^2 + L*2*e_ff*D^2 + D*V
  int64_t layers = 0, dim = 0, context = 0, vocab = 256;
  double e_ff = 4;
};
struct PaperMegabyte {
  double params_global = 0, params_local = 0;  // m_g, m_l; 0 means count from the terms
  int64_t layers_global = 0, dim_global = 0, layers_local = 0, dim_local = 0;
  int64_t patch = 8, context = 0, vocab = 256;
  double e_ff = 4;
};
FlopBreakdown paper_transformer(const PaperTransformer& t);
FlopBreakdown paper_megabyte(const PaperMegabyte& m);

}  // namespace megabench::flops
