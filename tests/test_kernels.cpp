// The custom CUDA kernels (kernels/) against their LibTorch references, and the references
// themselves against the shared layers (models/layers.h). GPU tests skip visibly without a device.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cross_entropy.h"
#include "kernels/cross_entropy_rows.h"
#include "kernels/decode_attention.h"
#include "kernels/embedding.h"
#include "kernels/gemv.h"
#include "kernels/local_attention.h"
#include "kernels/rms_norm.h"
#include "kernels/sampling.h"
#include "kernels/short_attention.h"
#include "models/decoding.h"
#include "models/layers.h"
#include "support.h"

namespace {

using megabench::AttendOptions;
using megabench::AttentionKernel;
namespace mk = megabench::kernels;

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The message of the exception `fn` throws, or "" if it throws none.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

torch::Tensor generic_attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             bool sdpa) {
  AttendOptions o;
  o.causal = true;
  o.attention = sdpa ? megabench::AttentionPath::kSdpa : megabench::AttentionPath::kExplicit;
  return megabench::attend(q, k, v, o);
}

// Softmax over the kept logits with Gumbel noise, written out row by row without LibTorch's topk:
// an independent check of the reference's semantics.
std::vector<int64_t> naive_sample(const torch::Tensor& logits, double temperature, double thres,
                                  const torch::Tensor& noise) {
  const int64_t rows = logits.size(0), vocab = logits.size(1);
  const int64_t k = std::max<int64_t>(static_cast<int64_t>((1.0 - thres) * vocab), 1);
  auto lg = logits.accessor<float, 2>();
  auto nz = noise.accessor<float, 2>();
  std::vector<int64_t> out;
  for (int64_t b = 0; b < rows; ++b) {
    std::vector<float> row(vocab);
    for (int64_t i = 0; i < vocab; ++i) row[i] = lg[b][i];
    std::vector<float> sorted = row;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const float kth = sorted[k - 1];  // random logits: no ties at the boundary
    int64_t best = 0;
    float best_score = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < vocab; ++i) {
      if (row[i] < kth) continue;
      float score = row[i];
      if (temperature != 0.0) {
        const float g = -std::log(std::max(-std::log(std::max(nz[b][i], 1e-20f)), 1e-20f));
        score = row[i] / static_cast<float>(temperature) + g;
      }
      if (score > best_score) {
        best_score = score;
        best = i;
      }
    }
    out.push_back(best);
  }
  return out;
}

struct Shape {
  int64_t b, h, n, d;
};
const std::vector<Shape> kShapes = {
    {3, 4, 9, 64}, {2, 2, 64, 128}, {5, 3, 33, 32}, {1, 1, 1, 64}, {16, 8, 17, 64}};

}  // namespace

// ---------------------------------------------------------------------------------------------
// CPU: references and launcher checks

// The fused CPU RMSNorm against the composite ATen expression (its naive reference): values and
// both gradients, a row whose RMS is under eps (the clamp: no gradient through the norm), 3-D and
// non-contiguous input. Tolerances: fp64 1e-12; fp32 within 2x the composite's own fp32 error
// against fp64 (+1e-6), the kernels/ rule.
TEST_CASE("rms_norm kernel matches the composite RMSNorm: values and gradients", "[kernels]") {
  torch::manual_seed(6);
  auto x64 = torch::randn({3, 5, 64}, torch::kFloat64);
  x64[1][2].mul_(1e-12);  // RMS ~1e-12 < eps 1e-8: clamped
  auto g64 = torch::randn({64}, torch::kFloat64);
  auto dy64 = torch::randn({3, 5, 64}, torch::kFloat64);
  const double eps = 1e-8;
  auto grads = [&](const torch::Tensor& x0, const torch::Tensor& g0, bool fused) {
    auto x = x0.clone().requires_grad_(), g = g0.clone().requires_grad_();
    auto y = fused ? megabench::kernels::rms_norm(x, g, eps)
                   : megabench::kernels::rms_norm_reference(x, g, eps);
    (y * dy64.to(y.scalar_type())).sum().backward();
    return std::vector<torch::Tensor>{y.detach().to(torch::kFloat64), x.grad().to(torch::kFloat64),
                                      g.grad().to(torch::kFloat64)};
  };
  const auto ref = grads(x64, g64, false);
  const auto fused64 = grads(x64, g64, true);
  for (size_t i = 0; i < ref.size(); ++i) {
    CAPTURE(i);
    CHECK(megabench::test::rel_err(fused64[i], ref[i]) < 1e-12);
  }
  CHECK(ref[1][1][2].abs().max().item<double>() > 0);  // the clamped row still gets dy g / eps
  const auto comp32 = grads(x64.to(torch::kFloat32), g64.to(torch::kFloat32), false);
  const auto fused32 = grads(x64.to(torch::kFloat32), g64.to(torch::kFloat32), true);
  for (size_t i = 0; i < ref.size(); ++i) {
    CAPTURE(i);
    const double own = megabench::test::rel_err(comp32[i], ref[i]);
    CHECK(megabench::test::rel_err(fused32[i], ref[i]) <= 2 * own + 1e-6);
  }
  // A transposed (non-contiguous) input.
  auto xt = torch::randn({64, 7}, torch::kFloat64).t();
  CHECK(megabench::test::rel_err(megabench::kernels::rms_norm(xt, g64, eps),
                                 megabench::kernels::rms_norm_reference(xt, g64, eps)) < 1e-12);
  // bf16 (inference weights): forward only, in fp32 math with one rounding per output, so within
  // bf16's unit roundoff 2^-8 of fp64 and no further off than the composite's bf16 expression.
  const auto xb = x64.to(torch::kBFloat16), gb = g64.to(torch::kBFloat16);
  {
    c10::InferenceMode inference;
    REQUIRE(megabench::kernels::rms_norm_supported(xb, gb));
    auto ref_b =
        megabench::kernels::rms_norm_reference(xb.to(torch::kFloat64), gb.to(torch::kFloat64), eps);
    auto fused_b = megabench::kernels::rms_norm(xb, gb, eps);
    CHECK(fused_b.scalar_type() == torch::kBFloat16);
    const double err = megabench::test::rel_err(fused_b.to(torch::kFloat64), ref_b);
    const double own = megabench::test::rel_err(
        megabench::kernels::rms_norm_reference(xb, gb, eps).to(torch::kFloat64), ref_b);
    CHECK(err <= std::ldexp(1.0, -8));
    CHECK(err <= own + 1e-4);
  }
  CHECK_FALSE(megabench::kernels::rms_norm_supported(xb.clone().requires_grad_(), gb));
  CHECK_THROWS_WITH(megabench::kernels::rms_norm(x64, g64.narrow(0, 0, 8), eps),
                    Catch::Contains("x.size(-1) elements"));
}

