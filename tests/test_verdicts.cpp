// Verdicts computed from data (harness/report/verdicts.cpp): each rule on hand-made results, and
// the README's verdicts block against what the committed results give.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <sstream>

#include "harness/report/internal.h"
#include "harness/report/report.h"
#include "harness/store/result_set.h"
#include "tests/support.h"

using megabench::json;
using namespace megabench::test;

namespace {

// A folder of points of model m at x = 1K..64K with y = c x^e: deterministic FLOPs, or a timed
// metric with samples (5 per point, +-1% noise) when `samples`. With a `knee`, y grows as
// x^e_above from there on (continuous at the knee).
std::string power_law(const std::string& root, const std::string& sub, double e,
                      const std::string& y, bool samples, double knee = HUGE_VAL,
                      double e_above = 0) {
  const std::string dir = root + "/" + sub;
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  const json fits = {{{"x", "seq_len"}, {"y", y}, {"series", "model"}}};
  std::string text = json{{"type", "context"},
                          {"date", "2026-12-01T00:00:00Z"},
                          {"experiment", {{"name", "t"}, {"report", {{"fits", fits}}}}}}
                         .dump() +
                     "\n";
  for (int i = 0; i < 7; ++i) {
    const double x = 1024.0 * (1 << i);
    const double v =
        x < knee ? 1e-3 * std::pow(x, e) : 1e-3 * std::pow(knee, e) * std::pow(x / knee, e_above);
    json p = {{"type", "point"},
              {"schema_version", 2},
              {"key", "k" + std::to_string(i)},
              {"name", "m/x=" + std::to_string(i)},
              {"model", "m"},
              {"label", "m"},
              {"status", "ok"},
              {"error", nullptr},
              {"axes", {{"seq_len", x}}},
              {"config", json::object()},
              {"metrics", {{y, v}}}};
    if (samples) p["samples"] = {{y, {v * 0.99, v * 1.0, v * 1.01, v * 0.995, v * 1.005}}};
    text += p.dump() + "\n";
  }
  write_file(dir + "/results.jsonl", text);
  return dir;
}

std::string claims(const std::string& dir, const json& list) {
  return write_file(dir + "/claims.json", json{{"claims", list}}.dump());
}

json exponent_claim(const std::string& folder, const std::string& y, double expect) {
  return {{"id", "c"},        {"kind", "exponent"}, {"claim", "c"},
          {"paper", "p"},     {"results", folder},  {"x", "seq_len"},
          {"y", y},           {"expect", expect},   {"alternatives", {1.0, 2.0}},
          {"tolerance", 0.05}};
}

// A budget folder: points of labels "t" and "m", one bpb per seed, at training budget `budget`.
void seeds_folder(const std::string& root, const std::string& sub, double budget,
                  const std::vector<double>& t, const std::vector<double>& m) {
  const std::string dir = root + "/" + sub;
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  std::string text;
  int i = 0;
  for (const auto& [label, values] : {std::pair{"t", t}, std::pair{"m", m}}) {
    for (size_t s = 0; s < values.size(); ++s, ++i) {
      text += json{{"type", "point"},
                   {"schema_version", 2},
                   {"key", "k" + std::to_string(i)},
                   {"name", std::string(label) + "/seed=" + std::to_string(s)},
                   {"model", label},
                   {"label", label},
                   {"status", "ok"},
                   {"error", nullptr},
                   {"axes", {{"seed", s}}},
                   {"config", {{"run", {{"train", {{"flop_budget", budget}}}}}}},
                   {"metrics", {{"bpb", values[s]}}}}
                  .dump() +
              "\n";
    }
  }
  write_file(dir + "/results.jsonl", text);
}

}  // namespace

