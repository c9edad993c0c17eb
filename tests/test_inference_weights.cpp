// Inference with bf16 weights (generate.weights, megabench eval --weights): every model's logits
// stay within bf16 rounding of the fp32 ones, the stored bytes halve, rotary angles stay exact,
// and the generate metric records the bytes and hands the later metrics the fp32 model back.
#include <catch2/catch.hpp>
#include <sstream>

#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/config/run_settings.h"
#include "harness/measure/precision.h"
#include "harness/store/results.h"
#include "models/layers.h"
#include "tests/support.h"

using megabench::json;
using megabench::test::rel_err;

TEST_CASE("bf16 inference weights: every model within bf16 rounding, half the bytes",
          "[precision][all-models]") {
  for (const auto& name : megabench::Registry::instance().names()) {
    INFO("model " << name);
    const auto& spec = megabench::Registry::instance().get(name);
    torch::manual_seed(0);
    auto model = spec.build(*spec.parse(spec.resolve(spec.tiny_config)));
    if (model->learns_by_counting()) continue;  // no weights
    model->module().eval();
    torch::NoGradGuard no_grad;
    auto x = torch::randint(0, 256, {2, model->seq_len()}, torch::kLong);
    auto want = model->logits(x);
    const int64_t fp32_bytes = megabench::weight_bytes(model->module());
    megabench::cast_inference_weights(model->module(), "bfloat16");
    for (const auto& p : model->module().parameters()) CHECK(p.scalar_type() == torch::kBFloat16);
    CHECK(megabench::weight_bytes(model->module()) * 2 == fp32_bytes);
    auto got = model->logits(x);
    CHECK(got.scalar_type() == torch::kBFloat16);
    // bf16 keeps 8 significant bits: 2^-8 per rounding, a few roundings deep.
    CHECK(rel_err(got, want) < 5e-2);
    megabench::SamplingOptions greedy;
    greedy.temperature = 0;
    auto prime = x.narrow(0, 0, 1).narrow(1, 0, 4);
    auto out = model->generate(prime, 3, greedy);
    CHECK(out.size(1) == 7);
  }
  CHECK_THROWS_WITH(megabench::cast_inference_weights(*megabench::RMSNorm(4), "fp8"),
                    Catch::Contains("weights: expected"));
}

TEST_CASE("rotary angles stay float32-exact when the weights are bf16", "[precision][layers]") {
  megabench::RotaryEmbedding fp32(megabench::RotaryEmbeddingOptions(32));
  megabench::RotaryEmbedding bf16(megabench::RotaryEmbeddingOptions(32));
  bf16->to(torch::kBFloat16);
  CHECK(bf16->inv_freq.scalar_type() == torch::kBFloat16);
  // At position 8000 a bf16 frequency would be off by several radians.
  CHECK(torch::equal(bf16(4, 8000), fp32(4, 8000)));
}

TEST_CASE("generate.weights bfloat16: the metric records half the bytes, later metrics get fp32",
          "[precision][cli]") {
  auto run_with = [](const std::string& weights) {
    const auto dir = megabench::test::fresh_dir("gen_weights_" + weights);
    json doc = {{"name", "w"},
                {"models",
                 {{{"name", "megabyte"},
                   {"config",
                    {{"dim", {32, 16}},
                     {"depth", {1, 1}},
                     {"seq_len", 64},
                     {"patch", 4},
                     {"heads", 2},
                     {"dim_head", 8}}}}}},
                {"metrics", {"generate", "bpb"}},
                {"threads", 1},
                {"warmup", 0},
                {"repeat", 1},
                {"generate", {{"bytes", 8}, {"prime", 4}, {"weights", weights}, {"repeat", 1}}},
                {"train", {{"steps", 2}, {"batch", 1}, {"eval_bytes", 256}}}};
    const auto r = megabench::test::run_doc(doc, dir);
    INFO(r.log);
    REQUIRE(r.summary.ok == 1);
    return r.points.at(0);
  };
  const json f = run_with("float32"), b = run_with("bfloat16");
  CHECK(b["metrics"]["generate_weight_bytes"].get<int64_t>() * 2 ==
        f["metrics"]["generate_weight_bytes"].get<int64_t>());
  // bpb trains after generate: from the same fp32 weights either way.
  CHECK(b["metrics"]["bpb"] == f["metrics"]["bpb"]);
  CHECK_FALSE(f["config"]["run"]["generate"].contains("weights"));  // the default: not in the key
  CHECK(b["config"]["run"]["generate"]["weights"] == "bfloat16");
  CHECK_THROWS_WITH(
      megabench::resolve_run({{"generate", {{"weights", "int8"}}}, {"metrics", {"generate"}}}),
      Catch::Contains("generate.weights"));
}