// The fused cross-entropy against LibTorch's (log_softmax + nll_loss): loss and logit gradient
// with and without ignored rows (byte 0 as MEGABYTE's pad_id, -100 as LibTorch's default), a
// non-contiguous input, an upstream gradient other than 1, and a row with a large logit (the
// log-sum-exp must subtract the row maximum). fp64 within 1e-12; fp32 within 2x LibTorch's own
// fp32 error against fp64 (+1e-6), the kernels/ rule. bf16 logits (autocast) take fp32 math:
// the same as LibTorch's loss on the widened logits. Every ignored row: NaN loss, zero gradient.
TEST_CASE("cross_entropy kernel matches LibTorch's cross_entropy: loss and gradients",
          "[kernels]") {
  torch::manual_seed(8);
  const int64_t N = 300, V = 256;
  auto x64 = torch::randn({N, V}, torch::kFloat64) * 3;
  x64[7][11] = 200.0;  // exp(200) overflows fp32 without the max subtracted
  auto t = torch::randint(0, V, {N}, torch::kLong);
  t[7] = 11;
  t.narrow(0, 20, 30).fill_(0);
  auto run = [&](const torch::Tensor& x0, int64_t ignore, bool fused, double g) {
    auto x = x0.clone().requires_grad_();
    auto loss = fused ? mk::cross_entropy(x, t, ignore) : mk::cross_entropy_reference(x, t, ignore);
    (loss * g).backward();
    return std::vector<torch::Tensor>{loss.detach().to(torch::kFloat64),
                                      x.grad().to(torch::kFloat64)};
  };
  for (const int64_t ignore : {int64_t{-100}, int64_t{0}}) {
    CAPTURE(ignore);
    REQUIRE(mk::cross_entropy_supported(x64, t));
    const auto ref = run(x64, ignore, false, 0.7);
    const auto fused64 = run(x64, ignore, true, 0.7);
    const auto ref32 = run(x64.to(torch::kFloat32), ignore, false, 0.7);
    const auto fused32 = run(x64.to(torch::kFloat32), ignore, true, 0.7);
    for (size_t i = 0; i < ref.size(); ++i) {
      CAPTURE(i);
      CHECK(megabench::test::rel_err(fused64[i], ref[i]) < 1e-12);
      const double own = megabench::test::rel_err(ref32[i], ref[i]);
      CHECK(megabench::test::rel_err(fused32[i], ref[i]) <= 2 * own + 1e-6);
    }
    if (ignore == 0) CHECK(fused64[1].narrow(0, 20, 30).abs().max().item<double>() == 0);
  }
  // Non-contiguous logits: the transpose of a (V, N) tensor.
  auto xt = x64.t().contiguous().t();
  REQUIRE_FALSE(xt.is_contiguous());
  CHECK(megabench::test::rel_err(mk::cross_entropy(xt, t), mk::cross_entropy_reference(xt, t)) <
        1e-12);
  // (B, L, V) logits against (B, L) targets: the flattened rows' loss; other target shapes
  // rejected.
  CHECK(megabench::test::rel_err(mk::cross_entropy(x64.view({3, 100, V}), t.view({3, 100})),
                                 mk::cross_entropy_reference(x64, t)) < 1e-12);
  CHECK_THROWS_WITH(mk::cross_entropy(x64.view({3, 100, V}), t),
                    Catch::Contains("shape of logits without its last dimension"));
  // bf16 logits: LibTorch's loss on the fp32-widened logits, and a bf16 gradient.
  {
    auto xb = x64.to(torch::kBFloat16).requires_grad_();
    auto loss = mk::cross_entropy(xb, t);
    loss.backward();
    auto xw = xb.detach().to(torch::kFloat32).requires_grad_();
    auto want = mk::cross_entropy_reference(xw, t);
    want.backward();
    CHECK(loss.scalar_type() == torch::kFloat32);
    CHECK(std::abs(loss.item<double>() - want.item<double>()) <= 1e-6 * want.item<double>());
    CHECK(xb.grad().scalar_type() == torch::kBFloat16);
    // One bf16 rounding of the fp32 gradient: within bf16's unit roundoff.
    CHECK(megabench::test::rel_err(xb.grad().to(torch::kFloat64), xw.grad().to(torch::kFloat64)) <=
          std::ldexp(1.0, -8));
  }
  // Every row ignored: NaN, as LibTorch's mean over no rows, and no gradient.
  {
    auto x = x64.clone().requires_grad_();
    auto loss = mk::cross_entropy(x, torch::full({N}, -100, torch::kLong));
    CHECK(std::isnan(loss.item<double>()));
    CHECK(std::isnan(
        mk::cross_entropy_reference(x64, torch::full({N}, -100, torch::kLong)).item<double>()));
    loss.backward();
    CHECK(x.grad().abs().max().item<double>() == 0);
  }
  auto bad = t.clone();
  bad[5] = V;
  CHECK_THROWS_WITH(mk::cross_entropy(x64, bad), Catch::Contains("targets[5] = 256"));
}

// The logits projection fused with the loss, against at::linear + LibTorch's cross_entropy: loss
// and the gradients of hidden, weight and bias, over more rows than one chunk (the last chunk
// partial), with ignored rows, with and without a bias, an upstream gradient other than 1, at
// 1 and 2 threads (the per-thread dW / db sums). fp64 within 1e-12; fp32 within 2x LibTorch's own
// fp32 error against fp64 (+1e-6), the kernels/ rule. (B, L, D) hidden against (B, L) targets;
// without gradients the same loss; every row ignored: NaN and zero gradients; a bad target named.
TEST_CASE("linear_cross_entropy matches linear + LibTorch's cross_entropy: loss and gradients",
          "[kernels]") {
  torch::manual_seed(10);
  const int64_t N = 1100, D = 24, V = 256;  // 512-row chunks: 512, 512, 76
  auto h64 = torch::randn({N, D}, torch::kFloat64);
  auto w64 = torch::randn({V, D}, torch::kFloat64) * 0.5;
  auto b64 = torch::randn({V}, torch::kFloat64);
  auto t = torch::randint(0, V, {N}, torch::kLong);
  t.narrow(0, 500, 40).fill_(-100);  // across the first chunk boundary
  const int threads_before = at::get_num_threads();
  auto run = [&](at::ScalarType dt, bool bias, bool fused) {
    auto h = h64.to(dt).clone().requires_grad_();  // clone: to() of the same dtype is h64 itself
    auto w = w64.to(dt).clone().requires_grad_();
    auto b = bias ? b64.to(dt).clone().requires_grad_() : torch::Tensor();
    auto loss = fused ? mk::linear_cross_entropy(h, w, b, t)
                      : mk::linear_cross_entropy_reference(h, w, b, t);
    (loss * 0.7).backward();
    std::vector<torch::Tensor> out{loss.detach(), h.grad(), w.grad()};
    if (bias) out.push_back(b.grad());
    for (auto& o : out) o = o.to(torch::kFloat64);
    return out;
  };
  for (const int threads : {1, 2}) {
    at::set_num_threads(threads);
    for (const bool bias : {true, false}) {
      CAPTURE(threads, bias);
      REQUIRE(mk::linear_cross_entropy_supported(h64, w64, bias ? b64 : torch::Tensor(), t));
      const auto ref = run(torch::kFloat64, bias, false);
      const auto fused64 = run(torch::kFloat64, bias, true);
      const auto ref32 = run(torch::kFloat32, bias, false);
      const auto fused32 = run(torch::kFloat32, bias, true);
      REQUIRE(fused64.size() == ref.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        CAPTURE(i);
        CHECK(megabench::test::rel_err(fused64[i], ref[i]) < 1e-12);
        const double own = megabench::test::rel_err(ref32[i], ref[i]);
        CHECK(megabench::test::rel_err(fused32[i], ref[i]) <= 2 * own + 1e-6);
      }
      CHECK(fused64[1].narrow(0, 500, 40).abs().max().item<double>() == 0);  // ignored rows
    }
  }
  at::set_num_threads(threads_before);
  // (B, L, D) against (B, L); other target shapes rejected.
  CHECK(megabench::test::rel_err(
            mk::linear_cross_entropy(h64.view({4, 275, D}), w64, b64, t.view({4, 275})),
            mk::linear_cross_entropy_reference(h64, w64, b64, t)) < 1e-12);
  CHECK_THROWS_WITH(mk::linear_cross_entropy(h64.view({4, 275, D}), w64, b64, t),
                    Catch::Contains("shape of hidden without its last dimension"));
  // No gradient wanted: the same loss, and no graph.
  {
    torch::NoGradGuard no_grad;
    auto loss = mk::linear_cross_entropy(h64, w64, b64, t);
    CHECK(!loss.requires_grad());
    CHECK(megabench::test::rel_err(loss, mk::linear_cross_entropy_reference(h64, w64, b64, t)) <
          1e-12);
  }
  // Every row ignored: NaN, and zero gradients.
  {
    auto h = h64.clone().requires_grad_();
    auto w = w64.clone().requires_grad_();
    auto loss = mk::linear_cross_entropy(h, w, b64, torch::full({N}, -100, torch::kLong));
    CHECK(std::isnan(loss.item<double>()));
    loss.backward();
    CHECK(h.grad().abs().max().item<double>() == 0);
    CHECK(w.grad().abs().max().item<double>() == 0);
  }
  // bf16 (or any unsupported case): the reference path, with the same loss.
  {
    auto hb = h64.to(torch::kBFloat16), wb = w64.to(torch::kBFloat16);
    CHECK_FALSE(mk::linear_cross_entropy_supported(hb, wb, torch::Tensor(), t));
    CHECK(megabench::test::rel_err(mk::linear_cross_entropy(hb, wb, torch::Tensor(), t),
                                   mk::linear_cross_entropy_reference(hb, wb, torch::Tensor(), t)) <
          1e-6);
  }
  auto bad = t.clone();
  bad[700] = V;
  CHECK_THROWS_WITH(mk::linear_cross_entropy(h64, w64, b64, bad),
                    Catch::Contains("targets[700] = 256"));
}

