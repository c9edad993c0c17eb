// The one record type and the one reader: PointRecord to_json/from_json, the upgrade of
// version-1 records (before the option renames), field errors, load_result_set and completed_keys,
// and the FLOP metric names.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "harness/api/flops.h"
#include "harness/api/record.h"
#include "harness/report/report.h"
#include "harness/store/result_set.h"
#include "harness/store/results.h"
#include "tests/support.h"

using megabench::PointRecord;
using ojson = nlohmann::ordered_json;
using Catch::Contains;

namespace {

// A record as `megabench run` wrote it before the option renames: no schema_version, no label,
// flash_attn / max_seq_len in config and axes.
ojson v1_megabyte() {
  return ojson::parse(R"({
    "type": "point", "key": "6bed2907e768e1ff",
    "name": "megabyte/max_seq_len=[32,8]/megabyte.flash_attn=false",
    "model": "megabyte",
    "axes": {"max_seq_len": [32, 8], "megabyte.flash_attn": false},
    "config": {"dim": [64, 32], "depth": [2, 2], "max_seq_len": [32, 8], "seq_len": 256,
               "patch": [8], "flash_attn": false, "run": {"batch": 1, "device": "cpu"}},
    "metrics": {"forward_ms": 1.5, "params_total": 174400},
    "status": "ok", "error": null, "elapsed_s": 2.5,
    "harness_overhead": {"timed_ms": 7.5, "between_repeats_ms": 0.1}})");
}

ojson v1_baseline(const std::string& model, ojson axes, ojson config, const std::string& name) {
  return {{"type", "point"},
          {"key", "k_" + model},
          {"name", name},
          {"model", model},
          {"axes", axes},
          {"config", config},
          {"metrics", {{"forward_ms", 1.0}}},
          {"status", "ok"},
          {"error", nullptr}};
}

// A record of today's schema with every optional field set.
PointRecord full_record() {
  PointRecord r;
  r.key = "0123456789abcdef";
  r.name = "small/seq_len=1024/attention=sdpa";
  r.model = "transformer";
  r.label = "small";
  r.status = "failed";
  r.error = "out of memory";
  r.axes = {{"seq_len", 1024}, {"attention", "sdpa"}};
  r.config = {{"depth", 2}, {"seq_len", 1024}, {"attention", "sdpa"}, {"run", {{"batch", 2}}}};
  r.metrics = {{"params_total", 12345}, {"forward_ms", 0.25}};
  r.extra = {{"data", {{"source", "random"}}},
             {"harness_overhead", {{"timed_ms", 1.0}, {"between_repeats_ms", 0.01}}},
             {"profile_files", {"profiles/a.md", "profiles/a.json"}},
             {"profile_error", "no CUPTI"}};
  r.warnings = {"profile: no CUPTI"};
  r.elapsed_s = 3.25;
  return r;
}

std::vector<std::string> keys_of(const ojson& j) {
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  return keys;
}

}  // namespace

TEST_CASE("a version-1 MEGABYTE record reads back under today's names", "[store]") {
  const PointRecord r = PointRecord::from_json(v1_megabyte());
  CHECK(r.schema_version == megabench::kSchemaVersion);
  CHECK(r.label == "megabyte");  // absent: the name up to its first '/'
  CHECK(keys_of(r.axes) ==
        std::vector<std::string>{"seq_len", "megabyte.attention"});  // order kept
  CHECK(r.axes["seq_len"] == 32 * 8);  // [G, P] -> the context in bytes
  CHECK(r.axes["megabyte.attention"] == "explicit");
  CHECK(r.name == "megabyte/seq_len=256/megabyte.attention=explicit");
  CHECK_FALSE(r.config.contains("max_seq_len"));
  CHECK_FALSE(r.config.contains("flash_attn"));
  CHECK(r.config["attention"] == "explicit");
  CHECK(r.config["seq_len"] == 256);
  CHECK(r.config["patch"] == ojson::array({8}));
  CHECK(r.config["run"]["batch"] == 1);
  CHECK(r.key == "6bed2907e768e1ff");  // kept as recorded
  CHECK(r.elapsed_s == 2.5);
  CHECK(r.extra["harness_overhead"]["timed_ms"] == 7.5);
  const ojson j = r.to_json();
  CHECK(j["schema_version"] == 2);
  CHECK(j["label"] == "megabyte");
}

