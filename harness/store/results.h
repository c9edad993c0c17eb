#pragma once
// The results store: OUTDIR/results.jsonl (or results.shard-I-of-N.jsonl), one JSON record a line,
// as harness/store/harness_contract.md describes. Each record is written with one write() and
// fsynced, so a killed run loses at most the point in flight; a reader ignores a trailing partial
// line. The one writer is ResultsFile; the one line reader is for_each_result_line, under both
// load_results (raw records of one file) and load_result_set (result_set.h: folders merged into
// PointRecords, for report and resume).
//
//   ResultsFile out(results_path(outdir, shard));   // drops a partial last line left by a kill
//   out.append(context_record(exp.resolved, ...));
//   out.append(record.to_json());                   // write + fsync
#include <sys/types.h>

#include <functional>
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
  /// One line (record.dump() + '\n') in a single write(), then fsync. On failure (ENOSPC, EIO,
  /// EFBIG) the file is cut back to the records before and std::runtime_error says why.
  void append(const json& record);
  const std::string& path() const { return path_; }
  /// Bytes of a partial last line set aside into partial_path() when the file was opened (0 if
  /// none): a run killed mid-write leaves one; its point is measured again.
  size_t truncated_bytes() const { return truncated_; }
  std::string partial_path() const { return path_ + ".partial"; }

 private:
  void set_aside_partial_line();
  [[noreturn]] void fail_append(off_t before, int err);
  std::string path_;
  int fd_ = -1;
  size_t truncated_ = 0;
};

/// The one line reader: calls `line(number, text)` (1-based) for each complete line of one results
/// file that is not blank, in order. A last line without its newline (a write cut short by a
/// kill) is never a record: it is not passed on, and the return value is 1 (else 0). A missing
/// file reads as empty; one that exists but cannot be read throws std::runtime_error.
size_t for_each_result_line(
    const std::string& path,
    const std::function<void(size_t number, const std::string& text)>& line);

/// The raw records of one results file (for tools and tests that want the JSON lines as written).
struct LoadedResults {
  std::vector<json> records;          // every parsed record, in file order
  size_t partial_tail = 0;            // 1 when the last line was incomplete and ignored
  std::vector<std::string> warnings;  // lines that do not parse (skipped): "path:line: ..."
};
/// Reads one results file through for_each_result_line. A missing file reads as empty.
LoadedResults load_results(const std::string& path);

/// Resume: the keys whose latest point record in `outdir` (read by load_result_set) has status
/// "ok". Empty when the folder does not exist or holds no results file.
std::set<std::string> completed_keys(const std::string& outdir);

/// The context record of one `megabench run` invocation (see harness/store/harness_contract.md);
/// its schema_version is kSchemaVersion.
json context_record(const json& experiment, const std::string& device,
                    const std::optional<Shard>& shard, const json& calibration);

}  // namespace megabench
