#!/usr/bin/env python3
"""Writes tests/fixtures/stats.json: reference values for harness/api/stats.{h,cpp} computed by
numpy and scipy, which tests/test_stats.cpp ([stats]) compares against.

    python3 scripts/make_stats_fixtures.py      # needs numpy and scipy >= 1.11

A dev-time tool (the fixture it writes is committed; the build and the tests need neither numpy
nor scipy). scipy is not among the packages setup.sh installs: `python3 -m pip install scipy`.

Cases:
  summaries  numpy: median, quantiles (method="linear"), mean, std (ddof=1), iqr, min, max, cv;
             the order-statistic CI of the median from scipy.stats.binom (largest j with
             1 - 2 * binom.cdf(j - 1, n, 1/2) >= confidence, CI = [x_(j), x_(n+1-j)]).
  mwu        scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="auto"): U of a, p,
             and which method 'auto' chose (exact: min(n) <= 8 and no ties).
  loglog     numpy.polyfit(log x, log y, 1): slope, intercept, and R^2 in log space.
  welch      scipy.stats.ttest_ind(a, b, equal_var=False): mean(a) - mean(b), t, df, p and
             confidence_interval(c) (hand-written samples: seeds of one metric, 2-5 per side).
  paired     scipy.stats.ttest_rel(a, b): the mean of a - b, t, df, p and confidence_interval(c)
             (hand-written: one model's bpb in two eval modes, seed by seed).
"""
import json
import os

import numpy as np
import scipy
from scipy import stats

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "stats.json")
QUANTILES = [0.0, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 1.0]


