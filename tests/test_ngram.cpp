// The n-gram baseline (baselines/ngram.h): interpolated modified Kneser-Ney against a brute-force
// evaluation of the same formulas from substring counts, a hand-computed unigram case, the
// normalisation of every distribution, and the model through the harness's bpb metric.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "baselines/ngram.h"
#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/config/run_settings.h"
#include "harness/io/data.h"
#include "harness/store/results.h"
#include "tests/support.h"

using megabench::json;
using megabench::NGramModel;
using megabench::NGramOptions;

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

// Chen & Goodman's modified Kneser-Ney, written from the definitions with std::string grams:
// order N counts the N-grams (raw), order k < N counts for each k-gram the distinct bytes seen
// before it, over the grams the order above has (those starting at position >= N - k).
struct NaiveKN {
  int N;
  std::vector<std::map<std::string, double>> count;  // by order k - 1
  std::vector<std::vector<double>> d;

  NaiveKN(const std::string& s, int n) : N(n), count(n), d(n) {
    for (int k = 1; k <= N; ++k) {
      std::map<std::string, std::set<char>> before;
      for (int p = N - k; p + k <= static_cast<int>(s.size()); ++p) {
        const std::string g = s.substr(p, k);
        if (k == N) {
          count[k - 1][g] += 1;
        } else {
          before[g].insert(s[p - 1]);
        }
      }
      for (const auto& [g, xs] : before) count[k - 1][g] = static_cast<double>(xs.size());
      double nc[5] = {0, 0, 0, 0, 0};
      for (const auto& [g, c] : count[k - 1])
        if (c <= 4) nc[static_cast<int>(c)] += 1;
      const double y = nc[1] + 2 * nc[2] > 0 ? nc[1] / (nc[1] + 2 * nc[2]) : 0.5;
      for (int j = 1; j <= 3; ++j) {
        double dj = nc[j] > 0 ? j - (j + 1) * y * nc[j + 1] / nc[j] : j / 2.0;
        d[k - 1].push_back(std::min(std::max(dj, 0.0), static_cast<double>(j)));
      }
    }
  }

  double prob(const std::string& history, char w) const {
    double p = 1.0 / 256;
    const int avail = std::min<int>(static_cast<int>(history.size()), N - 1);
    for (int k = 1; k <= avail + 1; ++k) {
      const std::string h = history.substr(history.size() - (k - 1));
      double total = 0, n[3] = {0, 0, 0};
      for (const auto& [g, c] : count[k - 1]) {
        if (g.compare(0, k - 1, h) != 0) continue;
        total += c;
        n[c >= 3 ? 2 : static_cast<int>(c) - 1] += 1;
      }
      if (total == 0) continue;
      const auto it = count[k - 1].find(h + w);
      const double c = it == count[k - 1].end() ? 0 : it->second;
      const auto& dk = d[k - 1];
      const double disc = c == 0 ? 0 : c == 1 ? dk[0] : c == 2 ? dk[1] : dk[2];
      const double gamma = (dk[0] * n[0] + dk[1] * n[1] + dk[2] * n[2]) / total;
      p = std::max(c - disc, 0.0) / total + gamma * p;
    }
    return p;
  }
};

}  // namespace

TEST_CASE("ngram: a unigram model by hand", "[ngram]") {
  NGramModel m(NGramOptions(1));
  m.fit(bytes_of("aab"));
  // c(a) = 2, c(b) = 1: n1 = n2 = 1, so Y = 1/3, D1 = 1 - 2 Y = 1/3, D2 = 2 - 3 Y * 0 = 2;
  // gamma = (D1 + D2) / 3 = 7/9, spread over the uniform 1/256.
  CHECK(m.discounts(1)[0] == Approx(1.0 / 3));
  CHECK(m.discounts(1)[1] == Approx(2.0));
  const auto p = m.distribution(nullptr, 0);
  CHECK(p['b'] == Approx(2.0 / 9 + 7.0 / (9 * 256)));
  CHECK(p['a'] == Approx(7.0 / (9 * 256)));
  CHECK(p['z'] == Approx(7.0 / (9 * 256)));
  const uint8_t b = 'b';
  CHECK(m.nll(&b, 0) == Approx(-std::log(p['b'])));
}

TEST_CASE("ngram: orders 1-6 equal a brute-force evaluation of the formulas", "[ngram]") {
  const std::string train =
      "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat; "
      "then the cat ran, and the dog ran after the cat. on and on they ran.";
  const std::string test = "the cat met the dog on the log, and they sat. xyz!";
  for (int n = 1; n <= 6; ++n) {
    INFO("order " << n);
    NGramModel m{NGramOptions(n)};
    m.fit(bytes_of(train));
    const NaiveKN naive(train, n);
    const auto seq = bytes_of(test);
    double worst = 0;
    for (int64_t t = 0; t < static_cast<int64_t>(seq.size()); ++t) {
      const double want = -std::log(naive.prob(test.substr(0, t), test[t]));
      worst = std::max(worst, std::abs(m.nll(seq.data(), t) - want));
    }
    CHECK(worst < 1e-12);
    for (int k = 1; k <= n; ++k) {
      for (int j = 0; j < 3; ++j) CHECK(m.discounts(k)[j] == Approx(naive.d[k - 1][j]));
    }
  }
}

