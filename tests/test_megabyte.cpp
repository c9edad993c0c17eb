// MEGABYTE: parity with the Python reference (fixtures from tests/fixtures/gen_megabyte.py),
// cached decoding against the full forward, the multi-stage context fix, and bad input.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "harness/io/checkpoint.h"
#include "harness/io/safetensors.h"
#include "models/megabyte.h"
#include "tests/support.h"

using namespace megabench;
using json = nlohmann::json;

using megabench::test::rel_err;

namespace {

std::vector<int64_t> as_vec(const json& j) {
  if (j.is_array()) return j.get<std::vector<int64_t>>();
  return {j.get<int64_t>()};
}

// Options from the reference's max_seq_len (global patches, then the patch lengths).
MEGABYTEOptions reference_options(int64_t num_tokens, std::vector<int64_t> dim,
                                  std::vector<int64_t> depth,
                                  const std::vector<int64_t>& max_seq_len) {
  int64_t seq_len = 1;
  for (auto n : max_seq_len) seq_len *= n;
  return MEGABYTEOptions(num_tokens, std::move(dim), std::move(depth), seq_len,
                         std::vector<int64_t>(max_seq_len.begin() + 1, max_seq_len.end()));
}

// Options from a fixture's config: the reference's keyword arguments.
MEGABYTEOptions options_from(const json& c) {
  auto o = reference_options(c.at("num_tokens").get<int64_t>(), as_vec(c.at("dim")),
                             as_vec(c.at("depth")), as_vec(c.at("max_seq_len")));
  o.dim_head(c.value("dim_head", 64)).heads(c.value("heads", 8));
  o.rel_pos(c.value("rel_pos", false)).pos_emb(c.value("pos_emb", false));
  o.attention(c.value("flash_attn", false) ? AttentionPath::kSdpa : AttentionPath::kExplicit);
  o.context(ContextMode::kReference);
  return o;
}

// Largest |a - b| relative to max |b|.
std::vector<std::string> fixture_files() {
  std::vector<std::string> out;
  for (auto& e :
       std::filesystem::directory_iterator(test::source_path("tests/fixtures/megabyte"))) {
    const auto stem = e.path().stem().string();  // parity fixtures end in _f32 or _f64
    if (e.path().extension() == ".safetensors" &&
        (stem.size() > 4 &&
         (stem.substr(stem.size() - 4) == "_f32" || stem.substr(stem.size() - 4) == "_f64"))) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

MEGABYTE tiny(std::vector<int64_t> max_seq_len, ContextMode mode, torch::Dtype dtype,
              bool rel_pos = true, bool pos_emb = true, bool flash = false) {
  torch::manual_seed(7);
  std::vector<int64_t> dims, depth;
  for (size_t i = 0; i < max_seq_len.size(); ++i) {
    dims.push_back(32 - 8 * static_cast<int64_t>(i));
    depth.push_back(2);
  }
  auto m = MEGABYTE(reference_options(256, dims, depth, max_seq_len)
                        .dim_head(8)
                        .heads(2)
                        .rel_pos(rel_pos)
                        .pos_emb(pos_emb)
                        .attention(flash ? AttentionPath::kSdpa : AttentionPath::kExplicit)
                        .context(mode));
  m->to(dtype);
  m->eval();
  return m;
}

}  // namespace

TEST_CASE("MEGABYTE matches the Python reference: logits - loss - gradients",
          "[megabyte][parity]") {
  auto files = fixture_files();
  REQUIRE(files.size() >= 12);
  for (const auto& path : files) {
    INFO("fixture " << path);
    auto f = safetensors::load(path);
    auto config = json::parse(f.metadata.at("config"));
    const bool f64 = f.metadata.at("dtype") == "f64";
    const double tol = f64 ? 1e-10 : 1e-5;
    auto dtype = f64 ? torch::kFloat64 : torch::kFloat32;

    auto model = MEGABYTE(options_from(config));
    model->to(dtype);
    model->eval();
    safetensors::File params;
    for (const auto& [name, t] : f.tensors) {
      if (name.rfind("param.", 0) == 0) params.tensors[name.substr(6)] = t;
    }
    checkpoint::load_into(*model, params, /*strict=*/true);

    auto ids = f.tensors.at("input.ids");
    auto logits = model->forward(ids);
    CHECK(rel_err(logits, f.tensors.at("out.logits")) < tol);
    auto empty = model->forward_empty(ids.size(0));
    CHECK(rel_err(empty, f.tensors.at("out.empty_logits")) < tol);

    auto loss = model->forward(ids, /*return_loss=*/true);
    CHECK(rel_err(loss.reshape({1}), f.tensors.at("out.loss")) < tol);
    loss.backward();
    auto named = model->named_parameters();
    int grads = 0;
    for (const auto& [name, t] : f.tensors) {
      if (name.rfind("grad.", 0) != 0) continue;
      INFO("gradient of " << name.substr(5));
      CHECK(rel_err(named[name.substr(5)].grad(), t) < tol);
      ++grads;
    }
    CHECK(grads >= 6);
  }
}

TEST_CASE("MEGABYTE parameter names are the reference's", "[megabyte][parity]") {
  auto f = safetensors::load(
      test::source_path("tests/fixtures/megabyte/s3_flat_rot_flash_f32.safetensors"));
  auto model = MEGABYTE(options_from(json::parse(f.metadata.at("config"))));
  std::set<std::string> ours, theirs;
  for (const auto& p : model->named_parameters()) ours.insert(p.key());
  for (const auto& b : model->named_buffers()) ours.insert(b.key());
  for (const auto& [name, _] : f.tensors) {
    if (name.rfind("param.", 0) == 0) theirs.insert(name.substr(6));
  }
  CHECK(ours == theirs);
}

TEST_CASE("MEGABYTE cached decoding matches the full forward at every step",
          "[megabyte][generate]") {
  for (auto msl : std::vector<std::vector<int64_t>>{{12}, {5, 4}, {3, 3, 2}}) {
    for (auto mode : {ContextMode::kReference, ContextMode::kCorrected}) {
      for (bool flash : {false, true}) {
        INFO("stages " << msl.size() << " corrected " << (mode == ContextMode::kCorrected)
                       << " flash " << flash);
        auto model = tiny(msl, mode, torch::kFloat32, true, true, flash);
        torch::NoGradGuard ng;
        const int64_t total = model->options.seq_len(), batch = 2;
        torch::manual_seed(3);
        auto seq = torch::randint(0, 256, {batch, total}, torch::kLong);
        auto st = model->begin(batch);
        auto cached = st.empty_logits;
        for (int64_t t = 0; t <= total; ++t) {
          if (t == total) {
            CHECK(!cached.defined());
            break;
          }
          auto full = model->next_logits_uncached(seq.narrow(1, 0, t));
          INFO("step " << t);
          REQUIRE(cached.defined());
          CHECK(rel_err(cached, full) < 1e-5);
          cached = model->append(st, seq.select(1, t));
        }
      }
    }
  }
}

TEST_CASE("MEGABYTE generation: cached and uncached give the same bytes", "[megabyte][generate]") {
  for (auto msl : std::vector<std::vector<int64_t>>{{10}, {4, 3}, {2, 3, 2}}) {
    auto model = tiny(msl, ContextMode::kCorrected, torch::kFloat64);
    auto prime = torch::randint(0, 256, {2, 3}, torch::kLong);
    // Greedy.
    auto a = model->generate(prime, {}, 0.0, 0.9, 1, /*use_cache=*/true);
    auto b = model->generate(prime, {}, 0.0, 0.9, 1, /*use_cache=*/false);
    CHECK(a.size(1) == model->options.seq_len());
    CHECK(torch::equal(a, b));
    // Sampled with the same seed, in float64.
    torch::manual_seed(11);
    auto c = model->generate(prime, 7, 1.0, 0.5, 1, true);
    torch::manual_seed(11);
    auto d = model->generate(prime, 7, 1.0, 0.5, 1, false);
    CHECK(c.size(1) == 10);
    CHECK(torch::equal(c, d));
    // From an empty prime.
    torch::manual_seed(5);
    auto e = model->generate({}, 5, 1.0, 0.9, 3, true);
    torch::manual_seed(5);
    auto g = model->generate({}, 5, 1.0, 0.9, 3, false);
    CHECK(e.sizes() == torch::IntArrayRef({3, 5}));
    CHECK(torch::equal(e, g));
  }
}

TEST_CASE("MEGABYTE top-k keeps max(int((1 - thres) * V) - 1) tokens", "[megabyte][generate]") {
  auto logits = torch::arange(256, torch::kFloat64).unsqueeze(0);
  auto kept = top_k_filter(logits, 0.9);
  CHECK(torch::isfinite(kept).sum().item<int64_t>() == 25);  // int(0.1 * 256)
  CHECK(torch::isfinite(top_k_filter(logits, 1.0)).sum().item<int64_t>() == 1);
  for (int i = 0; i < 20; ++i) {
    auto s = sample_next(logits, 1.0, 0.9).item<int64_t>();
    CHECK(s >= 231);
  }
}

namespace {
// Which predictions change when byte j is perturbed: (L, L) bool, [t][j] = prediction of byte t
// (row t of next_byte_logits) depends on byte j.
torch::Tensor dependency_matrix(MEGABYTE& model) {
  torch::NoGradGuard ng;
  const int64_t L = model->options.seq_len();
  torch::manual_seed(21);
  auto seq = torch::randint(1, 255, {1, L}, torch::kLong);
  auto base = model->next_byte_logits(seq)[0];  // (L, V)
  auto dep = torch::zeros({L, L}, torch::kBool);
  for (int64_t j = 0; j < L; ++j) {
    auto s2 = seq.clone();
    s2[0][j] = (s2[0][j].item<int64_t>() + 128) % 256;
    auto out = model->next_byte_logits(s2)[0];
    dep.select(1, j).copy_((out - base).abs().amax(-1) > 1e-9);
  }
  return dep;
}
}  // namespace

TEST_CASE("MEGABYTE multi-stage context: causal in both modes - complete in the corrected mode",
          "[megabyte][context]") {
  const std::vector<int64_t> msl{4, 4, 4};
  for (auto mode : {ContextMode::kReference, ContextMode::kCorrected}) {
    auto model = tiny(msl, mode, torch::kFloat64, false, true);
    auto dep = dependency_matrix(model);
    const int64_t L = dep.size(0);
    // No prediction sees its own or a later byte.
    CHECK(dep.triu(0).any().item<bool>() == false);
    auto sees_byte0 = dep.select(1, 0).narrow(0, 1, L - 1);
    if (mode == ContextMode::kCorrected) {
      CHECK(sees_byte0.all().item<bool>());
    } else {
      // The reference's defect: in every patch after the first, the bytes predicted from the
      // first sub-patch's local model (its bytes 1.. and the next sub-patch's byte 0) see no
      // earlier patch: (d0 - 1) * d2 of them, about 1/d1 of all bytes.
      const int64_t blind = L - 1 - sees_byte0.sum().item<int64_t>();
      CHECK(blind == (msl[0] - 1) * msl[2]);
    }
  }
}

TEST_CASE("MEGABYTE two-stage models are the same in both context modes", "[megabyte][context]") {
  auto a = tiny({4, 4}, ContextMode::kReference, torch::kFloat64);
  auto b = tiny({4, 4}, ContextMode::kCorrected, torch::kFloat64);
  auto x = torch::randint(0, 256, {2, 16}, torch::kLong);
  CHECK(torch::equal(a->forward(x), b->forward(x)));
}

// The fused path ("sdpa": the short-attention kernel for local stages, SDPA for the global one)
// against the explicit one, in fp64 training mode: loss and every gradient, for 3 stages with
// rotary and for cross-patch attention (the kernel's keep mask: the first patch has no previous).
TEST_CASE("MEGABYTE fused attention equals explicit attention: loss and gradients",
          "[megabyte][parity]") {
  for (const int64_t cross : {int64_t{0}, int64_t{2}}) {
    CAPTURE(cross);
    std::vector<std::vector<torch::Tensor>> grads;
    std::vector<double> losses;
    for (const bool fused : {false, true}) {
      torch::manual_seed(3);
      auto opts = MEGABYTEOptions(256, {32, 24, 16}, {2, 1, 2}, 4 * 3 * 4, {3, 4})
                      .dim_head(8)
                      .heads(2)
                      .rel_pos(true)
                      .cross_patch_attention(cross)
                      .attention(fused ? AttentionPath::kSdpa : AttentionPath::kExplicit);
      auto m = MEGABYTE(opts);
      m->to(torch::kFloat64);
      m->train();
      torch::manual_seed(4);
      auto ids = torch::randint(0, 256, {3, 48}, torch::kLong);
      auto loss = m->forward(ids, /*return_loss=*/true);
      loss.backward();
      losses.push_back(loss.item<double>());
      std::vector<torch::Tensor> g;
      for (const auto& p : m->parameters()) g.push_back(p.grad().clone());
      grads.push_back(g);
    }
    CHECK(std::abs(losses[0] - losses[1]) < 1e-12);
    REQUIRE(grads[0].size() == grads[1].size());
    for (size_t i = 0; i < grads[0].size(); ++i) {
      CAPTURE(i);
      CHECK(test::rel_err(grads[1][i], grads[0][i]) < 1e-10);
    }
  }
}

// next_byte_loss reads the logits in place (each position given its flat row's label) instead of
// building next_byte_logits: against the cross-entropy of those logits, in fp64, for 2 and 3
// stages, lengths that do and do not fill the last patch (the padding is not scored), pad_id
// bytes in the input (scored: the harness's loss ignores nothing) and cross-patch attention.
TEST_CASE("MEGABYTE next_byte_loss equals the cross-entropy of next_byte_logits", "[megabyte]") {
  struct Case {
    std::vector<int64_t> dims, depths, patch;
    int64_t cross, len;
  };
  for (const auto& c : {Case{{32, 16}, {1, 1}, {4}, 0, 24}, Case{{32, 16}, {1, 1}, {4}, 2, 22},
                        Case{{32, 24, 16}, {1, 1, 1}, {3, 4}, 0, 31}}) {
    CAPTURE(c.dims.size(), c.cross, c.len);
    int64_t seq = 1;
    for (auto p : c.patch) seq *= p;
    torch::manual_seed(5);
    auto m = MEGABYTE(MEGABYTEOptions(256, c.dims, c.depths, 8 * seq, c.patch)
                          .dim_head(8)
                          .heads(2)
                          .cross_patch_attention(c.cross));
    m->to(torch::kFloat64);
    auto ids = torch::randint(0, 256, {2, c.len}, torch::kLong);
    ids.index_put_({0, 3}, 0);  // pad_id as data: scored
    std::vector<torch::Tensor> losses, grads;
    for (const bool in_place : {false, true}) {
      m->zero_grad();
      auto loss = in_place ? m->next_byte_loss(ids)
                           : torch::nn::functional::cross_entropy(
                                 m->next_byte_logits(ids).reshape({-1, 256}), ids.reshape({-1}));
      loss.backward();
      losses.push_back(loss.detach());
      std::vector<torch::Tensor> g;
      for (const auto& p : m->parameters()) g.push_back(p.grad().flatten());
      grads.push_back(torch::cat(g));
    }
    CHECK(std::abs(losses[1].item<double>() - losses[0].item<double>()) < 1e-12);
    CHECK(test::rel_err(grads[1], grads[0]) < 1e-12);
  }
}

TEST_CASE("MEGABYTE rejects bad input with clear errors", "[megabyte][errors]") {
  auto model = tiny({4, 4}, ContextMode::kCorrected, torch::kFloat32);
  using Catch::Contains;
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 3, 4, 5}, torch::kLong)), Contains("rank"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 3, 5}, torch::kLong)),
                    Contains("patch[0] = 4"));
  CHECK_THROWS_WITH(model->forward(torch::full({1, 8}, 256, torch::kLong)), Contains("[0, 256)"));
  CHECK_THROWS_WITH(model->forward(torch::full({1, 8}, -1, torch::kLong)), Contains("[0, 256)"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 17}, torch::kLong)), Contains("at most 16"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 0}, torch::kLong)), Contains("empty"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 4}, torch::kFloat32)), Contains("integer"));
  CHECK_THROWS_WITH(MEGABYTE(MEGABYTEOptions(256, {32}, {2, 2}, 16, {})), Contains("depth needs"));
  CHECK_THROWS_WITH(MEGABYTE(MEGABYTEOptions(256, {32}, {2, 2}, 18, {4})),
                    Contains("multiple of the global patch 4"));
  CHECK_THROWS_WITH(MEGABYTE(MEGABYTEOptions(256, {32, 16, 8}, {2, 2}, 16, {4})),
                    Contains("dim needs"));
  CHECK_THROWS_WITH(model->generate(torch::zeros({1, 3}, torch::kLong), 14), Contains("exceeds"));
}
