// `megabench list`: the registered models with their options (from each model's option table),
// and with --metrics the metric table.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "harness/api/metrics.h"
#include "harness/api/registry.h"
#include "harness/cli/commands.h"

namespace megabench {
namespace {

json models_json() {
  json out = json::array();
  for (const auto& name : Registry::instance().names()) {
    const auto& spec = Registry::instance().get(name);
    json options = json::array();
    for (const auto& o : spec.options) {
      options.push_back(
          {{"name", o.name}, {"type", o.type}, {"default", o.default_value}, {"help", o.help}});
    }
    out.push_back({{"name", spec.name},
                   {"origin", spec.origin},
                   {"description", spec.description},
                   {"options", options},
                   {"tiny_config", spec.tiny_config}});
  }
  return out;
}

json metrics_json() {
  json out = json::array();
  for (const MetricSpec* m : MetricRegistry::instance().all()) {
    json needs = json::array();
    for (auto [bit, word] : {std::pair{kNeedsModel, "model"},
                             {kNeedsTraining, "training"},
                             {kNeedsEval, "eval"},
                             {kNeedsGenerator, "generator"},
                             {kNeedsData, "data"}}) {
      if (m->needs & bit) needs.push_back(word);
    }
    out.push_back({{"name", m->name},
                   {"unit", m->unit},
                   {"help", m->help},
                   {"needs", needs},
                   {"needs_one_of", m->needs_one_of},
                   {"listable", m->listable}});
  }
  return out;
}

void print_models(const json& models) {
  if (models.empty()) std::cout << "no models registered\n";
  for (const auto& m : models) {
    std::cout << m["name"].get<std::string>() << ": " << m["description"].get<std::string>()
              << "\n  (from " << m["origin"].get<std::string>() << ")\n";
    for (const auto& o : m["options"]) {
      std::cout << "  " << o["name"].get<std::string>() << " (" << o["type"].get<std::string>()
                << ", default " << o["default"].dump() << "): " << o["help"].get<std::string>()
                << "\n";
    }
  }
}

void print_metrics(const json& metrics) {
  for (const auto& m : metrics) {
    std::cout << m["name"].get<std::string>() << " [" << m["unit"].get<std::string>() << "]";
    if (!m["needs"].empty()) std::cout << " needs " << m["needs"].dump();
    std::cout << ": " << m["help"].get<std::string>() << "\n";
  }
}

}  // namespace

void add_list_command(CLI::App& app) {
  struct Args {
    bool as_json = false, metrics = false;
  };
  auto args = std::make_shared<Args>();
  auto* list = app.add_subcommand("list", "List the registered models and their config options");
  list->add_flag("--json", args->as_json, "Machine-readable output");
  list->add_flag("--metrics", args->metrics, "List the metric table instead of the models");
  list->callback([args] {
    const json out = args->metrics ? metrics_json() : models_json();
    if (args->as_json) {
      std::cout << out.dump(2) << "\n";
    } else if (args->metrics) {
      print_metrics(out);
    } else {
      print_models(out);
    }
  });
}

}  // namespace megabench
