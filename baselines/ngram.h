#pragma once
// A count-based byte n-gram model with interpolated modified Kneser-Ney smoothing (Chen & Goodman
// 1998, "An Empirical Study of Smoothing Techniques for Language Modeling", section 3.5 / eq. 17),
// orders 1-6: the reference rows of the bpb tables, what a model must beat to have learned more
// than local statistics.
//
//   P(w | h) = max(c(hw) - D(c(hw)), 0) / c(h.) + gamma(h) P(w | h')       h' = h less its first
//   byte gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / c(h.)
//
// c is the raw count at the highest order and the continuation count N1+(. g) (distinct bytes
// seen before g) below it; N_k(h.) counts the bytes w with c(hw) = k (3+: >= 3); D1, D2, D3+ come
// from each order's count-of-counts n_k: Y = n1 / (n1 + 2 n2), D_k = k - (k + 1) Y n_{k+1} / n_k.
// The recursion ends in the uniform 1/256. A context never seen (c(h.) = 0) passes its lower-order
// estimate through. Near the start of a sequence the context is what there is: byte t uses the
// min(t, order - 1) bytes before it.
//
//   NGramModel m(NGramOptions(5));
//   m.fit(train_bytes);
//   double nats = m.nll(bytes.data(), t);   // -ln P(bytes[t] | the bytes before it)
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace megabench {

struct NGramOptions {
  explicit NGramOptions(int64_t order) : order(order) {}
  /// n: the longest gram, 1 (unigram) to 6; the context is n - 1 bytes.
  int64_t order;
};

class NGramModel {
 public:
  explicit NGramModel(NGramOptions options);

  /// Counts the grams of `bytes` (replacing any earlier fit). Deterministic.
  void fit(const std::vector<uint8_t>& bytes);
  bool fitted() const { return fitted_; }

  /// -ln P(seq[t] | seq[max(0, t - order + 1)] .. seq[t - 1]).
  double nll(const uint8_t* seq, int64_t t) const;
  /// The distribution of the byte after `context` (its last order - 1 bytes count), 256 values
  /// summing to 1.
  std::vector<double> distribution(const uint8_t* context, int64_t len) const;

  /// Stored counts (distinct grams over every order): the model's size.
  int64_t stored_counts() const;
  /// The discounts D1, D2, D3+ of order k (1-based).
  const std::vector<double>& discounts(int64_t k) const { return discount_.at(k - 1); }

  const NGramOptions options;

 private:
  struct Context {       // aggregates of one context h at one order
    uint32_t total = 0;  // c(h.)
    uint32_t n1 = 0, n2 = 0, n3 = 0;
  };
  static uint64_t key(const uint8_t* g, int64_t len);
  /// P(w | the `len` bytes before `end`), len <= order - 1.
  double prob(const uint8_t* end, int64_t len, uint8_t w) const;

  // By order k - 1: counts of the k-grams and aggregates of their (k - 1)-byte contexts.
  std::vector<std::unordered_map<uint64_t, uint32_t>> grams_;
  std::vector<std::unordered_map<uint64_t, Context>> contexts_;
  std::vector<std::vector<double>> discount_;
  bool fitted_ = false;
};

}  // namespace megabench
