// Every registered model, at its spec's tiny_config: resolve, build, forward, backward with finite
// gradients, generate a few bytes, and the analytical parameter count against the built module.
// A model missing from the registry fails "[all-models-registered]" (run it alone with that tag).
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "harness/api/registry.h"
#include "tests/support.h"

using megabench::json;

TEST_CASE("every registered model builds - trains a step and generates at its tiny config",
          "[all-models]") {
  auto names = megabench::Registry::instance().names();
  REQUIRE(!names.empty());
  for (const auto& name : names) {
    INFO("model " << name);
    const auto& spec = megabench::Registry::instance().get(name);
    REQUIRE(spec.resolve);
    REQUIRE(spec.build);
    json resolved = spec.resolve(spec.tiny_config);
    torch::manual_seed(0);
    const auto options = spec.parse(resolved);
    auto model = spec.build(*options);
    REQUIRE(model);

    // Parameters: the analytical count against the module's tensors.
    int64_t numel = 0;
    for (const auto& p : model->module().parameters()) numel += p.numel();
    CHECK(model->params().total == numel);
    if (spec.params) CHECK(spec.params(*options).total == numel);
    if (spec.flops) CHECK(spec.flops(*options).total() > 0);

    const int64_t T = model->seq_len();
    REQUIRE(T > 0);
    if (model->learns_by_counting()) {  // no tensors to train: fit on random bytes instead
      CHECK(numel == 0);
      std::vector<uint8_t> train(4096);
      for (auto& b : train) b = static_cast<uint8_t>(torch::randint(0, 256, {1}).item<int64_t>());
      model->fit(train);
    }
    REQUIRE(T % model->seq_multiple() == 0);
    auto x = torch::randint(0, 256, {2, T}, torch::kLong);

    // logits: (B, T, 256), finite
    model->module().eval();
    {
      torch::NoGradGuard no_grad;
      auto logits = model->logits(x);
      auto nll = model->byte_nll(x);
      // byte_nll (B, N), logits (B, L, 256): N == L == T, except for models that predict only the
      // tail of their window (Perceiver AR: L latents, N = L - 1 targets inside the window).
      CHECK(nll.size(0) == 2);
      CHECK(nll.size(1) >= 1);
      CHECK(nll.size(1) <= T);
      CHECK(logits.size(0) == 2);
      CHECK(logits.size(1) >= nll.size(1));
      CHECK(logits.size(1) <= T);
      CHECK(logits.size(2) == 256);
      CHECK(torch::isfinite(logits).all().item<bool>());
      CHECK((nll >= 0).all().item<bool>());
    }

    // forward + backward: finite gradients, and some of them non-zero
    if (model->learns_by_counting()) {
      torch::NoGradGuard no_grad;
      const double loss = model->loss(x).item<double>();
      CHECK(std::isfinite(loss));
      CHECK(loss > 3.0);  // random bytes: near ln(256) = 5.55 nats
      CHECK(loss < 8.0);
      auto prime = torch::randint(0, 256, {1, 2}, torch::kLong);
      megabench::SamplingOptions greedy;
      greedy.temperature = 0;
      auto out = model->generate(prime, 4, greedy);
      CHECK(out.size(1) == 6);
      CHECK(((out >= 0) & (out < 256)).all().item<bool>());
      continue;
    }
    model->module().train();
    model->module().zero_grad();
    auto loss = model->loss(x);
    REQUIRE(std::isfinite(loss.item<double>()));
    // An untrained byte model sits near the uniform loss ln(256) = 5.55 nats.
    CHECK(loss.item<double>() > 3.0);
    CHECK(loss.item<double>() < 8.0);
    loss.backward();
    double grad_norm = 0;
    for (const auto& p : model->module().parameters()) {
      if (!p.grad().defined()) continue;
      CHECK(torch::isfinite(p.grad()).all().item<bool>());
      grad_norm += p.grad().pow(2).sum().item<double>();
    }
    CHECK(grad_norm > 0);

    // generate: bytes in [0, 255], cached and uncached; greedy decoding agrees between the two
    model->module().eval();
    torch::NoGradGuard no_grad;
    auto prime = torch::randint(0, 256, {1, 2}, torch::kLong);
    megabench::SamplingOptions greedy;
    greedy.temperature = 0;
    auto cached = model->generate(prime, 4, greedy);
    CHECK(cached.sizes() == torch::IntArrayRef({1, 6}));  // prime + new bytes
    CHECK(torch::equal(cached.narrow(1, 0, 2), prime));
    CHECK((cached >= 0).all().item<bool>());
    CHECK((cached < 256).all().item<bool>());
    greedy.use_cache = false;
    auto uncached = model->generate(prime, 4, greedy);
    CHECK(torch::equal(cached, uncached));
    megabench::SamplingOptions sampled;
    CHECK(model->generate(prime, 3, sampled).size(1) == 5);
  }
}

TEST_CASE("megabyte - transformer and perceiver_ar are all registered", "[all-models-registered]") {
  for (const char* name : {"megabyte", "transformer", "perceiver_ar"}) {
    INFO("registered: " << [] {
      std::string s;
      for (const auto& n : megabench::Registry::instance().names()) s += n + " ";
      return s;
    }());
    CHECK(megabench::Registry::instance().has(name));
  }
}
