// `megabench run` with "profile": true: one profiled forward pass (and training step) per point
// after the timed metrics, a kernel table per point under OUTDIR/profiles, the profile_* and
// attention_forward_* metrics in the record, and a profiler failure that leaves the point ok.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness/cli/run.h"
#include "harness/config/expand.h"
#include "harness/measure/profiler.h"
#include "harness/measure/timing.h"
#include "harness/store/results.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using namespace megabench::test;
using megabench::json;

namespace {

megabench::RunSummary run_quiet(const std::string& exp_path, const std::string& out,
                                std::vector<std::string> sets = {}) {
  megabench::RunOptions o;
  o.experiment_path = exp_path;
  o.outdir = out;
  o.sets = std::move(sets);
  o.progress = 0;
  std::ostringstream log;
  auto s = megabench::run_experiment(o, log);
  INFO(log.str());
  return s;
}

// Tiny configs of the three registered models; each pushes its component ranges.
const char* kThreeModels = R"({
    "name": "profile_test",
    "models": [
      {"name": "megabyte", "config": {"dim": [32, 16], "depth": [1, 1], "seq_len": 64, "patch": 8,
                                     "dim_head": 16, "heads": 2}},
      {"name": "transformer", "config": {"dim": 32, "depth": 1, "seq_len": 64, "dim_head": 16, "heads": 2}},
      {"name": "perceiver_ar", "config": {"dim": 32, "depth": 1, "seq_len": 64, "num_latents": 16,
                                         "dim_head": 32, "heads": 2}}
    ],
    "metrics": ["flops", "forward", "train_step"],
    "warmup": 0, "repeat": 1, "batch": 2, "threads": 1
  })";

}  // namespace

