#pragma once
// Experiment files: the schema, validated once into typed structs. The schema is documented in
// experiments/README.md; errors read `models[0].config.patch: expected an integer, got "x"`.
//
//   json doc = load_json_file("experiments/quickstart.json");
//   apply_set(doc, "train.steps=50");             // before validation, as on the command line
//   load_experiment_plugins(doc, path);           // "plugins": [...] of the file
//   Experiment exp = parse_experiment(doc);       // throws ConfigError naming the JSON path
//   std::vector<Point> points = expand(exp);      // config/expand.h
#include <string>
#include <vector>

#include "harness/config/json_read.h"
#include "harness/config/overrides.h"
#include "harness/config/run_settings.h"

namespace megabench {

/// The metrics a point can measure (experiments' "metrics" list), from the metric table.
std::vector<std::string> known_metrics();

struct ModelEntry {
  std::string name;   // registry name
  std::string label;  // name in point names; default: name
  json config;        // the base config as written (validated against the spec's options)
  json train;         // this entry's "train" settings over the experiment's (e.g. its own lr)
};

struct Axis {
  std::string name;  // "seq_len", "megabyte.patch", "batch", "train.lr"
  std::vector<json> values;
  std::string source;  // JSON path of the axis in the file: "sweep.grid.seq_len"
};

struct Experiment {
  std::string name;
  std::string description;
  std::vector<ModelEntry> models;
  std::vector<Axis> grid;               // cross product, first axis outermost
  std::vector<std::vector<Axis>> zips;  // each group: equal-length axes, paired by index
  RunSettings run;                      // resolved run settings (defaults filled)
  json report = json::object();         // the "report" section, for `megabench report`
  json resolved;                        // the whole experiment with defaults filled
};

/// Loads the document's "plugins" (model plugin libraries, paths relative to the experiment file)
/// and rewrites them as absolute paths, so that a worker process loads the same files. Before
/// parse_experiment, which needs their models. Throws ConfigError naming plugins[i].
void load_experiment_plugins(json& doc, const std::string& experiment_path);

/// Validates the document strictly (unknown keys, types, ranges, enums, impossible combinations)
/// and fills defaults. Model names and model config keys/types are checked against the registry.
Experiment parse_experiment(const json& doc);

}  // namespace megabench