def median_ci(sorted_x, confidence):
    n = len(sorted_x)
    best = 0
    coverage = 1 - 2 ** (1 - n)
    for j in range(1, n // 2 + 1):
        c = 1 - 2 * stats.binom.cdf(j - 1, n, 0.5)
        if c < confidence:
            break
        best, coverage = j, c
    if best == 0:
        return sorted_x[0], sorted_x[-1], coverage, False
    return sorted_x[best - 1], sorted_x[n - best], coverage, True


def summary_case(name, x, confidence=0.95):
    x = np.asarray(x, dtype=np.float64)
    s = np.sort(x)
    lo, hi, coverage, exact = median_ci(s, confidence)
    std = float(np.std(x, ddof=1))
    return {
        "name": name, "samples": x.tolist(), "confidence": confidence,
        "n": int(x.size), "median": float(np.median(x)), "mean": float(np.mean(x)),
        "std": std, "min": float(s[0]), "max": float(s[-1]),
        "iqr": float(np.quantile(x, 0.75) - np.quantile(x, 0.25)),
        "cv": std / float(np.mean(x)),
        "quantiles": [[q, float(np.quantile(x, q, method="linear"))] for q in QUANTILES],
        "ci_lo": float(lo), "ci_hi": float(hi), "ci_coverage": float(coverage), "ci_exact": exact,
    }


def summaries(rng):
    return [
        summary_case("two", [3.0, 1.0]),
        summary_case("five_below_95", [5.1, 4.9, 5.3, 5.0, 5.2]),
        summary_case("six_first_exact", [10.2, 9.8, 10.1, 10.4, 9.9, 10.0]),
        summary_case("ten_with_ties", [2, 3, 3, 3, 4, 5, 5, 8, 9, 9]),
        summary_case("twenty_lognormal", rng.lognormal(1.0, 0.2, 20)),
        summary_case("fifty_one_normal", rng.normal(100.0, 3.0, 51)),
        summary_case("two_hundred_skewed", rng.exponential(2.0, 200) + 1.0),
        summary_case("thirty_at_90", rng.normal(7.0, 0.5, 30), confidence=0.90),
        summary_case("twelve_at_99", rng.normal(7.0, 0.5, 12), confidence=0.99),
    ]


def mwu_case(name, a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    r = stats.mannwhitneyu(a, b, alternative="two-sided", method="auto")
    ties = len(np.unique(np.concatenate([a, b]))) < a.size + b.size
    exact = min(a.size, b.size) <= 8 and not ties
    return {"name": name, "a": a.tolist(), "b": b.tolist(), "u": float(r.statistic),
            "p": float(r.pvalue), "exact": bool(exact)}


def mwu(rng):
    return [
        mwu_case("exact_3_4", [1.1, 2.3, 0.7], [3.2, 4.1, 2.9, 5.0]),
        mwu_case("exact_5_5_overlap", [1.0, 2.5, 3.1, 4.2, 6.0], [1.5, 3.0, 3.5, 5.5, 7.0]),
        mwu_case("exact_8_8_shift", rng.normal(0, 1, 8), rng.normal(1.5, 1, 8)),
        mwu_case("exact_2_10", [5.5, 9.1], rng.normal(5, 1, 10)),
        mwu_case("exact_8_30", rng.normal(10, 1, 8), rng.normal(10.5, 1, 30)),
        mwu_case("exact_full_separation_6_7", [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12, 13]),
        mwu_case("ties_small", [1, 2, 2, 3, 4], [2, 3, 3, 5, 6, 6]),
        mwu_case("ties_large_integers", rng.integers(0, 6, 25), rng.integers(1, 7, 30)),
        mwu_case("large_no_ties", rng.lognormal(2.0, 0.05, 40), rng.lognormal(2.1, 0.05, 45)),
        mwu_case("large_same_distribution", rng.normal(0, 1, 60), rng.normal(0, 1, 50)),
        mwu_case("asymptotic_9_9", rng.normal(0, 1, 9), rng.normal(0.8, 1, 9)),
        mwu_case("all_tied", [2.0, 2.0, 2.0], [2.0, 2.0, 2.0, 2.0]),
    ]


def loglog_case(name, x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    lx, ly = np.log(x), np.log(y)
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    r2 = 1 - float(resid @ resid) / float(((ly - ly.mean()) ** 2).sum())
    return {"name": name, "x": x.tolist(), "y": y.tolist(), "slope": float(slope),
            "intercept": float(intercept), "r2": r2}


def loglog(rng):
    x = np.array([256, 512, 1024, 2048, 4096, 8192], dtype=np.float64)
    return [
        loglog_case("four_thirds_noisy", x, 3e-3 * x ** (4 / 3) * rng.lognormal(0, 0.05, x.size)),
        loglog_case("quadratic_noisy", x[:4], 1e-6 * x[:4] ** 2 * rng.lognormal(0, 0.1, 4)),
    ]


def welch_case(name, a, b, confidence=0.95):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    r = stats.ttest_ind(a, b, equal_var=False)
    ci = r.confidence_interval(confidence)
    return {"name": name, "a": a.tolist(), "b": b.tolist(), "confidence": confidence,
            "diff": float(a.mean() - b.mean()), "t": float(r.statistic), "df": float(r.df),
            "p": float(r.pvalue), "ci_lo": float(ci.low), "ci_hi": float(ci.high)}


def welch():
    return [
        welch_case("three_seeds_apart", [4.236, 4.251, 4.221], [3.465, 3.472, 3.441]),
        welch_case("two_seeds_overlap", [2.299, 2.312], [2.247, 2.244]),
        welch_case("unequal_sizes_and_spread", [3.1, 3.4, 2.9, 3.3, 3.0], [3.2, 3.25]),
        welch_case("three_seeds_at_90", [1.10, 1.30, 1.20], [1.00, 1.05, 1.40], confidence=0.90),
        welch_case("one_side_constant", [2.0, 2.0, 2.0], [2.1, 2.3, 2.2]),
    ]


def paired_case(name, a, b, confidence=0.95):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    r = stats.ttest_rel(a, b)
    ci = r.confidence_interval(confidence)
    return {"name": name, "a": a.tolist(), "b": b.tolist(), "confidence": confidence,
            "diff": float((a - b).mean()), "t": float(r.statistic), "df": float(r.df),
            "p": float(r.pvalue), "ci_lo": float(ci.low), "ci_hi": float(ci.high)}


def paired():
    return [
        paired_case("three_seeds_two_modes", [2.893, 3.163, 3.040], [2.793, 3.071, 2.950]),
        paired_case("two_seeds", [3.642, 3.497], [3.601, 3.480]),
        paired_case("five_at_90", [1.0, 1.2, 1.1, 1.4, 1.3], [1.05, 1.1, 1.2, 1.3, 1.2],
                    confidence=0.90),
    ]


def main():
    rng = np.random.default_rng(20240611)
    doc = {
        "generator": "scripts/make_stats_fixtures.py",
        "numpy": np.__version__, "scipy": scipy.__version__,
        "summaries": summaries(rng), "mwu": mwu(rng), "loglog": loglog(rng),
        "welch": welch(), "paired": paired(),
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}: {len(doc['summaries'])} summaries, "
          f"{len(doc['mwu'])} Mann-Whitney pairs, {len(doc['loglog'])} log-log fits, "
          f"{len(doc['welch'])} Welch intervals, {len(doc['paired'])} paired intervals")


if __name__ == "__main__":
    main()
