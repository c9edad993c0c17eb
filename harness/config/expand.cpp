#include "harness/config/expand.h"

#include <cstdio>
#include <set>
#include <utility>

namespace megabench {
namespace {

using Combo = std::vector<std::pair<const Axis*, size_t>>;

// Combinations of all axes: the grid (first axis outermost), then each zip group.
std::vector<Combo> combinations(const Experiment& exp) {
  std::vector<Combo> combos = {{}};
  auto extend = [&](const std::vector<const Axis*>& paired, size_t n) {
    std::vector<Combo> next;
    for (const auto& c : combos) {
      for (size_t i = 0; i < n; ++i) {
        auto d = c;
        for (const Axis* a : paired) d.push_back({a, i});
        next.push_back(std::move(d));
      }
    }
    combos = std::move(next);
  };
  for (const auto& a : exp.grid) extend({&a}, a.values.size());
  for (const auto& g : exp.zips) {
    std::vector<const Axis*> paired;
    for (const auto& a : g) paired.push_back(&a);
    extend(paired, g[0].values.size());
  }
  return combos;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string value_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Whether an axis addresses this entry; sets the value in the config or the run document.
bool apply_axis(const Axis& axis, const json& v, const ModelEntry& entry, const ModelSpec& spec,
                json& config, json& rundoc) {
  if (is_run_path(axis.name)) {
    apply_set(rundoc, axis.name + "=" + v.dump());
    return true;
  }
  const auto dot = axis.name.find('.');
  if (dot != std::string::npos) {
    if (axis.name.substr(0, dot) != entry.label) return false;
    config[axis.name.substr(dot + 1)] = v;
    return true;
  }
  if (!find_option(spec, axis.name)) return false;
  config[axis.name] = v;
  return true;
}

// One point of one entry; throws (naming what failed) when its config does not resolve.
Point make_point(const Experiment& exp, size_t m, const Combo& combo) {
  const auto& entry = exp.models[m];
  const auto& spec = Registry::instance().get(entry.name);
  Point p;
  p.model_index = m;
  p.model = entry.name;
  p.label = entry.label;
  p.name = entry.label;
  json config = entry.config;
  json rundoc = exp.run.resolved;  // run settings re-resolved after run-level axes
  for (const auto& [k, v] : entry.train.items()) rundoc["train"][k] = v;  // the entry's own
  std::vector<std::string> provenance;
  for (const auto& [axis, i] : combo) {
    const json& v = axis->values[i];
    if (!apply_axis(*axis, v, entry, spec, config, rundoc)) continue;
    p.axes[axis->name] = v;
    p.name += "/" + axis->name + "=" + value_text(v);
    provenance.push_back(index_path(axis->source, i));
  }
  try {
    try {
      p.run = resolve_run(rundoc);
    } catch (const ConfigError& e) {
      if (entry.train.empty()) throw;
      throw ConfigError("models[" + std::to_string(m) + "] (its train settings)", e.what());
    }
    // Not in the resolved settings (they never change a key): the experiment's own.
    p.run.train.save = exp.run.train.save;
    p.run.train.curve_every = exp.run.train.curve_every;
    p.run.train.checkpoint_minutes = exp.run.train.checkpoint_minutes;
    if (!spec.resolve)
      throw std::invalid_argument("model '" + entry.name + "' has no resolve function");
    p.model_config = spec.resolve(config);
    p.options = spec.parse(p.model_config);
  } catch (const OptionError& e) {
    // The option the user wrote, by its path: models[2].config.num_latents: ...
    throw std::invalid_argument("models[" + std::to_string(m) + "].config." + e.option + ": " +
                                e.message + " (point '" + p.name + "'" +
                                (provenance.empty() ? "" : ", with " + join(provenance)) + ")");
  } catch (const std::exception& e) {
    throw std::invalid_argument("point '" + p.name + "': models[" + std::to_string(m) + "].config" +
                                (provenance.empty() ? "" : " (with " + join(provenance) + ")") +
                                ": " + e.what());
  }
  // Two entries of one model with equal configs differ by label only: the label joins the key.
  p.key = point_key(entry.label == entry.name ? p.model : p.model + "#" + entry.label, p.config());
  return p;
}

}  // namespace

json Point::config() const {
  json c = model_config;
  c["run"] = run.resolved;
  return c;
}

std::string point_key(const std::string& model, const json& config) {
  char buf[17];
  std::snprintf(
      buf, sizeof buf, "%016llx",
      static_cast<unsigned long long>(fnv1a(json{{"model", model}, {"config", config}}.dump())));
  return buf;
}

std::vector<Point> expand(const Experiment& exp) {
  const auto combos = combinations(exp);
  std::vector<Point> points;
  std::set<std::string> keys;
  std::vector<std::string> errors;
  for (size_t m = 0; m < exp.models.size(); ++m) {
    for (const auto& combo : combos) {
      try {
        Point p = make_point(exp, m, combo);
        if (!keys.insert(p.key).second)
          continue;  // same config as an earlier point (axis not applicable)
        points.push_back(std::move(p));
      } catch (const std::exception& e) {
        errors.push_back(e.what());
      }
    }
  }
  if (!errors.empty()) {
    std::string msg =
        "impossible combination in " + std::to_string(errors.size()) + " sweep point(s):";
    for (size_t i = 0; i < errors.size() && i < 10; ++i) msg += "\n  " + errors[i];
    if (errors.size() > 10) msg += "\n  ... and " + std::to_string(errors.size() - 10) + " more";
    throw ConfigError("sweep", msg);
  }
  for (size_t i = 0; i < points.size(); ++i) points[i].index = i;
  return points;
}

}  // namespace megabench
