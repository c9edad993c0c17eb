// FusedAdamW (ATen's fused AdamW kernel behind LibTorch's AdamW state) against LibTorch's own
// torch::optim::AdamW, the naive reference: the same parameters and moments after several steps,
// the fallback for gradients the kernel does not take, checkpoints read by either, and the
// `train.optimizer` setting.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <sstream>

#include "harness/config/run_settings.h"
#include "harness/measure/optimizer.h"
#include "tests/support.h"

using megabench::test::rel_err;

namespace {

// Parameters of the shapes a model has: a matrix, a vector, a single value.
std::vector<torch::Tensor> make_params(torch::ScalarType dtype) {
  torch::manual_seed(1);
  return {torch::randn({12, 7}, dtype).requires_grad_(), torch::randn({7}, dtype).requires_grad_(),
          torch::randn({1}, dtype).requires_grad_()};
}

std::vector<torch::Tensor> clones(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

// The same gradients into both parameter sets (step-dependent, some negative, some large).
void set_grads(std::vector<torch::Tensor>& a, std::vector<torch::Tensor>& b, int step,
               bool transposed_first = false) {
  for (size_t i = 0; i < a.size(); ++i) {
    torch::manual_seed(100 + step * 10 + static_cast<int>(i));
    auto g = torch::randn(a[i].sizes(), a[i].options()) * (1.0 + step);
    if (transposed_first && i == 0) {  // a non-contiguous gradient of the same values
      a[i].mutable_grad() = g.t().contiguous().t();
    } else {
      a[i].mutable_grad() = g.clone();
    }
    b[i].mutable_grad() = g.clone();
  }
}

torch::optim::AdamWOptions recipe(bool amsgrad) {
  return torch::optim::AdamWOptions(1e-2).betas({0.9, 0.98}).weight_decay(0.1).amsgrad(amsgrad);
}

}  // namespace

TEST_CASE("FusedAdamW takes the steps of LibTorch's AdamW", "[optimizer]") {
  const auto dtype = GENERATE(torch::kFloat32, torch::kFloat64);
  const bool amsgrad = GENERATE(false, true);
  const bool transposed = GENERATE(false, true);  // true: the fallback path
  CAPTURE(dtype, amsgrad, transposed);
  const double tol = dtype == torch::kFloat64 ? 1e-12 : 2e-6;
  auto fused_params = make_params(dtype);
  auto ref_params = clones(fused_params);
  megabench::FusedAdamW fused(fused_params, recipe(amsgrad));
  torch::optim::AdamW ref(ref_params, recipe(amsgrad));
  for (int step = 0; step < 6; ++step) {
    set_grads(fused_params, ref_params, step, transposed);
    fused.step();
    ref.step();
  }
  for (size_t i = 0; i < fused_params.size(); ++i) {
    CAPTURE(i);
    CHECK(rel_err(fused_params[i], ref_params[i]) < tol);
    const auto& sf = static_cast<torch::optim::AdamWParamState&>(
        *fused.state().at(fused_params[i].unsafeGetTensorImpl()));
    const auto& sr = static_cast<torch::optim::AdamWParamState&>(
        *ref.state().at(ref_params[i].unsafeGetTensorImpl()));
    CHECK(sf.step() == 6);
    CHECK(sf.step() == sr.step());
    CHECK(rel_err(sf.exp_avg(), sr.exp_avg()) < tol);
    CHECK(rel_err(sf.exp_avg_sq(), sr.exp_avg_sq()) < tol);
    if (amsgrad) CHECK(rel_err(sf.max_exp_avg_sq(), sr.max_exp_avg_sq()) < tol);
  }
  // The parameters moved: the comparison is not between two untouched sets.
  CHECK(rel_err(fused_params[0], make_params(dtype)[0]) > 1e-3);
}

TEST_CASE("FusedAdamW and AdamW read each other's checkpoints", "[optimizer]") {
  auto a_params = make_params(torch::kFloat64);
  auto b_params = clones(a_params);
  megabench::FusedAdamW a(a_params, recipe(false));
  torch::optim::AdamW b(b_params, recipe(false));
  for (int step = 0; step < 3; ++step) {
    set_grads(a_params, b_params, step);
    a.step();
    b.step();
  }
  // Swap: the fused state continues in LibTorch's optimizer and the other way round.
  auto swapped_b_params = clones(a_params);
  auto swapped_a_params = clones(b_params);
  torch::optim::AdamW b2(swapped_b_params, recipe(false));
  megabench::FusedAdamW a2(swapped_a_params, recipe(false));
  std::stringstream sa, sb;
  {
    torch::serialize::OutputArchive oa, ob;
    a.save(oa);
    b.save(ob);
    oa.save_to(sa);
    ob.save_to(sb);
  }
  {
    torch::serialize::InputArchive ia, ib;
    ia.load_from(sa);
    ib.load_from(sb);
    b2.load(ia);
    a2.load(ib);
  }
  for (int step = 3; step < 5; ++step) {
    set_grads(swapped_b_params, swapped_a_params, step);
    b2.step();
    a2.step();
  }
  for (size_t i = 0; i < a_params.size(); ++i) {
    CHECK(rel_err(swapped_b_params[i], swapped_a_params[i]) < 1e-12);
  }
}

TEST_CASE("clip_grad_norm clips as LibTorch's clip_grad_norm_", "[optimizer]") {
  const auto dtype = GENERATE(torch::kFloat32, torch::kFloat64);
  const double max_norm = GENERATE(0.5, 1e3);  // clipped, and left alone
  CAPTURE(dtype, max_norm);
  auto a = make_params(dtype);
  auto b = clones(a);
  set_grads(a, b, 2);
  const double ours = megabench::clip_grad_norm(a, max_norm);
  const double theirs = torch::nn::utils::clip_grad_norm_(b, max_norm);
  const double tol = dtype == torch::kFloat64 ? 1e-12 : 1e-6;
  CHECK(ours == Approx(theirs).epsilon(tol));
  for (size_t i = 0; i < a.size(); ++i) CHECK(rel_err(a[i].grad(), b[i].grad()) < tol);
  double joint = 0;
  for (const auto& p : a) joint += p.grad().pow(2).sum().item<double>();
  if (max_norm < ours) CHECK(std::sqrt(joint) == Approx(max_norm).epsilon(1e-4));
  CHECK(megabench::clip_grad_norm({torch::zeros({2}, dtype).requires_grad_()}, 1.0) == 0.0);
}

// At model sizes fp32 summation orders differ by more than fp32's epsilon, so the reference is the
// fp64 norm, and the bound is LibTorch's own fp32 norm of the same values: the BLAS dot product
// must be at least as close to it (on 2M values, one machine: 2.8e-5 off for LibTorch's norm, 4e-7
// to 1e-5 for the dot, by thread count and BLAS build).
TEST_CASE("clip_grad_norm on model-sized fp32 and on bf16 gradients", "[optimizer]") {
  const auto dtype = GENERATE(torch::kFloat32, torch::kBFloat16);
  CAPTURE(dtype);
  torch::manual_seed(4);
  std::vector<torch::Tensor> params = {torch::zeros({2048, 1024}, dtype).requires_grad_(),
                                       torch::zeros({1024}, dtype).requires_grad_()};
  std::vector<torch::Tensor> grads, norms;
  double sq = 0;
  for (auto& p : params) {
    p.mutable_grad() = torch::randn(p.sizes()).to(dtype);
    grads.push_back(p.grad().to(torch::kFloat64));
    norms.push_back(p.grad().to(torch::kFloat).norm());
    sq += grads.back().pow(2).sum().item<double>();
  }
  const double want = std::sqrt(sq);
  const double libtorch_err = std::abs(torch::stack(norms).norm().item<double>() - want) / want;
  const double got = megabench::clip_grad_norm(params, 1.0);
  const double err = std::abs(got - want) / want;
  CAPTURE(err, libtorch_err);
  if (dtype == torch::kFloat32) {
    CHECK(err <= std::max(libtorch_err, 1e-6));
  } else {
    CHECK(err < 1e-2);  // a float norm of bf16 values
  }
  // The clipped gradients carry the norm's error and one rounding of the multiply.
  const double tol = dtype == torch::kFloat32 ? err + 1e-6 : 1e-2;
  for (size_t i = 0; i < params.size(); ++i) {
    CHECK(rel_err(params[i].grad().to(torch::kFloat64), grads[i] / (want + 1e-6)) < tol);
  }
}

TEST_CASE("train.optimizer picks the AdamW implementation", "[optimizer][config]") {
  using megabench::json;
  const json base = {
      {"name", "t"}, {"models", {{{"name", "transformer"}}}}, {"metrics", {"train_step"}}};
  auto run = megabench::resolve_run(base);
  CHECK(run.train.optimizer == "adamw_fused");
  CHECK_FALSE(run.resolved["train"].contains("optimizer"));  // the default keeps old keys
  json doc = base;
  doc["train"] = {{"optimizer", "adamw"}};
  run = megabench::resolve_run(doc);
  CHECK(run.train.optimizer == "adamw");
  CHECK(run.resolved["train"]["optimizer"] == "adamw");
  doc["train"] = {{"optimizer", "sgd"}};
  CHECK_THROWS_WITH(megabench::resolve_run(doc), Catch::Contains("train.optimizer"));
}
