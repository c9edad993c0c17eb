// MEGABYTE's ablation variants as options of the registered model (Yu et al. 2023, Table 10):
// "local": false (without the local model) and "global": false (without the global model).
#include <catch2/catch.hpp>

#include "harness/api/registry.h"
#include "harness/io/checkpoint.h"
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
  int64_t numel = 0;
  for (const auto& p : a->module().parameters()) numel += p.numel();
  CHECK(a->params().total == numel);
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
  int64_t numel = 0;
  for (const auto& p : model->module().parameters()) numel += p.numel();
  CHECK(model->params().total == numel);
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

  // Cached generation equals the full forward: each greedy byte is the argmax of the logits of
  // the sequence before it; uncached decoding gives the same bytes.
  megabench::SamplingOptions greedy;
  greedy.temperature = 0;
  auto prime = x.narrow(1, 0, 3);
  auto cached = model->generate(prime, 9, greedy);
  for (int64_t t = 3; t < 12; ++t) {
    auto row = model->logits(cached.narrow(1, 0, t)).select(1, t - 1);
    CHECK(row.argmax(-1).item<int64_t>() == cached[0][t].item<int64_t>());
  }
  greedy.use_cache = false;
  CHECK(torch::equal(model->generate(prime, 9, greedy), cached));

  // Checkpoint round trip (safetensors) into a model built from the same config.
  const auto path = fresh_dir("no_global") + "/model.safetensors";
  megabench::checkpoint::save(path, model->module(), {{"config", cfg.dump()}});
  torch::manual_seed(1);
  auto loaded = megabyte().build(*megabyte().parse(cfg));
  megabench::checkpoint::load_into(loaded->module(), megabench::safetensors::load(path));
  CHECK(torch::equal(loaded->byte_nll(x), nll));

  CHECK_THROWS_WITH(
      megabyte().resolve(
          tiny({{"global", false}, {"depth", {1, 1, 1}}, {"patch", {2, 2}}, {"dim", {32, 16, 8}}})),
      Catch::Contains("megabyte.global: false needs two stages"));
}
