// MEGABYTE's ablation variants as options of the registered model (Yu et al. 2023, Table 10):
// "local": false (without the local model), "global": false (without the global model),
// "cross_patch_attention": r and "patch_encoder": "conv".
#include <catch2/catch.hpp>

#include "harness/api/registry.h"
#include "harness/io/checkpoint.h"
#include "harness/measure/profiler.h"
#include "models/layers.h"
#include "tests/support.h"

using megabench::json;
using megabench::test::fresh_dir;
using megabench::test::rel_err;

namespace {

const megabench::ModelSpec& megabyte() {
  return megabench::Registry::instance().get("megabyte");
}

json tiny(json extra) {
  json c = megabyte().tiny_config;
  for (auto& [k, v] : extra.items()) c[k] = v;
  return c;
}

int64_t numel(megabench::ByteModel& model) {
  int64_t n = 0;
  for (const auto& p : model.module().parameters()) n += p.numel();
  return n;
}

// Cached generation equals the full forward: each greedy byte is the argmax of the logits of the
// sequence before it; uncached decoding gives the same bytes.
void check_cached_equals_full(megabench::ByteModel& model, const torch::Tensor& x) {
  megabench::SamplingOptions greedy;
  greedy.temperature = 0;
  auto prime = x.narrow(1, 0, 3);
  auto cached = model.generate(prime, 14, greedy);
  for (int64_t t = 3; t < 17; ++t) {
    auto row = model.logits(cached.narrow(1, 0, t)).select(1, t - 1);
    CHECK(row.argmax(-1).item<int64_t>() == cached[0][t].item<int64_t>());
  }
  greedy.use_cache = false;
  CHECK(torch::equal(model.generate(prime, 14, greedy), cached));
}

// Checkpoint round trip (safetensors) into a model built from the same config at another seed.
void check_round_trip(megabench::ByteModel& model, const json& cfg, const torch::Tensor& x,
                      const std::string& name) {
  const auto path = fresh_dir(name) + "/model.safetensors";
  megabench::checkpoint::save(path, model.module(), {{"config", cfg.dump()}});
  torch::manual_seed(1);
  auto loaded = megabyte().build(*megabyte().parse(cfg));
  megabench::checkpoint::load_into(loaded->module(), megabench::safetensors::load(path));
  loaded->module().eval();
  CHECK(torch::equal(loaded->byte_nll(x), model.byte_nll(x)));
}

// The analytical FLOPs per byte against the profiler's count of the matrix products of one
// forward pass over the whole context.
void check_flops_measured(megabench::ByteModel& model, const megabench::ModelOptions& o) {
  auto x = torch::randint(0, 256, {2, model.seq_len()}, torch::kLong);
  megabench::Profiler prof(torch::kCPU);
  prof.start();
  model.byte_nll(x);
  auto r = prof.stop();
  const double per_byte = r.measured_matmul_flops / (2.0 * static_cast<double>(model.seq_len()));
  CHECK(per_byte == Approx(megabyte().flops(o).total()).epsilon(1e-9));
}

// No byte sees a later byte, in float64: changing byte t leaves rows < t of the logits (row i
// predicts byte i + 1) exactly as they were, and changes some later row.
void check_causal(megabench::ByteModel& model) {
  model.module().to(torch::kFloat64);
  const int64_t L = model.seq_len();
  auto x = torch::randint(0, 256, {2, L}, torch::kLong);
  auto lx = model.logits(x);  // (B, L, V)
  for (int64_t t : {int64_t{1}, int64_t{4}, int64_t{7}, L / 2 + 1, L - 2}) {
    INFO("byte " << t);
    auto y = x.clone();
    y[0][t] = (x[0][t].item<int64_t>() + 1) % 256;
    auto diff = (model.logits(y) - lx).abs().amax(-1)[0];  // (L)
    CHECK(diff.narrow(0, 0, t).max().item<double>() == 0);
    CHECK(diff.narrow(0, t, L - t).max().item<double>() > 0);
  }
  model.module().to(torch::kFloat32);
}

// Every check that a variant gets: params (counted = allocated), FLOPs (analytical = measured),
// causality, cached generation = full forward, and a checkpoint round trip.
void check_variant(const json& extra, const std::string& name) {
  INFO(extra.dump());
  const json cfg = megabyte().resolve(tiny(extra));
  const auto options = megabyte().parse(cfg);
  torch::manual_seed(0);
  auto model = megabyte().build(*options);
  CHECK(model->params().total == numel(*model));
  CHECK(megabyte().params(*options).total == numel(*model));
  model->module().eval();
  torch::NoGradGuard no_grad;
  check_flops_measured(*model, *options);
  check_causal(*model);
  auto x = torch::randint(0, 256, {1, 32}, torch::kLong);
  check_cached_equals_full(*model, x);
  check_round_trip(*model, cfg, x, name);
}

}  // namespace

