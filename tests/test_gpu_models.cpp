// Every registered model gives the same numbers on CUDA as on CPU: logits, loss and gradients of
// one batch, in float32 and under the harness's mixed precision (AutocastGuard: fp32 weights,
// bf16 / fp16 compute), against the CPU float32 result. MEGABYTE also with its CUDA pieces
// switched on (flash SDPA and the fused local-attention kernel). Skipped where no GPU is visible.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "harness/api/registry.h"
#include "harness/measure/precision.h"
#include "kernels/local_attention.h"
#include "tests/support.h"

using megabench::json;

namespace {

// Relative to the largest CPU value; a zero reference (an unused parameter's gradient) allows
// 1e-12 of absolute noise.
double rel_err(const torch::Tensor& a, const torch::Tensor& ref) {
  return megabench::test::rel_err(a, ref, /*floor=*/1e-12);
}

struct Outputs {
  torch::Tensor logits, loss;
  std::vector<torch::Tensor> grads;  // in parameter order, fp32 (undefined where none)
};

Outputs run_model(megabench::ByteModel& model, const torch::Tensor& x, const torch::Device& device,
                  torch::ScalarType dtype) {
  Outputs o;
  auto xd = x.to(device);
  model.module().eval();  // the tiny configs have no dropout; eval keeps every path deterministic
  {
    torch::NoGradGuard no_grad;
    megabench::AutocastGuard autocast(device, dtype);
    o.logits = model.logits(xd).to(torch::kCPU, torch::kFloat32);
  }
  model.module().zero_grad();
  torch::Tensor loss;
  {
    megabench::AutocastGuard autocast(device, dtype);
    loss = model.loss(xd);
  }
  loss.backward();
  o.loss = loss.detach().to(torch::kCPU, torch::kFloat32);
  for (const auto& p : model.module().parameters()) {
    o.grads.push_back(p.grad().defined() ? p.grad().to(torch::kCPU, torch::kFloat32)
                                         : torch::Tensor());
  }
  return o;
}

}  // namespace

TEST_CASE("every registered model agrees between CPU and CUDA per dtype", "[gpu][all-models]") {
  MEGABENCH_REQUIRE_CUDA();
  struct Case {
    std::string model;
    json overrides;
  };
  std::vector<Case> cases;
  for (const auto& name : megabench::Registry::instance().names())
    cases.push_back({name, json::object()});
  // dim_head 32: the fused local-attention kernel takes head widths 32, 64 and 128 only (the tiny
  // config's 8 would fall back to the generic path and test nothing new).
  const json kernel_case = {{"attention", "sdpa"}, {"local_attn_kernel", "cuda"}, {"dim_head", 32}};
  cases.push_back({"megabyte", kernel_case});
  {
    auto q = torch::randn({2, 2, 5, 32}, torch::kCUDA);
    REQUIRE(megabench::kernels::local_attention_supported(q, q, q));
  }

  // Tolerances relative to the largest CPU value: float32 differs by summation order (no TF32 in
  // LibTorch matmuls by default); bf16 keeps 8 mantissa bits, fp16 11.
  struct Precision {
    torch::ScalarType dtype;
    double logits_tol, grad_tol;
  };
  const std::vector<Precision> precisions = {
      {torch::kFloat32, 1e-4, 1e-3}, {torch::kBFloat16, 5e-2, 1e-1}, {torch::kFloat16, 1e-2, 3e-2}};

  for (const auto& c : cases) {
    const auto& spec = megabench::Registry::instance().get(c.model);
    json config = spec.tiny_config;
    for (const auto& [k, v] : c.overrides.items()) config[k] = v;
    const json resolved = spec.resolve(config);
    INFO("model " << c.model << " " << c.overrides.dump());

    torch::manual_seed(0);
    auto cpu_model = spec.build(*spec.parse(resolved));
    torch::manual_seed(0);
    auto gpu_model =
        spec.build(*spec.parse(resolved));  // the same weights: built from the same seed on CPU
    gpu_model->module().to(torch::kCUDA);

    const int64_t T = cpu_model->seq_len();
    auto x = torch::randint(0, 256, {2, T}, torch::kLong);
    const Outputs ref = run_model(*cpu_model, x, torch::kCPU, torch::kFloat32);

    for (const auto& prec : precisions) {
      INFO("dtype " << c10::toString(prec.dtype));
      const Outputs got = run_model(*gpu_model, x, torch::kCUDA, prec.dtype);
      REQUIRE(got.logits.sizes() == ref.logits.sizes());
      CHECK(rel_err(got.logits, ref.logits) < prec.logits_tol);
      CHECK(rel_err(got.loss, ref.loss) < prec.logits_tol);
      REQUIRE(got.grads.size() == ref.grads.size());
      for (size_t i = 0; i < ref.grads.size(); ++i) {
        INFO("parameter " << i);
        REQUIRE(got.grads[i].defined() == ref.grads[i].defined());
        if (ref.grads[i].defined()) CHECK(rel_err(got.grads[i], ref.grads[i]) < prec.grad_tol);
      }
    }
  }
}
