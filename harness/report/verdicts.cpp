// Verdicts on the paper's claims, computed from the data (report.h: judge_claims). Each claim of
// the claims file names a results folder, the points, and a rule:
//   exponent  the log-log slope of y against x (+1 when y is per byte and the claim per sequence)
//             with its 95% CI: holds when the CI meets expect +- tolerance and misses every
//             alternative +- tolerance (or, with "below", lies under it); differs when it misses
//             the claim; not resolved otherwise, or when the x range is short. x_min / x_max
//             (inclusive) keep the points in a range of x: the asymptotic regime of a fit.
//   ratio     median y of the points `a` over the points `b`, with its bootstrap CI: holds when
//             the CI lies above 1, differs when below, not resolved when it contains 1.
//   value     one deterministic value against the paper's, within rel_tolerance.
//   mean_difference
//             mean y of the points `a` minus mean y of the points `b`, one value per point (seeds
//             are points), with Welch's 95% CI: holds when the CI lies above 0, differs when below,
//             not resolved when it contains 0 or a side has under 2 points. `results` may list
//             several folders (budgets, smallest first): each gets its difference, the verdict is
//             that of the last (largest), and the reason says whether the significant differences
//             change sign across them (crossing) or shrink or grow (converging, diverging). `by`
//             (a field, default run.train.flop_budget) labels each folder. With `y_b`, the b side
//             reads that metric instead (two eval modes of the same points); `paired: true` then
//             pairs a's and b's points in order (the same runs) and uses the paired t CI. With
//             `within` (a claim of no difference): holds when the CI lies inside +-within, differs
//             when it lies wholly outside, not resolved otherwise.
// Timed metrics need their per-repeat samples (records of schema 2); without them the verdict
// is "not resolved". Analytical counts (flops_*, params_*) and peak memory are exact.
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/api/format.h"
#include "harness/api/stats.h"
#include "harness/report/internal.h"

