// upgrade_model_config: configs written before the option renames (the references' keyword names
// in checkpoint metadata, records of an older results schema) map to today's names, and resolve
// to the same models.
#include <catch2/catch.hpp>

#include "harness/api/registry.h"

using Catch::Contains;
using megabench::json;
using megabench::upgrade_model_config;

namespace {

json resolve(const std::string& model, const json& config) {
  return megabench::Registry::instance().get(model).resolve(config);
}

}  // namespace

TEST_CASE("upgrade_model_config maps the reference's MEGABYTE kwargs", "[registry][upgrade]") {
  // What tests/save_reference_checkpoint.py writes.
  const json old = json::parse(R"({"num_tokens": 256, "dim": [64, 32], "depth": [2, 2],
      "max_seq_len": [64, 4], "dim_head": 16, "heads": 4, "rel_pos": false, "pos_emb": false,
      "flash_attn": false, "context": "reference"})");
  const json now = upgrade_model_config("megabyte", old);
  CHECK(now == json::parse(R"({"num_tokens": 256, "dim": [64, 32], "depth": [2, 2],
      "seq_len": 256, "patch": [4], "dim_head": 16, "heads": 4, "rel_pos": false,
      "pos_emb": false, "attention": "explicit", "context": "reference"})"));
  const json r = resolve("megabyte", now);
  CHECK(r["seq_len"] == 256);
  CHECK(r["patch"] == json::array({4}));

  // Three stages with SDPA; one stage (an empty patch list).
  const json three = upgrade_model_config(
      "megabyte", {{"depth", {1, 1, 1}}, {"max_seq_len", {8, 4, 2}}, {"flash_attn", true}});
  CHECK(three ==
        json{{"depth", {1, 1, 1}}, {"seq_len", 64}, {"patch", {4, 2}}, {"attention", "sdpa"}});
  const json one =
      upgrade_model_config("megabyte", {{"dim", 32}, {"depth", {2}}, {"max_seq_len", {12}}});
  CHECK(one == json{{"dim", 32}, {"depth", {2}}, {"seq_len", 12}, {"patch", json::array()}});
  CHECK(resolve("megabyte", one)["patch"] == json::array());
  const auto& mb = megabench::Registry::instance().get("megabyte");
  CHECK(mb.build(*mb.parse(resolve("megabyte", one)))->seq_len() == 12);
}

TEST_CASE("upgrade_model_config maps records of the old resolved schema", "[registry][upgrade]") {
  // The old resolve wrote max_seq_len beside the seq_len and patch it derived.
  const json megabyte = json::parse(R"({"dim": [64, 32], "depth": [2, 1], "max_seq_len": [32, 8],
      "seq_len": 256, "patch": [8], "flash_attn": false})");
  CHECK(upgrade_model_config("megabyte", megabyte) ==
        json::parse(R"({"dim": [64, 32], "depth": [2, 1], "seq_len": 256, "patch": [8],
            "attention": "explicit"})"));
  const json perceiver = json::parse(R"({"dim": 64, "depth": 2, "max_seq_len": 256, "seq_len": 256,
      "cross_attn_seq_len": 192, "num_latents": 64, "flash_attn": true})");
  const json p = upgrade_model_config("perceiver_ar", perceiver);
  CHECK(p == json::parse(R"({"dim": 64, "depth": 2, "seq_len": 256, "prefix_len": 192,
      "num_latents": 64, "attention": "sdpa"})"));
  CHECK(resolve("perceiver_ar", p)["prefix_len"] == 192);
  const json t =
      upgrade_model_config("transformer", {{"layers", 3}, {"flash_attn", true}, {"seq_len", 64}});
  CHECK(t == json{{"depth", 3}, {"attention", "sdpa"}, {"seq_len", 64}});
}

TEST_CASE("upgrade_model_config is the identity on current configs", "[registry][upgrade]") {
  for (const auto& name : megabench::Registry::instance().names()) {
    INFO(name);
    const auto& spec = megabench::Registry::instance().get(name);
    CHECK(upgrade_model_config(name, spec.tiny_config) == spec.tiny_config);
    const json resolved = spec.resolve(spec.tiny_config);
    CHECK(upgrade_model_config(name, resolved) == resolved);
    CHECK(spec.resolve(resolved) == resolved);  // a resolved config resolves to itself
  }
}

TEST_CASE("upgrade_model_config rejects disagreeing and mistyped old keys", "[registry][upgrade]") {
  CHECK_THROWS_WITH(upgrade_model_config("perceiver_ar", {{"max_seq_len", 32}, {"seq_len", 64}}),
                    Contains("perceiver_ar.max_seq_len"));
  CHECK_THROWS_WITH(
      upgrade_model_config("transformer", {{"flash_attn", true}, {"attention", "explicit"}}),
      Contains("disagrees"));
  CHECK_THROWS_WITH(upgrade_model_config("megabyte", {{"flash_attn", "yes"}}),
                    Contains("expected bool"));
  CHECK_THROWS_WITH(upgrade_model_config("megabyte", {{"max_seq_len", "long"}}), Contains("int[]"));
  // Only the checkpoint path upgrades: an experiment file with an old name is an error.
  CHECK_THROWS_WITH(resolve("transformer", {{"flash_attn", true}}), Contains("unknown option"));
}
