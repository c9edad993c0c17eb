// The committed experiment files (experiments/*.json): each validates, expands into points whose
// analytical counts are defined, names in its report's "paper" entries only points that exist, and
// runs one point end to end in a tiny form (the first point's model at its registry tiny config,
// with the file's own metrics and boolean/string switches, one repeat, a few training steps).
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/config/expand.h"
#include "harness/measure/timing.h"
#include "harness/store/results.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using megabench::json;

namespace {

std::vector<fs::path> experiment_files() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(megabench::test::source_path("experiments"))) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string label_of(const json& doc, size_t model_index) {
  const auto& m = doc["models"][model_index];
  return m.value("label", m["name"].get<std::string>());
}

// A "where" value of a report entry against one point: "model" is the label; any other key is an
// axis of the point or an option of its resolved model config.
bool matches(const json& where, const megabench::Point& p, const std::string& label) {
  for (const auto& [k, v] : where.items()) {
    if (k == "model") {
      if (v != label && v != p.model) return false;
    } else if (p.axes.contains(k)) {
      if (p.axes[k] != v) return false;
    } else if (p.model_config.contains(k)) {
      if (p.model_config[k] != v) return false;
    } else {
      return false;
    }
  }
  return true;
}

// The metric each requested metric group must produce.
const std::map<std::string, std::string>& witness_metric() {
  static const std::map<std::string, std::string> m = {{"params", "params_total"},
                                                       {"flops", "flops_forward_per_byte"},
                                                       {"forward", "forward_ms"},
                                                       {"train_step", "train_step_ms"},
                                                       {"memory", "peak_memory_train_bytes"},
                                                       {"generate", "generate_bytes_per_s"},
                                                       {"bpb", "bpb"},
                                                       {"efficiency", "flops_utilization"}};
  return m;
}

// The file with its sweep dropped and its first point's model shrunk to the registry's tiny config.
json tiny_form(const json& doc, const megabench::Point& first) {
  const auto& spec = megabench::Registry::instance().get(first.model);
  json cfg = spec.tiny_config;
  // Keep the switches that do not set sizes (attention, context, positions, ...).
  const auto& written = doc["models"][first.model_index].value("config", json::object());
  for (const auto& [k, v] : written.items()) {
    if ((v.is_boolean() || (v.is_string() && k != "patch")) && !cfg.contains(k)) cfg[k] = v;
  }
  json t = doc;
  t["name"] = doc["name"].get<std::string>() + "_tiny";
  t["models"] = json::array(
      {json{{"name", first.model}, {"label", label_of(doc, first.model_index)}, {"config", cfg}}});
  t.erase("sweep");
  t["warmup"] = 0;
  t["repeat"] = 1;
  t["batch"] = 1;
  t["threads"] = 1;
  t["device"] = "cpu";
  t["dtype"] = "float32";
  t["data"] = json{{"source", "random"}, {"bytes", 8192}, {"held_out_fraction", 0.25}};
  t["train"] = json{{"steps", 2}, {"batch", 1}, {"eval_bytes", 64}};
  t["generate"] =
      json{{"bytes", 4}, {"prime", 16}, {"warmup", 0}, {"repeat", 1}, {"uncached", true}};
  return t;
}

}  // namespace

TEST_CASE("experiment files validate and their paper entries name existing points",
          "[experiments]") {
  const auto files = experiment_files();
  REQUIRE(files.size() >= 2);
  for (const auto& path : files) {
    INFO(path.string());
    const json doc = megabench::load_json_file(path.string());
    const megabench::Experiment exp = megabench::parse_experiment(doc);
    CHECK(exp.name == path.stem().string());  // results/<name>/ sits beside experiments/<name>.json
    const auto points = megabench::expand(exp);
    REQUIRE_FALSE(points.empty());
    for (const auto& p : points) {
      INFO(p.name);
      const auto& spec = megabench::Registry::instance().get(p.model);
      // Every model with tensors counts its FLOPs and parameters; one that learns by counting
      // (ngram) has neither.
      CHECK(static_cast<bool>(spec.flops) == static_cast<bool>(spec.params));
      if (spec.flops) CHECK(spec.flops(*p.options).total() > 0);
      if (spec.params) CHECK(spec.params(*p.options).total > 0);
    }
    if (exp.report.contains("paper")) {
      for (const auto& e : exp.report["paper"]) {
        INFO(e.dump());
        bool found = false;
        for (const auto& p : points)
          found =
              found || matches(e.value("where", json::object()), p, label_of(doc, p.model_index));
        CHECK(found);
        CHECK(e.contains("source"));
      }
    }
  }
}

TEST_CASE("one tiny point of every experiment file runs with all of its metrics", "[experiments]") {
  // A fresh folder from mkdtemp; removed with rm -rf at the end (std::filesystem::remove_all can
  // bind to LibTorch's own copy of libstdc++'s filesystem symbols and crash in this binary).
  std::string templ = (fs::temp_directory_path() / "megabench_test_experiments_XXXXXX").string();
  REQUIRE(::mkdtemp(templ.data()) != nullptr);
  const fs::path dir = templ;
  for (const auto& path : experiment_files()) {
    INFO(path.string());
    const json doc = megabench::load_json_file(path.string());
    const auto points = megabench::expand(megabench::parse_experiment(doc));
    REQUIRE_FALSE(points.empty());
    const json tiny = tiny_form(doc, points.front());
    const auto exp_path = dir / (path.stem().string() + ".json");
    { std::ofstream(exp_path) << tiny.dump(2); }

    megabench::RunOptions o;
    o.experiment_path = exp_path.string();
    o.outdir = (dir / path.stem()).string();
    o.progress = 0;
    std::ostringstream log;
    const auto s = megabench::run_experiment(o, log);
    INFO(log.str());
    CHECK(s.points == 1);
    CHECK(s.failed == 0);

    std::vector<json> recs;
    for (const auto& r : megabench::load_results(o.outdir + "/results.jsonl").records) {
      if (r.value("type", "") == "point") recs.push_back(r);
    }
    REQUIRE(recs.size() == 1);
    INFO(recs[0].dump());
    CHECK(recs[0]["status"] == "ok");
    for (const auto& m : doc["metrics"]) {
      const auto& want = witness_metric().at(m.get<std::string>());
      CHECK(recs[0]["metrics"].contains(want));
    }
  }
  CHECK(std::system(("rm -rf '" + dir.string() + "'").c_str()) == 0);
}
