// The output formats of `megabench compare`: an aligned terminal table (colours optional),
// markdown, CSV and JSON. The numbers come from compare.cpp.
#include <algorithm>
#include <sstream>

#include "harness/api/format.h"
#include "harness/report/compare.h"
#include "harness/report/internal.h"

namespace megabench::report {

namespace {

using detail::ojson;
using Row = std::vector<std::string>;

Row header_of(const Comparison& c) {
  const std::string ci = format_double("%g", 100 * c.options.confidence) + "% CI";
  return {"point", "metric", "old", "new", "new/old", ci, "p", "verdict"};
}

std::string opt_text(const std::optional<double>& v, const char* fmt) {
  return v ? format_double(fmt, *v) : std::string("–");
}

Row row_of(const MetricChange& m) {
  const std::string ci =
      m.ci_lo ? "[" + format_double("%.3f", *m.ci_lo) + ", " + format_double("%.3f", *m.ci_hi) + "]"
              : std::string("–");
  return {m.point,
          m.metric,
          format_metric(m.metric, ojson(m.old_median)),
          format_metric(m.metric, ojson(m.new_median)),
          format_double("%.3f", m.ratio),
          ci,
          opt_text(m.p, "%.2g"),
          verdict_text(m.verdict)};
}

// The lines above the table: what was compared, and the rule a verdict follows.
std::string preamble(const Comparison& c) {
  const CompareOptions& o = c.options;
  std::ostringstream os;
  os << "OLD: " << c.old_source << " (" << c.old_points << " points)\n"
     << "NEW: " << c.new_source << " (" << c.new_points << " points)\n"
     << "matched by key: " << c.matched << " points; only in OLD: " << c.only_old
     << "; only in NEW: " << c.only_new << "\n"
     << "verdict: a change is called when p < " << format_double("%g", o.alpha)
     << " (Mann-Whitney U, two-sided, over the repeats) and |new/old - 1| > "
     << format_double("%g", o.threshold_pct) << "%; CI: " << format_double("%g", 100 * o.confidence)
     << "% percentile bootstrap of the ratio of medians (" << o.resamples << " resamples)\n";
  return os.str();
}

// Characters as a terminal shows them: UTF-8 continuation bytes take no column.
size_t display_width(const std::string& s) {
  size_t w = 0;
  for (unsigned char ch : s) w += (ch & 0xC0) != 0x80;
  return w;
}

std::string colour_of(const std::string& verdict) {
  if (verdict == "slower") return "\033[31m";
  if (verdict == "faster") return "\033[32m";
  return "";
}

std::string render_text(const Comparison& c, bool colour) {
  std::vector<Row> rows = {header_of(c)};
  for (const auto& m : c.changes) rows.push_back(row_of(m));
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], display_width(r[i]));
  std::ostringstream os;
  os << preamble(c) << "\n";
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      const bool last = i + 1 == r.size();
      const std::string pad(last ? 0 : width[i] - display_width(r[i]), ' ');
      const bool left = i < 2 || last;  // names and the verdict read left-aligned
      const std::string cell = left ? r[i] + pad : pad + r[i];
      const std::string on = colour && last ? colour_of(r[i]) : "";
      os << (i ? "  " : "") << on << cell << (on.empty() ? "" : "\033[0m");
    }
    os << "\n";
  }
  if (c.changes.empty()) os << "(no timed metric present in both)\n";
  if (!c.geomeans.empty()) os << "\ngeometric mean of new/old per metric:\n";
  size_t metric_width = 0;
  for (const auto& g : c.geomeans) metric_width = std::max(metric_width, g.metric.size());
  for (const auto& g : c.geomeans)
    os << "  " << g.metric << std::string(metric_width - g.metric.size(), ' ') << "  "
       << format_double("%.3f", g.ratio) << "  (" << g.points << " points)\n";
  for (const auto& w : c.warnings) os << "warning: " << w << "\n";
  return os.str();
}

std::string render_md(const Comparison& c) {
  std::ostringstream os;
  os << "# megabench compare\n\n";
  std::istringstream pre(preamble(c));
  for (std::string line; std::getline(pre, line);) os << "- " << detail::md_cell(line) << "\n";
  for (const auto& w : c.warnings) os << "\n> **warning:** " << detail::md_cell(w) << "\n";
  std::vector<Row> rows = {header_of(c),
                           {"---", "---", "---:", "---:", "---:", "---:", "---:", "---"}};
  for (const auto& m : c.changes) rows.push_back(row_of(m));
  os << "\n";
  for (const auto& r : rows) {
    for (const auto& cell : r) os << "| " << detail::md_cell(cell) << " ";
    os << "|\n";
  }
  os << "\n| metric | geometric mean of new/old | points |\n| --- | ---: | ---: |\n";
  for (const auto& g : c.geomeans)
    os << "| " << g.metric << " | " << format_double("%.3f", g.ratio) << " | " << g.points
       << " |\n";
  return os.str();
}

ojson optional_json(const std::optional<double>& v) {
  return v ? ojson(*v) : ojson();
}

ojson change_json(const MetricChange& m) {
  return {{"point", m.point},
          {"key", m.key},
          {"metric", m.metric},
          {"higher_is_better", m.higher_is_better},
          {"old_median", m.old_median},
          {"new_median", m.new_median},
          {"ratio", m.ratio},
          {"ci_lo", optional_json(m.ci_lo)},
          {"ci_hi", optional_json(m.ci_hi)},
          {"p", optional_json(m.p)},
          {"n_old", m.n_old},
          {"n_new", m.n_new},
          {"verdict", verdict_text(m.verdict)}};
}

std::string render_csv(const Comparison& c) {
  const char* kFields[] = {"point", "key",   "metric", "old_median", "new_median", "ratio",
                           "ci_lo", "ci_hi", "p",      "n_old",      "n_new",      "verdict"};
  std::ostringstream os;
  for (const char* f : kFields) os << (f == kFields[0] ? "" : ",") << f;
  os << "\n";
  for (const auto& m : c.changes) {
    const ojson j = change_json(m);
    for (const char* f : kFields)
      os << (f == kFields[0] ? "" : ",") << detail::csv_cell(detail::csv_value(j[f]));
    os << "\n";
  }
  return os.str();
}

std::string render_json(const Comparison& c) {
  const CompareOptions& o = c.options;
  ojson j = {{"old", c.old_source},
             {"new", c.new_source},
             {"options",
              {{"threshold_pct", o.threshold_pct},
               {"alpha", o.alpha},
               {"confidence", o.confidence},
               {"resamples", o.resamples},
               {"seed", o.seed}}},
             {"old_points", c.old_points},
             {"new_points", c.new_points},
             {"matched", c.matched},
             {"only_old", c.only_old},
             {"only_new", c.only_new},
             {"warnings", c.warnings},
             {"changes", ojson::array()},
             {"geomeans", ojson::array()}};
  for (const auto& m : c.changes) j["changes"].push_back(change_json(m));
  for (const auto& g : c.geomeans)
    j["geomeans"].push_back({{"metric", g.metric}, {"ratio", g.ratio}, {"points", g.points}});
  return j.dump(2) + "\n";
}

}  // namespace

std::string render_comparison(const Comparison& c, const std::string& format, bool colour) {
  if (format == "text") return render_text(c, colour);
  if (format == "md") return render_md(c);
  if (format == "csv") return render_csv(c);
  if (format == "json") return render_json(c);
  throw std::invalid_argument("compare: unknown format '" + format +
                              "' (expected text, md, csv or json)");
}

}  // namespace megabench::report