// Each x86-64 level's row loops (the kernel runs the one ATen picks; the others are checked here
// where the CPU can run them): the log-sum-exp against at::logsumexp, the gradient rows against
// the softmax, an ignored row zero, the sum and count of the counted rows.
TEST_CASE("cross_entropy row loops agree at every x86-64 level this CPU runs", "[kernels]") {
  namespace rows = megabench::kernels::cross_entropy_rows;
  torch::manual_seed(9);
  const int64_t N = 130, V = 256;
  auto x = torch::randn({N, V}, torch::kFloat32) * 4;
  auto t = torch::randint(0, V, {N}, torch::kLong);
  t[3] = -100;
  const auto want_lse = at::logsumexp(x.to(torch::kFloat64), {1});
  auto want_dx = torch::softmax(x.to(torch::kFloat64), 1) * 0.5;
  want_dx.index_put_({torch::arange(N), t.clamp_min(0)},
                     want_dx.index({torch::arange(N), t.clamp_min(0)}) - 0.5);
  want_dx[3].zero_();
  struct Level {
    const char* name;
    bool runs;
    rows::Sums (*fwd)(const float*, const int64_t*, float*, int64_t, int64_t, int64_t);
    void (*bwd)(const float*, const int64_t*, const float*, float*, int64_t, int64_t, int64_t,
                float);
    rows::Sums (*fwd_bwd)(const float*, const int64_t*, float*, float*, int64_t, int64_t, int64_t,
                          float);
  };
  const Level levels[] = {
    {"generic", true, rows::generic::forward, rows::generic::backward,
     rows::generic::forward_backward},
#if defined(__x86_64__)
    {"avx2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), rows::avx2::forward,
     rows::avx2::backward, rows::avx2::forward_backward},
    {"avx512",
     __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"),
     rows::avx512::forward, rows::avx512::backward, rows::avx512::forward_backward},
#endif
  };
  for (const auto& level : levels) {
    CAPTURE(level.name);
    if (!level.runs) {
      WARN("this CPU cannot run the " << level.name << " row loops: not checked here");
      continue;
    }
    auto lse = torch::empty({N}, torch::kFloat32);
    const auto sums =
        level.fwd(x.data_ptr<float>(), t.data_ptr<int64_t>(), lse.data_ptr<float>(), N, V, -100);
    CHECK(sums.count == N - 1);
    CHECK(sums.bad_row == -1);
    CHECK(megabench::test::rel_err(lse.to(torch::kFloat64), want_lse) < 1e-6);
    const double want_total =
        (want_lse - x.to(torch::kFloat64).gather(1, t.clamp_min(0).unsqueeze(1)).squeeze(1))
            .index({t != -100})
            .sum()
            .item<double>();
    CHECK(std::abs(sums.total - want_total) < 1e-5 * std::abs(want_total));
    auto dx = torch::empty_like(x);
    level.bwd(x.data_ptr<float>(), t.data_ptr<int64_t>(), lse.data_ptr<float>(),
              dx.data_ptr<float>(), N, V, -100, 0.5f);
    CHECK(max_abs(dx, want_dx) < 1e-6);
    // Both in one pass, in place (the fused loss's use): the same sums, the scored rows'
    // log-sum-exp, and the gradient.
    auto inplace = x.clone();
    auto lse2 = torch::empty({N}, torch::kFloat32);
    const auto sums2 =
        level.fwd_bwd(inplace.data_ptr<float>(), t.data_ptr<int64_t>(), lse2.data_ptr<float>(),
                      inplace.data_ptr<float>(), N, V, -100, 0.5f);
    CHECK(sums2.count == N - 1);
    CHECK(sums2.bad_row == -1);
    CHECK(std::abs(sums2.total - want_total) < 1e-5 * std::abs(want_total));
    const auto scored = t != -100;
    CHECK(megabench::test::rel_err(lse2.index({scored}).to(torch::kFloat64),
                                   want_lse.index({scored})) < 1e-6);
    CHECK(max_abs(inplace, want_dx) < 1e-6);
  }
}