TEST_CASE("ngram: every distribution sums to 1, seen or unseen context", "[ngram]") {
  std::vector<uint8_t> train(20000);
  uint32_t state = 1;
  for (auto& b : train) {  // a skewed byte stream with some structure
    state = state * 1664525u + 1013904223u;
    b = static_cast<uint8_t>("abcdeeeffg  hij"[(state >> 24) % 15]);
  }
  for (int n : {1, 3, 6}) {
    NGramModel m{NGramOptions(n)};
    m.fit(train);
    for (size_t t : {size_t{0}, size_t{1}, size_t{7}, size_t{500}, size_t{19000}}) {
      const auto p = m.distribution(train.data(), static_cast<int64_t>(t));
      double sum = 0;
      for (double v : p) sum += v;
      CHECK(sum == Approx(1.0).epsilon(1e-12));
    }
    const std::vector<uint8_t> unseen = {'Q', 'Z', 0, 255, 'X'};
    double sum = 0;
    for (double v : m.distribution(unseen.data(), 5)) sum += v;
    CHECK(sum == Approx(1.0).epsilon(1e-12));
  }
  CHECK_THROWS_WITH(NGramModel(NGramOptions(7)), Catch::Contains("order must be between 1 and 6"));
  NGramModel unfitted(NGramOptions(2));
  CHECK_THROWS(unfitted.nll(train.data(), 0));
}

TEST_CASE("ngram through the bpb metric: fitted, scored, no training steps", "[ngram][cli]") {
  const auto dir = megabench::test::fresh_dir("ngram_bpb");
  const json doc = {{"name", "ngram"},
                    {"models", {{{"name", "ngram"}, {"config", {{"seq_len", 1024}}}}}},
                    {"sweep", {{"grid", {{"ngram.order", {1, 3}}}}}},
                    {"metrics", {"bpb"}},
                    {"threads", 1},
                    {"data", {{"source", "builtin"}, {"corpus", "text"}}},
                    {"train", {{"eval_bytes", 65536}}}};
  const auto run = megabench::test::run_doc(doc, dir);
  INFO(run.log);
  REQUIRE(run.summary.ok == 2);
  std::map<int64_t, double> bpb;
  for (const auto& r : run.points) {
    CHECK(r["metrics"]["train_steps"] == 0);
    CHECK(r["metrics"]["train_flops"] == 0);
    CHECK(r["metrics"]["stored_counts"].get<int64_t>() > 0);
    CHECK(r.contains("sample"));
    bpb[r["config"]["order"].get<int64_t>()] = r["metrics"]["bpb"].get<double>();
  }
  // English text: a unigram model needs about 4.5-5 bits per byte; a trigram markedly fewer.
  CHECK(bpb[1] > 4.0);
  CHECK(bpb[1] < 5.5);
  CHECK(bpb[3] < bpb[1] - 1.0);
  std::cout << "ngram on the built-in text: order 1 " << bpb[1] << " bpb, order 3 " << bpb[3]
            << " bpb\n";
}

TEST_CASE("data source dir: a folder of documents, every 10th held out", "[ngram][data]") {
  const auto dir = megabench::test::fresh_dir("dir_source");
  for (const char* sub : {"/docs", "/docs/a", "/docs/b"}) ::mkdir((dir + sub).c_str(), 0755);
  for (int i = 0; i < 12; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "/docs/%s/%02d.txt", i < 6 ? "a" : "b", i);
    megabench::test::write_file(dir + name, std::string(static_cast<size_t>(10 + i), 'a' + i));
  }
  megabench::test::write_file(dir + "/docs/.hidden", "skipped");
  megabench::data::DataSpec spec;
  spec.source = "dir";
  spec.path = dir + "/docs";
  const auto d = megabench::data::load(spec);
  // Sorted paths: a/00..a/05, b/06..b/11; index 9 (b/09, 19 bytes of 'j') is held out.
  CHECK(d.held_out == std::vector<uint8_t>(19, 'j'));
  CHECK(d.held_out_docs == std::vector<int64_t>{0});
  CHECK(d.train.size() == static_cast<size_t>(12 * 10 + 66 - 19));
  CHECK(d.info["files"] == 12);

  auto run = megabench::resolve_run(
      {{"name", "x"}, {"data", {{"source", "dir"}, {"path", spec.path}}}, {"metrics", {"bpb"}}});
  CHECK(run.data.path == spec.path);
  CHECK_THROWS_WITH(megabench::resolve_run({{"data", {{"source", "dir"}}}, {"metrics", {"bpb"}}}),
                    Catch::Contains("data.path: missing required key for source \"dir\""));
  CHECK_THROWS_WITH(megabench::resolve_run(
                        {{"data", {{"source", "dir"}, {"path", "x"}, {"held_out_fraction", 0.2}}},
                         {"metrics", {"bpb"}}}),
                    Catch::Contains("data.held_out_fraction"));
  spec.path = dir + "/none";
  CHECK_THROWS_WITH(megabench::data::load(spec), Catch::Contains("no such folder"));
  spec.path = dir + "/docs/a";
  CHECK_THROWS_WITH(megabench::data::load(spec), Catch::Contains("expected at least 10"));
}
