#include "harness/config/experiment.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "harness/api/registry.h"

namespace megabench {
namespace {

std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string join(const std::vector<std::string>& xs, const std::string& sep = ", ") {
  std::string out;
  for (const auto& x : xs) out += (out.empty() ? "" : sep) + x;
  return out;
}

std::string child(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}
std::string index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

// --- small typed readers; each names the path and what was expected ------------------------------

void expect_object(const json& j, const std::string& path) {
  if (!j.is_object()) throw ConfigError(path, "expected an object, got " + show(j));
}

void check_keys(const json& j, const std::string& path, const std::vector<std::string>& allowed) {
  for (const auto& [k, _] : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
      throw ConfigError(child(path, k), "unknown key; expected one of: " + join(allowed));
    }
  }
}

int64_t read_int(const json& v, const std::string& path, int64_t min) {
  if (!v.is_number_integer()) {
    throw ConfigError(path, std::string("expected ") +
                                (min > 0 ? "a positive integer" : min == 0 ? "a non-negative integer" : "an integer") +
                                ", got " + show(v));
  }
  int64_t x = v.get<int64_t>();
  if (x < min) throw ConfigError(path, "expected an integer >= " + std::to_string(min) + ", got " + show(v));
  return x;
}

double read_number(const json& v, const std::string& path, bool positive) {
  if (!v.is_number()) {
    throw ConfigError(path, std::string("expected ") + (positive ? "a positive number" : "a number") + ", got " + show(v));
  }
  double x = v.get<double>();
  if (positive && !(x > 0)) throw ConfigError(path, "expected a positive number, got " + show(v));
  return x;
}

std::string read_string(const json& v, const std::string& path) {
  if (!v.is_string()) throw ConfigError(path, "expected a string, got " + show(v));
  return v.get<std::string>();
}

std::string read_enum(const json& v, const std::string& path, const std::vector<std::string>& allowed) {
  if (!v.is_string()) throw ConfigError(path, "expected one of " + join(allowed) + ", got " + show(v));
  auto s = v.get<std::string>();
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
    throw ConfigError(path, "expected one of " + join(allowed) + ", got " + show(v));
  }
  return s;
}

bool read_bool(const json& v, const std::string& path) {
  if (!v.is_boolean()) throw ConfigError(path, "expected true or false, got " + show(v));
  return v.get<bool>();
}

// A section with defaults: copy `defaults`, overwrite with `given` (strict keys).
json merge_section(const json& given, const json& defaults, const std::string& path) {
  json out = defaults;
  if (given.is_null()) return out;
  expect_object(given, path);
  std::vector<std::string> keys;
  for (const auto& [k, _] : defaults.items()) keys.push_back(k);
  check_keys(given, path, keys);
  for (const auto& [k, v] : given.items()) out[k] = v;
  return out;
}

// --- run settings --------------------------------------------------------------------------------

const std::vector<std::string> kRunTopKeys = {"device", "dtype", "threads", "seed", "warmup", "repeat", "batch", "profile"};
const std::vector<std::string> kRunSections = {"data", "train", "generate"};

json data_defaults() {
  return {{"source", "random"}, {"path", nullptr}, {"corpus", nullptr}, {"bytes", nullptr},
          {"held_out_fraction", nullptr}, {"seed", 0}};
}
json train_defaults() {
  return {{"steps", nullptr}, {"flop_budget", nullptr}, {"lr", 3e-4}, {"weight_decay", 0.0},
          {"batch", 4}, {"eval_bytes", 65536}, {"grad_clip", 1.0}};
}
json generate_defaults() {
  return {{"bytes", 32}, {"prime", 8}, {"temperature", 1.0}, {"filter_thres", 0.9},
          {"warmup", 1}, {"repeat", 3}, {"uncached", true}};
}

