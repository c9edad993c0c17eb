// Tests of harness/report/compare (`megabench compare`) on synthetic result sets written as
// results.jsonl files: a known 10% slowdown is found (slower, p < 0.05), two draws of one
// distribution read "no change", the --fail-if-slower gate, records without samples, unmatched
// points, the machine-mix warning, the output formats, and the command's exit code 3.
#include <sys/wait.h>

#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "harness/report/compare.h"
#include "tests/support.h"

namespace rep = megabench::report;
using json = nlohmann::json;

namespace {

// How one synthetic run is drawn: per point, `repeats` lognormal samples (sigma 0.02) around a
// base time, scaled by `forward_scale` for forward_ms and `throughput_scale` for
// generate_bytes_per_s.
struct Draw {
  std::string host = "bench-a";
  uint64_t seed = 1;
  int points = 3;
  int repeats = 10;
  double forward_scale = 1.0, throughput_scale = 1.0;
  bool with_samples = true;
};

std::vector<double> draws(std::mt19937_64& rng, int n, double median) {
  std::lognormal_distribution<double> dist(std::log(median), 0.02);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

json point_record(int i, const Draw& d, std::mt19937_64& rng) {
  const std::string name = "megabyte/seq_len=" + std::to_string(1024 << i);
  json samples = {{"forward_ms", draws(rng, d.repeats, 10.0 * (i + 1) * d.forward_scale)},
                  {"train_step_ms", draws(rng, d.repeats, 30.0 * (i + 1))},
                  {"generate_bytes_per_s", draws(rng, d.repeats, 5e5 * d.throughput_scale)}};
  json metrics = {{"params_total", 1000 * (i + 1)}};
  for (auto& [metric, values] : samples.items())
    metrics[metric] = median_of(values.get<std::vector<double>>());
  json rec = {
      {"type", "point"},        {"schema_version", 2},      {"key", "key" + std::to_string(i)},
      {"name", name},           {"model", "megabyte"},      {"label", "megabyte"},
      {"axes", json::object()}, {"config", json::object()}, {"metrics", metrics},
      {"status", "ok"},         {"error", nullptr}};
  if (d.with_samples) rec["samples"] = samples;
  return rec;
}

// A results.jsonl of one context record and d.points point records; returns its path.
std::string write_run(const std::string& dir, const Draw& d) {
  std::mt19937_64 rng(d.seed);
  std::string text = json{{"type", "context"}, {"schema_version", 2}, {"date", "2024-06-11"},
                          {"host", d.host},    {"cpu", "Test CPU"},   {"device", "cpu"}}
                         .dump() +
                     "\n";
  for (int i = 0; i < d.points; ++i) text += point_record(i, d, rng).dump() + "\n";
  return megabench::test::write_file(dir + "/results.jsonl", text);
}

const rep::MetricChange& find(const rep::Comparison& c, int point, const std::string& metric) {
  for (const auto& m : c.changes)
    if (m.key == "key" + std::to_string(point) && m.metric == metric) return m;
  FAIL("no change for point " << point << " " << metric);
  throw std::logic_error("unreachable");
}

struct Cli {
  int status;
  std::string out;
};
Cli run_cli(const std::string& args) {
  FILE* pipe = popen((std::string(MEGABENCH_BINARY) + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  std::array<char, 4096> buf;
  for (size_t n; (n = fread(buf.data(), 1, buf.size(), pipe)) > 0;) out.append(buf.data(), n);
  return {WEXITSTATUS(pclose(pipe)), out};
}

}  // namespace

TEST_CASE("compare finds a 10% slowdown and a 10% throughput drop, and nothing else", "[compare]") {
  const std::string a = megabench::test::fresh_dir("cmp_old"),
                    b = megabench::test::fresh_dir("cmp_new");
  write_run(a, Draw{.seed = 1});
  write_run(b, Draw{.seed = 2, .forward_scale = 1.1, .throughput_scale = 0.9});
  const rep::Comparison c = rep::compare_paths(a, b);
  CHECK(c.matched == 3);
  CHECK(c.only_old == 0);
  CHECK(c.only_new == 0);
  CHECK(c.changes.size() == 9);  // 3 points x 3 timed metrics; params_total is not compared
  CHECK(c.warnings.empty());
  for (int i = 0; i < 3; ++i) {
    const auto& fwd = find(c, i, "forward_ms");
    CHECK(fwd.verdict == rep::Verdict::slower);
    REQUIRE(fwd.p);
    CHECK(*fwd.p < 0.05);
    CHECK(fwd.ratio == Approx(1.1).epsilon(0.03));
    CHECK(*fwd.ci_lo < fwd.ratio);
    CHECK(fwd.ratio < *fwd.ci_hi);
    CHECK(fwd.n_old == 10);
    const auto& gen = find(c, i, "generate_bytes_per_s");
    CHECK(gen.higher_is_better);
    CHECK(gen.verdict == rep::Verdict::slower);
    CHECK(find(c, i, "train_step_ms").verdict == rep::Verdict::no_change);
  }
  REQUIRE(c.geomeans.size() == 3);
  CHECK(c.geomeans[0].metric == "forward_ms");
  CHECK(c.geomeans[0].ratio == Approx(1.1).epsilon(0.03));
  CHECK(c.geomeans[0].points == 3);

  // Reversed: the same data read as a speed-up.
  const rep::Comparison back = rep::compare_paths(b, a);
  CHECK(find(back, 0, "forward_ms").verdict == rep::Verdict::faster);
  CHECK(find(back, 0, "generate_bytes_per_s").verdict == rep::Verdict::faster);
}

TEST_CASE("compare: two draws of one distribution read 'no change' in >= 90% of 50 trials",
          "[compare]") {
  const std::string a = megabench::test::fresh_dir("cmp_same_a");
  const std::string b = megabench::test::fresh_dir("cmp_same_b");
  int unchanged = 0, total = 0;
  for (uint64_t trial = 0; trial < 50; ++trial) {  // each trial rewrites both files
    write_run(a, Draw{.seed = 1000 + 2 * trial, .points = 1});
    write_run(b, Draw{.seed = 1001 + 2 * trial, .points = 1});
    const auto& m = find(rep::compare_paths(a, b), 0, "forward_ms");
    unchanged += m.verdict == rep::Verdict::no_change;
    ++total;
  }
  CHECK(unchanged >= 45);
  CHECK(total == 50);
}

TEST_CASE("compare: the --fail-if-slower gate; records without samples get no verdict",
          "[compare]") {
  const std::string a = megabench::test::fresh_dir("cmp_gate_a"),
                    b = megabench::test::fresh_dir("cmp_gate_b");
  write_run(a, Draw{.seed = 3});
  write_run(b, Draw{.seed = 4, .forward_scale = 1.1});
  const rep::Comparison c = rep::compare_paths(a, b);
  const auto slow = rep::slower_than(c, 5);
  CHECK(slow.size() == 3);
  for (const auto& m : slow) CHECK(m.metric == "forward_ms");
  CHECK(rep::slower_than(c, 20).empty());

  // 50% slower, but without repeats there is no test: no CI, no p, "no samples", no gate.
  const std::string d = megabench::test::fresh_dir("cmp_gate_d");
  write_run(d, Draw{.seed = 5, .forward_scale = 1.5, .with_samples = false});
  const rep::Comparison nos = rep::compare_paths(a, d);
  const auto& fwd = find(nos, 0, "forward_ms");
  CHECK(fwd.ratio == Approx(1.5).epsilon(0.05));
  CHECK_FALSE(fwd.ci_lo);
  CHECK_FALSE(fwd.p);
  CHECK(fwd.verdict == rep::Verdict::no_samples);
  CHECK(rep::slower_than(nos, 5).empty());
  CHECK(rep::render_comparison(nos, "text").find("no samples") != std::string::npos);
}

TEST_CASE("compare: unmatched points are counted, machines that differ are flagged", "[compare]") {
  const std::string a = megabench::test::fresh_dir("cmp_mix_a"),
                    b = megabench::test::fresh_dir("cmp_mix_b");
  const std::string old_file = write_run(a, Draw{.seed = 6, .points = 2});
  write_run(b, Draw{.host = "bench-b", .seed = 7, .points = 3});
  const rep::Comparison c = rep::compare_paths(old_file, b);  // a .jsonl file against a folder
  CHECK(c.matched == 2);
  CHECK(c.only_old == 0);
  CHECK(c.only_new == 1);
  REQUIRE(c.warnings.size() == 1);
  CHECK(c.warnings[0].find("different machines") != std::string::npos);
  CHECK(c.warnings[0].find("host=bench-a") != std::string::npos);
  CHECK(c.warnings[0].find("host=bench-b") != std::string::npos);
  CHECK(rep::render_comparison(c, "text").find("warning: results from different machines") !=
        std::string::npos);
}

TEST_CASE("compare: text, markdown, csv and json output", "[compare]") {
  const std::string a = megabench::test::fresh_dir("cmp_fmt_a"),
                    b = megabench::test::fresh_dir("cmp_fmt_b");
  write_run(a, Draw{.seed = 8, .points = 1});
  write_run(b, Draw{.seed = 9, .points = 1, .forward_scale = 1.1});
  const rep::Comparison c = rep::compare_paths(a, b);
  const std::string text = rep::render_comparison(c, "text");
  CHECK(text.find("95% CI") != std::string::npos);
  CHECK(text.find("\033[") == std::string::npos);
  CHECK(rep::render_comparison(c, "text", /*colour=*/true).find("\033[31mslower") !=
        std::string::npos);
  CHECK(rep::render_comparison(c, "md").find("| megabyte/seq_len=1024 | forward_ms |") !=
        std::string::npos);
  const std::string csv = rep::render_comparison(c, "csv");
  CHECK(
      csv.rfind("point,key,metric,old_median,new_median,ratio,ci_lo,ci_hi,p,n_old,n_new,verdict\n",
                0) == 0);
  const json j = json::parse(rep::render_comparison(c, "json"));
  CHECK(j["matched"] == 1);
  CHECK(j["changes"].size() == 3);
  CHECK(j["changes"][0]["verdict"] == "slower");
  CHECK(j["geomeans"][0]["metric"] == "forward_ms");
  CHECK_THROWS_WITH(rep::render_comparison(c, "html"), Catch::Contains("unknown format 'html'"));
  CHECK_THROWS_WITH(rep::compare_paths(a, b, {.threshold_pct = -1}), Catch::Contains("threshold"));
}

TEST_CASE("megabench compare exits 3 when --fail-if-slower trips", "[compare][cli]") {
  const std::string a = megabench::test::fresh_dir("cmp_cli_a"),
                    b = megabench::test::fresh_dir("cmp_cli_b");
  write_run(a, Draw{.seed = 10});
  write_run(b, Draw{.seed = 11, .forward_scale = 1.1});
  const Cli plain = run_cli("compare " + a + " " + b);
  CHECK(plain.status == 0);
  CHECK(plain.out.find("slower") != std::string::npos);
  const Cli gate = run_cli("compare " + a + " " + b + " --fail-if-slower 5 --format csv");
  CHECK(gate.status == 3);
  CHECK(gate.out.find("3 metric(s) slower by more than 5%") != std::string::npos);
  CHECK(run_cli("compare " + a + " " + b + " --fail-if-slower 20").status == 0);
  CHECK(run_cli("compare " + a + " " + b + " --format html").status != 0);
}
