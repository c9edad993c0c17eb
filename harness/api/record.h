#pragma once
// The one record type of the results store: what `run` writes for each point, and what `report`,
// resume and sharding read back (harness/store/harness_contract.md has the JSON form).
//
//   PointRecord r = measure_point(point, ...);      // measure/ fills it
//   file.append(r.to_json());                        // store/ writes it, one line
//   ResultSet set = load_result_set({"results/x"});  // store/ reads every record back as PointRecord
//
// Records carry `schema_version`. Version 1 (before the option renames) is upgraded on reading:
// config keys through upgrade_model_config, and axis names ("megabyte.flash_attn" -> ...attention).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace megabench {

/// The schema version written by this build. 1: before the option renames (no field in the file).
inline constexpr int kSchemaVersion = 2;

struct PointRecord {
  using ojson = nlohmann::ordered_json;
  int schema_version = kSchemaVersion;
  std::string key;    // point_key of the model and its resolved config
  std::string name;   // "megabyte/seq_len=1024/patch=8"
  std::string model;  // registry name
  std::string label;  // the experiment entry's label
  std::string status = "ok";  // "ok" | "failed"
  std::string error;          // why it failed ("" when ok)
  ojson axes = ojson::object();     // the axes that apply to this point and their values
  ojson config = ojson::object();   // the resolved model config, run settings under "run"
  ojson metrics = ojson::object();  // metric name -> number, in measurement order
  ojson extra = ojson::object();    // data, profile_files, profile_error, harness_overhead, ...
  std::vector<std::string> warnings;
  std::optional<double> elapsed_s;

  bool ok() const { return status == "ok"; }
  /// The JSON line: {"type": "point", "schema_version", "key", "name", ..., extra's keys}.
  ojson to_json() const;
  /// Reads a record of any known schema version and upgrades old names. Throws
  /// std::invalid_argument naming the field when a required field is missing or mistyped.
  static PointRecord from_json(const ojson& j);
};

}  // namespace megabench
