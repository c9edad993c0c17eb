#include "harness/api/stats.h"

#include <Eigen/Dense>
#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>

#include "harness/api/format.h"

namespace megabench::stats {

namespace {

std::string num(double v) {
  return format_double("%g", v);
}

// The median of `v`, reordering it (numpy.median: the mean of the two middle values for even n).
double median_inplace(std::vector<double>& v) {
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  const double hi = v[mid];
  if (v.size() % 2 == 1) return hi;
  const double lo = *std::max_element(v.begin(), v.begin() + mid);
  return (lo + hi) / 2;
}

// Throws unless `v` is a non-empty sample of finite values.
void check_sample(const std::vector<double>& v, const char* fn, const char* what) {
  if (v.empty()) throw std::invalid_argument(std::string(fn) + ": " + what + " is empty");
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]))
      throw std::invalid_argument(std::string(fn) + ": " + what + "[" + std::to_string(i) +
                                  "] is not finite (" + num(v[i]) + ")");
}

void check_confidence(double confidence, const char* fn) {
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument(std::string(fn) + ": confidence must be in (0, 1), got " +
                                num(confidence));
}

void check_resamples(int resamples, const char* fn) {
  if (resamples < 1)
    throw std::invalid_argument(std::string(fn) + ": resamples must be >= 1, got " +
                                std::to_string(resamples));
}

// An index in [0, n) from one 64-bit draw (multiply-shift): the same on every standard library.
size_t draw_index(std::mt19937_64& rng, size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
}

// The median of a resample (with replacement) of `src`; `buf` is scratch space.
double resample_median(const std::vector<double>& src, std::vector<double>& buf,
                       std::mt19937_64& rng) {
  buf.resize(src.size());
  for (auto& v : buf) v = src[draw_index(rng, src.size())];
  return median_inplace(buf);
}

// The percentile interval of bootstrap replicates.
std::pair<double, double> percentile_ci(std::vector<double> reps, double confidence) {
  std::sort(reps.begin(), reps.end());
  return {quantile_sorted(reps, (1 - confidence) / 2), quantile_sorted(reps, (1 + confidence) / 2)};
}

// Sets the order-statistic CI of the median on `s` from the sorted sample.
void median_ci(const std::vector<double>& sorted, double confidence, Summary& s) {
  const int64_t n = s.n;
  // coverage(j) = 1 - 2 P(B <= j - 1), B ~ Binomial(n, 1/2); it falls as j grows.
  const double log_norm = std::lgamma(n + 1.0) - n * std::log(2.0);
  double cdf = 0;  // P(B <= j - 1)
  int64_t best = 0;
  for (int64_t j = 1; 2 * j <= n; ++j) {
    cdf += std::exp(log_norm - std::lgamma(j + 0.0) - std::lgamma(n - j + 2.0));
    const double coverage = 1 - 2 * cdf;
    if (coverage < confidence) break;
    best = j;
    s.ci_coverage = coverage;
  }
  s.ci_exact = best > 0;
  if (!s.ci_exact) {
    s.ci_lo = s.min;
    s.ci_hi = s.max;
    s.ci_coverage = 1 - std::pow(2.0, 1.0 - static_cast<double>(n));
    return;
  }
  s.ci_lo = sorted[best - 1];
  s.ci_hi = sorted[n - best];
}

// ln(x) of every value; throws naming the first that is not finite and > 0.
std::vector<double> logs_of(const std::vector<double>& v, const char* fn, const char* what) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]) || v[i] <= 0)
      throw std::invalid_argument(std::string(fn) + ": " + what + "[" + std::to_string(i) +
                                  "] must be finite and > 0 for a log-log fit, got " + num(v[i]));
    out[i] = std::log(v[i]);
  }
  return out;
}

// The design of a log-log fit over fixed x: rows [1, ln x], factored once by Eigen's
// column-pivoting Householder QR, then solved for any ln y (the bootstrap refits thousands).
struct LogLogDesign {
  Eigen::MatrixXd a;
  Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr;
  explicit LogLogDesign(const std::vector<double>& lx) : a(lx.size(), 2) {
    for (size_t i = 0; i < lx.size(); ++i) {
      a(i, 0) = 1.0;
      a(i, 1) = lx[i];
    }
    qr.compute(a);
  }
  // (intercept, slope)
  Eigen::Vector2d solve(const std::vector<double>& ly) const {
    return qr.solve(Eigen::Map<const Eigen::VectorXd>(ly.data(), ly.size()));
  }
};

// The exact two-sided p-value of U (an integer >= n_a n_b / 2) for samples of sizes m <= n:
// twice P(U' <= m n - U), where the counts of U' are the coefficients of the Gaussian binomial
// [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i), kept up to the degree needed.
double exact_u_p(double u, size_t m, size_t n) {
  const size_t k_max = static_cast<size_t>(std::llround(static_cast<double>(m * n) - u));
  std::vector<double> c(k_max + 1, 0.0);
  c[0] = 1;
  double total = 1;  // (m + n choose m)
  for (size_t i = 1; i <= m; ++i) {
    if (k_max >= n + i)
      for (size_t k = k_max; k >= n + i; --k) c[k] -= c[k - n - i];
    for (size_t k = i; k <= k_max; ++k) c[k] += c[k - i];
    total = total * static_cast<double>(n + i) / static_cast<double>(i);
  }
  const double tail = std::accumulate(c.begin(), c.end(), 0.0) / total;
  return std::min(1.0, 2 * tail);
}

}  // namespace