// The embedding kernel against LibTorch's: the rows, and the table gradient for ids that repeat
// (every byte many times) and skip rows (the gradient stays 0 there), 1-D and 3-D ids, fp64
// exactly and fp32 within LibTorch's own fp32 error against fp64 (the sums' order differs).
TEST_CASE("embedding kernel matches LibTorch's embedding: rows and table gradient", "[kernels]") {
  torch::manual_seed(10);
  auto w64 = torch::randn({300, 24}, torch::kFloat64);
  for (const auto& shape : {std::vector<int64_t>{4, 3, 700}, std::vector<int64_t>{50}}) {
    CAPTURE(shape.size());
    auto ids = torch::randint(0, 256, shape, torch::kLong);  // rows 256..299 never looked up
    auto dy = torch::randn(ids.numel() * 24, torch::kFloat64);
    auto run = [&](const torch::Tensor& w0, bool fused) {
      auto w = w0.clone().requires_grad_();
      auto y = fused ? mk::embedding(w, ids) : mk::embedding_reference(w, ids);
      (y.flatten() * dy.to(y.scalar_type())).sum().backward();
      return std::vector<torch::Tensor>{y.detach().to(torch::kFloat64),
                                        w.grad().to(torch::kFloat64)};
    };
    REQUIRE(mk::embedding_supported(w64, ids));
    const auto ref = run(w64, false), got = run(w64, true);
    CHECK(got[0].sizes() == ref[0].sizes());
    CHECK(max_abs(got[0], ref[0]) == 0);
    CHECK(megabench::test::rel_err(got[1], ref[1]) < 1e-12);
    CHECK(got[1].narrow(0, 256, 44).abs().max().item<double>() == 0);
    const auto ref32 = run(w64.to(torch::kFloat32), false),
               got32 = run(w64.to(torch::kFloat32), true);
    CHECK(max_abs(got32[0], ref32[0]) == 0);
    const double own = megabench::test::rel_err(ref32[1], ref[1]);
    CHECK(megabench::test::rel_err(got32[1], ref[1]) <= 2 * own + 1e-6);
  }
  CHECK_THROWS_WITH(mk::embedding(w64, torch::full({3}, 300, torch::kLong)),
                    Catch::Contains("ids must lie in [0, 300), got 300"));
  CHECK_THROWS_WITH(mk::embedding(w64, torch::full({3}, -1, torch::kLong)),
                    Catch::Contains("got -1"));
}

TEST_CASE("gemv_bf16 matches at::mv in bf16 and the fp64 product", "[kernels]") {
  torch::manual_seed(7);
  // Every path this CPU runs; the others are named in a warning, not passed.
  std::vector<mk::GemvPath> paths;
  for (const auto& [path, name] : {std::pair{mk::GemvPath::kAvx512Bf16, "AVX512-BF16"},
                                   std::pair{mk::GemvPath::kPortable, "portable"}}) {
    if (mk::gemv_bf16_path_available(path)) {
      paths.push_back(path);
    } else {
      WARN("gemv_bf16: this CPU cannot run the " << name << " path: not tested here");
    }
  }
  // K: below, at and past one 32-column step; 64-column steps with a 32-column step and a masked
  // tail after them (200 = 192 + 8, 300 = 256 + 32 + 12); N odd and even (rows read in pairs).
  const std::vector<std::pair<int64_t, int64_t>> shapes{{16, 1},  {17, 31}, {18, 32},   {19, 100},
                                                        {5, 200}, {3, 300}, {64, 1024}, {257, 65}};
  for (const auto& [N, K] : shapes) {
    for (const bool with_bias : {false, true}) {
      auto w = torch::randn({N, K}).to(torch::kBFloat16);
      auto x = torch::randn({1, 1, K}).to(torch::kBFloat16);  // a decoding step's row
      auto b = with_bias ? torch::randn({N}).to(torch::kBFloat16) : torch::Tensor();
      auto exact = at::mv(w.to(torch::kFloat64), x.reshape({K}).to(torch::kFloat64));
      if (with_bias) exact = exact + b.to(torch::kFloat64);
      const double own = max_abs(mk::gemv_bf16_reference(w, x, b), exact);
      // Rounding to bf16 (half an ulp, 2^-9 relative) plus fp32 summation of K products.
      auto bound =
          exact.abs() * std::ldexp(1.0, -8) +
          1e-6 * at::mv(w.to(torch::kFloat64).abs(), x.reshape({K}).to(torch::kFloat64).abs());
      for (const auto path : paths) {
        CAPTURE(N, K, with_bias, static_cast<int>(path));
        auto y = mk::gemv_bf16(w, x, b, path);
        REQUIRE(y.sizes() == torch::IntArrayRef{N});
        CHECK(y.scalar_type() == torch::kBFloat16);
        CHECK(max_abs(y, exact) <= 2 * own + 1e-5);
        CHECK(((y.to(torch::kFloat64) - exact).abs() <= bound).all().item<bool>());
      }
    }
  }
}

TEST_CASE("gemv_f32 matches the fp64 product within fp32 summation error", "[kernels]") {
  torch::manual_seed(8);
  if (!mk::gemv_f32_fast()) WARN("gemv_f32: no AVX2 + FMA here; Linear keeps at::linear");
  // K: below, at and past one 16-column step, 32-column steps with a 16-column step and a scalar
  // tail (61 = 32 + 16 + 13, 1027 = 1024 + 3); N odd and even (rows read in pairs).
  const std::vector<std::pair<int64_t, int64_t>> shapes{{16, 1},  {17, 15},   {18, 16}, {5, 61},
                                                        {3, 100}, {64, 1027}, {257, 64}};
  for (const auto& [N, K] : shapes) {
    for (const bool with_bias : {false, true}) {
      CAPTURE(N, K, with_bias);
      auto w = torch::randn({N, K});
      auto x = torch::randn({1, 1, K});
      auto b = with_bias ? torch::randn({N}) : torch::Tensor();
      auto w64 = w.to(torch::kFloat64), x64 = x.reshape({K}).to(torch::kFloat64);
      auto exact = at::mv(w64, x64);
      if (with_bias) exact = exact + b.to(torch::kFloat64);
      auto y = mk::gemv_f32(w, x, b);
      REQUIRE(y.sizes() == torch::IntArrayRef{N});
      CHECK(y.scalar_type() == torch::kFloat32);
      // fp32 summation of K products: at most about K x 2^-24 of sum |w x| (plus the bias's
      // rounding); at::mv's own error is of the same size.
      auto bound = (K + 2) * std::ldexp(1.0, -24) * (at::mv(w64.abs(), x64.abs()) + 1.0);
      CHECK(((y.to(torch::kFloat64) - exact).abs() <= bound).all().item<bool>());
    }
  }
  auto w = torch::randn({8, 16});
  CHECK_FALSE(mk::gemv_f32_supported(w.to(torch::kBFloat16), torch::randn({16})));
  CHECK_FALSE(mk::gemv_f32_supported(w.t(), torch::randn({8})));
  CHECK_THROWS_WITH(mk::gemv_f32(w, torch::randn({15})), Catch::Contains("K elements"));
  CHECK_THROWS_WITH(mk::gemv_f32(w, torch::randn({16}), torch::zeros({7})),
                    Catch::Contains("b must be undefined or 8"));
}

