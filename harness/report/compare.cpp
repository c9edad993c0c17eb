// `megabench compare`: matching points by key, the per-metric statistics and verdicts, the
// geometric means and the machine check. The output formats are in compare_render.cpp.
#include "harness/report/compare.h"

#include <cmath>
#include <map>
#include <set>

#include "harness/api/format.h"
#include "harness/report/internal.h"

namespace megabench::report {

namespace {

using detail::ojson;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void check_options(const CompareOptions& o) {
  if (!(o.threshold_pct >= 0))
    throw std::invalid_argument("compare: threshold must be >= 0 percent, got " +
                                format_double("%g", o.threshold_pct));
  if (!(o.alpha > 0 && o.alpha < 1))
    throw std::invalid_argument("compare: alpha must be in (0, 1), got " +
                                format_double("%g", o.alpha));
  if (!(o.confidence > 0 && o.confidence < 1))
    throw std::invalid_argument("compare: confidence must be in (0, 1), got " +
                                format_double("%g", o.confidence));
  if (o.resamples < 1)
    throw std::invalid_argument("compare: resamples must be >= 1, got " +
                                std::to_string(o.resamples));
}

// The repeats of one metric in a record ("samples": {"<metric>": [...]}); empty when the record
// has none. Samples that are not an array of positive finite numbers are a warning, not data.
std::vector<double> samples_of(const PointRecord& p, const std::string& metric,
                               const std::string& side, std::vector<std::string>& warnings) {
  auto all = p.extra.find("samples");
  if (all == p.extra.end() || !all->is_object()) return {};
  auto it = all->find(metric);
  if (it == all->end()) return {};
  std::vector<double> out;
  for (const auto& v : it->is_array() ? *it : ojson::array()) {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0) break;
    out.push_back(v.get<double>());
  }
  if (!it->is_array() || it->empty() || out.size() != it->size()) {
    warnings.push_back(side + " " + p.name + ": samples." + metric +
                       " is not a non-empty array of positive numbers; compared without it");
    return {};
  }
  return out;
}

// The statistics of one metric from the repeats of both sides.
void add_statistics(MetricChange& m, const std::vector<double>& old_s,
                    const std::vector<double>& new_s, const CompareOptions& o, uint64_t seed) {
  m.n_old = static_cast<int64_t>(old_s.size());
  m.n_new = static_cast<int64_t>(new_s.size());
  const stats::RatioCI r =
      stats::bootstrap_median_ratio_ci(old_s, new_s, o.confidence, o.resamples, seed);
  m.old_median = stats::median(old_s);
  m.new_median = stats::median(new_s);
  m.ratio = r.ratio;
  m.ci_lo = r.ci_lo;
  m.ci_hi = r.ci_hi;
  m.p = stats::mann_whitney_u(old_s, new_s).p;
  const bool changed = *m.p < o.alpha && std::fabs(m.ratio - 1) > o.threshold_pct / 100;
  const bool worse = m.higher_is_better ? m.ratio < 1 : m.ratio > 1;
  m.verdict = !changed ? Verdict::no_change : worse ? Verdict::slower : Verdict::faster;
}

// The compared metrics of one matched pair of records, appended to c.changes.
void compare_point(const PointRecord& o, const PointRecord& n, Comparison& c) {
  for (const auto& [metric, new_value] : n.metrics.items()) {
    auto old_it = o.metrics.find(metric);
    if (!is_compared_metric(metric) || old_it == o.metrics.end() || !old_it->is_number() ||
        !new_value.is_number())
      continue;
    MetricChange m{n.name, n.key, metric, ends_with(metric, "_bytes_per_s")};
    m.old_median = old_it->get<double>();
    m.new_median = new_value.get<double>();
    m.ratio = m.new_median / m.old_median;
    const auto old_s = samples_of(o, metric, "OLD", c.warnings);
    const auto new_s = samples_of(n, metric, "NEW", c.warnings);
    if (!old_s.empty() && !new_s.empty())
      add_statistics(m, old_s, new_s, c.options, c.options.seed + c.changes.size());
    c.changes.push_back(std::move(m));
  }
}

void add_geomeans(Comparison& c) {
  std::map<std::string, std::pair<double, int>> sums;  // metric -> (sum of ln ratio, count)
  for (const auto& m : c.changes) {
    if (!(m.ratio > 0 && std::isfinite(m.ratio))) continue;
    if (!sums.count(m.metric)) c.geomeans.push_back({m.metric, 0, 0});
    sums[m.metric].first += std::log(m.ratio);
    sums[m.metric].second += 1;
  }
  for (auto& g : c.geomeans) {
    g.points = sums[g.metric].second;
    g.ratio = std::exp(sums[g.metric].first / g.points);
  }
}

// "host=a cpu=b device=c" of a context record.
std::string machine_of(const ojson& ctx) {
  std::string out;
  for (const char* field : {"host", "cpu", "device"})
    out += std::string(out.empty() ? "" : " ") + field + "=" + detail::str_or(ctx, field, "?");
  return out;
}

void check_machines(const ResultSet& old_set, const ResultSet& new_set, Comparison& c) {
  std::set<std::string> machines;
  std::string sides[2];
  for (int side = 0; side < 2; ++side) {
    std::set<std::string> mine;
    for (const auto& ctx : (side == 0 ? old_set : new_set).contexts) mine.insert(machine_of(ctx));
    for (const auto& m : mine) sides[side] += (sides[side].empty() ? "" : "; ") + m;
    machines.insert(mine.begin(), mine.end());
  }
  if (machines.size() > 1)
    c.warnings.push_back(
        "results from different machines (timings then compare machines, not code): OLD " +
        sides[0] + " | NEW " + sides[1]);
}

}  // namespace