// Validates and fills the run settings found at the top level of `doc` (or of a point's run json).
json resolve_run(const json& doc) {
  json run;
  run["device"] = read_enum(doc.value("device", json("cpu")), "device", {"cpu", "cuda"});
  run["dtype"] = read_enum(doc.value("dtype", json("float32")), "dtype", {"float32", "bfloat16", "float16"});
  run["threads"] = read_int(doc.value("threads", json(0)), "threads", 0);
  run["seed"] = read_int(doc.value("seed", json(0)), "seed", 0);
  run["warmup"] = read_int(doc.value("warmup", json(2)), "warmup", 0);
  run["repeat"] = read_int(doc.value("repeat", json(5)), "repeat", 1);
  run["batch"] = read_int(doc.value("batch", json(1)), "batch", 1);
  // Kept only when on, so that the keys of points recorded before this option existed still match.
  if (read_bool(doc.value("profile", json(false)), "profile")) run["profile"] = true;

  // metrics
  if (!doc.contains("metrics")) throw ConfigError("metrics", "missing required key; expected a list of: " + join(known_metrics()));
  const json& ms = doc["metrics"];
  if (!ms.is_array() || ms.empty()) throw ConfigError("metrics", "expected a non-empty list of: " + join(known_metrics()) + ", got " + show(ms));
  std::set<std::string> seen;
  for (size_t i = 0; i < ms.size(); ++i) {
    auto m = read_enum(ms[i], index("metrics", i), known_metrics());
    if (!seen.insert(m).second) throw ConfigError(index("metrics", i), "metric '" + m + "' is listed twice");
  }
  run["metrics"] = ms;

  // data
  json data = merge_section(doc.value("data", json()), data_defaults(), "data");
  auto source = read_enum(data["source"], "data.source", {"random", "file", "builtin"});
  auto only_for = [&](const char* key, const char* src) {
    if (!data[key].is_null() && source != src) {
      throw ConfigError(std::string("data.") + key, std::string("only applies to source \"") + src + "\", not \"" + source + "\"");
    }
  };
  only_for("path", "file");
  only_for("corpus", "builtin");
  only_for("bytes", "random");
  if (source == "file") {
    if (data["path"].is_null()) throw ConfigError("data.path", "missing required key for source \"file\"; expected a file path");
    read_string(data["path"], "data.path");
  } else if (source == "builtin") {
    if (data["corpus"].is_null()) throw ConfigError("data.corpus", "missing required key for source \"builtin\"; expected one of code, text");
    read_enum(data["corpus"], "data.corpus", {"code", "text"});
    if (!data["held_out_fraction"].is_null()) {
      throw ConfigError("data.held_out_fraction", "builtin corpora have a fixed split (every 10th file is held out)");
    }
  } else {
    if (data["bytes"].is_null()) data["bytes"] = 1 << 20;
    read_int(data["bytes"], "data.bytes", 1024);
  }
  if (source != "builtin") {
    if (data["held_out_fraction"].is_null()) data["held_out_fraction"] = 0.1;
    double f = read_number(data["held_out_fraction"], "data.held_out_fraction", true);
    if (f >= 1) throw ConfigError("data.held_out_fraction", "expected a number in (0, 1), got " + show(data["held_out_fraction"]));
  }
  read_int(data["seed"], "data.seed", 0);
  // Keep only what applies, so that the point key does not depend on unused keys.
  for (auto key : {"path", "corpus", "bytes", "held_out_fraction"}) {
    if (data[key].is_null()) data.erase(key);
  }
  run["data"] = data;

  // train
  json train = merge_section(doc.value("train", json()), train_defaults(), "train");
  if (!train["steps"].is_null() && !train["flop_budget"].is_null()) {
    throw ConfigError("train", "impossible combination: give either steps or flop_budget, not both");
  }
  if (train["steps"].is_null() && train["flop_budget"].is_null()) train["steps"] = 100;
  if (!train["steps"].is_null()) read_int(train["steps"], "train.steps", 1);
  if (!train["flop_budget"].is_null()) read_number(train["flop_budget"], "train.flop_budget", true);
  read_number(train["lr"], "train.lr", true);
  read_number(train["weight_decay"], "train.weight_decay", false);
  read_int(train["batch"], "train.batch", 1);
  read_int(train["eval_bytes"], "train.eval_bytes", 1);
  read_number(train["grad_clip"], "train.grad_clip", false);
  run["train"] = train;

  // generate
  json gen = merge_section(doc.value("generate", json()), generate_defaults(), "generate");
  read_int(gen["bytes"], "generate.bytes", 1);
  read_int(gen["prime"], "generate.prime", 1);
  read_number(gen["temperature"], "generate.temperature", false);
  double ft = read_number(gen["filter_thres"], "generate.filter_thres", false);
  if (ft < 0 || ft >= 1) throw ConfigError("generate.filter_thres", "expected a number in [0, 1), got " + show(gen["filter_thres"]));
  read_int(gen["warmup"], "generate.warmup", 0);
  read_int(gen["repeat"], "generate.repeat", 1);
  read_bool(gen["uncached"], "generate.uncached");
  run["generate"] = gen;

  // combinations that cannot run
  if (seen.count("efficiency") && !seen.count("forward") && !seen.count("train_step")) {
    throw ConfigError("metrics", "impossible combination: efficiency needs forward or train_step in the metrics");
  }
  return run;
}