TEST_CASE("gemv_bf16 rejects what it cannot run", "[kernels]") {
  auto w = torch::randn({8, 16}).to(torch::kBFloat16);
  auto x = torch::randn({16}).to(torch::kBFloat16);
  CHECK_FALSE(mk::gemv_bf16_supported(w.to(torch::kFloat32), x));
  CHECK_FALSE(mk::gemv_bf16_supported(w.t(), torch::randn({8}).to(torch::kBFloat16)));
  CHECK_THROWS_WITH(mk::gemv_bf16(w, x.narrow(0, 0, 15)), Catch::Contains("K elements"));
  CHECK_THROWS_WITH(mk::gemv_bf16(w, x, torch::zeros({7}, torch::kBFloat16)),
                    Catch::Contains("b must be undefined or 8 bf16 values"));
  // kAuto takes the first path the CPU runs, in the header's order.
  const auto automatic = mk::gemv_bf16_auto_path();
  CHECK(mk::gemv_bf16_path_available(automatic));
  if (mk::gemv_bf16_path_available(mk::GemvPath::kAvx512Bf16)) {
    CHECK(automatic == mk::GemvPath::kAvx512Bf16);
  }
  CHECK(torch::equal(mk::gemv_bf16(w, x), mk::gemv_bf16(w, x, {}, automatic)));
  if (!mk::gemv_bf16_path_available(mk::GemvPath::kAvx512Bf16)) {
    CHECK_THROWS_WITH(mk::gemv_bf16(w, x, {}, mk::GemvPath::kAvx512Bf16),
                      Catch::Contains("cannot run path"));
  }
}

// The short-attention CPU kernel against its unfused reference (einsum, masked_fill(-finfo.max),
// softmax, einsum), values and the three gradients, on the cases models give it: causal
// self-attention over patches, queries after cached keys (n < k_len), MEGABYTE's cross-patch keys
// (a broadcast keep mask, the first unit's keys masked), a window-free non-causal call with more
// queries than keys, a row that sees no key (uniform, as the -finfo.max fill makes it), and strided
// heads split from one projection. Tolerances: fp64 1e-12 relative; fp32 and bf16 within 2x the
// reference's own error against fp64 in that dtype (+1e-5), the kernels/ rule.
namespace {
struct ShortCase {
  const char* name;
  int64_t b, h, n, k_len, d;
  bool causal;
  int keep;  // 0: none; 1: (B, 1, 1, k_len) with the first k_len - n keys of batch 0 masked; 2: a
             // row with no key
};

std::vector<torch::Tensor> short_run(const torch::Tensor& q0, const torch::Tensor& k0,
                                     const torch::Tensor& v0, const torch::Tensor& dout,
                                     const torch::Tensor& keep, bool causal, bool fused,
                                     c10::ScalarType t) {
  // Fresh leaves each run (to() of the same dtype would return the caller's tensor itself).
  auto leaf = [&](const torch::Tensor& x) { return x.to(t).clone().requires_grad_(); };
  auto q = leaf(q0), k = leaf(k0), v = leaf(v0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto out = fused ? mk::short_attention(q, k, v, scale, causal, keep)
                   : mk::short_attention_reference(q, k, v, scale, causal, keep);
  (out * dout.to(t)).sum().backward();
  return {out.detach().to(torch::kFloat64).clone(), q.grad().to(torch::kFloat64).clone(),
          k.grad().to(torch::kFloat64).clone(), v.grad().to(torch::kFloat64).clone()};
}
}  // namespace

TEST_CASE("short_attention kernel matches its reference: values and gradients", "[kernels]") {
  torch::manual_seed(11);
  const std::vector<ShortCase> cases{
      {"patches, causal", 6, 4, 5, 5, 64, true, 0},
      {"one query", 3, 2, 1, 1, 32, true, 0},
      {"after cached keys", 2, 3, 3, 9, 16, true, 0},
      {"cross-patch keys", 4, 2, 5, 7, 24, true, 1},
      {"non-causal, more queries than keys", 2, 2, 7, 3, 8, false, 0},
      {"a query that sees no key", 2, 2, 4, 4, 8, false, 2},
      {"64 keys, odd width", 2, 3, 64, 64, 33, true, 0},
      // Widths of a multiple of 16 take the fp32 kernel's 16-float vector path: with masks too.
      {"cross-patch keys, width 32", 3, 2, 5, 7, 32, true, 1},
      {"a query that sees no key, width 16", 2, 2, 4, 4, 16, false, 2},
      {"17 keys, width 48", 2, 2, 17, 17, 48, true, 0}};
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto q = torch::randn({c.b, c.h, c.n, c.d}, torch::kFloat64);
    auto k = torch::randn({c.b, c.h, c.k_len, c.d}, torch::kFloat64);
    auto v = torch::randn({c.b, c.h, c.k_len, c.d}, torch::kFloat64);
    auto dout = torch::randn({c.b, c.h, c.n, c.d}, torch::kFloat64);
    torch::Tensor keep;
    if (c.keep == 1) {
      keep = torch::ones({c.b, 1, 1, c.k_len}, torch::kBool);
      keep[0].narrow(-1, 0, c.k_len - c.n).fill_(false);
    } else if (c.keep == 2) {
      keep = torch::ones({c.n, c.k_len}, torch::kBool);
      keep[1].fill_(false);  // query 1 sees nothing
    }
    const auto ref = short_run(q, k, v, dout, keep, c.causal, false, torch::kFloat64);
    const auto fused64 = short_run(q, k, v, dout, keep, c.causal, true, torch::kFloat64);
    for (size_t i = 0; i < ref.size(); ++i) {
      CAPTURE(i);
      CHECK(megabench::test::rel_err(fused64[i], ref[i]) < 1e-12);
    }
    for (const auto t : {torch::kFloat32, torch::kBFloat16}) {
      const auto own = short_run(q, k, v, dout, keep, c.causal, false, t);
      const auto fused = short_run(q, k, v, dout, keep, c.causal, true, t);
      for (size_t i = 0; i < ref.size(); ++i) {
        CAPTURE(i, t);
        CHECK(max_abs(fused[i], ref[i]) <= 2 * max_abs(own[i], ref[i]) + 1e-5);
      }
    }
  }
}

TEST_CASE("short_attention takes strided heads and returns (B, n, H, d) storage", "[kernels]") {
  // fp32 and fp64 rows are read and written in place, at the heads' row stride.
  const auto t = GENERATE(torch::kFloat64, torch::kFloat32);
  CAPTURE(t);
  torch::manual_seed(12);
  const int64_t B = 3, n = 5, H = 4, d = 16;
  auto proj = torch::randn({B, n, 3 * H * d}, t).requires_grad_();
  auto heads = [&](const torch::Tensor& t) { return t.view({B, n, H, d}).transpose(1, 2); };
  auto run = [&](bool fused) {
    auto parts = proj.chunk(3, -1);
    auto q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);
    auto out = fused ? mk::short_attention(q, k, v, 0.25, true)
                     : mk::short_attention_reference(q, k, v, 0.25, true);
    auto flat = out.transpose(1, 2).reshape({B, n, H * d});
    (flat * flat).sum().backward();
    auto g = proj.grad().clone();
    proj.grad().zero_();
    return std::pair{out, g};
  };
  const auto [ref_out, ref_grad] = run(false);
  const auto [out, grad] = run(true);
  const double tol = t == torch::kFloat64 ? 1e-12 : 1e-5;
  CHECK(megabench::test::rel_err(out.detach(), ref_out.detach()) < tol);
  CHECK(megabench::test::rel_err(grad, ref_grad) < tol);
  CHECK(out.transpose(1, 2).is_contiguous());  // the caller's merge of heads is a view
}

