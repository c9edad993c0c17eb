// The shared blocks: attend()'s SDPA and explicit paths agree (causal, windowed, masked), the
// causal SDPA path allocates no (n, n) mask, and the KV cache's appends give what one call gives.
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "harness/measure/memory.h"
#include "harness/measure/precision.h"
#include "models/layers.h"

using namespace megabench;

namespace {
// Softmax attention written out with a loop over queries: the independent reference.
torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, int64_t window,
                              const torch::Tensor& keep_keys) {
  const int64_t n = q.size(2), k_len = k.size(2), d = q.size(3);
  auto out = torch::zeros_like(q);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = k_len - n + i;
    for (int64_t b = 0; b < q.size(0); ++b) {
      for (int64_t h = 0; h < q.size(1); ++h) {
        std::vector<int64_t> cols;
        for (int64_t j = 0; j <= pos; ++j) {
          if (window > 0 && j <= pos - window) continue;
          if (keep_keys.defined() && !keep_keys[b][j].item<bool>()) continue;
          cols.push_back(j);
        }
        auto idx = torch::tensor(cols, torch::kLong);
        auto kk = k[b][h].index_select(0, idx), vv = v[b][h].index_select(0, idx);
        auto w = torch::softmax(kk.matmul(q[b][h][i]) / std::sqrt(static_cast<double>(d)), 0);
        out[b][h][i] = w.matmul(vv);
      }
    }
  }
  return out;
}
}  // namespace

TEST_CASE("attend: SDPA and explicit paths match a naive reference", "[layers]") {
  torch::manual_seed(0);
  auto q = torch::randn({2, 3, 5, 8}, torch::kFloat64),
       k = torch::randn({2, 3, 9, 8}, torch::kFloat64),
       v = torch::randn({2, 3, 9, 8}, torch::kFloat64);
  auto keep_keys = torch::rand({2, 9}) > 0.3;
  keep_keys.select(1, 8).fill_(true);  // every query keeps at least its own key
  for (int64_t window : {0, 3}) {
    for (bool masked : {false, true}) {
      auto ref = naive_attention(q, k, v, window, masked ? keep_keys : torch::Tensor());
      for (bool sdpa : {false, true}) {
        INFO("window " << window << " masked " << masked << " sdpa " << sdpa);
        AttendOptions o;
        o.attention = sdpa ? AttentionPath::kSdpa : AttentionPath::kExplicit;
        o.window = window;
        if (masked) o.keep_mask = keep_keys.view({2, 1, 1, 9});
        CHECK(torch::allclose(attend(q, k, v, o), ref, 1e-10, 1e-12));
      }
    }
  }
}

// bf16 training on the CPU over short sequences takes the explicit path (LibTorch's flash backward
// is slow there): the values and gradients must still be those of attention, within bf16's
// rounding, and inference keeps SDPA.
TEST_CASE("attend: bf16 training on short sequences keeps attention's values and gradients",
          "[layers]") {
  torch::manual_seed(2);
  auto q64 = torch::randn({3, 2, 9, 16}, torch::kFloat64),
       k64 = torch::randn({3, 2, 9, 16}, torch::kFloat64),
       v64 = torch::randn({3, 2, 9, 16}, torch::kFloat64);
  auto keep_keys = torch::rand({3, 9}) > 0.3;
  keep_keys.select(1, 0).fill_(true);  // every causal query keeps at least one key
  for (bool masked : {false, true}) {
    INFO("masked " << masked);
    auto ref = naive_attention(q64, k64, v64, 0, masked ? keep_keys : torch::Tensor());
    AttendOptions o;
    o.attention = AttentionPath::kSdpa;
    if (masked) o.keep_mask = keep_keys.view({3, 1, 1, 9});
    auto q = q64.to(torch::kBFloat16).requires_grad_(),
         k = k64.to(torch::kBFloat16).requires_grad_(),
         v = v64.to(torch::kBFloat16).requires_grad_();
    auto out = attend(q, k, v, o);
    const double tol = 3e-2;  // bf16: 8-bit significands, fp32 accumulation
    CHECK((out.to(torch::kFloat64) - ref).abs().max().item<double>() <
          tol * ref.abs().max().item<double>());
    // Gradients of a weighted sum against the fp64 naive attention's.
    auto w = torch::randn(ref.sizes(), torch::kFloat64);
    (out.to(torch::kFloat64) * w).sum().backward();
    auto q_ref = q64.clone().requires_grad_(), k_ref = k64.clone().requires_grad_(),
         v_ref = v64.clone().requires_grad_();
    (naive_attention(q_ref, k_ref, v_ref, 0, masked ? keep_keys : torch::Tensor()) * w)
        .sum()
        .backward();
    for (auto [got, want] : {std::pair{q.grad(), q_ref.grad()}, std::pair{k.grad(), k_ref.grad()},
                             std::pair{v.grad(), v_ref.grad()}}) {
      CHECK((got.to(torch::kFloat64) - want).abs().max().item<double>() <
            tol * want.abs().max().item<double>());
    }
    torch::NoGradGuard no_grad;  // inference: SDPA, the same values
    auto eval = attend(q.detach(), k.detach(), v.detach(), o);
    CHECK((eval.to(torch::kFloat64) - ref).abs().max().item<double>() <
          tol * ref.abs().max().item<double>());
  }
}

