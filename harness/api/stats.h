#pragma once
// The statistics behind every timed number: a sample's summary with a distribution-free CI of its
// median, the bootstrap CI of a ratio of medians, the Mann-Whitney U test, and log-log fits with a
// bootstrap CI of the slope. measure/ summarizes repeats with it, report/ fits and compares.
//
//   stats::Summary s = stats::summarize(forward_ms_samples);        // median [ci_lo, ci_hi]
//   stats::UTest t = stats::mann_whitney_u(old_ms, new_ms);         // t.p < 0.05: a real change
//   stats::RatioCI r = stats::bootstrap_median_ratio_ci(old_ms, new_ms);  // new/old and its CI
//   stats::SlopeFit f = stats::fit_loglog_ci(seq_lens, samples_per_seq_len);  // slope [lo, hi]
//   stats::MeanDiff d = stats::welch_mean_difference(bpb_seeds_a, bpb_seeds_b);  // across seeds
//   stats::MeanDiff e = stats::paired_mean_difference(bpb_basic, bpb_sliding);   // seed by seed
//
// Quantiles interpolate linearly between order statistics (numpy's default 'linear' method);
// std is the sample standard deviation (n - 1); the Mann-Whitney test follows
// scipy.stats.mannwhitneyu(method="auto", alternative="two-sided"). tests/test_stats.cpp checks
// all of them against numpy and scipy (fixtures from scripts/make_stats_fixtures.py).
//
// Bootstraps are reproducible: std::mt19937_64 with a fixed seed, indices drawn by multiply-shift
// (not std::uniform_int_distribution, whose algorithm differs between standard libraries), so one
// input gives one CI on every machine. Bad input (empty samples, non-finite values, mismatched
// sizes) throws std::invalid_argument naming the function and the value.
#include <cstdint>
#include <vector>

namespace megabench::stats {

/// The seed of every bootstrap unless a caller passes another.
inline constexpr uint64_t kDefaultSeed = 20240611;
/// Bootstrap resamples unless a caller passes another.
inline constexpr int kDefaultResamples = 2000;

/// The q-quantile (0 <= q <= 1) by linear interpolation between the order statistics of `sorted`
/// (ascending, non-empty): numpy.quantile(x, q, method="linear").
double quantile_sorted(const std::vector<double>& sorted, double q);
/// The median of any (non-empty) sample, numpy.median: the mean of the two middle values for even
/// n.
double median(std::vector<double> samples);

/// A sample in numbers.
struct Summary {
  int64_t n = 0;
  double median = 0, min = 0, max = 0, mean = 0;
  double std = 0;  // sample standard deviation (n - 1 in the denominator); NaN when n < 2
  double iqr = 0;  // quantile(0.75) - quantile(0.25), both linear
  // The CI of the median by order statistics: [X_(j), X_(n+1-j)] (1-based ranks) with the largest
  // j whose coverage 1 - 2 * P(Binomial(n, 1/2) <= j - 1) is at least the confidence asked for.
  // Distribution-free: it assumes only independent draws from one continuous distribution.
  double ci_lo = 0, ci_hi = 0;
  // The coverage of [ci_lo, ci_hi] under that model (>= the confidence when ci_exact).
  double ci_coverage = 0;
  // False when n is too small for any pair of ranks to reach the confidence (n <= 5 at 95%):
  // ci_lo = min, ci_hi = max, and ci_coverage (1 - 2^(1-n)) is below the confidence asked for.
  bool ci_exact = false;
  double cv = 0;  // std / mean (NaN when n < 2; inf or NaN when the mean is 0)
};
/// Summarizes one sample; `confidence` in (0, 1) is that of the median's CI.
Summary summarize(const std::vector<double>& samples, double confidence = 0.95);

/// median(b) / median(a) and its percentile-bootstrap CI: each resample draws a and b with
/// replacement (each its own size), and the CI is the (1-c)/2 and (1+c)/2 linear quantiles of
/// the resampled ratios. Both medians must be > 0 (times, rates).
struct RatioCI {
  double ratio = 0;  // median(b) / median(a) of the samples themselves
  double ci_lo = 0, ci_hi = 0;
  int resamples = 0;
};
RatioCI bootstrap_median_ratio_ci(const std::vector<double>& a, const std::vector<double>& b,
                                  double confidence = 0.95, int resamples = kDefaultResamples,
                                  uint64_t seed = kDefaultSeed);

/// Two-sided Mann-Whitney U test of a against b, as scipy.stats.mannwhitneyu(a, b,
/// method="auto") computes it (SciPy 1.11 and later):
///   u      the statistic of `a`: R_a - n_a (n_a + 1) / 2, with R_a the sum of a's ranks in the
///          pooled sample (ties get their average rank);
///   exact  when min(n_a, n_b) <= 8 and no value occurs twice in the pooled sample: p is twice
///          the exact upper tail P(U >= max(U_a, U_b)) under the null (all (n_a+n_b choose n_a)
///          rank arrangements equally likely);
///   else   the normal approximation with tie correction and continuity correction:
///          z = (max(U_a, U_b) - n_a n_b / 2 - 1/2) / sigma,
///          sigma^2 = n_a n_b / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1))), p = 2 (1 - Phi(z)).
/// p is clipped to 1 (it is 1 when every value is tied).
struct UTest {
  double u = 0, p = 1;
  bool exact = false;  // which of the two ways p was computed
};
UTest mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b);