TEST_CASE("version-1 baselines: layers - max_seq_len - cross_attn_seq_len - flash_attn",
          "[store]") {
  const PointRecord t =
      PointRecord::from_json(v1_baseline("transformer", {{"layers", 3}, {"flash_attn", true}},
                                         {{"layers", 3}, {"flash_attn", true}, {"seq_len", 64}},
                                         "transformer/layers=3/flash_attn=true"));
  CHECK(t.axes == ojson({{"depth", 3}, {"attention", "sdpa"}}));
  CHECK(t.name == "transformer/depth=3/attention=sdpa");
  CHECK(t.config == ojson::parse(R"({"attention": "sdpa", "depth": 3, "seq_len": 64})"));

  const PointRecord p = PointRecord::from_json(
      v1_baseline("perceiver_ar", {{"cross_attn_seq_len", 192}, {"max_seq_len", 256}},
                  {{"max_seq_len", 256}, {"cross_attn_seq_len", 192}, {"num_latents", 64}},
                  "pa/cross_attn_seq_len=192/max_seq_len=256"));
  CHECK(p.axes == ojson({{"prefix_len", 192}, {"seq_len", 256}}));
  CHECK(p.name == "pa/prefix_len=192/seq_len=256");
  CHECK(p.label == "pa");
  CHECK(p.config["prefix_len"] == 192);
  CHECK(p.config["seq_len"] == 256);

  // Old keys that disagree with their new names name the field.
  CHECK_THROWS_WITH(
      PointRecord::from_json(
          v1_baseline("transformer", ojson::object(), {{"max_seq_len", 32}, {"seq_len", 64}}, "t")),
      Contains("\"config\"") && Contains("transformer.max_seq_len"));
  CHECK_THROWS_WITH(PointRecord::from_json(v1_baseline("transformer", {{"flash_attn", "yes"}},
                                                       ojson::object(), "t/flash_attn=yes")),
                    Contains("axes.flash_attn"));
}

TEST_CASE("PointRecord round trip: to_json - from_json", "[store]") {
  const PointRecord r = full_record();
  const ojson j = r.to_json();
  CHECK(keys_of(j) == std::vector<std::string>{"type", "schema_version", "key", "name", "model",
                                               "label", "axes", "config", "metrics", "status",
                                               "error", "harness_overhead", "elapsed_s", "data",
                                               "profile_files", "profile_error", "warnings"});
  CHECK(j["type"] == "point");
  CHECK(j["error"] == "out of memory");
  const PointRecord back = PointRecord::from_json(j);
  CHECK(back.to_json() == j);
  CHECK(back.key == r.key);
  CHECK(back.axes == r.axes);
  CHECK(back.metrics == r.metrics);
  CHECK(back.warnings == r.warnings);
  CHECK(back.elapsed_s == r.elapsed_s);
  CHECK(back.extra.size() == 4);

  // An ok record: error null, no elapsed_s or warnings when unset.
  PointRecord ok;
  ok.key = "k";
  ok.name = "m";
  ok.model = "transformer";
  ok.label = "m";
  const ojson jo = ok.to_json();
  CHECK(jo["error"].is_null());
  CHECK_FALSE(jo.contains("elapsed_s"));
  CHECK_FALSE(jo.contains("warnings"));
  CHECK(PointRecord::from_json(jo).to_json() == jo);

  // Through the file: ResultsFile writes it (keys sorted), load_result_set reads it back.
  const std::string dir = megabench::test::fresh_dir("store_roundtrip");
  megabench::ResultsFile(megabench::results_path(dir, {})).append(j);
  const auto set = megabench::load_result_set({dir});
  REQUIRE(set.points.size() == 1);
  CHECK(nlohmann::json(set.points[0].to_json()) == nlohmann::json(j));  // equal up to key order
}

TEST_CASE("a missing or mistyped field is an error naming the field", "[store]") {
  const ojson good = full_record().to_json();
  for (const char* field :
       {"type", "key", "name", "model", "status", "axes", "config", "metrics"}) {
    INFO(field);
    ojson j = good;
    j.erase(field);
    CHECK_THROWS_WITH(PointRecord::from_json(j),
                      Contains(std::string("\"") + field + "\"") && Contains("missing"));
  }
  auto with = [&](const char* field, ojson value) {
    ojson j = good;
    j[field] = value;
    return j;
  };
  CHECK_THROWS_WITH(PointRecord::from_json(with("key", 5)),
                    Contains("\"key\": expected a non-empty string, got 5"));
  CHECK_THROWS_WITH(PointRecord::from_json(with("type", "context")), Contains("\"type\""));
  CHECK_THROWS_WITH(PointRecord::from_json(with("status", "maybe")), Contains("\"status\""));
  CHECK_THROWS_WITH(PointRecord::from_json(with("metrics", ojson::array())),
                    Contains("\"metrics\""));
  CHECK_THROWS_WITH(PointRecord::from_json(with("label", 7)), Contains("\"label\""));
  CHECK_THROWS_WITH(PointRecord::from_json(with("elapsed_s", "long")), Contains("\"elapsed_s\""));
  CHECK_THROWS_WITH(PointRecord::from_json(with("warnings", ojson::array({1}))),
                    Contains("\"warnings\""));
  CHECK_THROWS_WITH(PointRecord::from_json(with("schema_version", 3)),
                    Contains("\"schema_version\""));
  CHECK_THROWS_WITH(PointRecord::from_json(ojson::array()), Contains("expected a JSON object"));
  CHECK_THROWS_AS(PointRecord::from_json(with("key", "")), std::invalid_argument);
}

