// Provenance and contention checks over a result set (report.h: Trust).
#include <cmath>
#include <ctime>
#include <iomanip>
#include <map>
#include <optional>
#include <sstream>

#include "harness/api/format.h"
#include "harness/report/internal.h"

namespace megabench::report {
namespace {

using detail::ojson;
using detail::str_or;

std::string machine_of(const ojson& j) {
  const std::string host = str_or(j, "host"), cpu = str_or(j, "cpu");
  return host.empty() && cpu.empty() ? "" : host + " / " + cpu;
}

// Commits and dirty flags: every context, and every point's own provenance (schema 2).
void check_provenance(const ResultSet& r, Trust& t) {
  auto add = [&](const ojson& j) {
    const auto c = j.find("git_commit");
    t.commits.insert(c != j.end() && c->is_string() ? c->get<std::string>() : "unknown");
    const auto d = j.find("git_dirty");
    t.dirty |= d != j.end() && d->is_boolean() && d->get<bool>();
    const std::string m = machine_of(j);
    if (!m.empty()) t.machines.insert(m);
  };
  for (const auto& c : r.contexts) add(c);
  for (const auto& p : r.points) {
    if (p.extra.contains("provenance")) add(p.extra["provenance"]);
  }
}

struct Best {
  double matmul = 0, triad = 0;
};

// Seconds since the epoch of an ISO-8601 UTC date ("2026-12-02T08:51:13Z"); nullopt when absent.
std::optional<double> seconds_of(const ojson& j, const char* key) {
  const std::string text = str_or(j, key);
  std::tm tm{};
  std::istringstream in(text);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  if (text.empty() || in.fail()) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

// Every calibration of the results with the machine it was measured on.
std::vector<std::pair<std::string, ojson>> all_calibrations(const ResultSet& r) {
  std::vector<std::pair<std::string, ojson>> out;
  for (const auto& c : r.contexts) {
    if (c.contains("calibration")) out.push_back({machine_of(c), c["calibration"]});
  }
  for (const auto& c : r.calibrations) out.push_back({machine_of(c), c});
  return out;
}

// The calibration nearest in time to a point's measurement (before or after it) on the same
// machine and dtype; the point's own (the latest before it) when nothing is nearer.
ojson nearest_calibration(const PointRecord& p,
                          const std::vector<std::pair<std::string, ojson>>& all) {
  ojson best = p.extra["calibration"];
  const auto at = seconds_of(p.extra, "measured_at");
  const auto own = seconds_of(best, "date");
  if (!at || !own) return best;
  double gap = std::abs(*at - *own);
  const std::string machine = machine_of(p.extra["provenance"]);
  for (const auto& [m, c] : all) {
    const auto t = seconds_of(c, "date");
    if (m != machine || !t || str_or(c, "matmul_dtype") != str_or(best, "matmul_dtype")) continue;
    if (std::abs(*at - *t) < gap) {
      gap = std::abs(*at - *t);
      best = c;
    }
  }
  return best;
}

// The best calibration of each machine and matmul dtype, over contexts, calibration records and
// the calibrations the points carry.
std::map<std::string, Best> best_calibrations(const ResultSet& r) {
  std::map<std::string, Best> best;
  auto add = [&](const ojson& c, const std::string& machine) {
    Best& b = best[machine + "|" + str_or(c, "matmul_dtype")];
    b.matmul =
        std::max(b.matmul, detail::as_number(c.value("matmul_gflops_per_s", ojson())).value_or(0));
    b.triad = std::max(b.triad, detail::as_number(c.value("triad_gb_per_s", ojson())).value_or(0));
  };
  for (const auto& c : r.contexts) {
    if (c.contains("calibration")) add(c["calibration"], machine_of(c));
  }
  for (const auto& c : r.calibrations) add(c, machine_of(c));
  for (const auto& p : r.points) {
    if (p.extra.contains("calibration") && p.extra.contains("provenance")) {
      add(p.extra["calibration"], machine_of(p.extra["provenance"]));
    }
  }
  return best;
}

void check_contention(const ResultSet& r, double drop, Trust& t) {
  const auto best = best_calibrations(r);
  const auto all = all_calibrations(r);
  for (const auto& p : r.points) {
    if (!p.extra.contains("calibration") || !p.extra.contains("provenance")) continue;
    const ojson c = nearest_calibration(p, all);
    const auto it = best.find(machine_of(p.extra["provenance"]) + "|" + str_or(c, "matmul_dtype"));
    if (it == best.end()) continue;
    const double mm = detail::as_number(c.value("matmul_gflops_per_s", ojson())).value_or(0);
    const double tr = detail::as_number(c.value("triad_gb_per_s", ojson())).value_or(0);
    const bool low_mm = it->second.matmul > 0 && mm < (1 - drop) * it->second.matmul;
    const bool low_tr = it->second.triad > 0 && tr > 0 && tr < (1 - drop) * it->second.triad;
    if (low_mm || low_tr) t.contended.insert(p.key);
  }
}

void write_warnings(const ResultSet& r, double drop, Trust& t) {
  if (t.commits.size() > 1) {
    std::string list;
    for (const auto& c : t.commits) list += (list.empty() ? "" : ", ") + c.substr(0, 12);
    t.warnings.push_back("the results mix " + std::to_string(t.commits.size()) + " commits (" +
                         list + ")");
  } else if (t.commits.count("unknown")) {
    t.warnings.push_back("the results carry no git commit");
  }
  if (t.dirty)
    t.warnings.push_back(
        "some results come from a tree with uncommitted changes (outside results/)");
  if (t.machines.size() > 1) {
    t.warnings.push_back("the results come from " + std::to_string(t.machines.size()) +
                         " machines: timings of different machines are not comparable");
  }
  if (!t.contended.empty()) {
    t.warnings.push_back(
        std::to_string(t.contended.size()) + " of " + std::to_string(r.points.size()) +
        " points were measured while the machine ran more than " + format_value(100 * drop) +
        "% below its best calibration (marked \"contended\")");
  }
  size_t without = 0;
  for (const auto& p : r.points) without += !p.extra.contains("calibration");
  if (!r.points.empty() && without == r.points.size()) {
    t.warnings.push_back(
        "no point carries its own calibration (records of schema 1): contention is not checked");
  }
}

}  // namespace

Trust check_trust(const ResultSet& r, double drop) {
  Trust t;
  check_provenance(r, t);
  check_contention(r, drop, t);
  write_warnings(r, drop, t);
  return t;
}

}  // namespace megabench::report
