// Provenance and contention checks of `report` (report.h: check_trust, Options::strict) on
// synthetic result folders.
#include <catch2/catch.hpp>
#include <sstream>

#include "harness/report/report.h"
#include "tests/support.h"

using megabench::json;
using namespace megabench::test;

namespace {

json context(const std::string& commit, bool dirty, double matmul, double triad) {
  return {
      {"type", "context"},
      {"schema_version", 2},
      {"date", "2026-12-01T00:00:00Z"},
      {"host", "h"},
      {"cpu", "c"},
      {"git_commit", commit},
      {"git_dirty", dirty},
      {"experiment", {{"name", "t"}}},
      {"calibration",
       {{"matmul_dtype", "Float"}, {"matmul_gflops_per_s", matmul}, {"triad_gb_per_s", triad}}}};
}

json point(const std::string& key, const std::string& commit, bool dirty, double matmul,
           double triad) {
  return {
      {"type", "point"},
      {"schema_version", 2},
      {"key", key},
      {"name", "m/" + key},
      {"model", "m"},
      {"label", "m"},
      {"status", "ok"},
      {"error", nullptr},
      {"axes", json::object()},
      {"config", json::object()},
      {"metrics", {{"forward_ms", 1.0}}},
      {"calibration",
       {{"matmul_dtype", "Float"}, {"matmul_gflops_per_s", matmul}, {"triad_gb_per_s", triad}}},
      {"provenance", {{"host", "h"}, {"cpu", "c"}, {"git_commit", commit}, {"git_dirty", dirty}}}};
}

std::string folder(const std::string& name, const std::vector<json>& records) {
  const auto dir = fresh_dir(name);
  std::string text;
  for (const auto& r : records) text += r.dump() + "\n";
  write_file(dir + "/results.jsonl", text);
  return dir;
}

const std::string kA(40, 'a'), kB(40, 'b');

}  // namespace

TEST_CASE("trust: one clean commit passes --strict; mixed commits and dirty trees do not",
          "[report][trust]") {
  std::ostringstream log;
  megabench::report::Options strict;
  strict.strict = true;
  strict.plots = false;

  const auto clean =
      folder("trust_clean", {context(kA, false, 100, 50), point("p1", kA, false, 100, 50)});
  auto t = megabench::report::check_trust(megabench::load_result_set({clean}));
  CHECK(t.clean());
  CHECK(t.warnings.empty());
  CHECK_NOTHROW(megabench::report::write({clean}, clean, log, strict));

  const auto mixed =
      folder("trust_mixed", {context(kA, false, 100, 50), point("p1", kA, false, 100, 50),
                             context(kB, false, 100, 50), point("p2", kB, false, 100, 50)});
  t = megabench::report::check_trust(megabench::load_result_set({mixed}));
  CHECK_FALSE(t.clean());
  CHECK(t.commits.size() == 2);
  REQUIRE_FALSE(t.warnings.empty());
  CHECK_THAT(t.warnings[0], Catch::Contains("mix 2 commits"));
  CHECK_THROWS_WITH(megabench::report::write({mixed}, mixed, log, strict),
                    Catch::Contains("--strict"));

  const auto dirty =
      folder("trust_dirty", {context(kA, true, 100, 50), point("p1", kA, true, 100, 50)});
  t = megabench::report::check_trust(megabench::load_result_set({dirty}));
  CHECK(t.dirty);
  CHECK_THROWS(megabench::report::write({dirty}, dirty, log, strict));
  megabench::report::Options lenient;
  lenient.plots = false;
  CHECK_NOTHROW(megabench::report::write({dirty}, dirty, log, lenient));  // warns, writes
  CHECK_THAT(read_text(dirty + "/table.md"), Catch::Contains("uncommitted changes"));
}

TEST_CASE("trust: a point measured below 85% of its machine's best calibration is contended",
          "[report][trust]") {
  const auto dir = folder(
      "trust_contended",
      {context(kA, false, 100, 50),
       point("fast", kA, false, 99, 49),
       point("slow_matmul", kA, false, 80, 50),
       point("slow_triad", kA, false, 100, 40),
       point("edge", kA, false, 86, 43),
       {{"type", "calibration"},
        {"calibration",
         {{"matmul_dtype", "Float"}, {"matmul_gflops_per_s", 101}, {"triad_gb_per_s", 50}}}}});
  const auto t = megabench::report::check_trust(megabench::load_result_set({dir}));
  CHECK(t.contended == std::set<std::string>{"slow_matmul", "slow_triad"});
  std::ostringstream log;
  megabench::report::Options o;
  o.plots = false;
  megabench::report::write({dir}, dir, log, o);
  const auto md = read_text(dir + "/table.md");
  CHECK_THAT(md,
             Catch::Contains("2 of 4 points were measured while the machine ran more than 15%"));
  CHECK_THAT(md, Catch::Contains("ok, contended"));
}

TEST_CASE("trust: a point is judged by the calibration nearest in time to it", "[report][trust]") {
  auto at = [](json p, const std::string& when, const std::string& calibrated) {
    p["measured_at"] = when;
    p["calibration"]["date"] = calibrated;
    return p;
  };
  auto calibration = [](const std::string& when, double matmul) {
    return json{{"type", "calibration"},
                {"calibration",
                 {{"matmul_dtype", "Float"},
                  {"matmul_gflops_per_s", matmul},
                  {"triad_gb_per_s", 50},
                  {"date", when}}}};
  };
  // The point "late" was measured just before a calibration that read low (60), long after its
  // own good one: contended. "early" sits next to its good calibration: not contended.
  const auto dir = folder(
      "trust_nearest",
      {context(kA, false, 100, 50),
       at(point("early", kA, false, 100, 50), "2026-12-01T00:01:00Z", "2026-12-01T00:00:00Z"),
       at(point("late", kA, false, 100, 50), "2026-12-01T00:59:00Z", "2026-12-01T00:00:00Z"),
       calibration("2026-12-01T01:00:00Z", 60)});
  const auto t = megabench::report::check_trust(megabench::load_result_set({dir}));
  CHECK(t.contended == std::set<std::string>{"late"});
}
