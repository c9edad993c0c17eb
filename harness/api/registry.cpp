#include "harness/api/registry.h"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <utility>

namespace megabench {

Registry& Registry::instance() {
  static Registry registry;
  return registry;
}

void Registry::add(ModelSpec spec) {
  spec.origin = origin_;
  if (auto it = specs_.find(spec.name); it != specs_.end()) {
    throw std::invalid_argument("model '" + spec.name + "' from " + origin_ +
                                " is already registered (from " + it->second.origin +
                                "); each model needs a name of its own");
  }
  std::string name = spec.name;
  specs_.emplace(std::move(name), std::move(spec));
}

Registry::OriginScope::OriginScope(std::string origin)
    : previous(std::exchange(Registry::instance().origin_, std::move(origin))) {}

Registry::OriginScope::~OriginScope() {
  Registry::instance().origin_ = previous;
}

void Registry::remove(const std::string& name) {
  specs_.erase(name);
}

bool Registry::has(const std::string& name) const {
  return specs_.count(name) > 0;
}

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

bool matches_base(const std::string& base, const json& v) {
  if (base == "int") return v.is_number_integer();
  if (base == "float") return v.is_number();
  if (base == "bool") return v.is_boolean();
  if (base == "string") return v.is_string();
  throw std::logic_error("unknown option type '" + base + "'");
}

std::vector<std::string> alternatives(const std::string& type) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t bar = type.find('|');; bar = type.find('|', start)) {
    out.push_back(type.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) return out;
    start = bar + 1;
  }
}

bool is_list_type(const std::string& alt) {
  return alt.size() > 2 && alt.compare(alt.size() - 2, 2, "[]") == 0;
}

// Moves c[from] to c[to], converted by `convert`. A null value is dropped; a key already under
// the new name must hold the same value.
void rename_key(
    json& c, const std::string& model, const char* from, const char* to,
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
  if (!option_type_matches("int[]", msl) || msl.empty()) {
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

bool option_type_matches(const std::string& type, const json& v) {
  for (const auto& alt : alternatives(type)) {
    if (!is_list_type(alt)) {
      if (matches_base(alt, v)) return true;
      continue;
    }
    const std::string base = alt.substr(0, alt.size() - 2);
    if (v.is_array() &&
        std::all_of(v.begin(), v.end(), [&](const json& e) { return matches_base(base, e); })) {
      return true;
    }
  }
  return false;
}

std::string option_type_words(const std::string& type) {
  std::string out;
  for (const auto& alt : alternatives(type)) {
    std::string b = is_list_type(alt) ? alt.substr(0, alt.size() - 2) : alt;
    std::string w = b == "int"      ? "an integer"
                    : b == "float"  ? "a number"
                    : b == "bool"   ? "true or false"
                    : b == "string" ? "a string"
                                    : b;
    if (is_list_type(alt)) w = "a list of " + b + "s";
    out += (out.empty() ? "" : " or ") + w;
  }
  return out;
}

const OptionSpec* find_option(const ModelSpec& spec, const std::string& key) {
  for (const auto& o : spec.options) {
    if (o.name == key) return &o;
  }
  return nullptr;
}

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
    const std::string& name = key;  // a structured binding cannot be captured before C++20 clang 16
    auto it = std::find_if(options.begin(), options.end(),
                           [&](const OptionSpec& o) { return o.name == name; });
    if (it == options.end()) {
      std::string known;
      for (const auto& o : options) known += (known.empty() ? "" : ", ") + o.name;
      throw std::invalid_argument(model + "." + key + ": unknown option; " + model +
                                  " takes: " + known);
    }
    if (!value.is_null() && !option_type_matches(it->type, value)) {
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
