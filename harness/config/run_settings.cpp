#include "harness/config/run_settings.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "harness/api/metrics.h"

namespace megabench {
namespace {

json data_defaults() {
  return {
      {"source", "random"},           {"path", nullptr}, {"corpus", nullptr}, {"bytes", nullptr},
      {"held_out_fraction", nullptr}, {"seed", 0}};
}
json train_defaults() {
  return {{"steps", nullptr},
          {"flop_budget", nullptr},
          {"lr", 3e-4},
          {"weight_decay", 0.0},
          {"batch", 4},
          {"eval_bytes", 65536},
          {"grad_clip", 1.0},
          {"stop_on_nonfinite", true},
          {"save", true},
          {"curve_every", 0},
          {"betas", {0.9, 0.999}},
          {"warmup_steps", 0},
          {"schedule", "constant"},
          {"init_std", nullptr},
          {"checkpoint_minutes", 10},
          {"optimizer", "adamw_fused"}};
}
json generate_defaults() {
  return {{"bytes", 32}, {"prime", 8},  {"temperature", 1.0}, {"filter_thres", 0.9},
          {"warmup", 1}, {"repeat", 3}, {"uncached", true},   {"weights", "float32"}};
}

json eval_defaults() {
  return {{"mode", "basic"}, {"per_document", false}, {"loss_by_position", false}, {"buckets", 64}};
}

// "eval": kept in the resolved settings only when not at its defaults, so that the keys of points
// recorded before it existed still match. "mode" is one name or a list of them.
json resolve_eval(const json& doc, EvalSettings& e) {
  json ev = merge_section(doc.value("eval", json()), eval_defaults(), "eval");
  const std::vector<std::string> names = {"basic", "sliding", "strided", "sliding+strided"};
  e.modes.clear();
  if (ev["mode"].is_array()) {
    if (ev["mode"].empty()) throw ConfigError("eval.mode", "expected at least one mode");
    for (size_t i = 0; i < ev["mode"].size(); ++i)
      e.modes.push_back(read_enum(ev["mode"][i], index_path("eval.mode", i), names));
  } else {
    e.modes.push_back(read_enum(ev["mode"], "eval.mode", names));
  }
  e.per_document = read_bool(ev["per_document"], "eval.per_document");
  e.loss_by_position = read_bool(ev["loss_by_position"], "eval.loss_by_position");
  e.buckets = read_int(ev["buckets"], "eval.buckets", 1);
  return e.is_default() ? json() : ev;
}

// The "metrics" list, checked against the metric table; the combinations a metric needs.
std::vector<std::string> resolve_metrics(const json& doc) {
  const auto known = MetricRegistry::instance().listable_names();
  if (!doc.contains("metrics")) {
    throw ConfigError("metrics", "missing required key; expected a list of: " + join(known));
  }
  const json& ms = doc["metrics"];
  if (!ms.is_array() || ms.empty()) {
    throw ConfigError("metrics",
                      "expected a non-empty list of: " + join(known) + ", got " + show(ms));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < ms.size(); ++i) {
    auto m = read_enum(ms[i], index_path("metrics", i), known);
    if (std::find(out.begin(), out.end(), m) != out.end()) {
      throw ConfigError(index_path("metrics", i), "metric '" + m + "' is listed twice");
    }
    out.push_back(m);
  }
  for (const auto& m : out) {
    const auto& one_of = MetricRegistry::instance().get(m).needs_one_of;
    if (one_of.empty()) continue;
    if (std::none_of(one_of.begin(), one_of.end(), [&](const std::string& n) {
          return std::find(out.begin(), out.end(), n) != out.end();
        })) {
      throw ConfigError("metrics", "impossible combination: " + m + " needs " +
                                       join(one_of, " or ") + " in the metrics");
    }
  }
  return out;
}

// "data": only the keys that apply to the source are kept, so that the point key does not depend
// on unused keys.
json resolve_data(const json& doc, data::DataSpec& spec) {
  json data = merge_section(doc.value("data", json()), data_defaults(), "data");
  spec.source = read_enum(data["source"], "data.source", {"random", "file", "builtin", "dir"});
  auto only_for = [&](const char* key, const char* src) {
    if (!data[key].is_null() && spec.source != src) {
      throw ConfigError(std::string("data.") + key, std::string("only applies to source \"") + src +
                                                        "\", not \"" + spec.source + "\"");
    }
  };
  if (!data["path"].is_null() && spec.source != "file" && spec.source != "dir") {
    throw ConfigError("data.path",
                      "only applies to sources \"file\" and \"dir\", not \"" + spec.source + "\"");
  }
  only_for("corpus", "builtin");
  only_for("bytes", "random");
  if (spec.source == "file" || spec.source == "dir") {
    if (data["path"].is_null()) {
      throw ConfigError("data.path", "missing required key for source \"" + spec.source +
                                         "\"; expected a " +
                                         (spec.source == "file" ? "file" : "folder") + " path");
    }
    spec.path = read_string(data["path"], "data.path");
    if (spec.source == "dir" && !data["held_out_fraction"].is_null()) {
      throw ConfigError(
          "data.held_out_fraction",
          "a folder of documents has a fixed split (every 10th document is held out)");
    }
  } else if (spec.source == "builtin") {
    if (data["corpus"].is_null()) {
      throw ConfigError("data.corpus",
                        "missing required key for source \"builtin\"; expected one of code, text");
    }
    spec.corpus = read_enum(data["corpus"], "data.corpus", {"code", "text"});
    if (!data["held_out_fraction"].is_null()) {
      throw ConfigError("data.held_out_fraction",
                        "builtin corpora have a fixed split (every 10th file is held out)");
    }
  } else {
    if (data["bytes"].is_null()) data["bytes"] = 1 << 20;
    spec.bytes = read_int(data["bytes"], "data.bytes", 1024);
  }
  if (spec.source == "file" || spec.source == "random") {
    if (data["held_out_fraction"].is_null()) data["held_out_fraction"] = 0.1;
    spec.held_out_fraction = read_number(data["held_out_fraction"], "data.held_out_fraction", true);
    if (spec.held_out_fraction >= 1) {
      throw ConfigError("data.held_out_fraction",
                        "expected a number in (0, 1), got " + show(data["held_out_fraction"]));
    }
  }
  spec.seed = read_int(data["seed"], "data.seed", 0);
  for (auto key : {"path", "corpus", "bytes", "held_out_fraction"}) {
    if (data[key].is_null()) data.erase(key);
  }
  return data;
}

json resolve_train(const json& doc, TrainSettings& t) {
  json train = merge_section(doc.value("train", json()), train_defaults(), "train");
  if (!train["steps"].is_null() && !train["flop_budget"].is_null()) {
    throw ConfigError("train",
                      "impossible combination: give either steps or flop_budget, not both");
  }
  if (train["steps"].is_null() && train["flop_budget"].is_null()) train["steps"] = 100;
  if (!train["steps"].is_null()) t.steps = read_int(train["steps"], "train.steps", 1);
  if (!train["flop_budget"].is_null()) {
    t.flop_budget = read_number(train["flop_budget"], "train.flop_budget", true);
  }
  t.lr = read_number(train["lr"], "train.lr", true);
  t.weight_decay = read_number(train["weight_decay"], "train.weight_decay", false);
  t.batch = read_int(train["batch"], "train.batch", 1);
  t.eval_bytes = read_int(train["eval_bytes"], "train.eval_bytes", 1);
  t.grad_clip = read_number(train["grad_clip"], "train.grad_clip", false);
  t.stop_on_nonfinite = read_bool(train["stop_on_nonfinite"], "train.stop_on_nonfinite");
  // Kept in the resolved settings only when off, so that the keys of points recorded before it
  // existed still match.
  if (t.stop_on_nonfinite) train.erase("stop_on_nonfinite");
  // What is kept of a training (the checkpoint, the curve's resolution) does not change what is
  // measured: never part of the key.
  t.save = read_bool(train["save"], "train.save");
  t.curve_every = read_int(train["curve_every"], "train.curve_every", 0);
  train.erase("save");
  train.erase("curve_every");
  // The recipe: each key is kept only when not at its default, so that the keys of points
  // recorded before it existed still match.
  const json& betas = train["betas"];
  if (!betas.is_array() || betas.size() != 2) {
    throw ConfigError("train.betas", "expected [beta1, beta2], got " + show(betas));
  }
  t.betas.clear();
  for (size_t i = 0; i < 2; ++i) {
    const double b = read_number(betas[i], index_path("train.betas", i), false);
    if (b >= 1) throw ConfigError(index_path("train.betas", i), "expected a value in [0, 1)");
    t.betas.push_back(b);
  }
  if (t.betas == TrainSettings().betas) train.erase("betas");
  t.warmup_steps = read_int(train["warmup_steps"], "train.warmup_steps", 0);
  if (t.warmup_steps == 0) train.erase("warmup_steps");
  t.optimizer = read_enum(train["optimizer"], "train.optimizer", {"adamw_fused", "adamw"});
  if (t.optimizer == "adamw_fused") train.erase("optimizer");
  t.schedule = read_enum(train["schedule"], "train.schedule", {"constant", "linear", "cosine"});
  if (t.schedule == "constant") train.erase("schedule");
  if (train["init_std"].is_null()) {
    train.erase("init_std");
  } else {
    t.init_std = read_number(train["init_std"], "train.init_std", true);
  }
  t.checkpoint_minutes =
      read_number(train["checkpoint_minutes"], "train.checkpoint_minutes", false);
  train.erase("checkpoint_minutes");
  return train;
}

json resolve_generate(const json& doc, GenerateSettings& g) {
  json gen = merge_section(doc.value("generate", json()), generate_defaults(), "generate");
  g.bytes = read_int(gen["bytes"], "generate.bytes", 1);
  g.prime = read_int(gen["prime"], "generate.prime", 1);
  g.temperature = read_number(gen["temperature"], "generate.temperature", false);
  g.filter_thres = read_number(gen["filter_thres"], "generate.filter_thres", false);
  if (g.filter_thres < 0 || g.filter_thres >= 1) {
    throw ConfigError("generate.filter_thres",
                      "expected a number in [0, 1), got " + show(gen["filter_thres"]));
  }
  g.warmup = read_int(gen["warmup"], "generate.warmup", 0);
  g.repeat = read_int(gen["repeat"], "generate.repeat", 1);
  g.uncached = read_bool(gen["uncached"], "generate.uncached");
  g.weights = read_enum(gen["weights"], "generate.weights", {"float32", "bfloat16"});
  // Kept only when not the default, so that the keys of points recorded before it still match.
  if (g.weights == "float32") gen.erase("weights");
  return gen;
}

// How long timed metrics repeat (time_repeats), and when a timing counts as noisy.
void resolve_repeats(const json& doc, RunSettings& r) {
  const RunSettings d;
  r.min_time_ms = read_number(doc.value("min_time_ms", json(d.min_time_ms)), "min_time_ms", false);
  if (r.min_time_ms < 0)
    throw ConfigError("min_time_ms", "expected a number >= 0, got " + show(doc["min_time_ms"]));
  r.max_repeat = read_int(doc.value("max_repeat", json(d.max_repeat)), "max_repeat", 1);
  if (r.max_repeat < r.repeat) {
    throw ConfigError("max_repeat", "expected at least repeat (" + std::to_string(r.repeat) +
                                        "), got " + std::to_string(r.max_repeat));
  }
  r.noisy_cv = read_number(doc.value("noisy_cv", json(d.noisy_cv)), "noisy_cv", true);
}

// Isolation and the per-point limits; an absent or null limit is no limit.
void resolve_supervision(const json& doc, RunSettings& r) {
  r.isolation =
      read_enum(doc.value("isolation", json("process")), "isolation", {"process", "none"});
  auto limit = [&](const char* key) -> std::optional<double> {
    if (!doc.contains(key) || doc[key].is_null()) return std::nullopt;
    return read_number(doc[key], key, true);
  };
  r.timeout_s = limit("timeout_s");
  r.max_memory_gb = limit("max_memory_gb");
  if ((r.timeout_s || r.max_memory_gb) && r.isolation == "none") {
    throw ConfigError(r.timeout_s ? "timeout_s" : "max_memory_gb",
                      "needs isolation \"process\" (a point in the same process cannot be "
                      "stopped); remove it or set isolation to \"process\"");
  }
}

}  // namespace

json supervision_json(const RunSettings& r) {
  return {{"isolation", r.isolation},
          {"timeout_s", r.timeout_s ? json(*r.timeout_s) : json(nullptr)},
          {"max_memory_gb", r.max_memory_gb ? json(*r.max_memory_gb) : json(nullptr)}};
}

torch::ScalarType RunSettings::scalar_type() const {
  if (dtype == "bfloat16") return torch::kBFloat16;
  if (dtype == "float16") return torch::kFloat16;
  return torch::kFloat32;
}

bool EvalSettings::is_default() const {
  const EvalSettings d;
  return modes == d.modes && per_document == d.per_document &&
         loss_by_position == d.loss_by_position && buckets == d.buckets;
}

bool RunSettings::wants(const std::string& metric) const {
  return std::find(metrics.begin(), metrics.end(), metric) != metrics.end();
}

const std::vector<std::string>& run_top_keys() {
  static const std::vector<std::string> keys = {"device",      "dtype",      "threads", "seed",
                                                "warmup",      "repeat",     "batch",   "profile",
                                                "min_time_ms", "max_repeat", "noisy_cv"};
  return keys;
}

const std::vector<std::string>& supervision_keys() {
  static const std::vector<std::string> keys = {"isolation", "timeout_s", "max_memory_gb"};
  return keys;
}
bool is_run_path(const std::string& axis) {
  const auto& top = run_top_keys();
  if (std::find(top.begin(), top.end(), axis) != top.end()) return true;
  auto dot = axis.find('.');
  if (dot == std::string::npos) return false;
  std::string section = axis.substr(0, dot), key = axis.substr(dot + 1);
  json defaults = section == "data"       ? data_defaults()
                  : section == "train"    ? train_defaults()
                  : section == "generate" ? generate_defaults()
                  : section == "eval"     ? eval_defaults()
                                          : json();
  return defaults.is_object() && defaults.contains(key);
}

RunSettings resolve_run(const json& doc) {
  RunSettings r;
  json& run = r.resolved;
  r.device = read_enum(doc.value("device", json("cpu")), "device", {"cpu", "cuda"});
  r.dtype =
      read_enum(doc.value("dtype", json("float32")), "dtype", {"float32", "bfloat16", "float16"});
  r.threads = read_int(doc.value("threads", json(0)), "threads", 0);
  r.seed = read_int(doc.value("seed", json(0)), "seed", 0);
  r.warmup = read_int(doc.value("warmup", json(2)), "warmup", 0);
  r.repeat = read_int(doc.value("repeat", json(5)), "repeat", 1);
  r.batch = read_int(doc.value("batch", json(1)), "batch", 1);
  r.profile = read_bool(doc.value("profile", json(false)), "profile");
  run = {{"device", r.device}, {"dtype", r.dtype},   {"threads", r.threads}, {"seed", r.seed},
         {"warmup", r.warmup}, {"repeat", r.repeat}, {"batch", r.batch}};
  resolve_repeats(doc, r);
  resolve_supervision(doc, r);
  // Kept only when not at their defaults, so that the keys of points recorded before these
  // options existed still match.
  if (r.profile) run["profile"] = true;
  const RunSettings defaults;
  if (r.min_time_ms != defaults.min_time_ms) run["min_time_ms"] = r.min_time_ms;
  if (r.max_repeat != defaults.max_repeat) run["max_repeat"] = r.max_repeat;
  if (r.noisy_cv != defaults.noisy_cv) run["noisy_cv"] = r.noisy_cv;
  r.metrics = resolve_metrics(doc);
  run["metrics"] = r.metrics;
  run["data"] = resolve_data(doc, r.data);
  run["train"] = resolve_train(doc, r.train);
  run["generate"] = resolve_generate(doc, r.generate);
  if (auto ev = resolve_eval(doc, r.eval); !ev.is_null()) run["eval"] = ev;
  return r;
}

double scheduled_lr(const TrainSettings& train, int64_t step, int64_t total) {
  const int64_t w = train.warmup_steps;
  if (step < w) return train.lr * static_cast<double>(step + 1) / static_cast<double>(w);
  if (train.schedule == "constant" || total <= w) return train.lr;
  // Decay over steps w .. total - 1, reaching 0 one step after the last.
  const double f = static_cast<double>(step - w) / static_cast<double>(total - w);
  if (train.schedule == "linear") return train.lr * (1.0 - f);
  return train.lr * 0.5 * (1.0 + std::cos(3.14159265358979323846 * f));  // cosine
}

}  // namespace megabench