// --- model configs against the spec's options ------------------------------------------------------

bool matches_base(const json& v, const std::string& base) {
  if (base == "int") return v.is_number_integer();
  if (base == "float" || base == "number") return v.is_number();
  if (base == "bool") return v.is_boolean();
  if (base == "string") return v.is_string();
  if (base == "json" || base == "any") return true;
  return true;  // a type word this harness does not know: the spec's resolve checks it
}

bool matches_type(const json& v, const std::string& type) {
  std::stringstream ss(type);
  std::string alt;
  while (std::getline(ss, alt, '|')) {
    if (alt.size() > 2 && alt.compare(alt.size() - 2, 2, "[]") == 0) {
      std::string base = alt.substr(0, alt.size() - 2);
      if (v.is_array() && std::all_of(v.begin(), v.end(), [&](const json& e) { return matches_base(e, base); })) {
        return true;
      }
    } else if (matches_base(v, alt)) {
      return true;
    }
  }
  return false;
}

std::string type_words(const std::string& type) {
  std::stringstream ss(type);
  std::string alt;
  std::vector<std::string> words;
  auto word = [](const std::string& b) -> std::string {
    if (b == "int") return "an integer";
    if (b == "float" || b == "number") return "a number";
    if (b == "bool") return "true or false";
    if (b == "string") return "a string";
    return b;
  };
  while (std::getline(ss, alt, '|')) {
    if (alt.size() > 2 && alt.compare(alt.size() - 2, 2, "[]") == 0) {
      words.push_back("a list of " + alt.substr(0, alt.size() - 2) + "s");
    } else {
      words.push_back(word(alt));
    }
  }
  return join(words, " or ");
}

const OptionSpec* find_option(const ModelSpec& spec, const std::string& key) {
  for (const auto& o : spec.options) {
    if (o.name == key) return &o;
  }
  return nullptr;
}

void check_model_value(const ModelSpec& spec, const std::string& key, const json& v, const std::string& path) {
  const OptionSpec* opt = find_option(spec, key);
  if (!opt) {
    std::vector<std::string> names;
    for (const auto& o : spec.options) names.push_back(o.name);
    throw ConfigError(path, "unknown option of model '" + spec.name + "'; expected one of: " + join(names));
  }
  if (v.is_null() && opt->default_value.is_null()) return;
  if (!matches_type(v, opt->type)) {
    throw ConfigError(path, "expected " + type_words(opt->type) + ", got " + show(v));
  }
}

