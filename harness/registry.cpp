#include "harness/registry.h"

#include <algorithm>
#include <stdexcept>

namespace megabench {

Registry& Registry::instance() {
  static Registry registry;
  return registry;
}

void Registry::add(ModelSpec spec) {
  if (specs_.count(spec.name)) {
    throw std::logic_error("model '" + spec.name + "' is registered twice");
  }
  std::string name = spec.name;
  specs_.emplace(std::move(name), std::move(spec));
}

bool Registry::has(const std::string& name) const { return specs_.count(name) > 0; }

const ModelSpec& Registry::get(const std::string& name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) {
    std::string known;
    for (const auto& [n, _] : specs_) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown model '" + name + "'; registered models: " + known);
  }
  return it->second;
}

std::vector<std::string> Registry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : specs_) out.push_back(n);
  return out;
}

namespace {

bool is_int(const json& v) { return v.is_number_integer(); }

bool matches(const std::string& type, const json& v) {
  if (type == "int") return is_int(v);
  if (type == "float") return v.is_number();
  if (type == "bool") return v.is_boolean();
  if (type == "string") return v.is_string();
  if (type == "int[]") {
    return v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), is_int);
  }
  if (type == "int|int[]") return is_int(v) || matches("int[]", v);
  if (type == "int|string") return is_int(v) || v.is_string();
  if (type == "int|int[]|string") return is_int(v) || v.is_string() || matches("int[]", v);
  throw std::logic_error("unknown option type '" + type + "'");
}

}  // namespace

json apply_option_defaults(const std::string& model, const std::vector<OptionSpec>& options,
                           const json& config) {
  if (!config.is_object()) {
    throw std::invalid_argument(model + ": config must be a JSON object, got " + config.dump());
  }
  json out = json::object();
  for (const auto& [key, value] : config.items()) {
    auto it = std::find_if(options.begin(), options.end(),
                           [&](const OptionSpec& o) { return o.name == key; });
    if (it == options.end()) {
      std::string known;
      for (const auto& o : options) known += (known.empty() ? "" : ", ") + o.name;
      throw std::invalid_argument(model + "." + key + ": unknown option; " + model +
                                  " takes: " + known);
    }
    if (!value.is_null() && !matches(it->type, value)) {
      throw std::invalid_argument(model + "." + key + ": expected " + it->type + ", got " +
                                  value.dump());
    }
    out[key] = value;
  }
  for (const auto& o : options) {
    if (!out.contains(o.name) && !o.default_value.is_null()) out[o.name] = o.default_value;
  }
  return out;
}

}  // namespace megabench