double quantile_sorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) throw std::invalid_argument("quantile_sorted: empty sample");
  if (!(q >= 0 && q <= 1))
    throw std::invalid_argument("quantile_sorted: q must be in [0, 1], got " + num(q));
  const double h = (static_cast<double>(sorted.size()) - 1) * q;
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= sorted.size()) return sorted.back();
  const double t = h - static_cast<double>(lo), a = sorted[lo], b = sorted[lo + 1];
  // numpy's _lerp: from the nearer end, so that t = 1 gives b exactly.
  return t >= 0.5 ? b - (b - a) * (1 - t) : a + (b - a) * t;
}

double median(std::vector<double> v) {
  if (v.empty()) throw std::invalid_argument("median: empty sample");
  return median_inplace(v);
}

Summary summarize(const std::vector<double>& samples, double confidence) {
  check_sample(samples, "summarize", "samples");
  check_confidence(confidence, "summarize");
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  Summary s;
  s.n = static_cast<int64_t>(sorted.size());
  s.min = sorted.front();
  s.max = sorted.back();
  s.median = quantile_sorted(sorted, 0.5);
  s.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(s.n);
  double ss = 0;
  for (double v : sorted) ss += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(ss / static_cast<double>(s.n - 1)) : std::nan("");
  s.cv = s.std / s.mean;
  s.iqr = quantile_sorted(sorted, 0.75) - quantile_sorted(sorted, 0.25);
  median_ci(sorted, confidence, s);
  return s;
}

RatioCI bootstrap_median_ratio_ci(const std::vector<double>& a, const std::vector<double>& b,
                                  double confidence, int resamples, uint64_t seed) {
  constexpr const char* kFn = "bootstrap_median_ratio_ci";
  check_sample(a, kFn, "a");
  check_sample(b, kFn, "b");
  check_confidence(confidence, kFn);
  check_resamples(resamples, kFn);
  const double ma = median(a), mb = median(b);
  if (!(ma > 0 && mb > 0))
    throw std::invalid_argument(std::string(kFn) + ": medians must be > 0, got " + num(ma) +
                                " and " + num(mb));
  std::mt19937_64 rng(seed);
  std::vector<double> ratios(resamples), buf;
  for (auto& r : ratios) {
    const double ra = resample_median(a, buf, rng);
    r = resample_median(b, buf, rng) / ra;
  }
  const auto [lo, hi] = percentile_ci(std::move(ratios), confidence);
  return RatioCI{mb / ma, lo, hi, resamples};
}

namespace {

// diff +- t(df) * se with its two-sided p; se = 0 makes the difference exact (df infinite).
MeanDiff t_interval(double diff, double se, double df, double confidence) {
  MeanDiff d;
  d.diff = diff;
  if (se == 0) {
    d.ci_lo = d.ci_hi = diff;
    d.df = INFINITY;
    d.t = diff == 0 ? 0 : std::copysign(INFINITY, diff);
    d.p = diff == 0 ? 1 : 0;
    return d;
  }
  d.df = df;
  d.t = diff / se;
  const boost::math::students_t dist(df);
  const double q = boost::math::quantile(dist, 0.5 + confidence / 2);
  d.ci_lo = diff - q * se;
  d.ci_hi = diff + q * se;
  d.p = 2 * boost::math::cdf(boost::math::complement(dist, std::abs(d.t)));
  return d;
}

}  // namespace

MeanDiff welch_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                               double confidence) {
  constexpr const char* kFn = "welch_mean_difference";
  check_sample(a, kFn, "a");
  check_sample(b, kFn, "b");
  check_confidence(confidence, kFn);
  if (a.size() < 2 || b.size() < 2)
    throw std::invalid_argument(std::string(kFn) + ": each sample needs at least 2 values, got " +
                                std::to_string(a.size()) + " and " + std::to_string(b.size()));
  const Summary sa = summarize(a), sb = summarize(b);
  const double va = sa.std * sa.std / a.size(), vb = sb.std * sb.std / b.size();
  const double se = std::sqrt(va + vb);
  const double df =
      se == 0 ? 0
              : (va + vb) * (va + vb) / (va * va / (a.size() - 1.0) + vb * vb / (b.size() - 1.0));
  return t_interval(sa.mean - sb.mean, se, df, confidence);
}

MeanDiff paired_mean_difference(const std::vector<double>& a, const std::vector<double>& b,
                                double confidence) {
  constexpr const char* kFn = "paired_mean_difference";
  check_sample(a, kFn, "a");
  check_sample(b, kFn, "b");
  check_confidence(confidence, kFn);
  if (a.size() != b.size() || a.size() < 2)
    throw std::invalid_argument(std::string(kFn) + ": needs two samples of one size >= 2, got " +
                                std::to_string(a.size()) + " and " + std::to_string(b.size()));
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const Summary s = summarize(d);
  return t_interval(s.mean, s.std / std::sqrt(static_cast<double>(d.size())), d.size() - 1.0,
                    confidence);
}

