// Log-log scaling fits: the (x, y) series of the points, fit_loglog, fits.json and fits.md.
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/api/stats.h"
#include "harness/report/internal.h"

namespace megabench::report {

Fit fit_loglog(const std::vector<double>& x, const std::vector<double>& y) {
  const stats::LogLogFit f = stats::fit_loglog(x, y);
  return Fit{f.slope, f.intercept, f.r2, f.n};
}

namespace detail {

namespace {

// The series of a point: the value of the spec's "series" field (or the y name when none).
// Series by "model" are by entry label, so two entries of one model are two lines.
std::string series_base(const PointRecord& p, const std::string& series_field,
                        const std::string& fallback) {
  if (series_field == "model") return p.label.empty() ? p.model : p.label;
  return series_field.empty() ? fallback : plain_value(lookup(p, series_field));
}

// One fits.json entry: the fit of one series, or why there is none.
ojson fit_entry(const std::string& x, const std::string& y, const std::string& series_field,
                const std::string& series, const std::vector<std::pair<double, double>>& pts) {
  ojson f = {
      {"x", x}, {"y", y}, {"series_field", series_field}, {"series", series}, {"n", pts.size()}};
  std::vector<double> xs, ys;
  for (auto [a, b] : pts) {
    xs.push_back(a);
    ys.push_back(b);
  }
  f["x_min"] = xs.front();
  f["x_max"] = xs.back();
  try {
    const Fit fit = fit_loglog(xs, ys);
    f["slope"] = fit.slope;
    f["intercept"] = fit.intercept;
    f["r2"] = fit.r2;
    f["error"] = nullptr;
  } catch (const std::invalid_argument& e) {
    f["slope"] = f["intercept"] = f["r2"] = nullptr;
    f["error"] = e.what();
  }
  return f;
}

}  // namespace

// Where the points of one series differ in another swept axis besides x, that axis joins the
// series name ("megabyte patch=4"), so that such points are never drawn as one line.
XY collect_xy(const ResultSet& r, const std::string& x, const std::string& y,
              const std::string& series) {
  XY out;
  std::map<std::string, std::map<std::string, std::set<std::string>>>
      values;  // base -> axis -> values
  for (const auto& p : r.points) {
    if (!p.ok()) continue;
    for (const auto& [axis, value] : p.axes.items())
      if (axis != x && axis != series)
        values[series_base(p, series, y)][axis].insert(plain_value(value));
  }
  for (const auto& p : r.points) {
    if (!p.ok()) continue;
    auto xv = as_number(lookup(p, x));
    auto yv = as_number(lookup(p, y));
    if (!xv || !yv) {
      ++out.skipped;
      continue;
    }
    const std::string base = series_base(p, series, y);
    std::string s = base;
    for (const auto& [axis, seen] : values[base])
      if (seen.size() > 1 && p.axes.contains(axis))
        s += " " + axis + "=" + plain_value(p.axes[axis]);
    if (!out.series.count(s)) out.order.push_back(s);
    out.series[s].emplace_back(*xv, *yv);
  }
  for (auto& [name, pts] : out.series) std::sort(pts.begin(), pts.end());
  return out;
}

ojson run_fits(const ResultSet& r) {
  ojson fits = ojson::array();
  auto it = r.report_section.find("fits");
  if (it == r.report_section.end()) return fits;
  if (!it->is_array()) throw std::invalid_argument("report: report.fits must be an array");
  for (const auto& spec : *it) {
    const std::string x = spec_string(spec, "x", "report.fits[]", true);
    const std::string y = spec_string(spec, "y", "report.fits[]", true);
    const std::string series = spec_string(spec, "series", "report.fits[]", false);
    const XY xy = collect_xy(r, x, y, series);
    for (const auto& s : xy.order) fits.push_back(fit_entry(x, y, series, s, xy.series.at(s)));
    if (xy.order.empty())
      fits.push_back({{"x", x},
                      {"y", y},
                      {"series_field", series},
                      {"series", nullptr},
                      {"n", 0},
                      {"slope", nullptr},
                      {"intercept", nullptr},
                      {"r2", nullptr},
                      {"error", "no ok point has numeric values for both " + x + " and " + y}});
  }
  return fits;
}

std::string render_fits_md(const ojson& fits) {
  std::ostringstream os;
  os << "# Scaling fits\n\nLeast-squares fit of log(y) = a + b·log(x) per series (Eigen QR); "
        "b is the scaling exponent, R² is measured in log space.\n\n";
  if (fits.empty())
    return os.str() + "No fits requested (the experiment's report.fits is empty or absent).\n";
  os << "| y | x | series | exponent b | intercept a | R² | n | x range | note |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |\n";
  for (const auto& f : fits) {
    auto num = [&](const char* k, const char* fmt) {
      return f[k].is_number() ? format_double(fmt, f[k].get<double>()) : std::string("–");
    };
    std::string range =
        f.contains("x_min") ? plain_value(f["x_min"]) + " – " + plain_value(f["x_max"]) : "–";
    os << "| " << md_cell(f["y"].get<std::string>()) << " | " << md_cell(f["x"].get<std::string>())
       << " | " << md_cell(plain_value(f["series"])) << " | " << num("slope", "%.3f") << " | "
       << num("intercept", "%.3f") << " | " << num("r2", "%.4f") << " | " << f["n"].dump() << " | "
       << md_cell(range) << " | "
       << md_cell(f["error"].is_string() ? f["error"].get<std::string>() : "") << " |\n";
  }
  return os.str();
}

}  // namespace detail
}  // namespace megabench::report
