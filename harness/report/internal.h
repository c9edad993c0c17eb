#pragma once
// The pieces report.cpp puts together; internal to harness/report (not for other folders).
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "harness/report/report.h"

namespace megabench::report::detail {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// ---- common.cpp: cell text, spec fields, files ------------------------------------------------

/// Markdown cell text: '|' escaped (it would end the cell), newlines as spaces.
std::string md_cell(const std::string& s);
/// A CSV field, quoted when it holds a comma, quote or newline.
std::string csv_cell(const std::string& s);
/// A value for the CSV, in full precision (nlohmann's shortest round-trip text); "" for null.
std::string csv_value(const ojson& v);
/// An axis or config value in markdown: "–" for null, strings bare, floats "%g", the rest dumped.
std::string plain_value(const ojson& v);
/// The value of a field that may be absent, as a string (non-strings dumped).
std::string str_or(const ojson& j, const char* key, const std::string& fallback = "");
/// A string field of a report spec ("report.plots[]"); throws std::invalid_argument naming it
/// when it is required and absent, or not a string.
std::string spec_string(const ojson& spec, const char* key, const char* what, bool required);
std::optional<double> as_number(const ojson& v);
/// JSON equality, with numbers compared as doubles (1024 == 1024.0).
bool values_equal(const ojson& a, const ojson& b);
/// Every field of a report spec's `where` matches the point (lookup, numbers as doubles); its
/// "model" names an entry by label or registry name.
bool matches_where(const PointRecord& p, const ojson& where);
/// The bandwidth (bytes/s) under `key` of a point's calibration ("triad_gb_per_s",
/// "read_gb_per_s"), when it has a positive one.
std::optional<double> calibration_bytes_per_s(const PointRecord& p, const char* key);
/// The read bandwidth (bytes/s) the point's generation measured at its own thread count
/// (generate_read_bandwidth_gb_per_s), when it has a positive one.
std::optional<double> own_read_bytes_per_s(const PointRecord& p);
/// A point's metric, null when absent.
ojson metric_of(const PointRecord& p, const std::string& metric);
/// Writes `text` to `path`, logs it and appends it to `written`; throws std::runtime_error.
void write_file(const fs::path& path, const std::string& text, std::ostream& log,
                std::vector<std::string>& written);

// ---- report.cpp ---------------------------------------------------------------------------------

/// load_result_set with the derived metrics (add_derived_metrics), then Options::spec_file's
/// "report" section and "name" in place of the experiment's; throws std::invalid_argument naming
/// the file when the spec is not usable.
ResultSet load_with_spec(const std::vector<std::string>& result_dirs, const Options& options);

// ---- derived.cpp --------------------------------------------------------------------------------

/// Adds the metrics a point's record implies but does not store: generate_roofline_bytes_per_s and
/// generate_roofline_fraction (batch-1 generation's bandwidth bound; the formula is in
/// derived.cpp).
void add_derived_metrics(ResultSet& r);

// ---- tables.cpp ---------------------------------------------------------------------------------

/// The columns of the tables: every axis of any point, then the metric columns (Options.columns,
/// else report.columns, else every metric in order of first appearance).
struct Table {
  std::vector<std::string> axes, metrics;
  bool any_failed = false;
};
Table table_layout(const ResultSet& r, const Options& opt);
/// The points table; `contended` (check_trust) marks the status of points measured under
/// contention.
std::string render_markdown(const ResultSet& r, const Options& opt,
                            const std::set<std::string>& contended);
std::string render_csv(const ResultSet& r, const Options& opt);

/// "## Samples": each trained point's greedy sample (the record's "sample") beside its bpb; ""
/// when no point has one.
std::string render_samples_md(const ResultSet& r);
/// The points table as an HTML <table id="points"> for index.html: number cells carry their
/// value in data-v, so that the page sorts them as numbers.
std::string render_html_table(const ResultSet& r, const Options& opt,
                              const std::set<std::string>& contended);

// ---- html.cpp -----------------------------------------------------------------------------------

/// What index.html shows; render_html makes the self-contained page.
struct HtmlParts {
  std::string title;
  std::vector<std::string> warnings;
  std::string points_table;      // render_html_table
  ojson plots = ojson::array();  // make_plots' entries (their PNGs are embedded)
  std::string samples_md, fits_md, paper_md;
  ojson context = ojson::object();
};
std::string render_html(const HtmlParts& parts);
/// A <td>: the text, escaped; right-aligned with data-v when the value is a number.
std::string html_cell(const std::string& text, const ojson& value);
/// A sortable header row.
std::string html_head_row(const std::vector<std::string>& header);

// ---- fits.cpp -----------------------------------------------------------------------------------

/// The (x, y) pairs of the ok points, by series, for one plot or fit.
struct XY {
  std::map<std::string, std::vector<std::pair<double, double>>> series;  // sorted by series name
  std::vector<std::string> order;                                        // first appearance
  int skipped = 0;  // ok points without a numeric x or y
  /// series -> x -> the per-repeat samples of y, for the points that keep them (schema 2).
  std::map<std::string, std::map<double, std::vector<double>>> samples;
};
/// A series is the `series` field's value plus, when `split_by_axes`, each other axis whose value
/// varies within it ("megabyte seed=1"); without, the points of all those axes share the series.
XY collect_xy(const ResultSet& r, const std::string& x, const std::string& y,
              const std::string& series, bool split_by_axes = true);
/// One entry per series of each report.fits spec (fits.json).
ojson run_fits(const ResultSet& r);
std::string render_fits_md(const ojson& fits);

// ---- paper.cpp ----------------------------------------------------------------------------------

std::string render_paper_md(const std::vector<PaperRow>& rows);

// ---- plots.cpp ----------------------------------------------------------------------------------

/// Writes plots/<name>.{dat,gp} for each report.plots spec and renders the PNGs with gnuplot when
/// found; returns one summary entry per plot. Plot problems become `warnings`, not errors.
/// Also the loss-by-position plots, and the training curves (loss against FLOPs and steps) of the
/// points that trained, read from the result folders' curves/.
ojson make_plots(const ResultSet& r, const std::vector<std::string>& result_dirs,
                 const fs::path& out_dir, std::ostream& log, std::vector<std::string>& written,
                 std::vector<std::string>& warnings);

}  // namespace megabench::report::detail
