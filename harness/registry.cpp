#include "harness/registry.h"

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

}  // namespace megabench