const char* verdict_text(Verdict v) {
  switch (v) {
    case Verdict::faster:
      return "faster";
    case Verdict::slower:
      return "slower";
    case Verdict::no_change:
      return "no change";
    case Verdict::no_samples:
      break;
  }
  return "no samples";
}

bool is_compared_metric(const std::string& metric) {
  return ends_with(metric, "_ms") || ends_with(metric, "_ms_per_byte") ||
         ends_with(metric, "_bytes_per_s");
}

Comparison compare(const ResultSet& old_set, const ResultSet& new_set,
                   const CompareOptions& options) {
  check_options(options);
  Comparison c;
  c.options = options;
  c.old_points = static_cast<int>(old_set.points.size());
  c.new_points = static_cast<int>(new_set.points.size());
  std::map<std::string, const PointRecord*> old_by_key;
  for (const auto& p : old_set.points) old_by_key[p.key] = &p;
  for (const auto& n : new_set.points) {
    auto it = old_by_key.find(n.key);
    if (it == old_by_key.end()) continue;
    ++c.matched;
    compare_point(*it->second, n, c);
  }
  c.only_old = c.old_points - c.matched;
  c.only_new = c.new_points - c.matched;
  add_geomeans(c);
  check_machines(old_set, new_set, c);
  return c;
}

Comparison compare_paths(const std::string& old_path, const std::string& new_path,
                         const CompareOptions& options) {
  const ResultSet old_set = load_result_set({old_path});
  const ResultSet new_set = load_result_set({new_path});
  Comparison c = compare(old_set, new_set, options);
  c.old_source = old_path;
  c.new_source = new_path;
  for (const auto& [side, set] : {std::pair{"OLD", &old_set}, std::pair{"NEW", &new_set}})
    for (const auto& w : set->warnings) c.warnings.push_back(std::string(side) + ": " + w);
  return c;
}

std::vector<MetricChange> slower_than(const Comparison& c, double pct) {
  std::vector<MetricChange> out;
  for (const auto& m : c.changes) {
    if (!m.p || !(*m.p < c.options.alpha)) continue;
    const double change = m.higher_is_better ? 1 - m.ratio : m.ratio - 1;
    if (change > pct / 100) out.push_back(m);
  }
  return out;
}

}  // namespace megabench::report
