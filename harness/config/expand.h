#pragma once
// Sweep expansion: every point of an experiment, each with its model config resolved and its run
// settings typed, before anything runs.
//
//   for (const Point& p : expand(exp)) { p.name; p.key; p.run.batch; p.model_config; }
#include <memory>
#include <string>
#include <vector>

#include "harness/api/registry.h"
#include "harness/config/experiment.h"

namespace megabench {

/// One point of a sweep: a model entry with the axes applied.
struct Point {
  size_t index = 0;            // position in the full (unsharded) sweep
  size_t model_index = 0;      // into Experiment::models
  std::string model;           // registry name
  std::string label;           // the entry's label (its registry name unless the file gives one)
  std::string name;            // "megabyte/seq_len=1024/patch=8"
  json axes = json::object();  // the axes that apply to this point and their values
  json model_config;           // after spec.resolve: saved in the record, hashed into the key
  std::shared_ptr<const ModelOptions> options;  // the typed Options, parsed once from model_config
  RunSettings run;                              // after run-level axes
  std::string key;                              // point_key(model, config())
  /// The saved config: the resolved model config with the run settings under "run".
  json config() const;
};

/// Every point of the sweep, each model config resolved through its spec (errors name the point
/// and the JSON path). Points of one model that do not differ (an axis the model lacks) appear
/// once.
std::vector<Point> expand(const Experiment& exp);

/// 16 hex digits (FNV-1a 64) of the model name and the resolved point config.
std::string point_key(const std::string& model, const json& config);

}  // namespace megabench