TEST_CASE("attend() on the fused path takes the short kernel and agrees with the explicit path",
          "[kernels]") {
  torch::manual_seed(13);
  auto q = torch::randn({8, 2, 9, 16}, torch::kFloat64);
  auto k = torch::randn_like(q), v = torch::randn_like(q);
  AttendOptions o;
  o.causal = true;
  o.attention = megabench::AttentionPath::kExplicit;
  auto explicit_out = megabench::attend(q, k, v, o);
  o.attention = megabench::AttentionPath::kSdpa;
  CHECK(max_abs(megabench::attend(q, k, v, o), explicit_out) < 1e-12);
  o.window = 4;  // a window inside the keys: the masked paths, still equal
  auto windowed = megabench::attend(q, k, v, o);
  o.attention = megabench::AttentionPath::kExplicit;
  CHECK(max_abs(windowed, megabench::attend(q, k, v, o)) < 1e-12);
  CHECK(max_abs(windowed, explicit_out) > 1e-3);  // the window changes the result
}

TEST_CASE("short_attention rejects what it cannot take, naming the argument", "[kernels]") {
  auto q = torch::randn({2, 3, 5, 8});
  std::string why;
  CHECK(mk::short_attention_supported(q, q, q));
  const int64_t over = mk::kShortAttentionMaxKeys + 1;
  CHECK_FALSE(mk::short_attention_supported(q, torch::randn({2, 3, over, 8}),
                                            torch::randn({2, 3, over, 8}), {},
                                            mk::kShortAttentionMaxKeys, &why));
  CHECK(why.find("k_len must be at most " + std::to_string(over - 1)) != std::string::npos);
  CHECK_FALSE(mk::short_attention_supported(q.to(torch::kInt32), q, q, {}, 64, &why));
  CHECK(why.find("float32, float64, bfloat16 or float16") != std::string::npos);
  auto wide = torch::randn({2, 3, 8, 5}).transpose(2, 3);  // features strided
  CHECK_FALSE(mk::short_attention_supported(wide, wide, wide, {}, 64, &why));
  CHECK(why.find("last dimension") != std::string::npos);
  CHECK_FALSE(mk::short_attention_supported(q, q, q, torch::ones({4, 5}, torch::kBool), 64, &why));
  CHECK(why.find("keep must broadcast") != std::string::npos);
  CHECK_THROWS_WITH(mk::short_attention(q, q, torch::randn({2, 3, 4, 8}), 1.0, true),
                    Catch::Contains("k and v must be (B, H, k_len, d)"));
  CHECK_THROWS_WITH(
      mk::short_attention(q, torch::randn({2, 3, 4, 8}), torch::randn({2, 3, 4, 8}), 1.0, true),
      Catch::Contains("causal attention needs at least as many keys"));
}