TEST_CASE("megabyte local=false is the model without local layers", "[megabyte][variants]") {
  const auto* opt = megabench::find_option(megabyte(), "local");
  REQUIRE(opt);
  CHECK(opt->help.find("Table 10") != std::string::npos);
  CHECK(opt->default_value.is_null());  // unset: the keys of existing points do not change
  CHECK_FALSE(megabyte().resolve(megabyte().tiny_config).contains("local"));

  auto no_local = megabyte().resolve(tiny({{"local", false}, {"depth", {1, 0}}}));
  CHECK(no_local["depth"] == json({1, 0}));
  // Left out, the finest depth is set to 0; the model then equals the depth-0 model.
  json c = tiny({{"local", false}});
  c.erase("depth");
  CHECK(megabyte().resolve(c)["depth"].back() == 0);
  auto depth0 = megabyte().resolve(tiny({{"depth", {1, 0}}}));
  torch::manual_seed(0);
  auto a = megabyte().build(*megabyte().parse(no_local));
  torch::manual_seed(0);
  auto b = megabyte().build(*megabyte().parse(depth0));
  CHECK(a->params().total == b->params().total);
  CHECK(a->params().total == numel(*a));
  auto x = torch::randint(0, 256, {2, 32}, torch::kLong);
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(a->byte_nll(x), b->byte_nll(x)));

  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"local", false}, {"depth", {1, 1}}})),
                    Catch::Contains("megabyte.local: false means no local layers"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"local", true}, {"depth", {1, 0}}})),
                    Catch::Contains("megabyte.local: true"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"local", 0}})), Catch::Contains("megabyte.local"));
}

TEST_CASE("megabyte global=false models each patch with the local model alone",
          "[megabyte][variants]") {
  const auto* opt = megabench::find_option(megabyte(), "global");
  REQUIRE(opt);
  CHECK(opt->help.find("Table 10") != std::string::npos);
  CHECK(opt->default_value.is_null());
  const json cfg = megabyte().resolve(tiny({{"global", false}}));  // dim [32, 16], seq_len 32, P 4
  const auto options = megabyte().parse(cfg);
  torch::manual_seed(0);
  auto model = megabyte().build(*options);
  CHECK(model->seq_len() == 32);
  CHECK(model->patch_size() == 4);

  // Parameters and FLOPs: those of the one-stage local model over one patch (width 16, depth 1).
  const json one = megabyte().resolve(
      tiny({{"dim", {16}}, {"depth", {1}}, {"seq_len", 4}, {"patch", json::array()}}));
  const auto one_options = megabyte().parse(one);
  CHECK(model->params().total == numel(*model));
  CHECK(megabyte().params(*options).total == megabyte().params(*one_options).total);
  CHECK(megabyte().flops(*options).total() == megabyte().flops(*one_options).total());

  // No byte sees another patch: changing byte 5 changes only the logits of rows 5 and 6 (the
  // predictions of bytes 6 and 7, inside its patch); row 7 predicts byte 8 from the start token.
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {1, 32}, torch::kLong);
  auto y = x.clone();
  y[0][5] = (x[0][5].item<int64_t>() + 1) % 256;
  auto lx = model->logits(x), ly = model->logits(y);
  for (int64_t t = 0; t < 32; ++t) {
    INFO("row " << t);
    CHECK(torch::equal(lx[0][t], ly[0][t]) == (t != 5 && t != 6));
  }
  // byte_nll agrees with the logits: row t of logits scores byte t + 1.
  auto nll = model->byte_nll(x);
  auto want = megabench::nll_from_logits(lx.narrow(1, 0, 31), x.narrow(1, 1, 31));
  CHECK(rel_err(nll.narrow(1, 1, 31), want) < 1e-6);

  check_cached_equals_full(*model, x);
  check_round_trip(*model, cfg, x, "no_global");
  check_flops_measured(*model, *options);

  CHECK_THROWS_WITH(
      megabyte().resolve(
          tiny({{"global", false}, {"depth", {1, 1, 1}}, {"patch", {2, 2}}, {"dim", {32, 16, 8}}})),
      Catch::Contains("megabyte.global: false needs two stages"));
}

