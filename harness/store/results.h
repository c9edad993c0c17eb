#pragma once
// The results store: OUTDIR/results.jsonl (or results.shard-I-of-N.jsonl), one JSON record a line,
// as harness/store/harness_contract.md describes. Each record is written with one write() and fsynced, so a
// killed run loses at most the point in flight; a reader ignores a trailing partial line.
//
//   ResultsFile out(results_path(outdir, shard));   // drops a partial last line left by a kill
//   out.append(context_record(exp.resolved, ...));
//   out.append(point_record);                        // write + fsync
#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace megabench {

using json = nlohmann::json;

/// "I/N" of `--shard`, 0-based: shard I runs points I, I+N, I+2N, ...
struct Shard {
  int index = 0;
  int count = 1;
  bool active() const { return count > 1; }
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};
/// Parses "I/N" (0 <= I < N); throws std::invalid_argument naming --shard.
Shard parse_shard(const std::string& text);

/// OUTDIR/results.jsonl, or OUTDIR/results.shard-I-of-N.jsonl for an active shard.
std::string results_path(const std::string& outdir, const Shard& shard);

/// Appends whole lines with fsync. Creates the folder and file as needed.
class ResultsFile {
 public:
  explicit ResultsFile(const std::string& path);
  ~ResultsFile();
  ResultsFile(const ResultsFile&) = delete;
  ResultsFile& operator=(const ResultsFile&) = delete;
  /// One line (record.dump() + '\n') in a single write(), then fsync. Throws std::runtime_error.
  void append(const json& record);
  const std::string& path() const { return path_; }
  /// Bytes of a partial last line removed when the file was opened (0 if none).
  size_t truncated_bytes() const { return truncated_; }

 private:
  std::string path_;
  int fd_ = -1;
  size_t truncated_ = 0;
};

struct LoadedResults {
  std::vector<json> records;      // every parsed record, in file order
  size_t partial_tail = 0;        // 1 when the last line was incomplete and ignored
  std::vector<std::string> warnings;  // unparsable lines in the middle (skipped)
};
/// Reads one results file. A missing file reads as empty.
LoadedResults load_results(const std::string& path);

/// Keys of points recorded with status "ok" in every results*.jsonl of `outdir`.
std::set<std::string> completed_keys(const std::string& outdir);

/// The context record of one `megabench run` invocation (see harness/store/harness_contract.md).
json context_record(const json& experiment, const std::string& device, const std::optional<Shard>& shard,
                    const json& calibration);


/// Short text of a metric value for tables (4 significant digits).
std::string format_value(const json& v);

}  // namespace megabench