void check_model_config(const ModelSpec& spec, const json& config, const std::string& path) {
  expect_object(config, path);
  if (spec.options.empty()) return;  // a spec without documented options checks its keys itself
  for (const auto& [k, v] : config.items()) check_model_value(spec, k, v, child(path, k));
}

// --- paths for --set ------------------------------------------------------------------------------

struct PathStep {
  bool is_index;
  std::string key;
  size_t index;
};

std::vector<PathStep> parse_path(const std::string& path, const std::string& where) {
  std::vector<PathStep> steps;
  size_t i = 0;
  auto bad = [&](const std::string& why) { throw ConfigError(where, "bad path '" + path + "': " + why); };
  if (path.empty()) bad("empty");
  while (i < path.size()) {
    if (path[i] == '[') {
      size_t close = path.find(']', i);
      if (close == std::string::npos) bad("unclosed '['");
      std::string num = path.substr(i + 1, close - i - 1);
      if (num.empty() || !std::all_of(num.begin(), num.end(), ::isdigit)) bad("expected a number inside [], got '" + num + "'");
      steps.push_back({true, "", std::stoul(num)});
      i = close + 1;
      if (i < path.size() && path[i] == '.') ++i;
    } else {
      size_t end = path.find_first_of(".[", i);
      if (end == std::string::npos) end = path.size();
      std::string key = path.substr(i, end - i);
      if (key.empty()) bad("empty key");
      bool digits = std::all_of(key.begin(), key.end(), ::isdigit);
      steps.push_back({digits, key, digits ? std::stoul(key) : 0});
      i = end;
      if (i < path.size() && path[i] == '.') {
        ++i;
        if (i == path.size()) bad("ends with '.'");
      }
    }
  }
  return steps;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

const std::vector<std::string>& known_metrics() {
  static const std::vector<std::string> m = {"params", "flops", "forward", "train_step", "memory",
                                             "generate", "bpb", "efficiency"};
  return m;
}

bool is_run_path(const std::string& axis) {
  if (std::find(kRunTopKeys.begin(), kRunTopKeys.end(), axis) != kRunTopKeys.end()) return true;
  auto dot = axis.find('.');
  if (dot == std::string::npos) return false;
  std::string section = axis.substr(0, dot), key = axis.substr(dot + 1);
  json defaults = section == "data" ? data_defaults() : section == "train" ? train_defaults()
                : section == "generate" ? generate_defaults() : json();
  return defaults.is_object() && defaults.contains(key);
}

json Point::config() const {
  json c = model_config;
  c["run"] = run;
  return c;
}

std::string point_key(const std::string& model, const json& config) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(fnv1a(json{{"model", model}, {"config", config}}.dump())));
  return buf;
}

json load_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open experiment file '" + path + "'");
  try {
    return json::parse(in);
  } catch (const json::parse_error& e) {
    throw std::runtime_error("'" + path + "' is not valid JSON: " + e.what());
  }
}

void apply_set(json& doc, const std::string& assignment) {
  const std::string where = "--set " + assignment;
  auto eq = assignment.find('=');
  if (eq == std::string::npos) throw ConfigError(where, "expected PATH=VALUE");
  std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  auto steps = parse_path(path, where);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::parse_error&) {
    value = text;
  }
  json* node = &doc;
  std::string walked;
  for (size_t s = 0; s < steps.size(); ++s) {
    const auto& st = steps[s];
    bool last = s + 1 == steps.size();
    if (node->is_array()) {
      if (!st.is_index) throw ConfigError(where, "'" + (walked.empty() ? "(root)" : walked) + "' is a list; expected an index, got '" + st.key + "'");
      if (st.index >= node->size()) {
        throw ConfigError(where, "'" + walked + "' has " + std::to_string(node->size()) + " entries; index " + std::to_string(st.index) + " is out of range");
      }
      walked = index(walked, st.index);
      node = &(*node)[st.index];
    } else if (node->is_object() || node->is_null()) {
      if (st.is_index && st.key.empty()) throw ConfigError(where, "'" + walked + "' is not a list");
      std::string key = st.is_index ? st.key : st.key;
      if (!last && !node->contains(key)) (*node)[key] = json::object();
      walked = child(walked, key);
      node = &(*node)[key];
    } else {
      throw ConfigError(where, "'" + walked + "' is " + show(*node) + ", not an object or list");
    }
  }
  *node = value;
}

