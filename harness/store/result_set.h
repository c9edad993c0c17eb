#pragma once
// The one reader of result folders: every results file of one or more OUTDIRs merged into
// PointRecords (upgraded to today's schema) and the newest context record. `megabench report`,
// resume (completed_keys) and the tests read through it.
//
//   ResultSet set = load_result_set({"results/memory"});
//   for (const auto& p : set.points) std::cout << p.name << " " << lookup(p, "global.dim") << "\n";
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/api/record.h"

namespace megabench {

/// Everything read from the result folders.
struct ResultSet {
  nlohmann::ordered_json context;  // the newest context record (by "date"; null when none)
  std::vector<nlohmann::ordered_json> contexts;  // every context record read, in reading order
  // The newest context's experiment.report (empty when absent).
  nlohmann::ordered_json report_section = nlohmann::ordered_json::object();
  std::vector<PointRecord> points;    // one per key, in order of the key's first appearance
  std::vector<std::string> files;     // the files read, in reading order
  std::vector<std::string> warnings;  // lines and records skipped, and why ("file:line: ...")
  /// Every calibration record's "calibration", with the host and CPU of the run it belongs to
  /// added: what report's contention check reads (with the contexts' and points' calibrations).
  std::vector<nlohmann::ordered_json> calibrations;
};

/// DIR/results.jsonl (when present), then DIR/results.shard-*.jsonl sorted by name: the files
/// load_result_set reads from one folder. Empty when the folder holds none or does not exist.
std::vector<std::string> results_files(const std::string& dir);

/// Reads the results files of each folder in order (results_files); an entry of `dirs` that is a
/// file (a results .jsonl) is read as that one file. A later point record with
/// the same key replaces the earlier one in place; a last line without its newline (a run still
/// writing, or killed mid-line) is never a record; a line that does not parse, or a point record
/// PointRecord::from_json rejects, is skipped with a warning naming file and line. Other record
/// types are ignored. Throws std::invalid_argument when `dirs` is empty, std::runtime_error when a
/// path does not exist, a folder holds no results file, or a file cannot be read.
ResultSet load_result_set(const std::vector<std::string>& dirs);

/// A point's value for a field: "name", "model", "label", "status", an axis, a metric, a config
/// key, or a config path ("global.dim" or "/global/dim"), looked up in that order. Null when
/// absent.
nlohmann::ordered_json lookup(const PointRecord& p, const std::string& field);

}  // namespace megabench
