#include "baselines/ngram.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace megabench {

NGramModel::NGramModel(NGramOptions o) : options(o) {
  if (o.order < 1 || o.order > 6) {
    throw std::invalid_argument("ngram: order must be between 1 and 6, got " +
                                std::to_string(o.order));
  }
}

uint64_t NGramModel::key(const uint8_t* g, int64_t len) {
  uint64_t k = static_cast<uint64_t>(len) << 56;
  for (int64_t i = 0; i < len; ++i) k |= static_cast<uint64_t>(g[i]) << (8 * i);
  return k;
}

namespace {

// Chen & Goodman's D1, D2, D3+ from the count-of-counts n1..n4 of one order. An order too small to
// have them (a tiny corpus) falls back to D_k = k / 2, inside the valid range [0, k].
std::vector<double> modified_kn_discounts(const std::vector<double>& n) {
  std::vector<double> d(3);
  const double y = n[0] + 2 * n[1] > 0 ? n[0] / (n[0] + 2 * n[1]) : 0.5;
  for (int k = 1; k <= 3; ++k) {
    const double nk = n[k - 1], next = n[k];
    const double dk = nk > 0 ? k - (k + 1) * y * next / nk : k / 2.0;
    d[k - 1] = std::clamp(dk, 0.0, static_cast<double>(k));
  }
  return d;
}

}  // namespace

void NGramModel::fit(const std::vector<uint8_t>& bytes) {
  const int64_t N = options.order, L = static_cast<int64_t>(bytes.size());
  grams_.assign(N, {});
  contexts_.assign(N, {});
  discount_.assign(N, {});
  // The highest order: raw counts of every full N-gram.
  auto& top = grams_[N - 1];
  top.reserve(static_cast<size_t>(std::min<int64_t>(L, int64_t{1} << 24)));
  for (int64_t t = N - 1; t < L; ++t) ++top[key(&bytes[t - N + 1], N)];
  // Lower orders: continuation counts, one per distinct byte seen before the gram.
  for (int64_t k = N - 1; k >= 1; --k) {
    auto& lower = grams_[k - 1];
    for (const auto& [g, c] : grams_[k]) {
      (void)c;
      const uint64_t suffix =
          (static_cast<uint64_t>(k) << 56) | ((g & ((uint64_t{1} << 56) - 1)) >> 8);
      ++lower[suffix];
    }
  }
  // Context aggregates and discounts per order.
  for (int64_t k = 1; k <= N; ++k) {
    std::vector<double> n(4, 0.0);
    for (const auto& [g, c] : grams_[k - 1]) {
      const uint64_t h = (static_cast<uint64_t>(k - 1) << 56) |
                         (g & ((uint64_t{1} << (8 * (k - 1))) - 1));  // the first k - 1 bytes
      Context& ctx = contexts_[k - 1][h];
      ctx.total += c;
      (c == 1 ? ctx.n1 : c == 2 ? ctx.n2 : ctx.n3) += 1;
      if (c <= 4) n[c - 1] += 1;
    }
    discount_[k - 1] = modified_kn_discounts(n);
  }
  fitted_ = true;
}

double NGramModel::prob(const uint8_t* end, int64_t len, uint8_t w) const {
  uint8_t g[8];
  double p = 1.0 / 256.0;
  for (int64_t k = 1; k <= len + 1; ++k) {
    const uint8_t* h = end - (k - 1);
    const auto cit = contexts_[k - 1].find(key(h, k - 1));
    if (cit == contexts_[k - 1].end()) continue;  // unseen context: the lower order's estimate
    std::copy(h, end, g);
    g[k - 1] = w;
    const auto git = grams_[k - 1].find(key(g, k));
    const double c = git == grams_[k - 1].end() ? 0.0 : static_cast<double>(git->second);
    const auto& d = discount_[k - 1];
    const Context& ctx = cit->second;
    const double disc = c == 0 ? 0.0 : c == 1 ? d[0] : c == 2 ? d[1] : d[2];
    const double total = static_cast<double>(ctx.total);
    const double gamma = (d[0] * ctx.n1 + d[1] * ctx.n2 + d[2] * ctx.n3) / total;
    p = std::max(c - disc, 0.0) / total + gamma * p;
  }
  return p;
}

double NGramModel::nll(const uint8_t* seq, int64_t t) const {
  if (!fitted_) throw std::logic_error("ngram: nll before fit");
  const int64_t len = std::min<int64_t>(t, options.order - 1);
  return -std::log(prob(seq + t, len, seq[t]));
}

std::vector<double> NGramModel::distribution(const uint8_t* context, int64_t len) const {
  if (!fitted_) throw std::logic_error("ngram: distribution before fit");
  const int64_t used = std::min<int64_t>(len, options.order - 1);
  std::vector<double> p(256);
  for (int w = 0; w < 256; ++w) p[w] = prob(context + len, used, static_cast<uint8_t>(w));
  return p;
}

int64_t NGramModel::stored_counts() const {
  int64_t n = 0;
  for (const auto& g : grams_) n += static_cast<int64_t>(g.size());
  return n;
}

}  // namespace megabench