Experiment parse_experiment(const json& doc) {
  if (!doc.is_object()) throw ConfigError("(root)", "expected an object, got " + show(doc));
  std::vector<std::string> allowed = {"name", "description", "models", "sweep", "metrics", "data", "train", "generate", "report"};
  allowed.insert(allowed.end(), kRunTopKeys.begin(), kRunTopKeys.end());
  check_keys(doc, "", allowed);

  Experiment exp;
  if (!doc.contains("name")) throw ConfigError("name", "missing required key; expected a string");
  exp.name = read_string(doc["name"], "name");
  if (exp.name.empty() || exp.name.find('/') != std::string::npos) {
    throw ConfigError("name", "expected a non-empty name without '/', got " + show(doc["name"]));
  }
  exp.description = doc.contains("description") ? read_string(doc["description"], "description") : "";

  // models
  if (!doc.contains("models")) throw ConfigError("models", "missing required key; expected a list of {\"name\", \"config\"}");
  const json& models = doc["models"];
  if (!models.is_array() || models.empty()) throw ConfigError("models", "expected a non-empty list of {\"name\", \"config\"}, got " + show(models));
  std::set<std::string> labels;
  for (size_t i = 0; i < models.size(); ++i) {
    std::string path = index("models", i);
    expect_object(models[i], path);
    check_keys(models[i], path, {"name", "label", "config"});
    if (!models[i].contains("name")) throw ConfigError(child(path, "name"), "missing required key; expected a registered model name");
    ModelEntry m;
    m.name = read_string(models[i]["name"], child(path, "name"));
    if (!Registry::instance().has(m.name)) {
      auto names = Registry::instance().names();
      throw ConfigError(child(path, "name"), "model '" + m.name + "' is not registered; registered models: " +
                                                  (names.empty() ? std::string("(none)") : join(names)));
    }
    m.label = models[i].contains("label") ? read_string(models[i]["label"], child(path, "label")) : m.name;
    if (!labels.insert(m.label).second) {
      throw ConfigError(path, "two models are labelled '" + m.label + "'; give each a distinct \"label\"");
    }
    m.config = models[i].value("config", json::object());
    check_model_config(Registry::instance().get(m.name), m.config, child(path, "config"));
    exp.models.push_back(std::move(m));
  }

  exp.run = resolve_run(doc);

  // sweep
  if (doc.contains("sweep")) {
    const json& sweep = doc["sweep"];
    expect_object(sweep, "sweep");
    check_keys(sweep, "sweep", {"grid", "zip"});
    std::set<std::string> axis_names;
    auto read_axes = [&](const json& obj, const std::string& path) {
      expect_object(obj, path);
      std::vector<Axis> axes;
      for (const auto& [name, values] : obj.items()) {
        std::string apath = child(path, name);
        if (!values.is_array() || values.empty()) throw ConfigError(apath, "expected a non-empty list of values, got " + show(values));
        if (!axis_names.insert(name).second) throw ConfigError(apath, "axis '" + name + "' appears twice in the sweep");
        axes.push_back(Axis{name, values.get<std::vector<json>>(), apath});
      }
      return axes;
    };
    if (sweep.contains("grid")) exp.grid = read_axes(sweep["grid"], "sweep.grid");
    if (sweep.contains("zip")) {
      const json& z = sweep["zip"];
      std::vector<std::pair<json, std::string>> groups;
      if (z.is_object()) {
        groups.push_back({z, "sweep.zip"});
      } else if (z.is_array()) {
        for (size_t i = 0; i < z.size(); ++i) groups.push_back({z[i], index("sweep.zip", i)});
      } else {
        throw ConfigError("sweep.zip", "expected an object of equal-length lists (or a list of such objects), got " + show(z));
      }
      for (const auto& [g, gpath] : groups) {
        auto axes = read_axes(g, gpath);
        if (axes.empty()) throw ConfigError(gpath, "expected at least one axis");
        for (const auto& a : axes) {
          if (a.values.size() != axes[0].values.size()) {
            throw ConfigError(a.source, "impossible combination: zipped axes need equal lengths; '" + a.name + "' has " +
                                            std::to_string(a.values.size()) + " values, '" + axes[0].name + "' has " +
                                            std::to_string(axes[0].values.size()));
          }
        }
        exp.zips.push_back(std::move(axes));
      }
    }
    // Each axis must address something, and each run-level value must be valid on its own.
    std::vector<const Axis*> all;
    for (const auto& a : exp.grid) all.push_back(&a);
    for (const auto& g : exp.zips) for (const auto& a : g) all.push_back(&a);
    for (const Axis* a : all) {
      if (a->name == "metrics") throw ConfigError(a->source, "metrics cannot be an axis");
      if (is_run_path(a->name)) {
        for (size_t i = 0; i < a->values.size(); ++i) {
          json trial = doc;
          apply_set(trial, a->name + "=" + a->values[i].dump());
          try {
            resolve_run(trial);
          } catch (const ConfigError& e) {
            throw ConfigError(index(a->source, i), std::string("as run setting: ") + e.what());
          }
        }
        continue;
      }
      auto dot = a->name.find('.');
      bool targeted = false;
      if (dot != std::string::npos) {
        std::string label = a->name.substr(0, dot), key = a->name.substr(dot + 1);
        for (size_t m = 0; m < exp.models.size(); ++m) {
          if (exp.models[m].label != label) continue;
          targeted = true;
          const auto& spec = Registry::instance().get(exp.models[m].name);
          for (size_t i = 0; i < a->values.size(); ++i) {
            check_model_value(spec, key, a->values[i], index(a->source, i) + " (models[" + std::to_string(m) + "].config." + key + ")");
          }
        }
        if (!targeted) {
          throw ConfigError(a->source, "axis '" + a->name + "' is neither a run setting nor <model label>.<option> of a model in this experiment");
        }
        continue;
      }
      bool any = false;
      for (size_t m = 0; m < exp.models.size(); ++m) {
        const auto& spec = Registry::instance().get(exp.models[m].name);
        if (!find_option(spec, a->name)) continue;
        any = true;
        for (size_t i = 0; i < a->values.size(); ++i) {
          check_model_value(spec, a->name, a->values[i], index(a->source, i) + " (models[" + std::to_string(m) + "].config." + a->name + ")");
        }
      }
      if (!any) {
        throw ConfigError(a->source, "axis '" + a->name + "' is not an option of any model here and not a run setting (" +
                                         join(kRunTopKeys) + ", data.*, train.*, generate.*)");
      }
    }
  }

  // report: the layout belongs to `megabench report`; check the top level only.
  if (doc.contains("report")) {
    expect_object(doc["report"], "report");
    check_keys(doc["report"], "report", {"columns", "plots", "fits", "paper"});
    for (const auto& [k, v] : doc["report"].items()) {
      if (!v.is_array()) throw ConfigError(child("report", k), "expected a list, got " + show(v));
    }
    exp.report = doc["report"];
  }

  exp.resolved = {{"name", exp.name}, {"description", exp.description}};
  json models_out = json::array();
  for (const auto& m : exp.models) models_out.push_back({{"name", m.name}, {"label", m.label}, {"config", m.config}});
  exp.resolved["models"] = models_out;
  exp.resolved["sweep"] = doc.value("sweep", json::object());
  for (const auto& [k, v] : exp.run.items()) exp.resolved[k] = v;
  exp.resolved["report"] = exp.report;
  return exp;
}

