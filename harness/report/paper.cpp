// The side-by-side with the paper's numbers: compare_paper and paper.md.
#include <sstream>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/report/internal.h"

namespace megabench::report {

namespace {

using detail::ojson;

// A report.paper entry as the row every matching point starts from.
PaperRow base_row(const ojson& e) {
  PaperRow base;
  base.metric = detail::spec_string(e, "metric", "report.paper[]", true);
  base.label = detail::spec_string(e, "label", "report.paper[]", false);
  if (base.label.empty()) base.label = base.metric;
  base.source = detail::spec_string(e, "source", "report.paper[]", false);
  if (!e.contains("value") || !e["value"].is_number())
    throw std::invalid_argument("report: report.paper[] \"" + base.label +
                                "\" needs a numeric \"value\"");
  base.paper = e["value"].get<double>();
  return base;
}

PaperRow row_for(const PaperRow& base, const PointRecord& p) {
  PaperRow row = base;
  row.point = p.name;
  if (!p.ok()) {
    row.note = "point " + p.status + (p.error.empty() ? "" : ": " + p.error);
  } else if (auto v = detail::as_number(detail::metric_of(p, base.metric))) {
    row.ours = *v;
    if (base.paper != 0)
      row.ratio = *v / base.paper;
    else
      row.note = "paper value is 0, no ratio";
  } else {
    row.note = "metric missing";
  }
  return row;
}

}  // namespace

std::vector<PaperRow> compare_paper(const ResultSet& results) {
  std::vector<PaperRow> rows;
  auto it = results.report_section.find("paper");
  if (it == results.report_section.end()) return rows;
  if (!it->is_array()) throw std::invalid_argument("report: report.paper must be an array");
  for (const auto& e : *it) {
    PaperRow base = base_row(e);
    const ojson where = e.contains("where") ? e["where"] : ojson::object();
    if (!where.is_object())
      throw std::invalid_argument("report: report.paper[] \"" + base.label +
                                  "\": where must be an object");
    bool any = false;
    for (const auto& p : results.points) {
      if (!detail::matches_where(p, where)) continue;
      any = true;
      rows.push_back(row_for(base, p));
    }
    if (!any) {
      base.note = "no matching point";
      rows.push_back(base);
    }
  }
  return rows;
}

namespace detail {

std::string render_paper_md(const std::vector<PaperRow>& rows) {
  std::ostringstream os;
  os << "# Paper vs ours\n\n";
  if (rows.empty())
    return os.str() +
           "No paper numbers given (the experiment's report.paper is empty or absent).\n";
  os << "| claim | metric | point | paper | ours | ours/paper | source | note |\n"
        "| --- | --- | --- | ---: | ---: | ---: | --- | --- |\n";
  for (const auto& r : rows) {
    os << "| " << md_cell(r.label) << " | " << md_cell(r.metric) << " | "
       << md_cell(r.point.empty() ? "–" : r.point) << " | "
       << md_cell(format_metric(r.metric, r.paper)) << " | "
       << (r.ours ? md_cell(format_metric(r.metric, *r.ours)) : "–") << " | "
       << (r.ratio ? format_double("%.3f", *r.ratio) : "–") << " | " << md_cell(r.source) << " | "
       << md_cell(r.note) << " |\n";
  }
  return os.str();
}

}  // namespace detail
}  // namespace megabench::report
