// The byte Transformer baseline: same logits as a one-stage MEGABYTE with the same weights,
// cached decoding (full and sliding-window) against the full forward, and bad input.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "baselines/transformer.h"
#include "models/megabyte.h"
#include "tests/support.h"

using namespace megabench;

namespace {
double max_rel(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

ByteTransformer make(int64_t window, PositionKind pos, bool flash, int64_t max_len = 24) {
  torch::manual_seed(17);
  auto m = ByteTransformer(ByteTransformerOptions(32, 2, max_len)
                               .dim_head(8)
                               .heads(4)
                               .positions(pos)
                               .window(window)
                               .attention(flash ? AttentionPath::kSdpa : AttentionPath::kExplicit));
  m->to(torch::kFloat64);
  m->eval();
  return m;
}
}  // namespace

TEST_CASE("Transformer equals a one-stage MEGABYTE with the same weights", "[transformer]") {
  for (auto pos : {PositionKind::kRotary, PositionKind::kLearned}) {
    auto t = make(0, pos, false);
    auto mb = MEGABYTE(MEGABYTEOptions(256, {32}, {2}, /*seq_len=*/24, /*patch=*/{})
                           .dim_head(8)
                           .heads(4)
                           .rel_pos(pos == PositionKind::kRotary)
                           .pos_emb(pos == PositionKind::kLearned));
    mb->to(torch::kFloat64);
    mb->eval();
    {
      torch::NoGradGuard ng;
      auto mp = mb->named_parameters();
      mp["start_tokens.0"].copy_(t->start_token);
      mp["token_embs.0.weight"].copy_(t->token_emb->weight);
      if (pos == PositionKind::kLearned) mp["pos_embs.0.weight"].copy_(t->pos_emb->weight);
      mp["to_logits.weight"].copy_(t->to_logits->weight);
      mp["to_logits.bias"].copy_(t->to_logits->bias);
      for (const auto& p : t->transformer->named_parameters()) {
        mp["transformers.0." + p.key()].copy_(p.value());
      }
    }
    auto x = torch::randint(0, 256, {3, 19}, torch::kLong);
    CHECK(max_rel(t->forward(x), mb->forward(x)) < 1e-12);
    CHECK(max_rel(t->next_byte_logits(x), mb->next_byte_logits(x)) < 1e-12);
  }
}

TEST_CASE("Transformer cached decoding matches the full forward - with and without a window",
          "[transformer][generate]") {
  for (int64_t window : {0, 1, 5}) {
    for (bool flash : {false, true}) {
      INFO("window " << window << " flash " << flash);
      auto t = make(window, PositionKind::kRotary, flash);
      torch::NoGradGuard ng;
      auto seq = torch::randint(0, 256, {2, 24}, torch::kLong);
      auto st = t->begin(2);
      auto logits = st.empty_logits;
      for (int64_t i = 0; i < 24; ++i) {
        INFO("step " << i);
        auto full = t->next_byte_logits(seq.narrow(1, 0, i + 1)).select(1, i);
        CHECK(max_rel(logits, full) < 1e-10);
        if (window > 0) {
          for (const auto& lc : st.cache.layers) CHECK(lc.size() <= window);
        }
        logits = t->append(st, seq.select(1, i));
      }
      CHECK(!logits.defined());
    }
  }
}

TEST_CASE("Transformer window attention sees exactly the last W bytes", "[transformer]") {
  auto t = make(4, PositionKind::kRotary, false);
  torch::NoGradGuard ng;
  auto x = torch::randint(1, 255, {1, 20}, torch::kLong);
  auto base = t->next_byte_logits(x)[0];
  // With depth 2, the prediction of byte t can reach back 2 * (W - 1) positions plus token shift.
  auto x2 = x.clone();
  x2[0][0] = 0;
  auto out = t->next_byte_logits(x2)[0];
  auto changed = (out - base).abs().amax(-1) > 1e-12;  // (L)
  CHECK(changed[0].item<bool>() == false);
  CHECK(changed[1].item<bool>() == true);
  CHECK(changed.narrow(0, 12, 8).any().item<bool>() == false);
}

TEST_CASE("Transformer generation: cached and uncached agree - bad input is rejected",
          "[transformer][generate]") {
  auto t = make(6, PositionKind::kLearned, false, 16);
  auto prime = torch::randint(0, 256, {2, 4}, torch::kLong);
  torch::manual_seed(2);
  auto a = t->generate(prime, 9, 1.0, 0.8, true);
  torch::manual_seed(2);
  auto b = t->generate(prime, 9, 1.0, 0.8, false);
  CHECK(a.size(1) == 13);
  CHECK(torch::equal(a, b));
  using Catch::Contains;
  CHECK_THROWS_WITH(t->forward(torch::zeros({1, 17}, torch::kLong)), Contains("exceeds seq_len"));
  CHECK_THROWS_WITH(t->forward(torch::full({1, 3}, 300, torch::kLong)), Contains("[0, 256)"));
  CHECK_THROWS_WITH(t->forward(torch::zeros({3}, torch::kLong)), Contains("(batch, length)"));
  CHECK_THROWS_WITH(t->forward(torch::zeros({1, 0}, torch::kLong)), Contains("empty"));
  CHECK_THROWS_WITH(t->generate(prime, 13), Contains("exceeds"));
}
