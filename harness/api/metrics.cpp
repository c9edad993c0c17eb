#include "harness/api/metrics.h"

#include <algorithm>
#include <stdexcept>

namespace megabench {

MetricRegistry& MetricRegistry::instance() {
  static MetricRegistry registry;
  return registry;
}

void MetricRegistry::add(MetricSpec spec) {
  if (specs_.count(spec.name))
    throw std::logic_error("metric '" + spec.name + "' is registered twice");
  if (!spec.run) throw std::logic_error("metric '" + spec.name + "' has no run function");
  std::string name = spec.name;
  specs_.emplace(std::move(name), std::move(spec));
}

bool MetricRegistry::has(const std::string& name) const {
  return specs_.count(name) > 0;
}

const MetricSpec& MetricRegistry::get(const std::string& name) const {
  auto it = specs_.find(name);
  if (it == specs_.end()) {
    std::string known;
    for (const auto& n : listable_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown metric '" + name + "'; known metrics: " + known);
  }
  return it->second;
}

std::vector<const MetricSpec*> MetricRegistry::all() const {
  std::vector<const MetricSpec*> out;
  for (const auto& [_, spec] : specs_) out.push_back(&spec);
  std::stable_sort(out.begin(), out.end(),
                   [](const MetricSpec* a, const MetricSpec* b) { return a->order < b->order; });
  return out;
}

std::vector<std::string> MetricRegistry::listable_names() const {
  std::vector<std::string> out;
  for (const MetricSpec* m : all()) {
    if (m->listable) out.push_back(m->name);
  }
  return out;
}

}  // namespace megabench