std::vector<Point> expand(const Experiment& exp) {
  // Combinations of all axes: grid (first axis outermost), then zip groups.
  std::vector<std::vector<std::pair<const Axis*, size_t>>> combos = {{}};
  for (const auto& a : exp.grid) {
    std::vector<std::vector<std::pair<const Axis*, size_t>>> next;
    for (const auto& c : combos) {
      for (size_t i = 0; i < a.values.size(); ++i) {
        auto d = c;
        d.push_back({&a, i});
        next.push_back(std::move(d));
      }
    }
    combos = std::move(next);
  }
  for (const auto& g : exp.zips) {
    std::vector<std::vector<std::pair<const Axis*, size_t>>> next;
    for (const auto& c : combos) {
      for (size_t i = 0; i < g[0].values.size(); ++i) {
        auto d = c;
        for (const auto& a : g) d.push_back({&a, i});
        next.push_back(std::move(d));
      }
    }
    combos = std::move(next);
  }

  std::vector<Point> points;
  std::set<std::string> keys;
  std::vector<std::string> errors;
  for (size_t m = 0; m < exp.models.size(); ++m) {
    const auto& entry = exp.models[m];
    const auto& spec = Registry::instance().get(entry.name);
    for (const auto& combo : combos) {
      Point p;
      p.model_index = m;
      p.model = entry.name;
      p.label = entry.label;
      json config = entry.config;
      json rundoc = exp.run;  // run settings re-resolved after run-level axes
      std::string name = entry.label;
      std::vector<std::string> provenance;
      for (const auto& [axis, i] : combo) {
        const json& v = axis->values[i];
        bool applies = false;
        if (is_run_path(axis->name)) {
          apply_set(rundoc, axis->name + "=" + v.dump());
          applies = true;
        } else {
          auto dot = axis->name.find('.');
          if (dot != std::string::npos) {
            if (axis->name.substr(0, dot) == entry.label) {
              config[axis->name.substr(dot + 1)] = v;
              applies = true;
            }
          } else if (find_option(spec, axis->name)) {
            config[axis->name] = v;
            applies = true;
          }
        }
        if (applies) {
          p.axes[axis->name] = v;
          name += "/" + axis->name + "=" + value_text(v);
          provenance.push_back(index(axis->source, i));
        }
      }
      p.name = name;
      try {
        p.run = resolve_run(rundoc);
        if (!spec.resolve) throw std::invalid_argument("model '" + entry.name + "' has no resolve function");
        p.model_config = spec.resolve(config);
      } catch (const std::exception& e) {
        errors.push_back("point '" + name + "': models[" + std::to_string(m) + "].config" +
                         (provenance.empty() ? "" : " (with " + join(provenance) + ")") + ": " + e.what());
        continue;
      }
      // Two entries of one model with equal configs differ by label only: the label joins the key.
      p.key = point_key(entry.label == entry.name ? p.model : p.model + "#" + entry.label, p.config());
      if (!keys.insert(p.key).second) continue;  // same config as an earlier point (axis not applicable)
      points.push_back(std::move(p));
    }
  }
  if (!errors.empty()) {
    std::string msg = "impossible combination in " + std::to_string(errors.size()) + " sweep point(s):";
    for (size_t i = 0; i < errors.size() && i < 10; ++i) msg += "\n  " + errors[i];
    if (errors.size() > 10) msg += "\n  ... and " + std::to_string(errors.size() - 10) + " more";
    throw ConfigError("sweep", msg);
  }
  for (size_t i = 0; i < points.size(); ++i) points[i].index = i;
  return points;
}

}  // namespace megabench