// The decode-attention CPU kernel (no gradients) against short_attention_reference, the same
// unfused expression: one query and a few, causal and not, with a padding mask and with a query
// that sees no key (uniform, as the -finfo.max fill makes it), on every path the kernel has: the
// vector path (float math, d = 32, 64, 128) and the plain loops (double, and odd d); keys and
// values as views of a longer cache buffer, as the layer cache hands them out. Tolerances: fp64
// 1e-12 relative; fp32, bf16 and fp16 within 2x the reference's own error against fp64 in that
// dtype (+1e-5), the kernels/ rule, or 2x the error of the exact result for the rounded inputs,
// rounded once, where that is larger.
TEST_CASE("decode_attention matches its reference over a key cache", "[kernels]") {
  torch::manual_seed(14);
  struct Case {
    const char* name;
    int64_t b, h, n, k_len, d;
    bool causal;
    int keep;  // 0: none; 1: (B, 1, 1, k_len) padding, batch 0's first 5 keys hidden; 2: query 0
               // sees no key (uniform)
  };
  const std::vector<Case> cases{{"one query, 64", 1, 16, 1, 300, 64, true, 0},
                                {"one query, 32, batch 2", 2, 3, 1, 17, 32, true, 0},
                                {"one query, 128, one key", 1, 2, 1, 1, 128, true, 0},
                                {"three queries after cached keys", 2, 4, 3, 40, 64, true, 0},
                                {"non-causal", 1, 2, 4, 9, 64, false, 0},
                                {"odd width (plain loops)", 1, 3, 2, 50, 24, true, 0},
                                {"padded prefix", 2, 4, 1, 60, 64, true, 1},
                                {"padded prefix, plain loops", 2, 2, 2, 30, 24, true, 1},
                                {"a query that sees no key", 1, 2, 2, 20, 64, true, 2},
                                {"a query that sees no key, plain loops", 1, 2, 2, 20, 8, true, 2}};
  for (const auto& c : cases) {
    CAPTURE(c.name);
    auto q = torch::randn({c.b, c.h, c.n, c.d}, torch::kFloat64);
    auto buffer = torch::randn({2, c.b, c.h, c.k_len + 7, c.d}, torch::kFloat64);
    auto k = buffer[0].narrow(2, 0, c.k_len), v = buffer[1].narrow(2, 0, c.k_len);
    torch::Tensor keep;
    if (c.keep == 1) {
      keep = torch::ones({c.b, 1, 1, c.k_len}, torch::kBool);
      keep[0].narrow(-1, 0, 5).fill_(false);
    } else if (c.keep == 2) {
      keep = torch::ones({c.n, c.k_len}, torch::kBool);
      keep[0].fill_(false);
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    const auto ref = mk::short_attention_reference(q, k, v, scale, c.causal, keep);
    CHECK(megabench::test::rel_err(mk::decode_attention(q, k, v, scale, c.causal, keep), ref) <
          1e-12);
    for (const auto t : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
      CAPTURE(t);
      // Narrowed again after the cast: views with the buffer's strides, in the dtype.
      auto bt = buffer.to(t);
      auto kt = bt[0].narrow(2, 0, c.k_len), vt = bt[1].narrow(2, 0, c.k_len);
      const auto own = mk::short_attention_reference(q.to(t), kt, vt, scale, c.causal, keep);
      const auto out = mk::decode_attention(q.to(t), kt, vt, scale, c.causal, keep);
      CHECK(out.scalar_type() == t);
      // Within 2x the larger of the reference's own error and the error no kernel in that dtype
      // can avoid: the exact result for the rounded inputs, rounded once (a reference can be
      // luckier than that).
      auto wide = [](const torch::Tensor& x) { return x.to(torch::kFloat64); };
      const auto exact =
          mk::short_attention_reference(wide(q.to(t)), wide(kt), wide(vt), scale, c.causal, keep);
      const double rounding = max_abs(exact.to(t).to(torch::kFloat64), ref);
      CHECK(max_abs(out.to(torch::kFloat64), ref) <=
            2 * std::max(max_abs(own.to(torch::kFloat64), ref), rounding) + 1e-5);
    }
  }
}

TEST_CASE("attend() sends a decoding step to decode_attention, and nothing that needs gradients",
          "[kernels]") {
  torch::manual_seed(15);
  auto q = torch::randn({1, 4, 1, 64}), k = torch::randn({1, 4, 100, 64}), v = torch::randn_like(k);
  AttendOptions o;
  o.causal = true;
  o.attention = megabench::AttentionPath::kSdpa;
  const double scale = 1.0 / 8;
  {
    torch::NoGradGuard no_grad;
    // Bit-equal to the kernel: attend() called it.
    CHECK(torch::equal(megabench::attend(q, k, v, o), mk::decode_attention(q, k, v, scale, true)));
  }
  // With gradients wanted the kernel refuses, and attend() takes SDPA, which has a backward.
  auto kg = k.clone().requires_grad_();
  std::string why;
  CHECK_FALSE(mk::decode_attention_supported(q, kg, v, {}, 1, &why));
  CHECK(why.find("must not require gradients") != std::string::npos);
  auto out = megabench::attend(q, kg, v, o);
  out.sum().backward();
  REQUIRE(kg.grad().defined());
  CHECK(max_abs(out.detach(), mk::decode_attention(q, k, v, scale, true)) < 1e-5);
  // More queries than attend() sends it, and an empty cache: not the kernel.
  CHECK_FALSE(mk::decode_attention_supported(torch::randn({1, 4, 2, 64}), k, v, {}, 1, &why));
  CHECK(why.find("at most 1 queries") != std::string::npos);
  CHECK_FALSE(mk::decode_attention_supported(q, k.narrow(2, 0, 0), v.narrow(2, 0, 0), {}, 1, &why));
  CHECK(why.find("k_len must be at least 1") != std::string::npos);
  CHECK_THROWS_WITH(mk::decode_attention(torch::randn({1, 4, 3, 64}), k.narrow(2, 0, 2),
                                         v.narrow(2, 0, 2), scale, true),
                    Catch::Contains("causal attention needs at least as many keys"));
}

TEST_CASE("local_attention_reference matches attend() on CPU", "[kernels]") {
  torch::manual_seed(0);
  for (const auto& s : kShapes) {
    auto q = torch::randn({s.b, s.h, s.n, s.d}, torch::kFloat64);
    auto k = torch::randn_like(q), v = torch::randn_like(q);
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
    auto ref = mk::local_attention_reference(q, k, v, scale);
    CHECK(max_abs(ref, generic_attend(q, k, v, /*sdpa=*/false)) < 1e-12);
    CHECK(max_abs(ref, generic_attend(q, k, v, /*sdpa=*/true)) < 1e-12);
  }
}

TEST_CASE("attend() with kLocalCuda on CPU tensors takes the generic path", "[kernels]") {
  torch::manual_seed(1);
  auto q = torch::randn({2, 4, 9, 64}), k = torch::randn_like(q), v = torch::randn_like(q);
  AttendOptions o;
  o.kernel = AttentionKernel::kLocalCuda;
  auto out = megabench::attend(q, k, v, o);
  CHECK(max_abs(out, generic_attend(q, k, v, false)) < 1e-6);
  std::string why;
  CHECK_FALSE(mk::local_attention_supported(q, k, v, &why));
  CHECK(why.find("CUDA") != std::string::npos);
}

TEST_CASE("local_attention launcher rejects bad inputs with clear messages", "[kernels]") {
  auto ok = torch::randn({2, 3, 9, 64});
  auto call = [](const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
    return error_of([&] { mk::local_attention(q, k, v, 0.125); });
  };
  auto long_seq = torch::randn({2, 3, 65, 64});
  CHECK_THAT(call(long_seq, long_seq, long_seq), Catch::Contains("must be in [1, 64], got 65"));
  auto d48 = torch::randn({2, 3, 9, 48});
  CHECK_THAT(call(d48, d48, d48), Catch::Contains("must be 32, 64 or 128, got 48"));
  auto f64 = ok.to(torch::kFloat64);
  CHECK_THAT(call(f64, f64, f64), Catch::Contains("float32, float16 or bfloat16"));
  CHECK_THAT(call(ok, torch::randn({2, 3, 8, 64}), ok), Catch::Contains("k must have shape"));
  CHECK_THAT(call(ok, ok, ok.to(torch::kFloat16)), Catch::Contains("must share a dtype"));
  CHECK_THAT(call(torch::randn({2, 9, 64}), ok, ok), Catch::Contains("q must be (B, H, n, d)"));
  // A valid shape on the CPU: the launcher asks for CUDA (or says the build has none).
  CHECK_THAT(call(ok, ok, ok), Catch::Contains("CUDA"));
  // The raw launcher also demands contiguity.
  auto strided = torch::randn({2, 9, 3, 64}).transpose(1, 2);
  CHECK_THAT(error_of([&] { mk::check_local_attention_inputs(strided, strided, strided, false); }),
             Catch::Contains("q must be contiguous"));
  CHECK(error_of([&] { mk::check_local_attention_inputs(ok, ok, ok, false); }).empty());
}

TEST_CASE("fused_sample_reference is the reference top_k_filter + gumbel_sample", "[kernels]") {
  torch::manual_seed(2);
  CHECK(mk::top_k_count(256, 0.9) == 25);
  CHECK(mk::top_k_count(256, 0.999) == 1);
  CHECK(mk::top_k_count(256, 0.0) == 256);
  auto logits = torch::randn({16, 256}) * 3;
  for (double temperature : {0.0, 0.7, 1.0}) {
    for (double thres : {0.0, 0.5, 0.9, 0.999, 1.0}) {
      // sample_next draws its uniforms from the global generator; replay them.
      torch::manual_seed(42);
      auto expected = megabench::sample_next(logits, temperature, thres);
      torch::manual_seed(42);
      auto noise = torch::zeros_like(logits).uniform_(0, 1);
      auto got = mk::fused_sample_reference(logits, temperature, thres, noise);
      CHECK(torch::equal(got, expected));
      const auto naive = naive_sample(logits, temperature, thres, noise);
      CHECK(std::vector<int64_t>(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + got.numel()) ==
            naive);
    }
  }
}

TEST_CASE("fused_sample rejects bad inputs with clear messages", "[kernels]") {
  auto logits = torch::randn({2, 256});
  auto noise = torch::rand({2, 256});
  CHECK_THAT(error_of([&] {
               mk::fused_sample(torch::randn({2, 5000}), 1.0, 0.9, torch::rand({2, 5000}));
             }),
             Catch::Contains("must be in [1, 4096], got 5000"));
  CHECK_THAT(error_of([&] { mk::fused_sample(logits, -1.0, 0.9, noise); }),
             Catch::Contains("temperature must be >= 0"));
  CHECK_THAT(error_of([&] { mk::fused_sample(logits, 1.0, 1.5, noise); }),
             Catch::Contains("filter_thres must lie in [0, 1]"));
  // thres 1 is valid (one logit kept, as top_k_filter): it fails here only for the CPU tensor.
  CHECK_THAT(error_of([&] { mk::fused_sample(logits, 1.0, 1.0, noise); }), Catch::Contains("CUDA"));
  CHECK_THAT(error_of([&] { mk::fused_sample(torch::randn({256}), 1.0, 0.9, noise); }),
             Catch::Contains("logits must be (B, V)"));
  CHECK_THAT(error_of([&] { mk::fused_sample(logits, 1.0, 0.9, noise); }), Catch::Contains("CUDA"));
}

// ---------------------------------------------------------------------------------------------
// GPU: kernels against the references

TEST_CASE("local_attention kernel forward matches the reference per dtype", "[kernels][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    for (const auto& s : kShapes) {
      INFO("dtype " << dtype << " shape " << s.b << "x" << s.h << "x" << s.n << "x" << s.d);
      auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat64);
      auto q64 = torch::randn({s.b, s.h, s.n, s.d}, opts);
      auto k64 = torch::randn_like(q64), v64 = torch::randn_like(q64);
      const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
      auto q = q64.to(dtype), k = k64.to(dtype), v = v64.to(dtype);
      // fp64 reference on the same rounded inputs, and a plain LibTorch version in `dtype`.
      auto ref = mk::local_attention_reference(q.to(torch::kFloat64), k.to(torch::kFloat64),
                                               v.to(torch::kFloat64), scale);
      auto plain = mk::local_attention_reference(q, k, v, scale);
      auto out = mk::local_attention(q, k, v, scale);
      torch::cuda::synchronize();
      REQUIRE(out.scalar_type() == dtype);
      const double kernel_err = max_abs(out, ref), plain_err = max_abs(plain, ref);
      INFO("kernel err " << kernel_err << ", plain err " << plain_err);
      CHECK(kernel_err <= 2 * plain_err + 1e-5);
      // attend() routes through the kernel when asked, and agrees with its generic path.
      AttendOptions o;
      o.kernel = AttentionKernel::kLocalCuda;
      CHECK(max_abs(megabench::attend(q, k, v, o), out) == 0.0);
    }
  }
}

