// Perceiver AR against lucidrains' perceiver-ar-pytorch 0.0.10 (fixtures written by
// tests/fixtures/gen_perceiver_ar.py), plus cached decoding against the uncached reference
// semantics, input checks and the plugin.
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "baselines/perceiver_ar.h"
#include "harness/api/registry.h"
#include "harness/io/safetensors.h"
#include "tests/support.h"

using Catch::Matchers::Contains;
using megabench::PerceiverAR;
using megabench::PerceiverARDecodeState;
using megabench::PerceiverAROptions;

using megabench::test::rel_err;

namespace {

// Options from a fixture's config: the reference's keyword arguments.
PerceiverAROptions options_from_json(const nlohmann::json& c) {
  PerceiverAROptions o(c.at("num_tokens"), c.at("dim"), c.at("depth"),
                       /*seq_len=*/c.at("max_seq_len"),
                       /*prefix_len=*/c.at("cross_attn_seq_len"));
  if (c.contains("dim_head")) o.dim_head(c["dim_head"]);
  if (c.contains("heads")) o.heads(c["heads"]);
  if (c.contains("dropout")) o.dropout(c["dropout"]);
  if (c.contains("cross_attn_dropout")) o.cross_attn_dropout(c["cross_attn_dropout"]);
  if (c.contains("ff_mult")) o.ff_mult(c["ff_mult"]);
  if (c.contains("perceive_depth")) o.perceive_depth(c["perceive_depth"]);
  if (c.contains("perceive_max_heads_process")) {
    o.perceive_max_heads_process(c["perceive_max_heads_process"]);
  }
  return o;
}

// Copies every "param.<name>" tensor into the module's parameter or buffer of that name, and
// checks that the two name sets agree exactly.
void load_params(torch::nn::Module& m, const megabench::safetensors::File& f) {
  std::set<std::string> ours, theirs;
  torch::NoGradGuard no_grad;
  auto copy_in = [&](const std::string& name, torch::Tensor t) {
    ours.insert(name);
    auto it = f.tensors.find("param." + name);
    REQUIRE(it != f.tensors.end());
    t.copy_(it->second);
  };
  for (auto& item : m.named_parameters()) copy_in(item.key(), item.value());
  for (auto& item : m.named_buffers()) copy_in(item.key(), item.value());
  for (const auto& [name, t] : f.tensors) {
    if (name.rfind("param.", 0) == 0) theirs.insert(name.substr(6));
  }
  REQUIRE(ours == theirs);
}

std::string fixture(const std::string& file) {
  return megabench::test::source_path("tests/fixtures/perceiver_ar/" + file);
}

PerceiverAR small_model(torch::ScalarType dtype, int64_t perceive_depth = 2) {
  torch::manual_seed(7);
  auto model = PerceiverAR(PerceiverAROptions(/*num_tokens=*/32, /*dim=*/16, /*depth=*/2,
                                              /*seq_len=*/24, /*prefix_len=*/16)
                               .heads(3)
                               .dim_head(40)
                               .perceive_depth(perceive_depth)
                               .perceive_max_heads_process(2));
  model->to(dtype);
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("PerceiverAR matches perceiver-ar-pytorch: logits - loss - gradients", "[perceiver_ar]") {
  const std::string name = GENERATE(as<std::string>{}, "d2_h2_full_rotary",
                                    "d1_h3_partial_rotary_mask", "train_cross_attn_dropout");
  const std::string suffix = GENERATE(as<std::string>{}, "f64", "f32");
  // Both attention paths: fused SDPA (the default) and the reference's explicit softmax.
  const bool flash = GENERATE(true, false);
  CAPTURE(name, suffix, flash);
  const auto dtype = suffix == "f64" ? torch::kFloat64 : torch::kFloat32;
  const double tol = suffix == "f64" ? 1e-10 : 1e-5;

  auto f = megabench::safetensors::load(fixture(name + "_" + suffix + ".safetensors"));
  auto params = megabench::safetensors::load(fixture(f.metadata.at("params_file")));
  auto model = PerceiverAR(options_from_json(nlohmann::json::parse(f.metadata.at("config")))
                               .attention(flash ? megabench::AttentionPath::kSdpa
                                                : megabench::AttentionPath::kExplicit));
  load_params(*model, params);
  model->to(dtype);
  model->train(f.metadata.at("mode") == "train");
  const auto seed = std::stoull(f.metadata.at("seed"));
  torch::Tensor mask =
      f.tensors.count("prefix_mask") ? f.tensors.at("prefix_mask") : torch::Tensor();

  torch::manual_seed(seed);
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = model->forward(f.tensors.at("x"), mask);
  }
  REQUIRE(logits.sizes() == f.tensors.at("logits").sizes());
  REQUIRE(logits.scalar_type() == dtype);
  CHECK(rel_err(logits, f.tensors.at("logits")) < tol);

  torch::manual_seed(seed);
  auto loss = model->forward(f.tensors.at("x"), mask, f.tensors.at("labels"));
  CHECK(rel_err(loss, f.tensors.at("loss")) < tol);
  loss.backward();
  auto named = model->named_parameters();
  int grads = 0;
  for (const auto& [key, ref] : f.tensors) {
    if (key.rfind("grad.", 0) != 0) continue;
    CAPTURE(key);
    const auto* p = named.find(key.substr(5));
    REQUIRE(p != nullptr);
    REQUIRE(p->grad().defined());
    CHECK(rel_err(p->grad(), ref) < tol);
    ++grads;
  }
  CHECK(grads >= 8);
}

TEST_CASE("PerceiverAR registers the reference's state_dict names", "[perceiver_ar]") {
  auto model = small_model(torch::kFloat32, /*perceive_depth=*/1);
  std::set<std::string> names;
  for (const auto& p : model->named_parameters()) names.insert(p.key());
  for (const std::string expected :
       {"token_emb.weight", "pos_emb.weight", "perceive_layers.0.0.norm.bias",
        "perceive_layers.0.0.context_norm.weight", "perceive_layers.0.0.to_q.weight",
        "perceive_layers.0.0.to_kv.weight", "perceive_layers.0.0.to_out.bias",
        "perceive_layers.0.1.0.weight", "perceive_layers.0.1.1.weight",
        "perceive_layers.0.1.4.weight", "layers.1.0.to_qkv.weight", "layers.1.0.to_out.weight",
        "layers.1.1.4.weight", "to_logits.weight"}) {
    CHECK(names.count(expected) == 1);
  }
  CHECK(names.count("layers.1.0.to_out.bias") == 0);  // bias-free, as the reference
  CHECK(model->named_buffers().contains("rotary_pos_emb.inv_freq"));
}

TEST_CASE("PerceiverAR rejects bad input with errors naming it", "[perceiver_ar]") {
  auto model = small_model(torch::kFloat32);
  auto ok = torch::randint(0, 32, {2, 20});
  CHECK(model->forward(ok).sizes() == torch::IntArrayRef({2, 4, 32}));
  CHECK_THROWS_WITH(model->forward(torch::randint(0, 32, {20})), Contains("(batch, length)"));
  CHECK_THROWS_WITH(model->forward(torch::full({2, 20}, 32, torch::kLong)), Contains("[0, 32)"));
  CHECK_THROWS_WITH(model->forward(torch::full({2, 20}, -1, torch::kLong)), Contains("[0, 32)"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 25}, torch::kLong)), Contains("seq_len"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 16}, torch::kLong)), Contains("prefix_len"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 0}, torch::kLong)), Contains("non-empty"));
  CHECK_THROWS_WITH(model->forward(torch::zeros({2, 20})), Contains("integer"));
  CHECK_THROWS_WITH(model->forward(ok, torch::ones({2, 16})), Contains("prefix_mask"));
  CHECK_THROWS_WITH(model->forward(ok, torch::ones({2, 15}, torch::kBool)),
                    Contains("prefix_mask"));
  CHECK_THROWS_WITH(model->forward(ok, torch::ones({1, 16}, torch::kBool)),
                    Contains("prefix_mask"));
  CHECK_THROWS_WITH(model->forward(ok, {}, torch::zeros({2, 19}, torch::kLong)),
                    Contains("labels"));
  CHECK_THROWS_WITH(PerceiverAR(PerceiverAROptions(32, 16, 1, 16, 16)),
                    Contains("seq_len (16) must be greater than prefix_len"));
  CHECK_THROWS_WITH(PerceiverAR(PerceiverAROptions(32, 16, 1, 24, 16).dim_head(16)),
                    Contains("dim_head"));
  CHECK_THROWS_WITH(model->generate(torch::zeros({1, 0}, torch::kLong), 3), Contains("prime"));
  CHECK_THROWS_WITH(model->generate(ok, -1), Contains("length"));
}

