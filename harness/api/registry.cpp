#include "harness/api/registry.h"

#include <algorithm>
#include <functional>
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

// Moves c[from] to c[to], converted by `convert`. A null value is dropped; a key already under
// the new name must hold the same value.
void rename_key(json& c, const std::string& model, const char* from, const char* to,
                const std::function<json(const json&)>& convert = [](const json& v) { return v; }) {
  if (!c.contains(from)) return;
  const json old = c[from];
  c.erase(from);
  if (old.is_null()) return;
  const json value = convert(old);
  if (c.contains(to) && !c[to].is_null() && c[to] != value) {
    throw std::invalid_argument(model + "." + from + ": " + old.dump() + " (" + to + " " +
                                value.dump() + ") disagrees with " + to + " " + c[to].dump());
  }
  c[to] = value;
}

json attention_of_flash_attn(const json& flash_attn) {
  if (!flash_attn.is_boolean()) {
    throw std::invalid_argument("flash_attn: expected bool, got " + flash_attn.dump());
  }
  return flash_attn.get<bool>() ? "sdpa" : "explicit";
}

// MEGABYTE's max_seq_len [G, P1, ..., Pk] (or one G) sets both seq_len and patch. The old
// configs derived seq_len and patch from it whenever it was given, so it overrides them.
void upgrade_megabyte_lengths(json& c) {
  if (!c.contains("max_seq_len")) return;
  json msl = c["max_seq_len"];
  c.erase("max_seq_len");
  if (msl.is_null()) return;
  if (msl.is_number_integer()) msl = json::array({msl});
  if (!matches("int[]", msl)) {
    throw std::invalid_argument("megabyte.max_seq_len: expected int[], got " + msl.dump());
  }
  int64_t seq_len = 1;
  json patch = json::array();
  for (size_t i = 0; i < msl.size(); ++i) {
    seq_len *= msl[i].get<int64_t>();
    if (i > 0) patch.push_back(msl[i]);
  }
  c["seq_len"] = seq_len;
  c["patch"] = patch;
}

}  // namespace

json upgrade_model_config(const std::string& model, const json& config) {
  if (!config.is_object()) return config;
  json c = config;
  rename_key(c, model, "flash_attn", "attention", attention_of_flash_attn);
  rename_key(c, model, "layers", "depth");
  if (model == "megabyte") {
    upgrade_megabyte_lengths(c);
  } else {
    rename_key(c, model, "max_seq_len", "seq_len");
  }
  rename_key(c, model, "cross_attn_seq_len", "prefix_len");
  return c;
}

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