// The widened SDPA path for 16-bit CPU inputs (cpu_sdpa_in_fp32): under bf16 autocast its output is
// exactly fp32 SDPA on the widened inputs, rounded once (autocast does not narrow them again), and
// both paths keep values and gradients within bf16's tolerance of fp64 attention. 300 keys: beyond
// the explicit path's short-sequence range, so SDPA runs with gradients.
TEST_CASE("attend: 16-bit CPU SDPA in fp32 where the CPU's bf16 products are slower", "[layers]") {
  torch::manual_seed(4);
  const int64_t n = 300;
  auto qb = torch::randn({1, 2, n, 16}).to(torch::kBFloat16),
       kb = torch::randn({1, 2, n, 16}).to(torch::kBFloat16),
       vb = torch::randn({1, 2, n, 16}).to(torch::kBFloat16);
  auto ref = naive_attention(qb.to(torch::kFloat64), kb.to(torch::kFloat64), vb.to(torch::kFloat64),
                             0, torch::Tensor());
  auto w = torch::randn(ref.sizes(), torch::kFloat64);
  auto q_ref = qb.to(torch::kFloat64).requires_grad_(),
       k_ref = kb.to(torch::kFloat64).requires_grad_(),
       v_ref = vb.to(torch::kFloat64).requires_grad_();
  (naive_attention(q_ref, k_ref, v_ref, 0, torch::Tensor()) * w).sum().backward();
  const auto widened =
      at::scaled_dot_product_attention(qb.to(torch::kFloat32), kb.to(torch::kFloat32),
                                       vb.to(torch::kFloat32), {}, 0.0, true)
          .to(torch::kBFloat16);
  AttendOptions o;
  o.attention = AttentionPath::kSdpa;
  for (bool wide : {true, false}) {
    INFO("widened " << wide);
    set_cpu_sdpa_in_fp32(wide);
    CHECK(cpu_sdpa_in_fp32() == wide);
    auto q = qb.clone().requires_grad_(), k = kb.clone().requires_grad_(),
         v = vb.clone().requires_grad_();
    torch::Tensor out;
    {
      at::autocast::set_autocast_enabled(at::kCPU, true);
      at::autocast::set_autocast_dtype(at::kCPU, torch::kBFloat16);
      out = attend(q, k, v, o);
      at::autocast::set_autocast_enabled(at::kCPU, false);
      at::autocast::clear_cache();
    }
    CHECK(out.scalar_type() == torch::kBFloat16);
    if (wide) CHECK(torch::equal(out, widened));
    const double tol = 3e-2;  // bf16: 8-bit significands, fp32 accumulation
    CHECK((out.to(torch::kFloat64) - ref).abs().max().item<double>() <
          tol * ref.abs().max().item<double>());
    (out.to(torch::kFloat64) * w).sum().backward();
    for (auto [got, want] : {std::pair{q.grad(), q_ref.grad()}, std::pair{k.grad(), k_ref.grad()},
                             std::pair{v.grad(), v_ref.grad()}}) {
      CHECK(got.scalar_type() == torch::kBFloat16);
      CHECK((got.to(torch::kFloat64) - want).abs().max().item<double>() <
            tol * want.abs().max().item<double>());
    }
  }
  set_cpu_sdpa_in_fp32(std::nullopt);
  const bool measured = cpu_sdpa_in_fp32();
  CHECK(cpu_sdpa_in_fp32() == measured);  // decided once
}

