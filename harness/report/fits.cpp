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

// Timings below this are dominated by launch and timer overhead: left out of fits, and listed.
constexpr double kNoiseFloorMs = 0.1;

// The slope between successive points, where a power law bends (on the values themselves).
ojson local_slopes(const std::vector<double>& xs, const std::vector<double>& ys) {
  ojson out = ojson::array();
  for (size_t i = 0; i + 1 < xs.size(); ++i) {
    const bool ok = xs[i] > 0 && ys[i] > 0 && ys[i + 1] > 0 && xs[i + 1] > xs[i];
    out.push_back(ok ? ojson(std::log(ys[i + 1] / ys[i]) / std::log(xs[i + 1] / xs[i])) : ojson());
  }
  return out;
}

// The 95% CI of the slope by bootstrap over every point's samples, when every point has them.
void add_slope_ci(ojson& f, const std::vector<double>& xs,
                  const std::map<double, std::vector<double>>* samples) {
  f["ci_lo"] = f["ci_hi"] = nullptr;
  if (!samples) return;
  std::vector<std::vector<double>> per_x;
  for (double xv : xs) {
    const auto it = samples->find(xv);
    if (it == samples->end() || it->second.empty()) return;
    per_x.push_back(it->second);
  }
  const stats::SlopeFit fit = stats::fit_loglog_ci(xs, per_x);
  f["ci_lo"] = fit.ci_lo;
  f["ci_hi"] = fit.ci_hi;
}

// One fits.json entry: the fit of one series, or why there is none.
ojson fit_entry(const std::string& x, const std::string& y, const std::string& series_field,
                const std::string& series, const std::vector<std::pair<double, double>>& pts,
                const std::map<double, std::vector<double>>* samples) {
  ojson f = {{"x", x}, {"y", y}, {"series_field", series_field}, {"series", series}};
  std::vector<double> xs, ys;
  ojson below = ojson::array();
  for (auto [a, b] : pts) {
    if (is_time_metric(y) && b < kNoiseFloorMs) {
      below.push_back(a);
      continue;
    }
    xs.push_back(a);
    ys.push_back(b);
  }
  f["n"] = xs.size();
  f["below_noise_floor"] = below;  // x of the points left out (y under 0.1 ms)
  f["x_min"] = xs.empty() ? ojson() : ojson(xs.front());
  f["x_max"] = xs.empty() ? ojson() : ojson(xs.back());
  try {
    const Fit fit = fit_loglog(xs, ys);
    f["slope"] = fit.slope;
    f["intercept"] = fit.intercept;
    f["r2"] = fit.r2;
    add_slope_ci(f, xs, samples);
    f["local_slopes"] = local_slopes(xs, ys);
    f["error"] = nullptr;
  } catch (const std::invalid_argument& e) {
    f["slope"] = f["intercept"] = f["r2"] = f["ci_lo"] = f["ci_hi"] = nullptr;
    f["error"] = e.what();
  }
  return f;
}

}  // namespace

// Where the points of one series differ in another swept axis besides x, that axis joins the
// series name ("megabyte patch=4"), so that such points are never drawn as one line; an axis that
// moves with x (zipped with it: one value per x, as P = N^(1/3)) does not split the series.
XY collect_xy(const ResultSet& r, const std::string& x, const std::string& y,
              const std::string& series, bool split_by_axes) {
  XY out;
  std::map<std::string, std::map<std::string, std::map<std::string, std::set<std::string>>>>
      per_x;  // base -> axis -> x -> the axis's values at that x
  for (const auto& p : r.points) {
    if (!p.ok()) continue;
    const std::string base = series_base(p, series, y), xv = plain_value(lookup(p, x));
    for (const auto& [axis, value] : p.axes.items())
      if (axis != x && axis != series) per_x[base][axis][xv].insert(plain_value(value));
  }
  // An axis splits a series when it takes more than one value at some x; one that moves with x
  // (one value at each x) does not.
  std::map<std::string, std::set<std::string>> splitting;  // base -> axes
  for (const auto& [base, axes] : per_x)
    for (const auto& [axis, by_x] : axes)
      if (std::any_of(by_x.begin(), by_x.end(), [](const auto& e) { return e.second.size() > 1; }))
        splitting[base].insert(axis);
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
    if (split_by_axes)
      for (const auto& axis : splitting[base])
        if (p.axes.contains(axis)) s += " " + axis + "=" + plain_value(p.axes[axis]);
    if (!out.series.count(s)) out.order.push_back(s);
    out.series[s].emplace_back(*xv, *yv);
    const auto samples = p.extra.find("samples");
    if (samples != p.extra.end() && samples->contains(y)) {
      out.samples[s][*xv] = (*samples)[y].get<std::vector<double>>();
    }
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
    for (const auto& s : xy.order) {
      const auto smp = xy.samples.find(s);
      fits.push_back(fit_entry(x, y, series, s, xy.series.at(s),
                               smp == xy.samples.end() ? nullptr : &smp->second));
    }
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
        "b is the scaling exponent, R² is measured in log space. The 95% CI of b is a bootstrap "
        "over every point's repeats (shown only when every point kept them); the local slopes are "
        "those between successive x, where the asymptotic regime starts. Timings under 0.1 ms are "
        "left out of the fit (noise floor) and listed in the note.\n\n";
  if (fits.empty())
    return os.str() + "No fits requested (the experiment's report.fits is empty or absent).\n";
  os << "| y | x | series | exponent b | 95% CI | intercept a | R² | n | x range | local slopes | "
        "note |\n"
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | --- | --- | --- |\n";
  for (const auto& f : fits) {
    auto num = [&](const char* k, const char* fmt) {
      return f[k].is_number() ? format_double(fmt, f[k].get<double>()) : std::string("–");
    };
    std::string range =
        f.contains("x_min") ? plain_value(f["x_min"]) + " – " + plain_value(f["x_max"]) : "–";
    const std::string ci = f.value("ci_lo", ojson()).is_number()
                               ? "[" + num("ci_lo", "%.3f") + ", " + num("ci_hi", "%.3f") + "]"
                               : "–";
    std::string local;
    for (const auto& s : f.value("local_slopes", ojson::array()))
      local += (local.empty() ? "" : ", ") +
               (s.is_number() ? format_double("%.2f", s.get<double>()) : "–");
    std::string note = f["error"].is_string() ? f["error"].get<std::string>() : "";
    if (!f.value("below_noise_floor", ojson::array()).empty())
      note += (note.empty() ? "" : "; ") + std::string("under the 0.1 ms noise floor at x = ") +
              f["below_noise_floor"].dump();
    os << "| " << md_cell(f["y"].get<std::string>()) << " | " << md_cell(f["x"].get<std::string>())
       << " | " << md_cell(plain_value(f["series"])) << " | " << num("slope", "%.3f") << " | " << ci
       << " | " << num("intercept", "%.3f") << " | " << num("r2", "%.4f") << " | " << f["n"].dump()
       << " | " << md_cell(range) << " | " << md_cell(local.empty() ? "–" : local) << " | "
       << md_cell(note) << " |\n";
  }
  return os.str();
}

}  // namespace detail
}  // namespace megabench::report