UTest mann_whitney_u(const std::vector<double>& a, const std::vector<double>& b) {
  check_sample(a, "mann_whitney_u", "a");
  check_sample(b, "mann_whitney_u", "b");
  const size_t na = a.size(), nb = b.size(), n = na + nb;
  std::vector<std::pair<double, bool>> pooled;  // (value, from a)
  for (double v : a) pooled.emplace_back(v, true);
  for (double v : b) pooled.emplace_back(v, false);
  std::sort(pooled.begin(), pooled.end());
  double rank_sum_a = 0, tie_term = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && pooled[j].first == pooled[i].first) ++j;
    const double t = static_cast<double>(j - i), avg_rank = (i + 1 + j) / 2.0;
    for (size_t k = i; k < j; ++k) rank_sum_a += pooled[k].second ? avg_rank : 0;
    tie_term += t * t * t - t;
    i = j;
  }
  const double mn = static_cast<double>(na) * static_cast<double>(nb);
  UTest r;
  r.u = rank_sum_a - static_cast<double>(na) * (na + 1) / 2.0;
  const double u_big = std::max(r.u, mn - r.u);
  r.exact = std::min(na, nb) <= 8 && tie_term == 0;
  if (r.exact) {
    r.p = exact_u_p(u_big, std::min(na, nb), std::max(na, nb));
    return r;
  }
  const double nd = static_cast<double>(n);
  const double sigma = std::sqrt(mn / 12 * ((nd + 1) - tie_term / (nd * (nd - 1))));
  if (!(sigma > 0)) return r;  // every value tied: no evidence either way, p = 1
  const double z = (u_big - mn / 2 - 0.5) / sigma;
  r.p = std::min(1.0, std::erfc(z / std::sqrt(2.0)));
  return r;
}

LogLogFit fit_loglog(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size())
    throw std::invalid_argument("fit_loglog: x and y differ in length (" +
                                std::to_string(x.size()) + " vs " + std::to_string(y.size()) + ")");
  if (x.size() < 2)
    throw std::invalid_argument("fit_loglog: needs at least 2 points, got " +
                                std::to_string(x.size()));
  const std::vector<double> lx = logs_of(x, "fit_loglog", "x"), ly = logs_of(y, "fit_loglog", "y");
  if (std::all_of(lx.begin(), lx.end(), [&](double v) { return v == lx[0]; }))
    throw std::invalid_argument("fit_loglog: all x values are equal; the slope is undefined");
  const LogLogDesign design(lx);
  const Eigen::Vector2d coef = design.solve(ly);
  const Eigen::Map<const Eigen::VectorXd> b(ly.data(), ly.size());
  const double ss_res = (b - design.a * coef).squaredNorm();
  const double ss_tot = (b.array() - b.mean()).square().sum();
  // All y equal: the flat fit is exact, so R^2 = 1 (the 0/0 form has no other sensible value).
  const double r2 = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 1.0;
  return LogLogFit{coef(1), coef(0), r2, static_cast<int>(x.size())};
}

SlopeFit fit_loglog_ci(const std::vector<double>& x,
                       const std::vector<std::vector<double>>& samples_per_x, double confidence,
                       int resamples, uint64_t seed) {
  constexpr const char* kFn = "fit_loglog_ci";
  check_confidence(confidence, kFn);
  check_resamples(resamples, kFn);
  if (x.size() != samples_per_x.size())
    throw std::invalid_argument(std::string(kFn) + ": " + std::to_string(x.size()) + " x but " +
                                std::to_string(samples_per_x.size()) + " sample sets");
  for (size_t i = 1; i < x.size(); ++i)
    if (!(x[i] > x[i - 1]))
      throw std::invalid_argument(std::string(kFn) + ": x must be strictly increasing, x[" +
                                  std::to_string(i) + "] = " + num(x[i]));
  std::vector<double> medians;
  for (const auto& s : samples_per_x) {
    check_sample(s, kFn, "samples");
    medians.push_back(median(s));
  }
  const LogLogFit point = fit_loglog(x, medians);
  SlopeFit f{point.slope, point.intercept, point.r2, 0, 0, point.n, {}};
  for (size_t i = 0; i + 1 < x.size(); ++i)
    f.local_slopes.push_back(std::log(medians[i + 1] / medians[i]) / std::log(x[i + 1] / x[i]));
  const LogLogDesign design(logs_of(x, kFn, "x"));
  std::mt19937_64 rng(seed);
  std::vector<double> slopes(resamples), ly(x.size()), buf;
  for (auto& s : slopes) {
    for (size_t i = 0; i < x.size(); ++i)
      ly[i] = std::log(resample_median(samples_per_x[i], buf, rng));
    s = design.solve(ly)(1);
  }
  std::tie(f.ci_lo, f.ci_hi) = percentile_ci(std::move(slopes), confidence);
  return f;
}

}  // namespace megabench::stats