TEST_CASE("attend: causal SDPA allocates no (n, n) mask", "[layers][memory]") {
  memory::install_cpu_tracking();
  const int64_t n = 2048;
  auto q = torch::randn({1, 1, n, 16}), k = torch::randn({1, 1, n, 16}),
       v = torch::randn({1, 1, n, 16});
  AttendOptions o;
  o.attention = AttentionPath::kSdpa;
  memory::PeakTracker tracker(torch::kCPU);
  auto out = attend(q, k, v, o);
  // An (n, n) bool mask alone would be 4 MiB; the output is 128 KiB.
  CHECK(tracker.peak_above_baseline() < n * n / 2);  // SDPA's own blocks take about 1.2 MiB
  CHECK(out.sizes() == q.sizes());
}

TEST_CASE("KV cache: appends one at a time give the one-shot keys", "[layers]") {
  auto k = torch::randn({2, 2, 40, 4}), v = torch::randn({2, 2, 40, 4});
  LayerCache c;
  for (int64_t t = 0; t < 40; ++t) {
    auto [kk, vv] = c.append(k.narrow(2, t, 1), v.narrow(2, t, 1));
    REQUIRE(kk.size(2) == t + 1);
    CHECK(torch::equal(kk, k.narrow(2, 0, t + 1)));
    CHECK(torch::equal(vv, v.narrow(2, 0, t + 1)));
  }
  // keep_newest trims without a copy, and appends go on after the kept keys.
  c.keep_newest(10);
  CHECK(torch::equal(c.k, k.narrow(2, 30, 10)));
  CHECK(c.k.data_ptr() == c.k_buf.narrow(2, c.start, 10).data_ptr());
  auto more = torch::randn({2, 2, 3, 4});
  auto [kk, vv] = c.append(more, more);
  CHECK(torch::equal(kk, torch::cat({k.narrow(2, 30, 10), more}, 2)));
  // A window: each append returns the kept keys and the new one, in order, and keeps the last 5.
  auto long_k = torch::randn({2, 2, 200, 4});
  LayerCache w;
  w.window = 5;
  int reallocations = 0;
  void* buffer = nullptr;
  for (int64_t t = 0; t < 200; ++t) {
    auto [wk, wv] = w.append(long_k.narrow(2, t, 1), long_k.narrow(2, t, 1));
    const int64_t first = std::max<int64_t>(0, t - 5);
    REQUIRE(wk.size(2) == t + 1 - first);
    CHECK(torch::equal(wk, long_k.narrow(2, first, t + 1 - first)));
    CHECK(w.size() == std::min<int64_t>(5, t + 1));
    if (w.k_buf.defined() && w.k_buf.data_ptr() != buffer) {
      buffer = w.k_buf.data_ptr();
      ++reallocations;
    }
  }
  CHECK(torch::equal(w.k, long_k.narrow(2, 195, 5)));
  // The window's keys move only when the buffer's end is reached: not once per append.
  CHECK(reallocations >= 1);
  CHECK(reallocations <= 200 / 5);
}