TEST_CASE("run with profile writes a kernel table per point and the profile metrics", "[profile]") {
  auto dir = fresh_dir("run");
  auto exp = write_file(dir + "/exp.json", kThreeModels);
  auto out = dir + "/out";
  auto s = run_quiet(exp, out, {"profile=true"});
  CHECK(s.ok == 3);
  CHECK(s.failed == 0);
  auto pts = points_of(out + "/results.jsonl");
  REQUIRE(pts.size() == 3);
  for (const auto& p : pts) {
    INFO(p.dump(1));
    CHECK(p["status"] == "ok");
    CHECK_FALSE(p.contains("profile_error"));
    CHECK(p["config"]["run"]["profile"] == true);
    const auto& m = p["metrics"];
    // The timed metrics are still there.
    CHECK(m["forward_ms"].get<double>() > 0);
    CHECK(m["train_step_ms"].get<double>() > 0);

    const double total = m.at("profile_forward_total_ms").get<double>();
    // attention_forward_ms is the median over the profiled calls (at least `repeat`); the
    // components (and the share) are those of the first call, whose attention is the first sample.
    REQUIRE(p["samples"]["attention_forward_ms"].size() >=
            p["config"]["run"]["repeat"].get<size_t>());
    CHECK(m.at("attention_forward_ms").get<double>() > 0);
    CHECK(p["timing"]["attention_forward_ms"]["n"] == p["samples"]["attention_forward_ms"].size());
    const double attention = p["samples"]["attention_forward_ms"][0].get<double>();
    CHECK(total > 0);
    CHECK(attention > 0);
    CHECK(attention <= total);
    CHECK(m.at("attention_forward_share").get<double>() == Approx(attention / total));
    CHECK(m.at("profile_forward_global_attention_ms").get<double>() > 0);
    CHECK(m.at("profile_forward_feedforward_ms").get<double>() > 0);
    CHECK(m.at("profile_forward_embedding_ms").get<double>() > 0);
    CHECK(m.at("profile_forward_logits_ms").get<double>() > 0);
    CHECK(m.contains("profile_forward_other_ms"));
    // The attention sublayers: the stages' ranges (projections, norms) plus the attention core
    // nested in them (scores, softmax, weighted sum), each exclusive.
    const double local = m.value("profile_forward_local_attention_ms", 0.0);
    const double core = m.at("profile_forward_attention_core_ms").get<double>();
    CHECK(core > 0);
    CHECK(attention ==
          Approx(m["profile_forward_global_attention_ms"].get<double>() + local + core));
    REQUIRE(p["samples"]["attention_core_forward_ms"].size() ==
            p["samples"]["attention_forward_ms"].size());
    CHECK(p["samples"]["attention_core_forward_ms"][0].get<double>() == Approx(core));
    CHECK(m.at("attention_core_forward_ms").get<double>() <=
          m["attention_forward_ms"].get<double>());
    // The exclusive component times (other included) add up to the region's wall time.
    double sum = 0;
    for (const auto& [k, v] : m.items()) {
      if (k.rfind("profile_forward_", 0) == 0 && k != "profile_forward_total_ms")
        sum += v.get<double>();
    }
    CHECK(sum == Approx(total).epsilon(0.05));
    // The profiler's count of the matrix products, beside the analytical count: for the
    // Transformer (explicit attention over the whole window, as the convention counts) they agree.
    CHECK(m.at("flops_forward_measured_per_byte").get<double>() > 0);
    if (p["model"] == "transformer") {
      CHECK(m["flops_forward_measured_per_byte"].get<double>() ==
            Approx(m["flops_forward_per_byte"].get<double>()).epsilon(0.01));
    }
    // "train_step" is measured, so a training step is profiled too.
    CHECK(m.at("profile_train_step_total_ms").get<double>() > 0);
    CHECK(m.at("profile_train_step_feedforward_ms").get<double>() > 0);

    // The files: OUTDIR/profiles/<point name with '/' -> '__'>.md and .json.
    std::string stem = p["name"].get<std::string>();
    for (size_t i = stem.find('/'); i != std::string::npos; i = stem.find('/', i + 2))
      stem.replace(i, 1, "__");
    const std::string md_path = out + "/profiles/" + stem + ".md",
                      json_path = out + "/profiles/" + stem + ".json";
    REQUIRE(fs::exists(md_path));
    REQUIRE(fs::exists(json_path));
    const std::string md = read_text(md_path);
    CHECK_THAT(md, Catch::Contains("| global_attention |"));
    CHECK_THAT(md, Catch::Contains("## Forward"));
    CHECK_THAT(md, Catch::Contains("## Training step"));
    CHECK_THAT(md, Catch::Contains("| op | component | calls | ms | % of total |"));
    CHECK_THAT(md, Catch::Contains("aten::"));
    const json doc = json::parse(read_text(json_path));
    CHECK(doc["point"] == p["name"]);
    CHECK(doc["forward"]["source"] == "libtorch");
    CHECK(doc["forward"]["total_ms"].get<double>() == Approx(total));
    CHECK_FALSE(doc["forward"]["kernels"].empty());
    CHECK(doc["train_step"]["component_ms"].contains("feedforward"));

    // The Chrome trace: complete ("X") events with non-negative times; the components as named
    // spans on the "components" track of each section, sampling among them (the profiled
    // generation), every op span inside the trace's time range.
    const std::string trace_path = out + "/profiles/" + stem + ".trace.json";
    REQUIRE(fs::exists(trace_path));
    CHECK(p["profile_files"].dump().find(".trace.json") != std::string::npos);
    const json trace = json::parse(read_text(trace_path));
    REQUIRE(trace["traceEvents"].is_array());
    std::map<std::string, int> spans;  // component span name -> count
    std::set<std::string> sections;
    for (const auto& e : trace["traceEvents"]) {
      if (e["ph"] == "M" && e["name"] == "process_name") sections.insert(e["args"]["name"]);
      if (e["ph"] != "X") continue;
      CHECK(e["ts"].get<double>() >= 0);
      CHECK(e["dur"].get<double>() >= 0);
      if (e["cat"] == "component") spans[e["name"].get<std::string>()]++;
    }
    CHECK(sections.count("forward") == 1);
    CHECK(sections.count("train_step") == 1);
    CHECK(spans["global_attention"] > 0);
    CHECK(spans["feedforward"] > 0);
    CHECK(spans["embedding"] > 0);
    CHECK(spans["logits"] > 0);
    CHECK(spans["sampling"] > 0);
    if (p["model"] == "megabyte") CHECK(spans["local_attention"] > 0);
  }
  // MEGABYTE's global and local stages are separate components; the baselines have no local
  // attention.
  for (const auto& p : pts) {
    INFO(p["name"]);
    const auto& m = p["metrics"];
    if (p["model"] == "megabyte") {
      CHECK(m.at("profile_forward_global_attention_ms").get<double>() > 0);
      CHECK(m.at("profile_forward_local_attention_ms").get<double>() > 0);
    } else {
      CHECK_FALSE(m.contains("profile_forward_local_attention_ms"));
    }
  }
}

