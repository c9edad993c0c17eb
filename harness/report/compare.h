#pragma once
// `megabench compare OLD NEW`: the timed metrics of two result sets side by side, point by point,
// with a verdict computed from the repeats, never from two medians alone.
//
//   Comparison c = compare_paths("results/before", "results/after");   // folders or .jsonl files
//   std::cout << render_comparison(c, "text", /*colour=*/isatty(1));
//   if (!slower_than(c, 10).empty()) ...;                               // --fail-if-slower 10
//
// Points are matched by key only (the hash of the resolved config and run settings: the same
// point measured twice); the rest are counted as only in OLD / only in NEW. Compared metrics are
// those present in both records whose names end in `_ms`, `_ms_per_byte` (times: lower is better)
// or `_bytes_per_s` (throughput: higher is better). For each: the medians, ratio = new / old, and,
// when both records carry the metric's repeats (`"samples": {"<metric>": [...]}`, see
// harness/store/harness_contract.md), the ratio's percentile-bootstrap CI and a two-sided
// Mann-Whitney p-value (harness/api/stats.h). With samples on both sides the medians are those of
// the samples; without, the records' metric values, and there is no CI, no p and no verdict.
//
// Verdict: a change is called only when p < alpha AND |ratio - 1| > threshold; it is "slower" when
// a time grew or a throughput fell, else "faster". Otherwise "no change" (or "no samples").
// Library code: throws std::invalid_argument / std::runtime_error naming the path or value.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/api/stats.h"
#include "harness/store/result_set.h"

namespace megabench::report {

struct CompareOptions {
  /// A change smaller than this (percent of |ratio - 1|) is never called. Default: 5
  double threshold_pct = 5;
  /// A change is called only when the Mann-Whitney p-value is below this. Default: 0.05
  double alpha = 0.05;
  /// Of the ratio's bootstrap CI. Default: 0.95
  double confidence = 0.95;
  int resamples = stats::kDefaultResamples;
  uint64_t seed = stats::kDefaultSeed;
};

enum class Verdict { faster, slower, no_change, no_samples };
/// "faster", "slower", "no change", "no samples".
const char* verdict_text(Verdict v);

/// One metric of one matched point.
struct MetricChange {
  std::string point;  // the point's name in NEW
  std::string key;
  std::string metric;
  bool higher_is_better = false;  // a throughput (`_bytes_per_s`)
  double old_median = 0, new_median = 0;
  double ratio = 0;                    // new_median / old_median
  std::optional<double> ci_lo, ci_hi;  // bootstrap CI of the ratio (both sides have samples)
  std::optional<double> p;             // Mann-Whitney p-value (both sides have samples)
  int64_t n_old = 0, n_new = 0;        // repeats in the samples (0: none recorded)
  Verdict verdict = Verdict::no_samples;
};

/// The geometric mean of one metric's ratios over the matched points.
struct MetricGeomean {
  std::string metric;
  double ratio = 0;
  int points = 0;
};

struct Comparison {
  std::string old_source, new_source;  // as given
  CompareOptions options;
  std::vector<MetricChange> changes;    // NEW's point order, then its metric order
  std::vector<MetricGeomean> geomeans;  // one per metric, in order of first appearance
  int old_points = 0, new_points = 0;   // point records read on each side
  int matched = 0, only_old = 0, only_new = 0;
  // Results from more than one machine (host, cpu or device differ between the context records
  // of either side), samples that are not arrays of numbers, and lines the reader skipped.
  std::vector<std::string> warnings;
};

/// Whether a metric is compared: a name ending in `_ms`, `_ms_per_byte` or `_bytes_per_s`.
bool is_compared_metric(const std::string& metric);

/// Compares two result sets (see the top of this file). Throws std::invalid_argument on bad
/// options (threshold < 0, alpha or confidence outside (0, 1), resamples < 1).
Comparison compare(const ResultSet& old_set, const ResultSet& new_set,
                   const CompareOptions& options = {});
/// Reads each side with load_result_set (a folder, shards merged, or one .jsonl file) and compares.
Comparison compare_paths(const std::string& old_path, const std::string& new_path,
                         const CompareOptions& options = {});

/// The --fail-if-slower gate: the changes slower by more than `pct` percent (a time ratio above
/// 1 + pct/100, a throughput ratio below 1 - pct/100) with p < options.alpha. Changes without
/// samples never count.
std::vector<MetricChange> slower_than(const Comparison& c, double pct);

/// What `megabench compare --fail-if-slower` throws after printing the table when slower_than is
/// not empty; the CLI maps it to exit code 3.
class SlowerThanAllowed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The comparison as text: "text" (an aligned table for a terminal; `colour` adds ANSI colours
/// to the verdicts), "md" (GitHub markdown), "csv" (one row per change, full precision) or
/// "json". Throws std::invalid_argument naming another format.
std::string render_comparison(const Comparison& c, const std::string& format, bool colour = false);

}  // namespace megabench::report
