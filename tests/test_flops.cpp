// Analytical FLOP counts: building blocks against hand counts and a real layer's parameters,
// the papers' formulas against the figures in ../shared/paper_claims.json.
#include <catch2/catch.hpp>
#include <cmath>
#include <stdexcept>
#include <string>

#include "harness/api/flops.h"
#include "models/layers.h"
#include "tests/support.h"

using namespace megabench;
using namespace megabench::flops;

namespace {
// The papers round their figures to 3-4 significant digits; 0.5% covers that and nothing more.
constexpr double kPaperRel = 0.005;

PaperMegabyte megabyte_758m_262m() {
  PaperMegabyte m;
  m.layers_global = 14;
  m.dim_global = 2048;
  m.layers_local = 18;
  m.dim_local = 1024;
  m.patch = 8;
  m.context = 8192;
  return m;
}

PaperTransformer transformer_320m() {
  PaperTransformer t;
  t.layers = 22;
  t.dim = 1024;
  t.context = 1024;
  return t;
}
}  // namespace

TEST_CASE("layer_per_token matches a hand count", "[flops]") {
  // dim 4, inner 8, ff_hidden 16, context 5, per token:
  //   QK^T: 5 keys x 8 MACs = 40 MACs = 80 FLOPs; AV: 5 x 8 = 40 MACs = 80 FLOPs -> attention 160
  //   q, k, v, out: 4 x (4 x 8) = 128 MACs = 256 FLOPs; ff: 4x16 + 16x4 = 128 MACs = 256 FLOPs
  //   -> dense 512; no embeddings or logits in a layer.
  const FlopBreakdown b =
      layer_per_token({/*dim=*/4, /*inner=*/8, /*ff_hidden=*/16, /*context=*/5});
  CHECK(b.attention == 160.0);
  CHECK(b.dense == 512.0);
  CHECK(b.embed_logits == 0.0);
  CHECK(b.total() == 672.0);

  // Attention grows with the window alone; dense does not see it.
  const FlopBreakdown wide = layer_per_token({4, 8, 16, 10});
  CHECK(wide.attention == 320.0);
  CHECK(wide.dense == 512.0);
}

TEST_CASE("linear_per_token counts 2 FLOPs per multiply-add", "[flops]") {
  CHECK(linear_per_token(3, 7) == 42.0);  // 21 MACs
  CHECK(linear_per_token(1024, 256) == 2.0 * 1024 * 256);
}

TEST_CASE("layer_params matches a hand count and a real Transformer layer", "[flops]") {
  // dim 4, inner 8, ff_hidden 16: q,k,v,out 4 x 4 x 8 = 128; ff weights 2 x 4 x 16 = 128;
  // ff biases 16 + 4 = 20; two RMSNorm gammas 2 x 4 = 8 -> 284 (bias-free: 264).
  CHECK(layer_params(4, 8, 16, /*ff_bias=*/true, /*norms=*/2) == 284);
  CHECK(layer_params(4, 8, 16, /*ff_bias=*/false, /*norms=*/2) == 264);

  // The shared Transformer: per layer an attention RMSNorm and a feedforward RMSNorm, biased
  // feedforward, bias-free projections; plus one final RMSNorm.
  for (const int64_t layers : {1, 3}) {
    Transformer tr(
        TransformerOptions(/*dim=*/16, /*depth=*/layers).dim_head(4).heads(3).ff_mult(4));
    int64_t counted = 0;
    for (const auto& p : tr->parameters()) counted += p.numel();
    const int64_t expected = layers * layer_params(16, 3 * 4, 16 * 4, true, 2) + /*final norm*/ 16;
    CHECK(counted == expected);
  }
}

TEST_CASE("building blocks reject bad shapes - naming the field", "[flops]") {
  CHECK_THROWS_WITH(layer_per_token({0, 8, 16, 5}), Catch::Contains("LayerShape.dim"));
  CHECK_THROWS_WITH(layer_per_token({4, 8, -1, 5}), Catch::Contains("LayerShape.ff_hidden"));
  CHECK_THROWS_WITH(layer_per_token({4, 8, 16, 0}), Catch::Contains("LayerShape.context"));
  CHECK_THROWS_AS(layer_params(4, 0, 16, true, 2), std::invalid_argument);
  CHECK_THROWS_AS(linear_per_token(-1, 2), std::invalid_argument);
}