TEST_CASE("local_attention kernel backward matches the reference per dtype", "[kernels][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  torch::manual_seed(4);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    for (const auto& s : kShapes) {
      INFO("dtype " << dtype << " shape " << s.b << "x" << s.h << "x" << s.n << "x" << s.d);
      auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat64);
      auto base = std::vector<torch::Tensor>{torch::randn({s.b, s.h, s.n, s.d}, opts),
                                             torch::randn({s.b, s.h, s.n, s.d}, opts),
                                             torch::randn({s.b, s.h, s.n, s.d}, opts)};
      auto dout64 = torch::randn({s.b, s.h, s.n, s.d}, opts);
      const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
      // Gradients of one implementation, with inputs rounded to `dtype` first.
      auto grads = [&](c10::ScalarType compute, bool kernel) {
        std::vector<torch::Tensor> in;
        for (const auto& t : base)
          in.push_back(t.to(dtype).to(compute).detach().requires_grad_(true));
        auto out = kernel ? mk::local_attention(in[0], in[1], in[2], scale)
                          : mk::local_attention_reference(in[0], in[1], in[2], scale);
        out.backward(dout64.to(dtype).to(compute));
        return std::vector<torch::Tensor>{in[0].grad(), in[1].grad(), in[2].grad()};
      };
      auto ref = grads(torch::kFloat64, false);
      auto plain = grads(dtype, false);
      auto got = grads(dtype, true);
      const char* names[] = {"dq", "dk", "dv"};
      for (int i = 0; i < 3; ++i) {
        REQUIRE(got[i].scalar_type() == dtype);
        const double kernel_err = max_abs(got[i], ref[i]), plain_err = max_abs(plain[i], ref[i]);
        INFO(names[i] << ": kernel err " << kernel_err << ", plain err " << plain_err);
        CHECK(kernel_err <= 2 * plain_err + 1e-5);
      }
    }
  }
}

TEST_CASE("local_attention kernel rejects CUDA inputs it cannot take", "[kernels][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  auto long_seq = torch::randn({1, 2, 80, 64}, torch::kCUDA);
  CHECK_THAT(error_of([&] { mk::local_attention(long_seq, long_seq, long_seq, 0.125); }),
             Catch::Contains("got 80"));
  auto q = torch::randn({1, 2, 9, 64}, torch::kCUDA);
  CHECK_THAT(error_of([&] { mk::local_attention(q, q.cpu(), q, 0.125); }),
             Catch::Contains("must be on one device"));
  // attend() falls back to the generic path for what the kernel does not take.
  AttendOptions o;
  o.kernel = AttentionKernel::kLocalCuda;
  CHECK(max_abs(megabench::attend(long_seq, long_seq, long_seq, o),
                generic_attend(long_seq, long_seq, long_seq, false)) < 1e-5);
}

TEST_CASE("fused_sample kernel picks the reference's byte given the same noise", "[kernels][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  torch::manual_seed(5);
  auto logits = (torch::randn({64, 256}) * 3).to(torch::kCUDA);
  for (double temperature : {0.0, 0.7, 1.0}) {
    for (double thres : {0.0, 0.5, 0.9, 0.999, 1.0}) {
      INFO("temperature " << temperature << " filter_thres " << thres);
      auto noise = torch::rand({64, 256}, torch::kCUDA);
      auto got = mk::fused_sample(logits, temperature, thres, noise).cpu();
      auto ref = mk::fused_sample_reference(logits.cpu(), temperature, thres, noise.cpu());
      // Where the two disagree, the reference's top two scores must be within float rounding.
      auto scores =
          temperature == 0.0
              ? megabench::top_k_filter(logits.cpu(), thres)
              : megabench::top_k_filter(logits.cpu(), thres) / temperature -
                    torch::log((-torch::log(noise.cpu().clamp_min(1e-20))).clamp_min(1e-20));
      int64_t differ = 0;
      for (int64_t b = 0; b < 64; ++b) {
        const int64_t g = got[b].item<int64_t>(), r = ref[b].item<int64_t>();
        if (g == r) continue;
        ++differ;
        CHECK(std::abs(scores[b][g].item<double>() - scores[b][r].item<double>()) < 1e-5);
      }
      CHECK(differ <= 1);
    }
  }
  // Half-precision logits: the kernel computes in fp32, like the reference on upcast logits.
  auto noise = torch::rand({64, 256}, torch::kCUDA);
  for (auto dtype : {torch::kBFloat16, torch::kFloat16}) {
    auto lo = logits.to(dtype);
    auto got = mk::fused_sample(lo, 1.0, 0.9, noise).cpu();
    auto ref = mk::fused_sample_reference(lo.to(torch::kFloat32).cpu(), 1.0, 0.9, noise.cpu());
    CHECK((got != ref).sum().item<int64_t>() <= 1);
  }
}

TEST_CASE("fused_sample Philox path replays through the reference", "[kernels][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  torch::manual_seed(6);
  auto logits = torch::randn({32, 256}, torch::kCUDA);
  torch::Tensor noise;
  auto got = mk::fused_sample_philox(logits, 1.0, 0.9, /*seed=*/1234, /*offset=*/0, &noise).cpu();
  REQUIRE(noise.sizes() == logits.sizes());
  CHECK(noise.min().item<float>() > 0.0f);
  CHECK(noise.max().item<float>() <= 1.0f);
  CHECK(noise.mean().item<double>() == Approx(0.5).margin(0.02));
  auto ref = mk::fused_sample_reference(logits.cpu(), 1.0, 0.9, noise.cpu());
  CHECK((got != ref).sum().item<int64_t>() <= 1);
  // Same seed and offset: same draw; another offset: another draw.
  torch::Tensor again, other;
  mk::fused_sample_philox(logits, 1.0, 0.9, 1234, 0, &again);
  mk::fused_sample_philox(logits, 1.0, 0.9, 1234, 1, &other);
  CHECK(torch::equal(noise, again));
  CHECK_FALSE(torch::equal(noise, other));
}
