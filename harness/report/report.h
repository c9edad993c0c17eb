#pragma once
// `megabench report`: turns one or more result folders (OUTDIR/results.jsonl and the shards
// OUTDIR/results.shard-I-of-N.jsonl, see harness/store/harness_contract.md) into tables, plots, log-log
// scaling fits and a side-by-side with the paper's numbers.
//
//   megabench::report::write({"results/flops_scaling"}, "results/flops_scaling/report", std::cout);
//
// What goes into the report comes from the experiment's "report" section (columns, plots, fits,
// paper), taken from the newest context record found. Library code: it throws on bad input
// (std::invalid_argument / std::runtime_error naming the file, line or field) and never exits.
#include <nlohmann/json.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace megabench::report {

struct Options {
  /// Metric columns of the tables. Empty: the experiment's report.columns, else every metric
  /// present in any point (in the order they first appear).
  std::vector<std::string> columns;
  /// Write plots/<name>.{dat,gp} and render plots/<name>.png with gnuplot. Default: true
  bool plots = true;
};

/// Reads every result folder, writes into out_dir: table.md, table.csv, fits.md, fits.json,
/// paper.md, plots/<name>.png (+ the .dat and .gp that made it) and summary.json. Logs each file
/// written to `log`. gnuplot is found on PATH (or $MEGABENCH_GNUPLOT); without it the .dat/.gp are
/// still written and a message says how to render them later.
void write(const std::vector<std::string>& result_dirs, const std::string& out_dir, std::ostream& log,
           const Options& options = {});

/// The points table as GitHub markdown (for printing at the end of `megabench run`).
std::string markdown_table(const std::vector<std::string>& result_dirs, const Options& options = {});

/// Least-squares fit of log(y) = intercept + slope * log(x) (natural log), solved with Eigen's
/// column-pivoting Householder QR. r2 is the coefficient of determination in log space.
struct Fit {
  double slope, intercept, r2;
  int n;
};
/// Throws std::invalid_argument on fewer than 2 points, mismatched sizes, non-finite or
/// non-positive values, or when all x are equal (the slope is then undefined).
Fit fit_loglog(const std::vector<double>& x, const std::vector<double>& y);

// ---- lower-level pieces, public for the CLI and the tests -------------------------------------

/// One point record, after shards are merged and duplicates replaced.
struct Point {
  std::string key, name, model, status, error;
  std::string label;  // the experiment entry's label; records without one: name up to its first '/'
  nlohmann::ordered_json axes = nlohmann::ordered_json::object();
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
  std::optional<double> elapsed_s;
  bool ok() const { return status == "ok"; }
};

/// Everything read from the result folders.
struct Results {
  nlohmann::ordered_json context;  // the newest context record (null when none)
  nlohmann::ordered_json report_section = nlohmann::ordered_json::object();  // context.experiment.report
  std::vector<Point> points;       // in order of first appearance of each key
  std::vector<std::string> files;  // the files read
  std::vector<std::string> warnings;  // malformed lines skipped, records without a key, ...
};

/// Reads DIR/results.jsonl and DIR/results.shard-*.jsonl (sorted by name) of each folder in order.
/// A later record with the same key replaces the earlier one; a last line that does not parse
/// (a run still writing, or killed mid-line) is ignored; other unparsable lines are skipped with a
/// warning. Throws std::runtime_error when a folder holds no results file at all.
Results load(const std::vector<std::string>& result_dirs);

/// A point's value for a field: "name", "model", "status", an axis, a metric, or a config path
/// ("global.dim" or "/global/dim"). Null when absent.
nlohmann::ordered_json lookup(const Point& p, const std::string& field);

/// Markdown formatting of one metric value: SI suffixes for large counts and rates (729.0M),
/// 3 significant digits for times and small fractions.
std::string format_metric(const std::string& metric, const nlohmann::ordered_json& value);

/// One row of the paper comparison.
struct PaperRow {
  std::string label, metric, source, point;  // point: the matching point's name ("" if none)
  double paper = 0;
  std::optional<double> ours, ratio;  // ratio = ours / paper
  std::string note;                   // "no matching point", "metric missing", ...
};
std::vector<PaperRow> compare_paper(const Results& results);

}  // namespace megabench::report