TEST_CASE("run without profile adds no profile metrics and no files", "[profile]") {
  auto dir = fresh_dir("off");
  auto exp = write_file(dir + "/exp.json", kThreeModels);
  auto out = dir + "/out";
  auto s = run_quiet(
      exp, out,
      {"models=[{\"name\":\"transformer\",\"config\":{\"dim\":32,\"depth\":1,\"seq_len\":32,"
       "\"dim_head\":16,\"heads\":2}}]",
       "metrics=[\"forward\"]"});
  CHECK(s.ok == 1);
  auto pts = points_of(out + "/results.jsonl");
  REQUIRE(pts.size() == 1);
  const auto& m = pts[0]["metrics"];
  CHECK(m.contains("forward_ms"));
  CHECK_FALSE(m.contains("profile_forward_total_ms"));
  CHECK_FALSE(m.contains("attention_forward_ms"));
  CHECK_FALSE(pts[0]["config"]["run"].contains("profile"));
  CHECK_FALSE(fs::exists(out + "/profiles"));
}

TEST_CASE("a profiler failure leaves the point's other metrics and status alone", "[profile]") {
  auto dir = fresh_dir("fail");
  auto exp = write_file(dir + "/exp.json", kThreeModels);
  auto out = dir + "/out";
  // The CUPTI side holds the process (as a CUPTI profiler would): LibTorch's profiler must refuse
  // to start, and the run records why instead of failing the point.
  megabench::profile::acquire(megabench::profile::Mode::kCupti);
  megabench::RunSummary s;
  try {
    s = run_quiet(exp, out, {"profile=true", "metrics=[\"forward\"]", "isolation=none"});
  } catch (...) {
    megabench::profile::release(megabench::profile::Mode::kCupti);
    throw;
  }
  megabench::profile::release(megabench::profile::Mode::kCupti);
  CHECK(s.ok == 3);
  CHECK(s.failed == 0);
  for (const auto& p : points_of(out + "/results.jsonl")) {
    INFO(p.dump(1));
    CHECK(p["status"] == "ok");
    CHECK(p["metrics"]["forward_ms"].get<double>() > 0);
    CHECK_FALSE(p["metrics"].contains("attention_forward_ms"));
    REQUIRE(p.contains("profile_error"));
    CHECK_THAT(p["profile_error"].get<std::string>(), Catch::Contains("never run at once"));
    // One profile warning (a timing may add a "noisy: ..." one on a busy machine).
    int profile_warnings = 0;
    for (const auto& w : p["warnings"])
      profile_warnings += w.get<std::string>().rfind("profile: ", 0) == 0;
    CHECK(profile_warnings == 1);
  }
  CHECK(megabench::profile::active_mode() == megabench::profile::Mode::kOff);
}

TEST_CASE("profile is a validated bool - default off - keys unchanged when off", "[profile]") {
  json doc = json::parse(kThreeModels);
  auto message = [](const json& d) -> std::string {
    try {
      megabench::parse_experiment(d);
    } catch (const megabench::ConfigError& e) {
      return e.what();
    }
    return "";
  };
  for (json bad : {json("yes"), json(1), json::array({true})}) {
    json d = doc;
    d["profile"] = bad;
    INFO(bad.dump());
    CHECK_THAT(message(d), Catch::StartsWith("profile: expected true or false"));
  }
  json with_set = doc;
  megabench::apply_set(with_set, "profile=true");
  CHECK(megabench::parse_experiment(with_set).run.profile);
  CHECK(megabench::parse_experiment(with_set).run.resolved["profile"] == true);
  CHECK_FALSE(megabench::parse_experiment(doc).run.resolved.contains("profile"));

  // Off (absent or false) gives the keys of an experiment written before the option existed; on
  // gives new keys, so a rerun with profiling measures the points again.
  auto keys = [](const json& d) {
    std::vector<std::string> k;
    for (const auto& p : megabench::expand(megabench::parse_experiment(d))) k.push_back(p.key);
    return k;
  };
  json off = doc;
  off["profile"] = false;
  CHECK(keys(off) == keys(doc));
  const auto on = keys(with_set), plain = keys(doc);
  for (size_t i = 0; i < on.size(); ++i) CHECK(on[i] != plain[i]);

  // It can be swept like the other run settings.
  json swept = doc;
  swept["sweep"] = {{"grid", {{"profile", {false, true}}}}};
  CHECK(megabench::expand(megabench::parse_experiment(swept)).size() == 6);
  swept["sweep"]["grid"]["profile"] = {false, "on"};
  CHECK_THAT(message(swept), Catch::Contains("expected true or false"));
}