TEST_CASE("paper-scale inputs do not overflow", "[flops]") {
  // 1M-byte context, dim 8192, inner 8192, ff 32768: every product is exact in double.
  const FlopBreakdown b = layer_per_token({8192, 8192, 32768, int64_t{1} << 20});
  CHECK(b.attention == 4.0 * 1048576.0 * 8192.0);
  CHECK(b.dense == 8.0 * 8192.0 * 8192.0 + 4.0 * 8192.0 * 32768.0);
  CHECK(b.attention > 0);
  // One such layer holds 4 x 8192^2 + 2 x 8192 x 32768 = 805,306,368 weights; 64 of them are
  // about 51.5e9, beyond int32 and exact in int64.
  CHECK(64 * layer_params(8192, 8192, 32768, false, 0) == int64_t{51539607552});

  PaperMegabyte big = megabyte_758m_262m();
  big.dim_global = 8192;
  big.layers_global = 64;
  big.context = int64_t{1} << 20;
  CHECK(paper_megabyte_global_params(big) == int64_t{64} * 12 * 8192 * 8192);
  const FlopBreakdown pb = paper_megabyte(big);
  CHECK(std::isfinite(pb.total()));
  CHECK(pb.attention > 0);
}

TEST_CASE("paper formula: MEGABYTE 758M+262M at T=8192 - P=8", "[flops]") {
  PaperMegabyte m = megabyte_758m_262m();
  m.params_global = 758e6;
  m.params_local = 262e6;
  const NamedTerms terms = paper_megabyte_terms(m);
  REQUIRE(terms.size() == 4);
  // paper_claims.json parts, in the formula's order: 2m_g/P, global attention, 2m_l, local
  // attention
  CHECK(terms[0].second == Approx(189.5e6).epsilon(kPaperRel));
  CHECK(terms[1].second == Approx(14.7e6).epsilon(kPaperRel));
  CHECK(terms[2].second == Approx(524e6).epsilon(kPaperRel));
  // 0.6e6 is given to one digit: 2 x 18 x 2 x 8 x 1024 = 589,824.
  CHECK(terms[3].second == Approx(0.6e6).epsilon(0.02));
  const FlopBreakdown b = paper_megabyte(m);
  CHECK(b.total() == Approx(729e6).epsilon(kPaperRel));
  CHECK(b.attention == Approx(terms[1].second + terms[3].second).epsilon(1e-12));
  CHECK(b.embed_logits == 2.0 * 1024 * 256);
  CHECK(
      b.total() ==
      Approx(terms[0].second + terms[1].second + terms[2].second + terms[3].second).epsilon(1e-12));
}

TEST_CASE("paper formula: Transformer 320M at T=1024", "[flops]") {
  PaperTransformer t = transformer_320m();
  t.params = 320e6;
  const NamedTerms terms = paper_transformer_terms(t);
  REQUIRE(terms.size() == 2);
  CHECK(terms[0].second == Approx(640e6).epsilon(kPaperRel));
  CHECK(terms[1].second == Approx(92.3e6).epsilon(kPaperRel));
  const FlopBreakdown b = paper_transformer(t);
  CHECK(b.total() == Approx(732e6).epsilon(kPaperRel));
  CHECK(b.attention == terms[1].second);
  CHECK(b.embed_logits == 2.0 * 1024 * 256);
}

TEST_CASE("paper formulas with parameters counted from the architecture terms", "[flops]") {
  const PaperMegabyte m = megabyte_758m_262m();  // params 0: counted
  CHECK(static_cast<double>(paper_megabyte_global_params(m)) == Approx(704.6e6).epsilon(kPaperRel));
  CHECK(static_cast<double>(paper_megabyte_local_params(m)) == Approx(227.0e6).epsilon(kPaperRel));
  CHECK(paper_megabyte(m).total() == Approx(645.5e6).epsilon(kPaperRel));

  const PaperTransformer t = transformer_320m();
  CHECK(static_cast<double>(paper_transformer_params(t)) == Approx(277.1e6).epsilon(kPaperRel));
  CHECK(paper_transformer(t).total() == Approx(646.4e6).epsilon(kPaperRel));
}

TEST_CASE("paper formulas reject bad configs - naming the field", "[flops]") {
  PaperMegabyte m = megabyte_758m_262m();
  m.patch = 0;
  CHECK_THROWS_WITH(paper_megabyte(m), Catch::Contains("PaperMegabyte.patch"));
  PaperTransformer t = transformer_320m();
  t.params = -1;
  CHECK_THROWS_WITH(paper_transformer(t), Catch::Contains("PaperTransformer.params"));
}

TEST_CASE("format_breakdown lists every part - the total and the training figure", "[flops]") {
  FlopBreakdown b;
  b.attention = 250e6;
  b.dense = 500e6;
  b.embed_logits = 250e6;
  const std::string s = format_breakdown(b, "MEGABYTE");
  CHECK(s.rfind("MEGABYTE\n", 0) == 0);
  CHECK_THAT(
      s, Catch::Contains("attention") && Catch::Contains("250.000 M") && Catch::Contains("25.0%"));
  CHECK_THAT(s,
             Catch::Contains("dense") && Catch::Contains("500.000 M") && Catch::Contains("50.0%"));
  CHECK_THAT(s,
             Catch::Contains("total") && Catch::Contains("1.000 G") && Catch::Contains("100.0%"));
  CHECK_THAT(s, Catch::Contains("train (3x)") && Catch::Contains("3.000 G"));
  CHECK(format_breakdown(b, "").rfind("  part", 0) == 0);
}
