#pragma once
// The row loops of the fused cross-entropy (kernels/cross_entropy.h), one set per x86-64 level
// (cross_entropy_rows.inc). Per row r: lse[r] = log sum exp x[r]; forward sums lse[r] - x[r, t[r]]
// over the rows whose target is not `ignore` (in double, per thread, added in thread order);
// backward writes dx[r] = scale (exp(x[r] - lse[r]) - onehot(t[r])), zero for ignored rows;
// forward_backward does both in one pass per row, one exp per logit (dx may be x: in place), and
// leaves lse[r] unwritten for the rows it does not score (nothing reads them).
#include <cstdint>
#include <vector>

namespace megabench::kernels::cross_entropy_rows {

struct Sums {
  double total = 0;
  int64_t count = 0;
  int64_t bad_row = -1;  // the first row whose target is outside [0, V) and not ignored
};

/// Per-thread (or per-chunk) sums added in their order: the same sum for the same split.
inline Sums combine(const std::vector<Sums>& parts) {
  Sums all;
  for (const Sums& p : parts) {
    all.total += p.total;
    all.count += p.count;
    if (all.bad_row < 0) all.bad_row = p.bad_row;
  }
  return all;
}

#define MEGABENCH_CROSS_ENTROPY_ROWS(ISA)                                                      \
  namespace ISA {                                                                              \
  Sums forward(const float* x, const int64_t* t, float* lse, int64_t N, int64_t V,             \
               int64_t ignore);                                                                \
  Sums forward(const double* x, const int64_t* t, double* lse, int64_t N, int64_t V,           \
               int64_t ignore);                                                                \
  void backward(const float* x, const int64_t* t, const float* lse, float* dx, int64_t N,      \
                int64_t V, int64_t ignore, float scale);                                       \
  void backward(const double* x, const int64_t* t, const double* lse, double* dx, int64_t N,   \
                int64_t V, int64_t ignore, double scale);                                      \
  Sums forward_backward(const float* x, const int64_t* t, float* lse, float* dx, int64_t N,    \
                        int64_t V, int64_t ignore, float scale);                               \
  Sums forward_backward(const double* x, const int64_t* t, double* lse, double* dx, int64_t N, \
                        int64_t V, int64_t ignore, double scale);                              \
  }
MEGABENCH_CROSS_ENTROPY_ROWS(generic)
MEGABENCH_CROSS_ENTROPY_ROWS(avx2)
MEGABENCH_CROSS_ENTROPY_ROWS(avx512)
#undef MEGABENCH_CROSS_ENTROPY_ROWS

}  // namespace megabench::kernels::cross_entropy_rows