TEST_CASE("verdicts: an exponent claim holds, differs, or is not resolved", "[report][verdicts]") {
  const auto root = fresh_dir("verdicts_root");
  power_law(root, "p43", 4.0 / 3.0, "flops_attention_forward_per_byte", false);
  power_law(root, "t43", 4.0 / 3.0, "attention_forward_ms", true);
  power_law(root, "none", 4.0 / 3.0, "attention_forward_ms", false);
  auto judge = [&](const json& c) {
    return megabench::report::judge_claims(claims(root, json::array({c})), root).at(0);
  };
  CHECK(judge(exponent_claim("p43", "flops_attention_forward_per_byte", 1.3333)).verdict ==
        "holds");
  CHECK(judge(exponent_claim("p43", "flops_attention_forward_per_byte", 1.6)).verdict == "differs");
  auto open = exponent_claim("p43", "flops_attention_forward_per_byte", 1.3333);
  open["alternatives"] = {1.35};  // inside the tolerance of the claim: cannot be told apart
  CHECK(judge(open).verdict == "not resolved");
  const auto timed = judge(exponent_claim("t43", "attention_forward_ms", 1.3333));
  CHECK(timed.verdict == "holds");
  CHECK_THAT(timed.reason, Catch::Contains("exponent 1.33 ["));
  const auto no_samples = judge(exponent_claim("none", "attention_forward_ms", 1.3333));
  CHECK(no_samples.verdict == "not resolved");
  CHECK_THAT(no_samples.reason, Catch::Contains("samples"));
  auto below = exponent_claim("p43", "flops_attention_forward_per_byte", 0);
  below.erase("expect");
  below["below"] = 2;
  CHECK(judge(below).verdict == "holds");
  below["below"] = 1.2;
  CHECK(judge(below).verdict == "differs");
}

TEST_CASE("verdicts: an exponent claim fits the points in x_min .. x_max", "[report][verdicts]") {
  const auto root = fresh_dir("verdicts_range");
  // Slope 1 up to 8K, 2 from 8K to 64K: the whole range fits neither.
  power_law(root, "knee", 1, "flops_forward_per_byte", false, 8192, 2);
  auto judge = [&](const json& c) {
    return megabench::report::judge_claims(claims(root, json::array({c})), root).at(0);
  };
  auto c = exponent_claim("knee", "flops_forward_per_byte", 2);
  c["alternatives"] = {1.0, 1.3333};
  CHECK(judge(c).verdict == "differs");
  c["x_min"] = 8192;
  const auto large = judge(c);
  CHECK(large.verdict == "holds");
  CHECK_THAT(large.reason, Catch::Contains("seq_len 8192-65536, 4 points"));
  c.erase("x_min");
  c["x_max"] = 8192;
  c["expect"] = 1;
  c["alternatives"] = {2.0};
  CHECK(judge(c).verdict == "holds");
  c["x_max"] = 4096;  // 1K .. 4K: a range under 8x decides nothing
  CHECK(judge(c).verdict == "not resolved");
  c["x_max"] = "4096";
  CHECK_THROWS_WITH(judge(c), Catch::Contains("x_max: expected a number, got \"4096\""));
}

TEST_CASE("verdicts: ratio and value claims", "[report][verdicts]") {
  const auto root = fresh_dir("verdicts_ratio");
  power_law(root, "f", 2.0, "flops_forward_per_byte", false);
  auto judge = [&](const json& c) {
    return megabench::report::judge_claims(claims(root, json::array({c})), root).at(0);
  };
  json ratio = {{"id", "r"},
                {"kind", "ratio"},
                {"claim", "r"},
                {"paper", "p"},
                {"results", "f"},
                {"y", "flops_forward_per_byte"},
                {"a", {{"seq_len", 65536}}},
                {"b", {{"seq_len", 1024}}}};
  CHECK(judge(ratio).verdict == "holds");
  std::swap(ratio["a"], ratio["b"]);
  CHECK(judge(ratio).verdict == "differs");
  ratio["a"] = {{"seq_len", 3}};  // no such point (a run still in progress)
  const auto missing = judge(ratio);
  CHECK(missing.verdict == "not resolved");
  CHECK_THAT(missing.reason, Catch::Contains("no ok point matches"));
  ratio["a"] = {{"seq_len", 65536}};
  json value = {{"id", "v"},
                {"kind", "value"},
                {"claim", "v"},
                {"paper", "p"},
                {"results", "f"},
                {"y", "flops_forward_per_byte"},
                {"where", {{"seq_len", 1024}}},
                {"expect", 1e-3 * 1024 * 1024 * 1.04},
                {"rel_tolerance", 0.05}};
  CHECK(judge(value).verdict == "holds");
  value["rel_tolerance"] = 0.01;
  CHECK(judge(value).verdict == "differs");
  value["kind"] = "nonsense";
  CHECK_THROWS_WITH(judge(value), Catch::Contains("v: kind"));
}