TEST_CASE("Linear: a bf16 row without grad takes the GEMV kernel and matches the matrix product",
          "[layers]") {
  torch::manual_seed(0);
  megabench::Linear lin(torch::nn::LinearOptions(64, 96).bias(true));
  auto x32 = torch::randn({1, 1, 64});
  auto want = lin(x32);  // fp32: the usual path
  lin->to(torch::kBFloat16);
  auto x = x32.to(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  auto got = lin(x);  // the kernels::gemv_bf16 path
  CHECK(got.sizes() == want.sizes());
  CHECK(got.scalar_type() == torch::kBFloat16);
  // bf16 inputs and weights, fp32 accumulation: within a few bf16 ulps of the fp32 result.
  CHECK(torch::allclose(got.to(torch::kFloat32), want, 2e-2, 2e-2));
  // The same values through LibTorch's own bf16 path: the two differ by rounding only.
  auto ref = torch::nn::functional::linear(x, lin->weight, lin->bias);
  CHECK(torch::allclose(got.to(torch::kFloat32), ref.to(torch::kFloat32), 1e-2, 1e-2));
  // More than one row keeps the usual path (and its shape).
  auto rows = torch::randn({2, 3, 64}).to(torch::kBFloat16);
  CHECK(lin(rows).sizes() == torch::IntArrayRef({2, 3, 96}));
}

TEST_CASE("Linear: an fp32 row without grad takes gemv_f32 and matches at::linear", "[layers]") {
  torch::manual_seed(2);
  megabench::Linear lin(torch::nn::LinearOptions(80, 48).bias(true));
  auto x = torch::randn({1, 1, 80});
  auto want = at::linear(x.to(torch::kFloat64), lin->weight.to(torch::kFloat64),
                         lin->bias.to(torch::kFloat64));
  torch::Tensor got;
  {
    torch::NoGradGuard no_grad;
    got = lin(x);  // kernels::gemv_f32 where gemv_f32_fast(), else at::linear
  }
  CHECK(got.sizes() == torch::IntArrayRef({1, 1, 48}));
  CHECK(got.scalar_type() == torch::kFloat32);
  CHECK(torch::allclose(got.to(torch::kFloat64), want, 1e-5, 1e-5));
  // With gradient wanted, the row goes through at::linear and the gradient flows.
  auto xg = x.clone().requires_grad_();
  lin(xg).sum().backward();
  REQUIRE(xg.grad().defined());
  CHECK(torch::allclose(xg.grad().to(torch::kFloat64),
                        lin->weight.to(torch::kFloat64).sum(0).view({1, 1, 80}), 1e-5, 1e-5));
}

TEST_CASE("Linear: a row under bf16 autocast computes in bf16, as at::linear does", "[layers]") {
  torch::manual_seed(3);
  megabench::Linear lin(torch::nn::LinearOptions(64, 32).bias(true));
  auto x = torch::randn({1, 1, 64});
  torch::NoGradGuard no_grad;
  torch::Tensor got, want;
  {
    megabench::AutocastGuard autocast(torch::kCPU, torch::kBFloat16);
    got = lin(x);                                  // fp32 weights: not the fp32 kernel
    want = at::linear(x, lin->weight, lin->bias);  // autocast's bf16 product
  }
  CHECK(got.scalar_type() == torch::kBFloat16);
  CHECK(torch::equal(got, want));
  // A trainable bias alone keeps the row on at::linear, so its gradient is recorded.
  lin->weight.set_requires_grad(false);
  torch::Tensor y;
  {
    torch::AutoGradMode enable(true);
    y = lin(x);
    y.sum().backward();
  }
  REQUIRE(lin->bias.grad().defined());
  CHECK(torch::allclose(lin->bias.grad(), torch::ones({32})));
}

TEST_CASE("Linear over batched input: ATen's linear, equal to LibTorch's functional one",
          "[layers]") {
  torch::manual_seed(1);
  megabench::Linear lin(torch::nn::LinearOptions(24, 40).bias(true));
  lin->to(torch::kFloat64);
  for (const auto& shape : {std::vector<int64_t>{3, 5, 24}, std::vector<int64_t>{2, 3, 4, 24}}) {
    auto x = torch::randn(shape, torch::kFloat64);
    auto x_ref = x.clone().requires_grad_(), x_ours = x.clone().requires_grad_();
    auto want = torch::nn::functional::linear(x_ref, lin->weight, lin->bias);
    auto dy = torch::randn_like(want);
    auto w_ref = torch::autograd::grad({want}, {x_ref, lin->weight, lin->bias}, {dy});
    auto got = lin(x_ours);
    auto w_ours = torch::autograd::grad({got}, {x_ours, lin->weight, lin->bias}, {dy});
    CHECK(torch::allclose(got, want, 1e-12, 1e-12));
    for (size_t i = 0; i < w_ref.size(); ++i)
      CHECK(torch::allclose(w_ours[i], w_ref[i], 1e-12, 1e-12));
  }
  // A transposed (non-contiguous) input takes the matmul path inside at::linear: same values.
  auto xt = torch::randn({24, 6}, torch::kFloat64).t().unsqueeze(0);
  CHECK(torch::allclose(lin(xt), torch::nn::functional::linear(xt, lin->weight, lin->bias), 1e-12,
                        1e-12));
}