TEST_CASE("megabyte variants: params, measured FLOPs, causality, cached decoding, checkpoints",
          "[megabyte][variants]") {
  check_variant(json::object(), "variant_reference");
  check_variant({{"local", false}, {"depth", {1, 0}}}, "variant_no_local");
  check_variant({{"cross_patch_attention", 2}}, "variant_cross2");
  check_variant({{"cross_patch_attention", 4}, {"rel_pos", true}}, "variant_cross4_rotary");
  check_variant({{"patch_encoder", "conv"}}, "variant_conv");
  check_variant({{"patch_encoder", "conv"}, {"cross_patch_attention", 1}, {"rel_pos", true}},
                "variant_conv_cross");
  // Three stages: the conv encoders of both coarser stages, cross-patch attention at the finest.
  check_variant({{"dim", {32, 16, 8}},
                 {"depth", {1, 1, 1}},
                 {"patch", {2, 2}},
                 {"patch_encoder", "conv"},
                 {"cross_patch_attention", 2}},
                "variant_three_stages");
}

TEST_CASE("megabyte cross_patch_attention: the local model also sees the previous patch's end",
          "[megabyte][variants]") {
  const auto* opt = megabench::find_option(megabyte(), "cross_patch_attention");
  REQUIRE(opt);
  CHECK(opt->help.find("Table 10") != std::string::npos);
  CHECK(opt->default_value.is_null());
  // Same weights with and without: bytes 0..4 are predicted by patch 0's local sequence, which
  // has no patch before it (its kept keys are masked: equal up to rounding); later bytes differ.
  const json with = megabyte().resolve(tiny({{"cross_patch_attention", 2}, {"rel_pos", true}}));
  const json without = megabyte().resolve(tiny({{"rel_pos", true}}));
  torch::manual_seed(0);
  auto a = megabyte().build(*megabyte().parse(with));
  torch::manual_seed(0);
  auto b = megabyte().build(*megabyte().parse(without));
  CHECK(numel(*a) == numel(*b));
  CHECK(megabyte().flops(*megabyte().parse(with)).attention >
        megabyte().flops(*megabyte().parse(without)).attention);
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {2, 32}, torch::kLong);
  auto nll_a = a->byte_nll(x), nll_b = b->byte_nll(x);                  // (B, L): byte t's loss
  CHECK(rel_err(nll_a.narrow(1, 0, 5), nll_b.narrow(1, 0, 5)) < 1e-6);  // masked keys: rounding
  CHECK(rel_err(nll_a.narrow(1, 5, 27), nll_b.narrow(1, 5, 27)) > 1e-4);
  // 0 is the reference, bit for bit.
  torch::manual_seed(0);
  auto c = megabyte().build(*megabyte().parse(
      megabyte().resolve(tiny({{"cross_patch_attention", 0}, {"rel_pos", true}}))));
  CHECK(torch::equal(c->byte_nll(x), nll_b));

  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"cross_patch_attention", 5}})),
                    Catch::Contains("cross_patch_attention must lie in [0, patch.back() = 4]"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"cross_patch_attention", 1}, {"global", false}})),
                    Catch::Contains("megabyte.cross_patch_attention: needs the global model"));
}

TEST_CASE("causal convolutions equal a left-padded conv1d with the same filters",
          "[megabyte][variants]") {
  torch::manual_seed(0);
  megabench::CausalConvStack convs(megabench::CausalConvStackOptions(4));
  CHECK(convs->reach() == 2 + 4 + 6);
  auto x = torch::randn({2, 9, 4}, torch::kFloat64);
  convs->to(torch::kFloat64);
  auto want = x;  // (B, L, D)
  for (int64_t i = 0; i < 3; ++i) {
    const int64_t k = convs->options.kernels()[i];
    auto lin = convs->convs[i]->as<torch::nn::Linear>();
    auto w = lin->weight.view({4, k, 4}).permute({0, 2, 1});  // (D_out, D_in, k), oldest first
    auto in = torch::constant_pad_nd(want.transpose(1, 2), {k - 1, 0}, 0);  // (B, D, k - 1 + L)
    auto conv = torch::conv1d(in, w, lin->bias).transpose(1, 2);            // (B, L, D)
    want = want + torch::gelu(conv);
  }
  CHECK(rel_err(convs(x), want) < 1e-12);

  const auto* opt = megabench::find_option(megabyte(), "patch_encoder");
  REQUIRE(opt);
  CHECK(opt->help.find("Table 10") != std::string::npos);
  CHECK(opt->default_value.is_null());
  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"patch_encoder", "cnn"}})),
                    Catch::Contains("megabyte.patch_encoder: expected"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny({{"patch_encoder", "conv"}, {"global", false}})),
                    Catch::Contains("megabyte.patch_encoder: \"conv\" needs the global model"));
}