TEST_CASE("verdicts: mean_difference across seeds and budgets", "[report][verdicts]") {
  const auto root = fresh_dir("verdicts_meandiff");
  // t - m: +1.0 at 1e12, +0.5 at 1e13, -0.5 at 1e14, 0 (noisy) in "open".
  seeds_folder(root, "b12", 1e12, {3.0, 3.1, 3.2}, {2.0, 2.1, 2.2});
  seeds_folder(root, "b13", 1e13, {2.5, 2.6, 2.7}, {2.0, 2.1, 2.2});
  seeds_folder(root, "b14", 1e14, {2.0, 2.1, 2.2}, {2.5, 2.6, 2.7});
  seeds_folder(root, "open", 1e14, {2.0, 2.5, 3.0}, {2.4, 2.5, 2.6});
  seeds_folder(root, "neg", 1e14, {2.0, 2.3, 2.6}, {2.2, 2.3, 2.4});
  seeds_folder(root, "one", 1e14, {2.0}, {2.4, 2.5, 2.6});
  auto judge = [&](const json& folders) {
    const json c = {{"id", "d"},
                    {"kind", "mean_difference"},
                    {"claim", "d"},
                    {"paper", "p"},
                    {"results", folders},
                    {"y", "bpb"},
                    {"a", {{"label", "t"}}},
                    {"b", {{"label", "m"}}}};
    return megabench::report::judge_claims(claims(root, json::array({c})), root).at(0);
  };
  // Welch by hand: se = sqrt(0.01/3 + 0.01/3) = 0.08165, df = 4, t(0.975, 4) = 2.7764.
  const auto one = judge("b12");
  CHECK(one.verdict == "holds");
  CHECK(one.ours == "1 [0.773, 1.23]");
  CHECK_THAT(one.reason, Catch::Contains("1e+12: t 3.100 +- 0.100 (n=3), m 2.100 +- 0.100 (n=3)"));
  const auto converging = judge(json::array({"b12", "b13"}));
  CHECK(converging.verdict == "holds");
  CHECK(converging.ours == "0.5 [0.273, 0.727]");
  CHECK_THAT(converging.reason, Catch::Contains("converging"));
  const auto crossing = judge(json::array({"b12", "b13", "b14"}));
  CHECK(crossing.verdict == "differs");
  CHECK_THAT(crossing.reason, Catch::Contains("crossing"));
  CHECK_THAT(crossing.reason, !Catch::Contains("within the CIs"));
  const auto sign = judge(json::array({"b13", "neg"}));  // +0.5, then -0.1 +- 0.4
  CHECK(sign.verdict == "not resolved");
  CHECK_THAT(sign.reason, Catch::Contains("converging"));
  CHECK_THAT(sign.reason, Catch::Contains("changes sign within the CIs"));
  const auto diverging = judge(json::array({"b13", "b12"}));
  CHECK_THAT(diverging.reason, Catch::Contains("diverging"));
  const auto open = judge("open");
  CHECK(open.verdict == "not resolved");
  CHECK_THAT(open.reason, Catch::Contains("contains 0"));
  const auto few = judge("one");
  CHECK(few.verdict == "not resolved");
  CHECK_THAT(few.reason, Catch::Contains("under 2 points"));
  CHECK_THROWS_WITH(judge(json::array()), Catch::Contains("results"));

  // Paired: the same three runs scored in two modes, sliding lower by 0.11, 0.10, 0.09. Welch
  // would not separate them (the seeds spread by 0.15); the paired CI does:
  // 0.1 +- t(0.975, 2) * 0.01 / sqrt(3) = [0.0752, 0.125].
  REQUIRE(::mkdir((root + "/modes").c_str(), 0755) == 0);
  std::string text;
  const double basic[] = {2.9, 3.2, 3.0}, sliding[] = {2.79, 3.1, 2.91};
  for (int s = 0; s < 3; ++s)
    text += json{{"type", "point"},
                 {"schema_version", 2},
                 {"key", "m" + std::to_string(s)},
                 {"name", "m/seed=" + std::to_string(s)},
                 {"model", "m"},
                 {"label", "m"},
                 {"status", "ok"},
                 {"error", nullptr},
                 {"axes", {{"seed", s}}},
                 {"config", json::object()},
                 {"metrics", {{"bpb_basic", basic[s]}, {"bpb_sliding", sliding[s]}}}}
                .dump() +
            "\n";
  write_file(root + "/modes/results.jsonl", text);
  json modes = {{"id", "e"},
                {"kind", "mean_difference"},
                {"claim", "e"},
                {"paper", "p"},
                {"results", "modes"},
                {"y", "bpb_basic"},
                {"y_b", "bpb_sliding"},
                {"a", {{"label", "m"}}},
                {"b", {{"label", "m"}}}};
  const auto welch =
      megabench::report::judge_claims(claims(root, json::array({modes})), root).at(0);
  CHECK(welch.verdict == "not resolved");
  modes["paired"] = true;
  const auto paired =
      megabench::report::judge_claims(claims(root, json::array({modes})), root).at(0);
  CHECK(paired.verdict == "holds");
  CHECK(paired.ours == "0.1 [0.0752, 0.125]");
  CHECK_THAT(paired.reason, Catch::Contains("bpb_basic against bpb_sliding (paired)"));
  // A claim of no difference: the CI [0.0752, 0.125] inside +-0.2 holds, wholly outside +-0.05
  // differs, across +-0.1 is not resolved.
  for (const auto& [within, verdict] :
       {std::pair{0.2, "holds"}, std::pair{0.05, "differs"}, std::pair{0.1, "not resolved"}}) {
    modes["within"] = within;
    CHECK(megabench::report::judge_claims(claims(root, json::array({modes})), root).at(0).verdict ==
          verdict);
  }
}