TEST_CASE("PerceiverAR prefix_mask hides the masked prefix positions", "[perceiver_ar]") {
  auto model = small_model(torch::kFloat64);
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 32, {2, 22});
  auto mask = torch::ones({2, 16}, torch::kBool);
  mask.index_put_({0, torch::indexing::Slice(2, 9)}, false);
  auto y = x.clone();
  y.index_put_({0, torch::indexing::Slice(2, 9)},
               (x.index({0, torch::indexing::Slice(2, 9)}) + 5) % 32);
  auto a = model->forward(x, mask), b = model->forward(y, mask);
  CHECK(rel_err(a, b) < 1e-12);
  // Unmasked, the change must show; and an all-true mask is the same as none.
  CHECK(rel_err(model->forward(x), model->forward(y)) > 1e-6);
  CHECK(rel_err(model->forward(x, torch::ones({2, 16}, torch::kBool)), model->forward(x)) < 1e-12);
}

TEST_CASE("PerceiverAR cross_attn_dropout acts in training only", "[perceiver_ar]") {
  torch::manual_seed(3);
  auto model = PerceiverAR(
      PerceiverAROptions(32, 16, 1, 24, 16).dim_head(32).heads(2).cross_attn_dropout(0.5));
  model->to(torch::kFloat64);
  auto x = torch::randint(0, 32, {2, 24});
  torch::NoGradGuard no_grad;
  model->eval();
  auto e1 = model->forward(x), e2 = model->forward(x);
  CHECK(rel_err(e1, e2) == 0.0);
  model->train();
  torch::manual_seed(11);
  auto t1 = model->forward(x);
  torch::manual_seed(12);
  auto t2 = model->forward(x);
  CHECK(rel_err(t1, e1) > 1e-6);
  CHECK(rel_err(t1, t2) > 1e-6);
  torch::manual_seed(11);
  CHECK(rel_err(model->forward(x), t1) == 0.0);
}