TEST_CASE("load_result_set: version-1 folders report under new names - bad records warned",
          "[store]") {
  const std::string dir = megabench::test::fresh_dir("store_v1");
  ojson bad = full_record().to_json();
  bad.erase("model");
  ojson ctx = {{"type", "context"},
               {"date", "2024-01-01T00:00:00Z"},
               {"experiment", {{"name", "old"}, {"report", {{"columns", {"forward_ms"}}}}}}};
  megabench::test::write_file(dir + "/results.jsonl",
                              ctx.dump() + "\n" + v1_megabyte().dump() + "\n" + bad.dump() + "\n");
  const auto set = megabench::load_result_set({dir});
  REQUIRE(set.points.size() == 1);
  REQUIRE(set.warnings.size() == 1);
  CHECK_THAT(set.warnings[0], Contains("results.jsonl:3") && Contains("\"model\""));
  CHECK(megabench::lookup(set.points[0], "megabyte.attention") == "explicit");
  CHECK(megabench::lookup(set.points[0], "attention") == "explicit");  // config key
  CHECK(megabench::lookup(set.points[0], "run.batch") == 1);           // config path
  const std::string md = megabench::report::markdown_table({dir});
  CHECK_THAT(md, Contains("| name | model | seq_len | megabyte.attention | forward_ms | status |"));
  CHECK_THAT(md, Contains("| megabyte/seq_len=256/megabyte.attention=explicit | megabyte | 256 | "
                          "explicit | 1.50 | ok |"));
}

TEST_CASE("completed_keys: the latest record of each key - ok only", "[store]") {
  const std::string dir = megabench::test::fresh_dir("store_keys");
  CHECK(megabench::completed_keys(dir).empty());  // no results file yet
  CHECK(megabench::completed_keys(dir + "/missing").empty());
  auto rec = [](const std::string& key, const std::string& status) {
    PointRecord r = full_record();
    r.key = key;
    r.status = status;
    return r.to_json().dump() + "\n";
  };
  megabench::test::write_file(dir + "/results.jsonl",
                              rec("a", "ok") + rec("b", "failed") + rec("c", "ok") +
                                  "{\"type\":\"point\",\"key\":\"d\",\"sta");  // cut off
  megabench::test::write_file(dir + "/results.shard-0-of-2.jsonl",
                              rec("b", "ok") + rec("c", "failed"));
  CHECK(megabench::completed_keys(dir) == std::set<std::string>{"a", "b"});
  CHECK(megabench::results_files(dir) ==
        std::vector<std::string>{dir + "/results.jsonl", dir + "/results.shard-0-of-2.jsonl"});
}

TEST_CASE("flop_metrics and flop_breakdown are inverses - names in record order",
          "[store][flops]") {
  megabench::FlopBreakdown b;
  b.attention = 1.5e6;
  b.dense = 4e6;
  b.embed_logits = 0.5e6;
  const ojson m = megabench::flops::flop_metrics(b);
  CHECK(keys_of(m) ==
        std::vector<std::string>{"flops_forward_per_byte", "flops_attention_forward_per_byte",
                                 "flops_dense_forward_per_byte",
                                 "flops_embed_logits_forward_per_byte", "flops_train_per_byte"});
  CHECK(m["flops_forward_per_byte"] == 6e6);
  CHECK(m["flops_train_per_byte"] == 18e6);
  const auto back = megabench::flops::flop_breakdown(m);
  CHECK(back.attention == b.attention);
  CHECK(back.dense == b.dense);
  CHECK(back.embed_logits == b.embed_logits);
  ojson partial = m;
  partial.erase("flops_dense_forward_per_byte");
  CHECK_THROWS_WITH(megabench::flops::flop_breakdown(partial),
                    Contains("flops_dense_forward_per_byte"));
}
