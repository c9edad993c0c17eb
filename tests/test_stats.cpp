// Tests of harness/api/stats against numpy and scipy (tests/fixtures/stats.json, written by
// scripts/make_stats_fixtures.py): summaries, quantiles and the median's CI, Mann-Whitney U and p
// (exact and normal-approximation paths), the log-log fit, Welch's t interval; then the
// bootstraps by simulation: the slope CI of fit_loglog_ci covers the true exponent about as often
// as it claims.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "harness/api/stats.h"
#include "tests/support.h"

namespace st = megabench::stats;
using json = nlohmann::json;

namespace {

const json& fixture() {
  static const json doc = json::parse(
      megabench::test::read_text(megabench::test::source_path("tests/fixtures/stats.json")));
  return doc;
}

// Deterministic values: 1e-9 relative (and 1e-12 absolute, for reference values of 0).
Approx rel9(double ref) {
  return Approx(ref).epsilon(1e-9).margin(1e-12);
}

std::vector<double> lognormal_draws(std::mt19937_64& rng, size_t n, double median, double sigma) {
  std::lognormal_distribution<double> dist(std::log(median), sigma);
  std::vector<double> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

TEST_CASE("summarize matches numpy and the binomial CI of the median", "[stats]") {
  for (const auto& c : fixture()["summaries"]) {
    INFO(c["name"].get<std::string>());
    const auto x = c["samples"].get<std::vector<double>>();
    const st::Summary s = st::summarize(x, c["confidence"].get<double>());
    CHECK(s.n == c["n"].get<int64_t>());
    for (auto [got, key] : {std::pair{s.median, "median"},
                            {s.mean, "mean"},
                            {s.std, "std"},
                            {s.min, "min"},
                            {s.max, "max"},
                            {s.iqr, "iqr"},
                            {s.cv, "cv"},
                            {s.ci_lo, "ci_lo"},
                            {s.ci_hi, "ci_hi"}}) {
      INFO(key);
      CHECK(got == rel9(c[key].get<double>()));
    }
    CHECK(s.ci_coverage == Approx(c["ci_coverage"].get<double>()).epsilon(1e-9));
    CHECK(s.ci_exact == c["ci_exact"].get<bool>());
    std::vector<double> sorted = x;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& q : c["quantiles"]) CHECK(st::quantile_sorted(sorted, q[0]) == rel9(q[1]));
  }
}

TEST_CASE("summarize: one sample, bad input", "[stats]") {
  const st::Summary one = st::summarize({4.0});
  CHECK(one.median == 4.0);
  CHECK(one.ci_lo == 4.0);
  CHECK(one.ci_hi == 4.0);
  CHECK_FALSE(one.ci_exact);
  CHECK(std::isnan(one.std));
  CHECK_THROWS_WITH(st::summarize({}), Catch::Contains("empty"));
  CHECK_THROWS_WITH(st::summarize({1.0, std::nan("")}), Catch::Contains("samples[1]"));
  CHECK_THROWS_WITH(st::summarize({1.0}, 1.0), Catch::Contains("confidence"));
  CHECK(st::median({4, 1, 3, 2}) == 2.5);
}

TEST_CASE("mann_whitney_u matches scipy.stats.mannwhitneyu(method='auto')", "[stats]") {
  for (const auto& c : fixture()["mwu"]) {
    INFO(c["name"].get<std::string>());
    const st::UTest t =
        st::mann_whitney_u(c["a"].get<std::vector<double>>(), c["b"].get<std::vector<double>>());
    CHECK(t.u == rel9(c["u"].get<double>()));
    CHECK(t.p == Approx(c["p"].get<double>()).epsilon(1e-6).margin(1e-12));
    CHECK(t.exact == c["exact"].get<bool>());
  }
  CHECK_THROWS_WITH(st::mann_whitney_u({}, {1.0}), Catch::Contains("a is empty"));
}

TEST_CASE("fit_loglog matches numpy.polyfit on the logs", "[stats]") {
  for (const auto& c : fixture()["loglog"]) {
    INFO(c["name"].get<std::string>());
    const auto f =
        st::fit_loglog(c["x"].get<std::vector<double>>(), c["y"].get<std::vector<double>>());
    CHECK(f.slope == rel9(c["slope"].get<double>()));
    CHECK(f.intercept == rel9(c["intercept"].get<double>()));
    CHECK(f.r2 == rel9(c["r2"].get<double>()));
  }
}

TEST_CASE("welch_mean_difference matches scipy.stats.ttest_ind(equal_var=False)", "[stats]") {
  for (const auto& c : fixture()["welch"]) {
    INFO(c["name"].get<std::string>());
    const st::MeanDiff d =
        st::welch_mean_difference(c["a"].get<std::vector<double>>(),
                                  c["b"].get<std::vector<double>>(), c["confidence"].get<double>());
    CHECK(d.diff == rel9(c["diff"].get<double>()));
    CHECK(d.t == rel9(c["t"].get<double>()));
    CHECK(d.df == rel9(c["df"].get<double>()));
    CHECK(d.p == Approx(c["p"].get<double>()).epsilon(1e-7).margin(1e-12));
    CHECK(d.ci_lo == rel9(c["ci_lo"].get<double>()));
    CHECK(d.ci_hi == rel9(c["ci_hi"].get<double>()));
  }
  const st::MeanDiff exact = st::welch_mean_difference({2, 2}, {1.5, 1.5, 1.5});
  CHECK(exact.diff == 0.5);
  CHECK(exact.ci_lo == 0.5);
  CHECK(exact.ci_hi == 0.5);
  CHECK(exact.p == 0);
  CHECK_THROWS_WITH(st::welch_mean_difference({1.0}, {1.0, 2.0}),
                    Catch::Contains("at least 2 values, got 1 and 2"));
  CHECK_THROWS_WITH(st::welch_mean_difference({1.0, NAN}, {1.0, 2.0}), Catch::Contains("a"));
}

TEST_CASE("paired_mean_difference matches scipy.stats.ttest_rel", "[stats]") {
  for (const auto& c : fixture()["paired"]) {
    INFO(c["name"].get<std::string>());
    const st::MeanDiff d = st::paired_mean_difference(c["a"].get<std::vector<double>>(),
                                                      c["b"].get<std::vector<double>>(),
                                                      c["confidence"].get<double>());
    CHECK(d.diff == rel9(c["diff"].get<double>()));
    CHECK(d.t == rel9(c["t"].get<double>()));
    CHECK(d.df == rel9(c["df"].get<double>()));
    CHECK(d.p == Approx(c["p"].get<double>()).epsilon(1e-7).margin(1e-12));
    CHECK(d.ci_lo == rel9(c["ci_lo"].get<double>()));
    CHECK(d.ci_hi == rel9(c["ci_hi"].get<double>()));
  }
  const st::MeanDiff exact = st::paired_mean_difference({2, 3}, {1.5, 2.5});
  CHECK(exact.diff == 0.5);
  CHECK(exact.ci_lo == 0.5);
  CHECK(exact.p == 0);
  CHECK_THROWS_WITH(st::paired_mean_difference({1.0, 2.0}, {1.0, 2.0, 3.0}),
                    Catch::Contains("one size >= 2, got 2 and 3"));
}

TEST_CASE("bootstrap_median_ratio_ci: exact on constant samples, seeded, covers the ratio",
          "[stats]") {
  const auto flat = st::bootstrap_median_ratio_ci({2, 2, 2}, {3, 3, 3, 3});
  CHECK(flat.ratio == 1.5);
  CHECK(flat.ci_lo == 1.5);
  CHECK(flat.ci_hi == 1.5);
  CHECK(flat.resamples == st::kDefaultResamples);

  std::mt19937_64 rng(7);
  const auto a = lognormal_draws(rng, 15, 10.0, 0.05), b = lognormal_draws(rng, 15, 11.0, 0.05);
  const auto r1 = st::bootstrap_median_ratio_ci(a, b), r2 = st::bootstrap_median_ratio_ci(a, b);
  CHECK(r1.ci_lo == r2.ci_lo);  // a fixed seed: the same CI every time
  CHECK(r1.ci_hi == r2.ci_hi);
  CHECK(r1.ci_lo <= r1.ratio);
  CHECK(r1.ratio <= r1.ci_hi);
  CHECK(st::bootstrap_median_ratio_ci(a, b, 0.95, 2000, 99).ci_lo != r1.ci_lo);
  CHECK_THROWS_WITH(st::bootstrap_median_ratio_ci({1.0}, {-1.0}), Catch::Contains("> 0"));

  // 100 seeded draws of n = 20 against 20 with a true ratio of 1.1: the 95% CI covers it in most.
  int covered = 0;
  for (int trial = 0; trial < 100; ++trial) {
    const auto x = lognormal_draws(rng, 20, 10.0, 0.05), y = lognormal_draws(rng, 20, 11.0, 0.05);
    const auto r = st::bootstrap_median_ratio_ci(x, y, 0.95, 500);
    covered += r.ci_lo <= 1.1 && 1.1 <= r.ci_hi;
  }
  CHECK(covered >= 85);
}

TEST_CASE("fit_loglog_ci: an exact power law gives a zero-width CI and equal local slopes",
          "[stats]") {
  const std::vector<double> x = {256, 512, 1024, 2048};
  std::vector<std::vector<double>> samples;
  for (double v : x) samples.push_back({2 * v * v, 2 * v * v, 2 * v * v});
  const auto f = st::fit_loglog_ci(x, samples);
  CHECK(f.slope == Approx(2.0).epsilon(1e-12));
  CHECK(f.ci_lo == Approx(2.0).epsilon(1e-12));
  CHECK(f.ci_hi == Approx(2.0).epsilon(1e-12));
  CHECK(f.r2 == Approx(1.0).epsilon(1e-12));
  CHECK(f.n == 4);
  REQUIRE(f.local_slopes.size() == 3);
  for (double s : f.local_slopes) CHECK(s == Approx(2.0).epsilon(1e-12));
  CHECK_THROWS_WITH(st::fit_loglog_ci({2, 1}, {{1}, {1}}), Catch::Contains("strictly increasing"));
  CHECK_THROWS_WITH(st::fit_loglog_ci({1, 2}, {{1}}), Catch::Contains("sample sets"));
  CHECK_THROWS_WITH(st::fit_loglog_ci({1, 2}, {{1}, {}}), Catch::Contains("empty"));
}

// y = c x^(4/3) with lognormal noise (sigma 0.05), 6 points of 5 samples: over 200 seeded trials
// the 95% CI of the slope covers 4/3 in 90-99% of them. The percentile bootstrap of a median of 5
// is conservative: its true coverage here is about 98% (numpy, 2000 trials: 98.5%), so the 99%
// bound sits close to it; this seed gives 197 of 200, and other seeds gave 190 to 200. The trials
// use the default 2000 resamples (about 0.2 s); the draws are libstdc++'s lognormal_distribution.
TEST_CASE("fit_loglog_ci: the 95% slope CI covers the true exponent in 90-99% of trials",
          "[stats]") {
  const std::vector<double> x = {256, 512, 1024, 2048, 4096, 8192};
  const double exponent = 4.0 / 3.0;
  std::mt19937_64 rng(2024);
  int covered = 0;
  const int trials = 200;
  for (int trial = 0; trial < trials; ++trial) {
    std::vector<std::vector<double>> samples;
    for (double v : x)
      samples.push_back(lognormal_draws(rng, 5, 3e-3 * std::pow(v, exponent), 0.05));
    const auto f = st::fit_loglog_ci(x, samples, 0.95, st::kDefaultResamples, /*seed=*/trial);
    covered += f.ci_lo <= exponent && exponent <= f.ci_hi;
  }
  INFO("covered " << covered << " of " << trials);
  CHECK(covered >= 180);
  CHECK(covered <= 198);
}