TEST_CASE("PerceiverAR cached decoding equals recomputing the window - across the slide",
          "[perceiver_ar]") {
  const auto dtype = GENERATE(torch::kFloat32, torch::kFloat64);
  // 18: longer than the prefix; 16 and 5: not longer, so left-padded and masked.
  const int64_t prime_len = GENERATE(18, 16, 5);
  CAPTURE(dtype, prime_len);
  const double tol = dtype == torch::kFloat64 ? 1e-10 : 1e-5;
  auto model = small_model(dtype);
  torch::manual_seed(5);
  auto prime = torch::randint(0, 32, {2, prime_len});
  auto cached = model->begin(prime, /*use_cache=*/true);
  auto uncached = model->begin(prime, /*use_cache=*/false);
  REQUIRE(cached.cache_live);
  REQUIRE_FALSE(uncached.cache_live);
  bool slid = false;
  // Past seq_len (24) the window slides; 30 steps cross it for every prime length.
  for (int step = 0; step < 30; ++step) {
    CAPTURE(step);
    REQUIRE(rel_err(cached.logits, uncached.logits) < tol);
    auto next = uncached.logits.argmax(-1);
    model->append(cached, next);
    model->append(uncached, next);
    slid = slid || cached.tokens.size(1) > 24;
  }
  CHECK(slid);
  CHECK_FALSE(cached.cache_live);

  // Greedy and sampled sequences agree, cached or not.
  auto g1 = model->generate(prime, 30, /*temperature=*/0.0, 0.9, /*use_cache=*/true);
  auto g2 = model->generate(prime, 30, 0.0, 0.9, false);
  CHECK(g1.sizes() == torch::IntArrayRef({2, prime_len + 30}));
  CHECK(torch::equal(g1.narrow(1, 0, prime_len), prime));
  CHECK(torch::equal(g1, g2));
  torch::manual_seed(9);
  auto s1 = model->generate(prime, 30, 1.0, 0.5, true);
  torch::manual_seed(9);
  auto s2 = model->generate(prime, 30, 1.0, 0.5, false);
  CHECK(torch::equal(s1, s2));
}