/// mean(a) - mean(b) with Welch's t confidence interval (unequal variances, Welch-Satterthwaite
/// degrees of freedom), as scipy.stats.ttest_ind(a, b, equal_var=False) and its
/// confidence_interval() compute them; the t quantile comes from Boost.Math. For a handful of
/// independent runs (seeds) of one deterministic metric, where a bootstrap of 2-3 values has no
/// meaning. Both samples need n >= 2. When both variances are 0 the difference is exact: the CI
/// is [diff, diff], df is infinite and p is 1 (diff = 0) or 0.
struct MeanDiff {
  double diff = 0;  // mean(a) - mean(b)
  double ci_lo = 0, ci_hi = 0;
  double df = 0, t = 0, p = 1;  // Welch's degrees of freedom, statistic, two-sided p
};
MeanDiff welch_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                               double confidence = 0.95);

/// The mean of a[i] - b[i] with the paired t confidence interval (n - 1 degrees of freedom), as
/// scipy.stats.ttest_rel(a, b) computes it: two measurements of the same runs (one model's bpb in
/// two eval modes, seed by seed). Needs equal sizes, n >= 2; all differences equal gives the exact
/// CI as in welch_mean_difference.
MeanDiff paired_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                                double confidence = 0.95);

/// Least-squares fit of ln(y) = intercept + slope * ln(x), solved with Eigen's column-pivoting
/// Householder QR; r2 is the coefficient of determination in log space
/// (1 when all y are equal). Throws std::invalid_argument on fewer than 2 points, mismatched
/// sizes, non-finite or non-positive values ("x[1]", "y[0]"), or when all x are equal.
struct LogLogFit {
  double slope = 0, intercept = 0, r2 = 0;
  int n = 0;
};
LogLogFit fit_loglog(const std::vector<double>& x, const std::vector<double>& y);

/// The log-log fit through the medians of each point's samples, with a percentile-bootstrap CI
/// of the slope: each resample redraws every point's samples with replacement, takes their
/// medians and refits. x must be strictly increasing; every point needs at least one sample.
struct SlopeFit {
  double slope = 0, intercept = 0, r2 = 0;  // the fit on the medians
  double ci_lo = 0, ci_hi = 0;              // CI of the slope at the confidence asked for
  int n = 0;                                // points
  // (ln m[i+1] - ln m[i]) / (ln x[i+1] - ln x[i]) on the medians m: n - 1 values, where a
  // power law bends.
  std::vector<double> local_slopes;
};
SlopeFit fit_loglog_ci(const std::vector<double>& x,
                       const std::vector<std::vector<double>>& samples_per_x,
                       double confidence = 0.95, int resamples = kDefaultResamples,
                       uint64_t seed = kDefaultSeed);

}  // namespace megabench::stats
