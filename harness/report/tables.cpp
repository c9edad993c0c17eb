// The points table: table.md (and the table printed after a run) and table.csv.
#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/report/internal.h"

namespace megabench::report {
namespace detail {

namespace {

std::vector<std::string> report_columns(const ojson& section) {
  auto it = section.find("columns");
  if (it == section.end()) return {};
  if (!it->is_array())
    throw std::invalid_argument("report: report.columns must be an array of metric names");
  std::vector<std::string> columns;
  for (const auto& c : *it) {
    if (!c.is_string())
      throw std::invalid_argument("report: report.columns must hold strings, got " + c.dump());
    columns.push_back(c.get<std::string>());
  }
  return columns;
}

ojson axis_of(const PointRecord& p, const std::string& axis) {
  auto it = p.axes.find(axis);
  return it == p.axes.end() ? ojson() : *it;
}

std::vector<std::string> header_of(const Table& t, std::vector<std::string> tail) {
  std::vector<std::string> header = {"name", "model"};
  header.insert(header.end(), t.axes.begin(), t.axes.end());
  header.insert(header.end(), t.metrics.begin(), t.metrics.end());
  header.insert(header.end(), tail.begin(), tail.end());
  return header;
}

// A metric's cell: the value, and for a repeated timing "median ± half-width of its 95% CI", with
// "(noisy)" when its coefficient of variation was above the run's threshold.
std::string metric_cell(const PointRecord& p, const std::string& m) {
  std::string text = format_metric(m, metric_of(p, m));
  const auto timing = p.extra.find("timing");
  if (timing != p.extra.end() && timing->contains(m)) {
    const ojson& s = (*timing)[m];
    const double median = s.value("median", 0.0);
    const double half =
        std::max(s.value("ci_hi", median) - median, median - s.value("ci_lo", median));
    text += " ± " + format_metric(m, half);
  }
  const auto noisy = p.extra.find("noisy");
  if (noisy != p.extra.end() && std::find(noisy->begin(), noisy->end(), m) != noisy->end()) {
    text += " (noisy)";
  }
  return text;
}

// "ok", "failed", with ", contended" when the machine ran slow while the point was measured.
std::string status_cell(const PointRecord& p, const std::set<std::string>& contended) {
  return p.status + (contended.count(p.key) ? ", contended" : "");
}

std::string markdown_row(const PointRecord& p, const Table& t,
                         const std::set<std::string>& contended) {
  std::ostringstream os;
  os << "| " << md_cell(p.name) << " | " << md_cell(p.model) << " |";
  for (const auto& a : t.axes) os << " " << md_cell(plain_value(axis_of(p, a))) << " |";
  for (const auto& m : t.metrics) os << " " << md_cell(metric_cell(p, m)) << " |";
  os << " " << md_cell(status_cell(p, contended)) << " |";
  if (t.any_failed) os << " " << md_cell(p.error) << " |";
  return os.str() + "\n";
}

}  // namespace

Table table_layout(const ResultSet& r, const Options& opt) {
  Table t;
  std::set<std::string> seen_axes, seen_metrics;
  for (const auto& p : r.points) {
    for (auto it = p.axes.begin(); it != p.axes.end(); ++it)
      if (seen_axes.insert(it.key()).second) t.axes.push_back(it.key());
    for (auto it = p.metrics.begin(); it != p.metrics.end(); ++it)
      if (seen_metrics.insert(it.key()).second) t.metrics.push_back(it.key());
    t.any_failed |= !p.ok();
  }
  if (!opt.columns.empty()) {
    t.metrics = opt.columns;
  } else if (r.report_section.contains("columns")) {
    t.metrics = report_columns(r.report_section);
  }
  return t;
}

std::string render_markdown(const ResultSet& r, const Options& opt,
                            const std::set<std::string>& contended) {
  const Table t = table_layout(r, opt);
  std::vector<std::string> tail = {"status"};
  if (t.any_failed) tail.push_back("error");
  const auto header = header_of(t, tail);
  std::ostringstream os;
  os << "|";
  for (const auto& h : header) os << " " << md_cell(h) << " |";
  os << "\n|";
  // Numbers right-aligned; name, model, axes, status and error left.
  const size_t first_metric = 2 + t.axes.size(), end_metric = first_metric + t.metrics.size();
  for (size_t i = 0; i < header.size(); ++i)
    os << (i >= first_metric && i < end_metric ? " ---: |" : " --- |");
  os << "\n";
  for (const auto& p : r.points) os << markdown_row(p, t, contended);
  if (r.points.empty()) os << "\n(no points)\n";
  return os.str();
}

std::string render_csv(const ResultSet& r, const Options& opt) {
  const Table t = table_layout(r, opt);
  const auto header = header_of(t, {"status", "error", "elapsed_s", "key"});
  std::ostringstream os;
  for (size_t i = 0; i < header.size(); ++i) os << (i ? "," : "") << csv_cell(header[i]);
  os << "\n";
  for (const auto& p : r.points) {
    std::vector<std::string> row = {p.name, p.model};
    for (const auto& a : t.axes) row.push_back(csv_value(axis_of(p, a)));
    for (const auto& m : t.metrics) row.push_back(csv_value(metric_of(p, m)));
    row.push_back(p.status);
    row.push_back(p.error);
    row.push_back(p.elapsed_s ? ojson(*p.elapsed_s).dump() : "");
    row.push_back(p.key);
    for (size_t i = 0; i < row.size(); ++i) os << (i ? "," : "") << csv_cell(row[i]);
    os << "\n";
  }
  return os.str();
}

std::string render_html_table(const ResultSet& r, const Options& opt,
                              const std::set<std::string>& contended) {
  const Table t = table_layout(r, opt);
  std::vector<std::string> tail = {"status"};
  if (t.any_failed) tail.push_back("error");
  std::ostringstream os;
  os << "<table id=\"points\">" << html_head_row(header_of(t, tail)) << "<tbody>\n";
  for (const auto& p : r.points) {
    os << (p.ok() ? "<tr>" : "<tr class=\"failed\">") << html_cell(p.name, ojson())
       << html_cell(p.model, ojson());
    for (const auto& a : t.axes) os << html_cell(plain_value(axis_of(p, a)), axis_of(p, a));
    for (const auto& m : t.metrics) os << html_cell(metric_cell(p, m), metric_of(p, m));
    os << html_cell(status_cell(p, contended), ojson());
    if (t.any_failed) os << html_cell(p.error, ojson());
    os << "</tr>\n";
  }
  os << "</tbody></table>\n";
  return os.str();
}

std::string render_samples_md(const ResultSet& r) {
  std::ostringstream os;
  for (const auto& p : r.points) {
    auto it = p.extra.find("sample");
    if (!p.ok() || it == p.extra.end() || !it->is_object()) continue;
    if (os.tellp() == 0)
      os << "## Samples\n\nA greedy continuation of the held-out text's first bytes by each "
            "trained "
            "model: read them before trusting a bpb.\n\n| point | bpb | prime | continuation |\n"
            "| --- | ---: | --- | --- |\n";
    auto text = [&](const char* k) {
      std::string t = str_or(*it, k);
      for (auto& c : t) c = (c == '\n' || c == '\t') ? ' ' : c;  // one line per cell
      return md_cell(t);
    };
    os << "| " << md_cell(p.name) << " | " << md_cell(format_metric("bpb", metric_of(p, "bpb")))
       << " | " << text("prime") << " | " << text("continuation") << " |\n";
  }
  return os.str();
}

}  // namespace detail

std::string markdown_table(const std::vector<std::string>& result_dirs, const Options& options) {
  const ResultSet r = detail::load_with_spec(result_dirs, options);
  return detail::render_markdown(r, options, check_trust(r).contended);
}

}  // namespace megabench::report