// DecodeWindow::kSlide keeps every cached key/value as the window slides. Where each cached value
// depends on its token alone (one perceive layer, no self-attention layers, a constant position
// table) that is exact, so the streamed logits must equal the reference's recomputed window at
// every step: this checks which token joins the prefix, which leaves, and the rotary positions.
TEST_CASE("PerceiverAR slide decoding equals recomputing where the caches depend on tokens alone",
          "[perceiver_ar]") {
  const auto dtype = GENERATE(torch::kFloat32, torch::kFloat64);
  // 18: longer than the prefix; 5: left-padded; 24: the whole window; 40: longer than it.
  const int64_t prime_len = GENERATE(18, 5, 24, 40);
  CAPTURE(dtype, prime_len);
  const double tol = dtype == torch::kFloat64 ? 1e-9 : 1e-4;
  torch::manual_seed(3);
  auto model = PerceiverAR(PerceiverAROptions(32, 16, /*depth=*/0, /*seq_len=*/24,
                                              /*prefix_len=*/16)
                               .heads(3)
                               .dim_head(40)
                               .perceive_depth(1)
                               .decode_window(megabench::DecodeWindow::kSlide));
  model->to(dtype);
  model->eval();
  {
    torch::NoGradGuard no_grad;
    model->pos_emb->weight.fill_(0.25);  // the same at every position
  }
  torch::manual_seed(5);
  auto prime = torch::randint(0, 32, {2, prime_len});
  auto streamed = model->begin(prime, /*use_cache=*/true);
  auto recomputed = model->begin(prime, /*use_cache=*/false);
  REQUIRE(streamed.cache_live);
  for (int step = 0; step < 30; ++step) {
    CAPTURE(step);
    REQUIRE(rel_err(streamed.logits, recomputed.logits) < tol);
    auto next = recomputed.logits.argmax(-1);
    model->append(streamed, next);
    model->append(recomputed, next);
  }
  CHECK(streamed.cache_live);
  CHECK(streamed.tokens.size(1) > 24 + 16);  // slid by more than the prefix: all of it replaced
  CHECK(streamed.perceive_cache[0].size() == 24);  // the window: 16 prefix + 8 latent entries
}

TEST_CASE(
    "PerceiverAR slide decoding: the reference's logits until the window slides, then an "
    "approximation with bounded caches",
    "[perceiver_ar]") {
  auto model = small_model(torch::kFloat64);  // self-attention layers: the caches are contextual
  model->options.decode_window(megabench::DecodeWindow::kSlide);
  torch::manual_seed(5);
  auto prime = torch::randint(0, 32, {2, 18});
  auto streamed = model->begin(prime, true);
  auto recomputed = model->begin(prime, false);
  double after_slide = 0;
  for (int step = 0; step < 20; ++step) {
    CAPTURE(step);
    const double err = rel_err(streamed.logits, recomputed.logits);
    if (streamed.tokens.size(1) <= 24)
      REQUIRE(err < 1e-10);
    else
      after_slide = std::max(after_slide, err);
    REQUIRE(torch::isfinite(streamed.logits).all().item<bool>());
    auto next = recomputed.logits.argmax(-1);
    model->append(streamed, next);
    model->append(recomputed, next);
  }
  CHECK(after_slide > 1e-6);  // kept keys/values were computed with another context
  CHECK(streamed.perceive_cache[0].size() == 24);  // bounded: the window's 16 + 8 entries
  for (const auto& c : streamed.layer_cache) CHECK(c.size() == 24 - 16);  // its 8 latents
  auto g1 = model->generate(prime, 30, /*temperature=*/0.0, 0.9, /*use_cache=*/true);
  auto g2 = model->generate(prime, 30, 0.0, 0.9, true);
  CHECK(g1.sizes() == torch::IntArrayRef({2, 48}));
  CHECK(torch::equal(g1, g2));
}

