#pragma once
// The one record type of the results store: what `run` writes for each point, and what `report`,
// resume and sharding read back (harness/store/harness_contract.md has the JSON form).
//
//   PointRecord r = measure_point(point, ...);      // measure/ fills it
//   file.append(r.to_json());                        // store/ writes it, one line
//   ResultSet set = load_result_set({"results/x"});  // store/ reads them back as PointRecords
//
// Records carry `schema_version`. Version 1 (before the option renames; no such field in the
// file) is upgraded on reading, so every PointRecord in memory is of today's schema:
//   config   through upgrade_model_config (flash_attn, layers, max_seq_len, cross_attn_seq_len)
//   axes     the option after the last '.' ("flash_attn", "megabyte.flash_attn"):
//              flash_attn true|false -> attention "sdpa"|"explicit"; layers -> depth;
//              cross_attn_seq_len -> prefix_len; max_seq_len -> seq_len (MEGABYTE's list
//              [G, P1, ..., Pk] becomes the product G*P1*...*Pk; the patch is not made an axis)
//   name     each "/axis=value" segment of a renamed axis, in place (segment order kept)
//   label    absent in version 1: the name up to its first '/'
// The key is kept as recorded: it hashes the config under the old names, so a run of today's
// config computes another key for the same point and measures it again (resume skips nothing old).
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
  std::string key;                  // point_key of the model and its resolved config
  std::string name;                 // "megabyte/seq_len=1024/patch=8"
  std::string model;                // registry name
  std::string label;                // the experiment entry's label
  std::string status = "ok";        // "ok" | "failed"
  std::string error;                // why it failed ("" when ok)
  ojson axes = ojson::object();     // the axes that apply to this point and their values
  ojson config = ojson::object();   // the resolved model config, run settings under "run"
  ojson metrics = ojson::object();  // metric name -> number, in measurement order
  ojson extra = ojson::object();    // data, profile_files, profile_error, harness_overhead, ...
  std::vector<std::string> warnings;
  std::optional<double> elapsed_s;

  bool ok() const { return status == "ok"; }
  /// The JSON line: {"type": "point", "schema_version", "key", "name", "model", "label", "axes",
  /// "config", "metrics", "status", "error" (null when empty), then extra's "harness_overhead",
  /// "elapsed_s" (when set), extra's other keys in order, "warnings" (when any)}. (ResultsFile
  /// writes it as nlohmann::json, whose keys print sorted.)
  ojson to_json() const;
  /// Reads a record of any schema version up to kSchemaVersion and upgrades it (see above); the
  /// result has schema_version == kSchemaVersion. Required: "type" ("point"), "key", "name",
  /// "model" (non-empty strings), "status" ("ok" | "failed"), "axes", "config", "metrics"
  /// (objects); typed when present: "schema_version", "label", "error", "elapsed_s", "warnings".
  /// Unknown keys go to `extra`. Throws std::invalid_argument naming the field
  /// ("point record: \"key\": expected a non-empty string, got 5").
  static PointRecord from_json(const ojson& j);
};

}  // namespace megabench