TEST_CASE("verdicts: README's and RESULTS.md's blocks are what the committed results give",
          "[report][verdicts]") {
  const auto verdicts =
      megabench::report::judge_claims(source_path("results/claims.json"), source_path(""));
  const std::string table = megabench::report::render_verdicts_md(verdicts);
  INFO(
      "regenerate with: build/default/megabench report --claims results/claims.json --readme "
      "README.md --readme results/RESULTS.md");
  for (const char* file : {"README.md", "results/RESULTS.md"}) {
    INFO(file);
    const std::string text = read_text(source_path(file));
    CHECK(megabench::report::replace_verdicts_block(text, table) == text);
  }
}

// RESULTS.md's "Throughput" paragraph, against the committed bpb folders: every point of every
// budget reaches 30% of its calibrated peak.
TEST_CASE("RESULTS.md's campaign throughput statements hold on the committed folders",
          "[report][verdicts]") {
  for (const std::string corpus : {"text", "code"}) {
    for (const std::string budget : {"1e12", "1e13", "1e14"}) {
      const std::string folder = "results/campaign_bpb_" + corpus + "_" + budget;
      INFO(folder);
      std::istringstream lines(read_text(source_path(folder + "/results.jsonl")));
      std::string line;
      int points = 0;
      while (std::getline(lines, line)) {
        const auto r = json::parse(line);
        if (r.value("type", "") != "point") continue;
        ++points;
        const double u = r.at("metrics").at("train_flops_utilization").get<double>();
        INFO(r.at("name").get<std::string>() << ": " << u);
        CHECK(u >= 0.30);
      }
      CHECK(points >= 8);
    }
  }
}

