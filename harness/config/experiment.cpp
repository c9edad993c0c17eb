#include "harness/config/experiment.h"

#include <filesystem>
#include <map>
#include <set>

#include "harness/api/metrics.h"
#include "harness/api/plugin.h"
#include "harness/api/registry.h"

namespace megabench {
namespace {

void check_model_value(const ModelSpec& spec, const std::string& key, const json& v,
                       const std::string& path) {
  const OptionSpec* opt = find_option(spec, key);
  if (!opt) {
    std::vector<std::string> names;
    for (const auto& o : spec.options) names.push_back(o.name);
    throw ConfigError(
        path, "unknown option of model '" + spec.name + "'; expected one of: " + join(names));
  }
  if (v.is_null() && opt->default_value.is_null()) return;
  if (!option_type_matches(opt->type, v)) {
    throw ConfigError(path, "expected " + option_type_words(opt->type) + ", got " + show(v));
  }
}

ModelEntry parse_model(const json& m, const std::string& path) {
  expect_object(m, path);
  check_keys(m, path, {"name", "label", "config", "train"});
  if (!m.contains("name")) {
    throw ConfigError(child(path, "name"),
                      "missing required key; expected a registered model name");
  }
  ModelEntry e;
  e.name = read_string(m["name"], child(path, "name"));
  if (!Registry::instance().has(e.name)) {
    auto names = Registry::instance().names();
    throw ConfigError(child(path, "name"),
                      "model '" + e.name + "' is not registered; registered models: " +
                          (names.empty() ? std::string("(none)") : join(names)));
  }
  e.label = m.contains("label") ? read_string(m["label"], child(path, "label")) : e.name;
  e.config = m.value("config", json::object());
  e.train = m.value("train", json::object());
  expect_object(e.train, child(path, "train"));
  const std::string cpath = child(path, "config");
  expect_object(e.config, cpath);
  const auto& spec = Registry::instance().get(e.name);
  if (spec.options.empty()) return e;  // a spec without documented options checks its keys itself
  for (const auto& [k, v] : e.config.items()) check_model_value(spec, k, v, child(cpath, k));
  return e;
}

std::vector<ModelEntry> parse_models(const json& doc) {
  const std::string list = "list of {\"name\", \"config\"}";
  if (!doc.contains("models"))
    throw ConfigError("models", "missing required key; expected a " + list);
  const json& models = doc["models"];
  if (!models.is_array() || models.empty()) {
    throw ConfigError("models", "expected a non-empty " + list + ", got " + show(models));
  }
  std::vector<ModelEntry> out;
  std::set<std::string> labels;
  for (size_t i = 0; i < models.size(); ++i) {
    out.push_back(parse_model(models[i], index_path("models", i)));
    if (!labels.insert(out.back().label).second) {
      throw ConfigError(index_path("models", i), "two models are labelled '" + out.back().label +
                                                     "'; give each a distinct \"label\"");
    }
  }
  return out;
}

std::vector<Axis> read_axes(const json& obj, const std::string& path,
                            std::set<std::string>& names) {
  expect_object(obj, path);
  std::vector<Axis> axes;
  for (const auto& [name, values] : obj.items()) {
    std::string apath = child(path, name);
    if (!values.is_array() || values.empty()) {
      throw ConfigError(apath, "expected a non-empty list of values, got " + show(values));
    }
    if (!names.insert(name).second)
      throw ConfigError(apath, "axis '" + name + "' appears twice in the sweep");
    axes.push_back(Axis{name, values.get<std::vector<json>>(), apath});
  }
  return axes;
}

std::vector<std::vector<Axis>> read_zips(const json& z, std::set<std::string>& names) {
  std::vector<std::pair<json, std::string>> groups;
  if (z.is_object()) {
    groups.push_back({z, "sweep.zip"});
  } else if (z.is_array()) {
    for (size_t i = 0; i < z.size(); ++i) groups.push_back({z[i], index_path("sweep.zip", i)});
  } else {
    throw ConfigError(
        "sweep.zip",
        "expected an object of equal-length lists (or a list of such objects), got " + show(z));
  }
  std::vector<std::vector<Axis>> out;
  for (const auto& [g, gpath] : groups) {
    auto axes = read_axes(g, gpath, names);
    if (axes.empty()) throw ConfigError(gpath, "expected at least one axis");
    for (const auto& a : axes) {
      if (a.values.size() == axes[0].values.size()) continue;
      throw ConfigError(a.source, "impossible combination: zipped axes need equal lengths; '" +
                                      a.name + "' has " + std::to_string(a.values.size()) +
                                      " values, '" + axes[0].name + "' has " +
                                      std::to_string(axes[0].values.size()));
    }
    out.push_back(std::move(axes));
  }
  return out;
}

// A run-level axis: each value must give valid run settings on its own.
void check_run_axis(const json& doc, const Axis& a) {
  for (size_t i = 0; i < a.values.size(); ++i) {
    json trial = doc;
    apply_set(trial, a.name + "=" + a.values[i].dump());
    try {
      resolve_run(trial);
    } catch (const ConfigError& e) {
      throw ConfigError(index_path(a.source, i), std::string("as run setting: ") + e.what());
    }
  }
}

// A model axis: "<label>.<option>" addresses one entry; a bare option every model that has it.
void check_model_axis(const Experiment& exp, const Axis& a) {
  const auto dot = a.name.find('.');
  const std::string label = dot == std::string::npos ? "" : a.name.substr(0, dot);
  const std::string key = dot == std::string::npos ? a.name : a.name.substr(dot + 1);
  bool any = false;
  for (size_t m = 0; m < exp.models.size(); ++m) {
    const auto& spec = Registry::instance().get(exp.models[m].name);
    if (dot != std::string::npos ? exp.models[m].label != label : !find_option(spec, key)) continue;
    any = true;
    for (size_t i = 0; i < a.values.size(); ++i) {
      check_model_value(
          spec, key, a.values[i],
          index_path(a.source, i) + " (models[" + std::to_string(m) + "].config." + key + ")");
    }
  }
  if (any) return;
  if (dot != std::string::npos) {
    throw ConfigError(
        a.source,
        "axis '" + a.name +
            "' is neither a run setting nor <model label>.<option> of a model in this experiment");
  }
  throw ConfigError(a.source, "axis '" + a.name +
                                  "' is not an option of any model here and not a run setting (" +
                                  join(run_top_keys()) + ", data.*, train.*, generate.*, eval.*)");
}

void parse_sweep(const json& doc, Experiment& exp) {
  if (!doc.contains("sweep")) return;
  const json& sweep = doc["sweep"];
  expect_object(sweep, "sweep");
  check_keys(sweep, "sweep", {"grid", "zip"});
  std::set<std::string> names;
  if (sweep.contains("grid")) exp.grid = read_axes(sweep["grid"], "sweep.grid", names);
  if (sweep.contains("zip")) exp.zips = read_zips(sweep["zip"], names);
  std::vector<const Axis*> all;
  for (const auto& a : exp.grid) all.push_back(&a);
  for (const auto& g : exp.zips) {
    for (const auto& a : g) all.push_back(&a);
  }
  for (const Axis* a : all) {
    if (a->name == "metrics") throw ConfigError(a->source, "metrics cannot be an axis");
    if (is_run_path(a->name)) {
      check_run_axis(doc, *a);
    } else {
      check_model_axis(exp, *a);
    }
  }
}

// The report layout's keys: `megabench report` reads the values (and checks them against the
// results); here every entry is checked for unknown keys, so that a typo is an error up front.
const std::map<std::string, std::vector<std::string>>& report_entry_keys() {
  static const std::map<std::string, std::vector<std::string>> keys = {
      {"plots", {"x", "y", "series", "title", "name", "log"}},
      {"fits", {"x", "y", "series"}},
      {"paper", {"metric", "label", "source", "value", "where"}},
  };
  return keys;
}

json parse_report(const json& doc) {
  if (!doc.contains("report")) return json::object();
  const json& report = doc["report"];
  expect_object(report, "report");
  check_keys(report, "report", {"columns", "plots", "fits", "paper"});
  for (const auto& [k, v] : report.items()) {
    const std::string path = child("report", k);
    if (!v.is_array()) throw ConfigError(path, "expected a list, got " + show(v));
    for (size_t i = 0; i < v.size(); ++i) {
      if (k == "columns") {
        read_string(v[i], index_path(path, i));
        continue;
      }
      expect_object(v[i], index_path(path, i));
      check_keys(v[i], index_path(path, i), report_entry_keys().at(k));
    }
  }
  return report;
}

json resolved_document(const Experiment& exp, const json& doc) {
  json out = {{"name", exp.name}, {"description", exp.description}};
  json models = json::array();
  for (const auto& m : exp.models)
    models.push_back({{"name", m.name}, {"label", m.label}, {"config", m.config}});
  out["models"] = models;
  out["sweep"] = doc.value("sweep", json::object());
  for (const auto& [k, v] : exp.run.resolved.items()) out[k] = v;
  const json supervision = supervision_json(exp.run);
  for (const auto& [k, v] : supervision.items()) out[k] = v;
  out["report"] = exp.report;
  return out;
}

}  // namespace

void load_experiment_plugins(json& doc, const std::string& experiment_path) {
  if (!doc.is_object() || !doc.contains("plugins")) return;
  json& plugins = doc["plugins"];
  if (!plugins.is_array())
    throw ConfigError("plugins", "expected a list of plugin library paths, got " + show(plugins));
  const auto base = std::filesystem::absolute(experiment_path).parent_path();
  for (size_t i = 0; i < plugins.size(); ++i) {
    const std::string rel = read_string(plugins[i], index_path("plugins", i));
    const auto path =
        std::filesystem::path(rel).is_absolute() ? std::filesystem::path(rel) : base / rel;
    try {
      load_plugin(path.string());
    } catch (const std::runtime_error& e) {
      throw ConfigError(index_path("plugins", i), e.what());
    }
    plugins[i] = path.lexically_normal().string();  // a worker reads the same file
  }
}

std::vector<std::string> known_metrics() {
  return MetricRegistry::instance().listable_names();
}

Experiment parse_experiment(const json& doc) {
  if (!doc.is_object()) throw ConfigError("(root)", "expected an object, got " + show(doc));
  std::vector<std::string> allowed = {"name", "description", "models",   "sweep", "metrics",
                                      "data", "train",       "generate", "eval",  "report"};
  allowed.insert(allowed.end(), run_top_keys().begin(), run_top_keys().end());
  allowed.insert(allowed.end(), supervision_keys().begin(), supervision_keys().end());
  allowed.push_back("plugins");
  check_keys(doc, "", allowed);

  Experiment exp;
  if (!doc.contains("name")) throw ConfigError("name", "missing required key; expected a string");
  exp.name = read_string(doc["name"], "name");
  if (exp.name.empty() || exp.name.find('/') != std::string::npos) {
    throw ConfigError("name", "expected a non-empty name without '/', got " + show(doc["name"]));
  }
  exp.description =
      doc.contains("description") ? read_string(doc["description"], "description") : "";
  if (doc.contains("plugins")) {  // loaded by load_experiment_plugins before parsing
    if (!doc["plugins"].is_array()) {
      throw ConfigError("plugins",
                        "expected a list of plugin library paths, got " + show(doc["plugins"]));
    }
    for (size_t i = 0; i < doc["plugins"].size(); ++i)
      read_string(doc["plugins"][i], index_path("plugins", i));
  }
  exp.models = parse_models(doc);
  exp.run = resolve_run(doc);
  parse_sweep(doc, exp);
  exp.report = parse_report(doc);
  exp.resolved = resolved_document(exp, doc);
  return exp;
}

}  // namespace megabench