namespace megabench::report {
namespace {

using detail::ojson;

bool deterministic(const std::string& metric) {
  for (const char* prefix : {"flops_", "params_", "peak_memory_"}) {
    if (metric.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// A point's samples of a metric: its per-repeat samples, the one value of a deterministic
// metric, or none.
std::vector<double> samples_of(const PointRecord& p, const std::string& metric) {
  const auto s = p.extra.find("samples");
  if (s != p.extra.end() && s->contains(metric)) return (*s)[metric].get<std::vector<double>>();
  const auto v = detail::as_number(detail::metric_of(p, metric));
  if (v && deterministic(metric)) return {*v};
  return {};
}

std::vector<const PointRecord*> matching(const ResultSet& r, const ojson& where) {
  std::vector<const PointRecord*> out;
  for (const auto& p : r.points) {
    bool ok = p.ok();
    for (auto it = where.begin(); ok && it != where.end(); ++it) {
      ok = detail::values_equal(lookup(p, it.key()), *it);
    }
    if (ok) out.push_back(&p);
  }
  return out;
}

std::string num(double v) {
  return format_double("%.3g", v);
}

// A claim's numeric setting; a missing or non-numeric one is an error naming it.
double number_at(const ojson& c, const char* key) {
  if (!c.contains(key)) throw std::invalid_argument(std::string(key) + ": expected a number");
  if (!c[key].is_number())
    throw std::invalid_argument(std::string(key) + ": expected a number, got " + c[key].dump());
  return c[key].get<double>();
}

double number_or(const ojson& c, const char* key, double fallback) {
  return c.contains(key) ? number_at(c, key) : fallback;
}

ClaimVerdict judge_exponent(const ojson& c, const ResultSet& r, ClaimVerdict v) {
  const std::string x = c.at("x"), y = c.at("y");
  const double x_min = number_or(c, "x_min", -HUGE_VAL), x_max = number_or(c, "x_max", HUGE_VAL);
  std::vector<std::pair<double, std::vector<double>>> pts;
  for (const PointRecord* p : matching(r, c.value("where", ojson::object()))) {
    const auto xv = detail::as_number(lookup(*p, x));
    auto s = samples_of(*p, y);
    if (xv && !s.empty() && *xv >= x_min && *xv <= x_max) pts.push_back({*xv, std::move(s)});
  }
  std::sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  if (pts.size() < 3) {
    v.verdict = "not resolved";
    v.reason = std::to_string(pts.size()) + " points with " + y +
               (deterministic(y) ? "" : " samples") + ": a fit needs 3";
    return v;
  }
  std::vector<double> xs;
  std::vector<std::vector<double>> ys;
  for (auto& [xv, s] : pts) {
    xs.push_back(xv);
    ys.push_back(s);
  }
  const stats::SlopeFit f = stats::fit_loglog_ci(xs, ys);
  const double shift = c.value("per_sequence", false) ? 1.0 : 0.0;
  const double slope = f.slope + shift, lo = f.ci_lo + shift, hi = f.ci_hi + shift;
  const double tol = number_or(c, "tolerance", 0.05);
  v.ours = num(slope) + " [" + num(lo) + ", " + num(hi) + "]";
  auto x_text = [](double v) {  // lengths in full: 1000000, not 1e+06
    return format_double(v == std::round(v) && std::fabs(v) < 1e15 ? "%.0f" : "%g", v);
  };
  const std::string range = x + " " + x_text(xs.front()) + "-" + x_text(xs.back()) + ", " +
                            std::to_string(xs.size()) + " points";
  const bool short_range = xs.back() / xs.front() < number_or(c, "min_x_ratio", 8);
  if (c.contains("below")) {
    const double below = number_at(c, "below");
    v.verdict = short_range   ? "not resolved"
                : hi < below  ? "holds"
                : lo >= below ? "differs"
                              : "not resolved";
    v.reason = "exponent " + v.ours + " against < " + num(below) + " (" + range + ")";
    return v;
  }
  const double expect = number_at(c, "expect");
  const bool meets = lo <= expect + tol && hi >= expect - tol;
  std::string open;
  for (const auto& alt : c.value("alternatives", ojson::array())) {
    const double a = alt.get<double>();
    if (lo <= a + tol && hi >= a - tol) open += (open.empty() ? "" : ", ") + num(a);
  }
  v.verdict = short_range    ? "not resolved"
              : !meets       ? "differs"
              : open.empty() ? "holds"
                             : "not resolved";
  v.reason = "exponent " + v.ours + " against " + num(expect) + " +- " + num(tol) + " (" + range +
             ")" +
             (short_range ? "; range under " + num(number_or(c, "min_x_ratio", 8)) + "x" : "") +
             (open.empty() ? "" : "; also consistent with " + open);
  return v;
}

std::vector<double> pooled(const ResultSet& r, const ojson& where, const std::string& y) {
  std::vector<double> out;
  for (const PointRecord* p : matching(r, where)) {
    const auto s = samples_of(*p, y);
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

ClaimVerdict judge_ratio(const ojson& c, const ResultSet& r, ClaimVerdict v) {
  const std::string y = c.at("y");
  const auto a = pooled(r, c.at("a"), y), b = pooled(r, c.at("b"), y);
  if (a.empty() || b.empty()) {
    const ojson& side = a.empty() ? c.at("a") : c.at("b");
    v.verdict = "not resolved";
    v.reason = matching(r, side).empty()
                   ? "no ok point matches " + side.dump() + " yet"
                   : "no " + y +
                         (deterministic(y) ? "" : " samples (records before schema 2 keep none)") +
                         " for " + side.dump();
    return v;
  }
  const stats::RatioCI q = stats::bootstrap_median_ratio_ci(b, a);  // median(a) / median(b)
  v.ours = num(q.ratio) + " [" + num(q.ci_lo) + ", " + num(q.ci_hi) + "]";
  v.verdict = q.ci_lo > 1 ? "holds" : q.ci_hi < 1 ? "differs" : "not resolved";
  v.reason = y + " ratio " + v.ours + (v.verdict == "not resolved" ? ": the CI contains 1" : "");
  return v;
}

ClaimVerdict judge_value(const ojson& c, const ResultSet& r, ClaimVerdict v) {
  const std::string y = c.at("y");
  const auto pts = matching(r, c.at("where"));
  const auto s = pts.size() == 1 ? samples_of(*pts[0], y) : std::vector<double>{};
  if (s.size() != 1 || !deterministic(y)) {
    v.verdict = "not resolved";
    v.reason = std::to_string(pts.size()) +
               " matching points; a value claim needs one deterministic value";
    return v;
  }
  const double expect = number_at(c, "expect"), tol = number_or(c, "rel_tolerance", 0.05);
  v.ours = format_metric(y, s[0]);
  const double rel = s[0] / expect - 1;
  v.verdict = std::abs(rel) <= tol ? "holds" : "differs";
  v.reason = y + " " + v.ours + " is " + format_double("%+.1f", 100 * rel) + "% of the paper's " +
             format_metric(y, expect) + " (tolerance " + num(100 * tol) + "%)";
  return v;
}

// One value per point: a metric's mean over its repeats, or its one value (bpb).
std::vector<double> per_point(const ResultSet& r, const ojson& where, const std::string& y) {
  std::vector<double> out;
  for (const PointRecord* p : matching(r, where)) {
    const auto s = samples_of(*p, y);
    if (!s.empty()) {
      out.push_back(stats::summarize(s).mean);
    } else if (const auto v = detail::as_number(detail::metric_of(*p, y))) {
      out.push_back(*v);
    }
  }
  return out;
}

std::string mean_std(const std::vector<double>& v) {
  const stats::Summary s = stats::summarize(v);
  return format_double("%.3f", s.mean) +
         (v.size() > 1 ? " +- " + format_double("%.3f", s.std) : "") +
         " (n=" + std::to_string(v.size()) + ")";
}

// One folder (budget) of a mean_difference claim: its label and, when both sides have 2 points
// (paired: the same number), the difference with its CI; `text` describes it for the reason.
struct Level {
  std::string label, text;
  bool tested = false;
  stats::MeanDiff d;
};

Level judge_level(const ojson& c, const std::string& root, const std::string& folder) {
  const std::string y = c.at("y"), y_b = c.value("y_b", y);
  const bool paired = c.value("paired", false);
  const ResultSet r = load_result_set({root + "/" + folder});
  const auto a = per_point(r, c.at("a"), y), b = per_point(r, c.at("b"), y_b);
  Level l;
  const auto any = matching(r, ojson::object());
  const ojson level =
      any.empty() ? ojson() : lookup(*any[0], c.value("by", std::string("run.train.flop_budget")));
  l.label = level.is_number()   ? format_double("%.0e", level.get<double>())
            : level.is_null()   ? folder
            : level.is_string() ? level.get<std::string>()
                                : level.dump();
  // The sides are named by their label when `where` has one.
  const auto side = [&](const char* key) {
    const ojson& w = c.at(key);
    return w.contains("label") && w["label"].is_string() ? w["label"].get<std::string>()
                                                         : std::string(key);
  };
  l.text = l.label + ": " + side("a") + " " + (a.empty() ? "none" : mean_std(a)) + ", " +
           side("b") + " " + (b.empty() ? "none" : mean_std(b));
  if (paired && a.size() != b.size()) {
    l.text += ", unpaired (" + std::to_string(a.size()) + " against " + std::to_string(b.size()) +
              " points)";
  } else if (a.size() >= 2 && b.size() >= 2) {
    l.tested = true;
    l.d = paired ? stats::paired_mean_difference(a, b) : stats::welch_mean_difference(a, b);
    l.text += ", difference " + num(l.d.diff) + " [" + num(l.d.ci_lo) + ", " + num(l.d.ci_hi) + "]";
  } else {
    l.text += ", untested (a side has under 2 points)";
  }
  return l;
}

// How the difference moves across the budgets: crossing (significant both ways), converging or
// diverging (|difference| monotone), and whether the estimate changes sign.
std::string trend_of(const std::vector<Level>& levels) {
  if (levels.size() < 2) return "";
  bool above = false, below = false, all_tested = true;
  for (const auto& l : levels) {
    above |= l.tested && l.d.ci_lo > 0;
    below |= l.tested && l.d.ci_hi < 0;
    all_tested &= l.tested;
  }
  bool shrinks = all_tested, grows = all_tested, sign_change = false;
  for (size_t i = 1; all_tested && i < levels.size(); ++i) {
    const double now = levels[i].d.diff, before = levels[i - 1].d.diff;
    shrinks &= std::abs(now) < std::abs(before);
    grows &= std::abs(now) > std::abs(before);
    sign_change |= (now > 0) != (before > 0);
  }
  if (above && below) return "crossing: significant differences of both signs";
  std::string trend = shrinks ? "converging: the difference shrinks at every step"
                      : grows ? "diverging: the difference grows at every step"
                              : "no monotone trend";
  return trend + (sign_change ? "; the estimate changes sign within the CIs" : "");
}

ClaimVerdict judge_mean_difference(const ojson& c, const std::string& root, ClaimVerdict v) {
  std::vector<std::string> folders;
  if (c.at("results").is_array()) {
    for (const auto& f : c["results"]) folders.push_back(f.get<std::string>());
  } else {
    folders.push_back(c["results"].get<std::string>());
  }
  if (folders.empty())
    throw std::invalid_argument("results: expected a folder or a list of folders");
  std::vector<Level> levels;
  std::string parts;
  for (const auto& folder : folders) {
    levels.push_back(judge_level(c, root, folder));
    parts += (parts.empty() ? "" : "; ") + levels.back().text;
  }
  const Level& last = levels.back();
  const stats::MeanDiff& d = last.d;
  const double within = number_or(c, "within", -1);
  if (last.tested) v.ours = num(d.diff) + " [" + num(d.ci_lo) + ", " + num(d.ci_hi) + "]";
  if (!last.tested) {
    v.verdict = "not resolved";
  } else if (within >= 0) {
    v.verdict = d.ci_lo >= -within && d.ci_hi <= within ? "holds"
                : d.ci_lo > within || d.ci_hi < -within ? "differs"
                                                        : "not resolved";
  } else {
    v.verdict = d.ci_lo > 0 ? "holds" : d.ci_hi < 0 ? "differs" : "not resolved";
  }
  const std::string y = c.at("y"), y_b = c.value("y_b", y), trend = trend_of(levels);
  v.reason = (y_b == y ? y : y + " against " + y_b) +
             (c.value("paired", false) ? " (paired)" : "") + " " + parts +
             (trend.empty() ? "" : "; " + trend) +
             (within >= 0 ? "; no difference means a CI inside +-" + num(within)
              : v.verdict == "not resolved" && last.tested ? "; the last CI contains 0"
                                                           : "");
  return v;
}

}  // namespace

std::vector<ClaimVerdict> judge_claims(const std::string& claims_file, const std::string& root) {
  std::ifstream in(claims_file);
  if (!in) throw std::runtime_error("claims: cannot open '" + claims_file + "'");
  ojson doc;
  try {
    doc = ojson::parse(in);
  } catch (const ojson::parse_error& e) {
    throw std::runtime_error("claims: '" + claims_file + "' is not valid JSON: " + e.what());
  }
  std::vector<ClaimVerdict> out;
  for (const auto& c : doc.at("claims")) {
    ClaimVerdict v{c.at("id"), c.at("claim"), c.at("paper"), "–", "", ""};
    try {
      const std::string kind = c.at("kind");
      if (kind == "mean_difference") {
        out.push_back(judge_mean_difference(c, root, v));
        continue;
      }
      const ResultSet r = load_result_set({root + "/" + c.at("results").get<std::string>()});
      if (kind == "exponent")
        v = judge_exponent(c, r, v);
      else if (kind == "ratio")
        v = judge_ratio(c, r, v);
      else if (kind == "value")
        v = judge_value(c, r, v);
      else
        throw std::invalid_argument(
            "kind: expected exponent, ratio, value or mean_difference, got \"" + kind + "\"");
    } catch (const std::exception& e) {
      throw std::runtime_error("claims: " + v.id + ": " + e.what());
    }
    out.push_back(v);
  }
  return out;
}

std::string render_verdicts_md(const std::vector<ClaimVerdict>& verdicts) {
  std::ostringstream md;
  md << "| claim | paper | ours (95% CI) | verdict | why |\n|---|---|---|---|---|\n";
  for (const auto& v : verdicts) {
    md << "| " << detail::md_cell(v.claim) << " | " << detail::md_cell(v.paper) << " | "
       << detail::md_cell(v.ours) << " | **" << v.verdict << "** | " << detail::md_cell(v.reason)
       << " |\n";
  }
  return md.str();
}

std::string replace_verdicts_block(const std::string& text, const std::string& table) {
  const std::string begin =
      "<!-- verdicts:begin (generated by megabench report --claims; do not edit) -->\n";
  const std::string end = "<!-- verdicts:end -->";
  const auto b = text.find(begin), e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b) {
    throw std::runtime_error("claims: the file has no verdicts block (" +
                             begin.substr(0, begin.size() - 1) + " ... " + end + ")");
  }
  return text.substr(0, b + begin.size()) + table + text.substr(e);
}

}  // namespace megabench::report
