#pragma once
// Experiment files: schema, strict validation, `--set` overrides, sweep expansion and point keys.
//
//   json doc = load_json_file("experiments/quickstart.json");
//   apply_set(doc, "train.steps=50");             // before validation, as on the command line
//   Experiment exp = parse_experiment(doc);       // throws ConfigError naming the JSON path
//   std::vector<Point> points = expand(exp);      // resolves every point's model config up front
//
// The schema is documented in experiments/README.md. Errors read
//   models[0].config.patch: expected an integer, got "x"
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace megabench {

using json = nlohmann::json;

/// A bad experiment file or override. what() starts with the JSON path of the offending value.
class ConfigError : public std::invalid_argument {
 public:
  ConfigError(const std::string& path, const std::string& message)
      : std::invalid_argument(path.empty() ? message : path + ": " + message), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// The metrics a point can measure (experiments' "metrics" list).
const std::vector<std::string>& known_metrics();

struct ModelEntry {
  std::string name;   // registry name
  std::string label;  // name in point names; default: name
  json config;        // the base config as written (validated against the spec's options)
};

struct Axis {
  std::string name;         // "seq_len", "megabyte.patch", "batch", "train.lr"
  std::vector<json> values;
  std::string source;       // JSON path of the axis in the file: "sweep.grid.seq_len"
};

struct Experiment {
  std::string name;
  std::string description;
  std::vector<ModelEntry> models;
  std::vector<Axis> grid;                // cross product, first axis outermost
  std::vector<std::vector<Axis>> zips;   // each group: equal-length axes, paired by index
  json run;                              // resolved run settings (defaults filled), see run_keys()
  json report = json::object();          // the "report" section, for `megabench report`
  json resolved;                         // the whole experiment with defaults filled
};

/// One point of a sweep: a model entry with the axes applied, its config resolved.
struct Point {
  size_t index = 0;        // position in the full (unsharded) sweep
  size_t model_index = 0;  // into Experiment::models
  std::string model;       // registry name
  std::string label;       // the entry's label (its registry name unless the file gives one)
  std::string name;        // "megabyte/seq_len=1024/patch=8"
  json axes = json::object();     // the axes that apply to this point and their values
  json model_config;       // after spec.resolve
  json run;                // resolved run settings after run-level axes
  std::string key;         // point_key(model, config())
  /// The saved config: the resolved model config with the run settings under "run".
  json config() const;
};

/// Parses a JSON file; throws std::runtime_error naming the file (and line/column on a syntax error).
json load_json_file(const std::string& path);

/// Applies one `path=value` override to the raw document. The path uses dots and [i] indices
/// ("models[0].config.dim", "train.steps"; "models.0.config" works too); the value is parsed as
/// JSON, else taken as a string. Throws ConfigError on a malformed assignment or a path that runs
/// through a missing index or a non-container.
void apply_set(json& doc, const std::string& assignment);

/// Validates the document strictly (unknown keys, types, ranges, enums, impossible combinations)
/// and fills defaults. Model names and model config keys/types are checked against the registry.
Experiment parse_experiment(const json& doc);

/// Every point of the sweep, each model config resolved through its spec (errors name the point
/// and the JSON path). Points of one model that do not differ (an axis the model lacks) appear once.
std::vector<Point> expand(const Experiment& exp);

/// 16 hex digits (FNV-1a 64) of the model name and the resolved point config.
std::string point_key(const std::string& model, const json& config);

/// The run-level keys an axis may address (top-level or "section.key").
bool is_run_path(const std::string& axis);

}  // namespace megabench