TEST_CASE("PerceiverAR short primes: the padding is masked and does not matter", "[perceiver_ar]") {
  auto model = small_model(torch::kFloat64);
  auto prime = torch::randint(0, 32, {2, 6});
  auto st = model->begin(prime, true);
  // The same window built by hand with another filler token, the filler masked.
  torch::NoGradGuard no_grad;
  auto filler = torch::full({2, 11}, 7, torch::kLong);
  auto mask =
      torch::cat({torch::zeros({2, 11}, torch::kBool), torch::ones({2, 5}, torch::kBool)}, 1);
  auto ref = model->forward(torch::cat({filler, prime}, 1), mask).select(1, 0);
  CHECK(rel_err(st.logits, ref) < 1e-10);
}

TEST_CASE("perceiver_ar plugin: config - counts - byte_nll - generate", "[perceiver_ar][plugin]") {
  const auto& spec = megabench::Registry::instance().get("perceiver_ar");
  auto cfg = spec.resolve(spec.tiny_config);
  CHECK_THROWS_WITH(spec.resolve({{"bogus", 1}}), Contains("bogus"));
  CHECK_THROWS_WITH(spec.resolve({{"decode_window", "stream"}}),
                    Contains("perceiver_ar.decode_window") && Contains("\"slide\""));
  const auto slide = spec.parse(spec.resolve({{"decode_window", "slide"}}));
  CHECK(dynamic_cast<const megabench::TypedOptions<PerceiverAROptions>&>(*slide)
            .value.decode_window() == megabench::DecodeWindow::kSlide);
  CHECK_THROWS_WITH(spec.resolve({{"dim", "wide"}}), Contains("dim"));
  CHECK_THROWS_WITH(spec.resolve({{"seq_len", 64}, {"max_seq_len", 32}}),
                    Contains("max_seq_len: unknown option"));
  CHECK_THROWS_WITH(spec.resolve({{"seq_len", 64}, {"prefix_len", 32}, {"num_latents", 16}}),
                    Contains("disagree"));

  const auto options = spec.parse(cfg);
  auto model = spec.build(*options);
  int64_t counted = 0;
  for (const auto& p : model->module().parameters()) counted += p.numel();
  auto pc = spec.params(*options);
  CHECK(pc.total == counted);
  CHECK(model->params().total == counted);
  const int64_t V = cfg["num_tokens"], D = cfg["dim"], L = cfg["seq_len"];
  CHECK(pc.non_embedding == counted - 2 * V * D - L * D);
  auto fl = spec.flops(*options);
  CHECK(fl.total() > 0);
  CHECK(fl.embed_logits == Approx(2.0 * D * V));

  const int64_t C = cfg["prefix_len"];
  torch::manual_seed(1);
  auto bytes = torch::randint(0, 256, {2, L + 1});
  bytes.index_put_({0, C + 3}, 0);  // byte 0 counts
  auto nll = model->byte_nll(bytes);
  REQUIRE(nll.sizes() == torch::IntArrayRef({2, L - C}));
  auto logits = model->logits(bytes.narrow(1, 0, L));
  auto ref = torch::nn::functional::cross_entropy(
      logits.reshape({-1, 256}), bytes.narrow(1, C + 1, L - C).reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  CHECK(rel_err(nll.reshape({-1}), ref) < 1e-5);
  CHECK(nll.index({0, 2}).item<double>() > 0);
  auto loss = model->loss(bytes);
  loss.backward();
  auto out = model->generate(bytes.narrow(1, 0, 3), 5, megabench::SamplingOptions{});
  CHECK(out.sizes() == torch::IntArrayRef({2, 8}));  // prime + new bytes
  auto from_empty =
      model->generate(torch::zeros({2, 0}, torch::kLong), 4, megabench::SamplingOptions{});
  CHECK(from_empty.sizes() == torch::IntArrayRef({2, 4}));
}

// Timings for scripts/bench_perceiver_ar.py: hidden, run only by name. Prints one JSON line.
// Environment: PAR_DIM, PAR_DEPTH, PAR_LEN (seq_len), PAR_PREFIX, PAR_STEPS, PAR_THREADS,
// PAR_FLASH (0/1), PAR_TRAIN (0/1), PAR_GEN (bytes to generate from a prime of PAR_PREFIX + 1;
// only the part before the window slides is run), PAR_WINDOWS (comma-separated window lengths at
// which one uncached step is timed).
TEST_CASE("PerceiverAR benchmark", "[.bench][.perceiver_ar_bench]") {
  auto env = [](const char* k, int64_t d) -> int64_t {
    const char* v = std::getenv(k);
    return v ? std::stoll(v) : d;
  };
  const int64_t dim = env("PAR_DIM", 512), depth = env("PAR_DEPTH", 8), L = env("PAR_LEN", 4096),
                C = env("PAR_PREFIX", 3072), steps = env("PAR_STEPS", 3);
  torch::set_num_threads(static_cast<int>(env("PAR_THREADS", 2)));
  torch::manual_seed(0);
  auto model =
      PerceiverAR(PerceiverAROptions(256, dim, depth, L, C)
                      .dim_head(64)
                      .heads(8)
                      .attention(env("PAR_FLASH", 1) != 0 ? megabench::AttentionPath::kSdpa
                                                          : megabench::AttentionPath::kExplicit));
  auto x = torch::randint(0, 256, {1, L + 1});
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  nlohmann::json out = {{"threads", torch::get_num_threads()}};
  // (a) training step, forward + backward, best and median of `steps` after one warm-up.
  if (env("PAR_TRAIN", 1) != 0) {
    model->train();
    std::vector<double> train_ms;
    for (int64_t i = 0; i < steps + 1; ++i) {
      model->zero_grad();
      auto t0 = clock::now();
      model->forward(x.narrow(1, 0, L), {}, x.narrow(1, 1, L)).backward();
      if (i > 0) train_ms.push_back(ms(t0, clock::now()));
    }
    model->zero_grad();
    std::sort(train_ms.begin(), train_ms.end());
    out["train_step_ms"] = train_ms.front();
    out["train_step_median_ms"] = train_ms[train_ms.size() / 2];
  }
  // (b) cached generation from a prime of C + 1 bytes, up to where the window would slide: n bytes
  // take n - 1 appends, so at most L - C of them fit.
  const int64_t grow = std::min(env("PAR_GEN", 4096), L - C);
  auto t0 = clock::now();
  model->generate(x.narrow(1, 0, C + 1), grow, 1.0, 0.9, /*use_cache=*/true);
  out["cached_growth_ms"] = ms(t0, clock::now());
  out["growth_bytes"] = grow;
  // (c) one uncached step (what every step costs once the window slides) at the given windows.
  std::string windows = std::getenv("PAR_WINDOWS") ? std::getenv("PAR_WINDOWS") : "";
  if (windows.empty()) windows = std::to_string(C + 1) + "," + std::to_string(L);
  nlohmann::json uncached = nlohmann::json::object();
  for (size_t pos = 0; pos < windows.size();) {
    const size_t end = std::min(windows.find(',', pos), windows.size());
    const int64_t w = std::stoll(windows.substr(pos, end - pos));
    pos = end + 1;
    model->generate(x.narrow(1, 0, w), 1, 1.0, 0.9, false);  // warm-up
    auto u0 = clock::now();
    model->generate(x.narrow(1, 0, w), 1, 1.0, 0.9, false);
    uncached[std::to_string(w)] = ms(u0, clock::now());
  }
  out["uncached_step_ms"] = uncached;
  std::cout << out.dump() << std::endl;
}
