#pragma once
// `megabench report`: turns one or more result folders (OUTDIR/results.jsonl and the shards
// OUTDIR/results.shard-I-of-N.jsonl, see harness/store/harness_contract.md) into tables, plots,
// log-log scaling fits and a side-by-side with the paper's numbers.
//
//   megabench::report::write({"results/flops_scaling"}, "results/flops_scaling/report", std::cout);
//
// What goes into the report comes from the experiment's "report" section (columns, plots, fits,
// paper), taken from the newest context record found. The folders are read through the store's one
// reader (load_result_set); cell text comes from harness/api/format.h. Library code: it throws on
// bad input (std::invalid_argument / std::runtime_error naming the file, line or field) and never
// exits. How the files are split: harness/report/README.md.
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "harness/store/result_set.h"

namespace megabench::report {

struct Options {
  /// Metric columns of the tables. Empty: the experiment's report.columns, else every metric
  /// present in any point (in the order they first appear).
  std::vector<std::string> columns;
  /// Write plots/<name>.{dat,gp} and render plots/<name>.png with gnuplot. Default: true
  bool plots = true;
  /// Refuse (throw) results that mix commits, carry no commit, or come from a dirty tree.
  bool strict = false;
  /// A JSON file whose "report" object (and "name", the title) replace those of the folders'
  /// newest context: a report over folders of several experiments, e.g. a bpb curve across the
  /// budget folders. Empty: the experiments' own section.
  std::string spec_file;
};

/// What the numbers can be trusted for: the report's first lines, summary.json's "trust", and
/// `report --strict`.
struct Trust {
  std::set<std::string> commits;   // of every context and point record; "unknown" when one has none
  bool dirty = false;              // any record from a tree with changes outside results/
  std::set<std::string> machines;  // "host / cpu" of the records that say
  /// Keys of points measured while their machine's calibration (matmul or triad) read more than
  /// `drop` below the best calibration of the same machine and dtype in these results.
  std::set<std::string> contended;
  std::vector<std::string> warnings;  // one line each
  bool clean() const { return commits.size() == 1 && !commits.count("unknown") && !dirty; }
};
Trust check_trust(const ResultSet& results, double drop = 0.15);

/// Reads every result folder, writes into out_dir: table.md, table.csv, fits.md, fits.json,
/// paper.md, plots/<name>.png (+ the .dat and .gp that made it) and summary.json. Logs each file
/// written to `log`. gnuplot is found on PATH (or $MEGABENCH_GNUPLOT); without it the .dat/.gp are
/// still written and a message says how to render them later.
void write(const std::vector<std::string>& result_dirs, const std::string& out_dir,
           std::ostream& log, const Options& options = {});

/// The points table as GitHub markdown (for printing at the end of `megabench run`).
std::string markdown_table(const std::vector<std::string>& result_dirs,
                           const Options& options = {});

/// Least-squares fit of log(y) = intercept + slope * log(x) (natural log), solved with Eigen's
/// column-pivoting Householder QR. r2 is the coefficient of determination in log space.
struct Fit {
  double slope, intercept, r2;
  int n;
};
/// Throws std::invalid_argument on fewer than 2 points, mismatched sizes, non-finite or
/// non-positive values, or when all x are equal (the slope is then undefined).
Fit fit_loglog(const std::vector<double>& x, const std::vector<double>& y);

/// One row of the paper comparison: one per point matching an entry of report.paper (by its
/// "where": axes, config values, "model" as entry label or registry name), or one saying none does.
struct PaperRow {
  std::string label, metric, source, point;  // point: the matching point's name ("" if none)
  double paper = 0;
  std::optional<double> ours, ratio;  // ratio = ours / paper
  std::string note;                   // "no matching point", "metric missing", ...
};
std::vector<PaperRow> compare_paper(const ResultSet& results);

/// A claim of the paper (a claims file, e.g. results/claims.json) and the verdict its data gives:
/// "holds", "differs" or "not resolved", with the number it rests on and a reason generated from
/// it. The rules are in verdicts.cpp.
struct ClaimVerdict {
  std::string id, claim, paper, ours, verdict, reason;
};
/// Judges every claim of the file; each claim's "results" folder is relative to `root`. Throws
/// std::runtime_error naming the claim when one is malformed or its folder unreadable.
std::vector<ClaimVerdict> judge_claims(const std::string& claims_file, const std::string& root);
std::string render_verdicts_md(const std::vector<ClaimVerdict>& verdicts);
/// `text` with its verdicts block (between "<!-- verdicts:begin ... -->" and
/// "<!-- verdicts:end -->") replaced by `table`; throws when the markers are missing.
std::string replace_verdicts_block(const std::string& text, const std::string& table);

}  // namespace megabench::report