// RESULTS.md's attention paragraph, against the committed folder: the Transformer's largest N
// within 20 minutes (SDPA: the next point timed out) and within 21 GB (explicit: the next ran out
// of memory), and MEGABYTE at every N = P^3 up to 10^6 with both kernels.
TEST_CASE("RESULTS.md's attention statements hold on the committed folder", "[report][verdicts]") {
  const auto set = megabench::load_result_set({source_path("results/campaign_attention")});
  std::map<std::string, double> largest_ok;
  std::map<std::string, std::string> first_failure;  // label -> error of the smallest failed N
  std::map<std::string, double> smallest_failed;
  for (const auto& p : set.points) {
    const double n = megabench::lookup(p, "seq_len").get<double>();
    INFO(p.name << ": " << p.status << " " << p.error);
    if (p.status == "ok") {
      largest_ok[p.label] = std::max(largest_ok[p.label], n);
    } else if (!smallest_failed.count(p.label) || n < smallest_failed[p.label]) {
      smallest_failed[p.label] = n;
      first_failure[p.label] = p.error;
    }
  }
  CHECK(largest_ok["transformer_sdpa"] == 110592);
  CHECK(smallest_failed["transformer_sdpa"] == 262144);
  CHECK_THAT(first_failure["transformer_sdpa"], Catch::Contains("timeout after 1200 s"));
  CHECK(largest_ok["transformer_explicit"] == 13824);
  CHECK(smallest_failed["transformer_explicit"] == 32768);
  CHECK_THAT(first_failure["transformer_explicit"],
             Catch::Contains("out of memory") || Catch::Contains("can't allocate memory"));
  for (const char* label : {"megabyte_sdpa", "megabyte_explicit"}) {
    INFO(label);
    CHECK(largest_ok[label] == 1000000);
    CHECK(smallest_failed.count(label) == 0);
  }
}

TEST_CASE("fits: the exponent's CI from the repeats, local slopes, and the noise floor",
          "[report][fits]") {
  const auto root = fresh_dir("fits_ci");
  // y = 1e-3 x^0.5 ms: 0.032 ms at 1K .. 0.256 ms at 64K; the four points under 0.1 ms are left
  // out.
  const auto dir = power_law(root, "sqrt", 0.5, "attention_forward_ms", true);
  const auto fits = megabench::report::detail::run_fits(megabench::load_result_set({dir}));
  REQUIRE(fits.size() == 1);
  const auto& f = fits[0];
  INFO(f.dump(1));
  CHECK(f["n"] == 3);
  CHECK(f["below_noise_floor"].size() == 4);
  CHECK(f["slope"].get<double>() == Approx(0.5).margin(1e-9));
  CHECK(f["ci_lo"].get<double>() < 0.5);
  CHECK(f["ci_hi"].get<double>() > 0.5);
  CHECK(f["ci_hi"].get<double>() - f["ci_lo"].get<double>() < 0.1);
  REQUIRE(f["local_slopes"].size() == 2);
  CHECK(f["local_slopes"][0].get<double>() == Approx(0.5).margin(1e-9));
  const auto md = megabench::report::detail::render_fits_md(fits);
  CHECK_THAT(md, Catch::Contains("under the 0.1 ms noise floor"));
  // Without repeats there is no CI.
  const auto flops = power_law(root, "flops", 0.5, "flops_attention_forward_per_byte", false);
  const auto g = megabench::report::detail::run_fits(megabench::load_result_set({flops}));
  CHECK(g[0]["ci_lo"].is_null());
  CHECK(g[0]["n"] == 7);
}
