// MEGABYTE's paper formulation (Yu et al. 2023, Eq. 1-6, Appendix B): megabyte's option
// "formulation": "paper". Its forward against a naive per-patch evaluation of the equations in
// float64, its FLOPs against the SpaceByte Appendix A.1 formula term by term and against the
// profiler, and the checks every variant gets.
#include <catch2/catch.hpp>
#include <iostream>

#include "harness/api/flops.h"
#include "harness/api/registry.h"
#include "harness/config/expand.h"
#include "harness/config/experiment.h"
#include "harness/io/checkpoint.h"
#include "harness/measure/profiler.h"
#include "models/megabyte_paper.h"
#include "tests/support.h"

using megabench::json;
using megabench::test::fresh_dir;
using megabench::test::rel_err;

namespace {

const megabench::ModelSpec& megabyte() {
  return megabench::Registry::instance().get("megabyte");
}

// Widths 32 (P * D_G, D_G = 8) and 16, 4 + 2 heads of 8, T = 32, P = 4.
json tiny_paper(json extra = json::object()) {
  json c = {{"dim", {32, 16}}, {"depth", {1, 1}}, {"seq_len", 32},
            {"patch", 4},      {"dim_head", 8},   {"formulation", "paper"}};
  for (auto& [k, v] : extra.items()) c[k] = v;
  return c;
}

int64_t numel(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

// Eq. 1-6 evaluated one patch and one position at a time, from the module's parameters:
// (B, L, V) logits, row t the distribution of byte t.
torch::Tensor naive_paper_logits(megabench::MEGABYTEPaperImpl& m, const torch::Tensor& x) {
  const int64_t B = x.size(0), L = x.size(1), P = m.options.patch(), DG = m.options.dim_byte();
  const int64_t K = L / P;
  auto E_g = m.global_emb->weight, E_pos = m.global_pos->weight, E_l = m.local_emb->weight;
  std::vector<torch::Tensor> global_in;  // K inputs of (B, P * D_G)
  global_in.push_back(m.global_pad.unsqueeze(0).expand({B, P * DG}));
  for (int64_t k = 1; k < K; ++k) {
    std::vector<torch::Tensor> parts;  // Eq. 1 for the bytes of patch k - 1, concatenated
    for (int64_t p = 0; p < P; ++p) {
      const int64_t t = (k - 1) * P + p;
      parts.push_back(E_g.index_select(0, x.select(1, t)) + E_pos[t].unsqueeze(0));
    }
    global_in.push_back(torch::cat(parts, -1));
  }
  auto global_out = m.global_model(torch::stack(global_in, 1));  // (B, K, P D_G)
  std::vector<torch::Tensor> rows;
  for (int64_t k = 0; k < K; ++k) {
    std::vector<torch::Tensor> local_in;
    for (int64_t p = 0; p < P; ++p) {
      auto slice = global_out.select(1, k).narrow(-1, p * DG, DG);  // (B, D_G)
      auto prev = p == 0 ? m.local_pad.unsqueeze(0).expand({B, -1})
                         : E_l.index_select(0, x.select(1, k * P + p - 1));
      local_in.push_back(torch::matmul(slice, m.w_gl->weight.t()) + prev);  // Eq. 4
    }
    auto out = m.local_model(torch::stack(local_in, 1));  // (B, P, D_L): Eq. 5
    rows.push_back(torch::matmul(out, E_l.t()));          // Eq. 6 (tied)
  }
  return torch::cat(rows, 1);
}

}  // namespace

TEST_CASE("megabyte formulation paper: the forward is Eq. 1-6", "[megabyte][paper]") {
  torch::manual_seed(0);
  megabench::MEGABYTEPaper model(
      megabench::MEGABYTEPaperOptions({32, 16}, {2, 1}, 32, 4).dim_head(8).rel_pos(true));
  model->to(torch::kFloat64);
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {2, 32}, torch::kLong);
  auto want = naive_paper_logits(*model, x);  // (B, 32, V): row t is byte t's distribution
  CHECK(rel_err(model->next_byte_logits(x), want) < 1e-12);
  CHECK(rel_err(model->forward(x).narrow(1, 0, 31), want.narrow(1, 1, 31)) < 1e-12);
  // A prefix that ends inside a patch: the same rows.
  CHECK(rel_err(model->next_byte_logits(x.narrow(1, 0, 13)), want.narrow(1, 0, 13)) < 1e-12);
  // The loss is the mean cross-entropy of every byte.
  auto nll = torch::nn::functional::cross_entropy(want.reshape({-1, 256}), x.reshape({-1}));
  CHECK(model->loss(x).item<double>() == Approx(nll.item<double>()).epsilon(1e-12));
  // The output is tied: no separate logits matrix.
  CHECK(numel(*model) == megabench::Registry::instance()
                             .get("megabyte")
                             .params(*megabyte().parse(megabyte().resolve(
                                 tiny_paper({{"depth", {2, 1}}, {"rel_pos", true}}))))
                             .total);
}

TEST_CASE("megabyte formulation paper: FLOPs match the SpaceByte formula term by term",
          "[megabyte][paper][flops]") {
  // The paper's text config (Tables 14-15): global 14 x 2048 over P = 8, local 18 x 1024, T 8192.
  const json cfg = megabyte().resolve({{"dim", {2048, 1024}},
                                       {"depth", {14, 18}},
                                       {"seq_len", 8192},
                                       {"patch", 8},
                                       {"formulation", "paper"}});
  const auto options = megabyte().parse(cfg);
  REQUIRE(megabyte().formula);
  const auto check = megabyte().formula(*options);
  REQUIRE(check);
  REQUIRE(check->terms.size() == 4);
  double counted = 0, formula = 0;
  std::cout << "MEGABYTE formulation paper, text config, FLOPs per byte (" << check->formula
            << "):\n";
  for (const auto& t : check->terms) {
    INFO(t.name);
    std::cout << "  " << t.name << ": counted " << t.counted << ", formula " << t.formula << "\n";
    CHECK(t.counted == Approx(t.formula).epsilon(0.01));
    counted += t.counted;
    formula += t.formula;
  }
  CHECK(megabyte().flops(*options).total() == Approx(counted).epsilon(1e-12));
  CHECK(counted == Approx(645.5e6).epsilon(0.01));
  // The formula with the paper's reported parameter counts in place of counted ones: 729M, the
  // figure SpaceByte's appendix quotes.
  megabench::flops::PaperMegabyte reported;
  reported.layers_global = 14, reported.dim_global = 2048, reported.layers_local = 18;
  reported.dim_local = 1024, reported.patch = 8, reported.context = 8192;
  reported.params_global = 758e6, reported.params_local = 262e6;
  const double with_reported = megabench::flops::paper_megabyte(reported).total();
  std::cout << "  total: counted " << counted << "; formula with reported 758M + 262M params "
            << with_reported << "\n";
  CHECK(with_reported == Approx(729e6).epsilon(0.005));
  // The parameters the formula counts are the model's, less biases, norms, pads and tables.
  const auto pc = megabyte().params(*options);
  CHECK(static_cast<double>(pc.groups[0].second) == Approx(704.6e6).epsilon(0.001));
  // The reference's architecture at the same widths counts more.
  json ref = cfg;
  ref.erase("formulation");
  ref["heads"] = 16;  // 16 x 64 = the local width
  CHECK(megabyte().flops(*megabyte().parse(megabyte().resolve(ref))).total() > counted);
}

TEST_CASE("megabyte formulation paper: params, measured FLOPs, causality, decoding, checkpoints",
          "[megabyte][paper]") {
  for (const json& extra :
       {json::object(), json{{"rel_pos", true}}, json{{"local", false}, {"depth", {1, 0}}}}) {
    INFO(extra.dump());
    const json cfg = megabyte().resolve(tiny_paper(extra));
    const auto options = megabyte().parse(cfg);
    torch::manual_seed(0);
    auto model = megabyte().build(*options);
    CHECK(model->params().total == numel(model->module()));
    CHECK(megabyte().params(*options).total == numel(model->module()));
    CHECK(model->patch_size() == 4);
    model->module().eval();
    torch::NoGradGuard no_grad;

    // FLOPs: analytical = the profiler's count of the matrix products over the whole context.
    auto full = torch::randint(0, 256, {2, 32}, torch::kLong);
    megabench::Profiler prof(torch::kCPU);
    prof.start();
    model->byte_nll(full);
    const double per_byte = prof.stop().measured_matmul_flops / (2.0 * 32);
    CHECK(per_byte == Approx(megabyte().flops(*options).total()).epsilon(1e-9));

    // Causal in float64: changing byte t leaves the logits rows < t unchanged, changes a later one.
    model->module().to(torch::kFloat64);
    auto lx = model->logits(full);
    for (int64_t t : {1, 3, 4, 17, 30}) {
      INFO("byte " << t);
      auto y = full.clone();
      y[0][t] = (full[0][t].item<int64_t>() + 1) % 256;
      auto diff = (model->logits(y) - lx).abs().amax(-1)[0];
      CHECK(diff.narrow(0, 0, t).max().item<double>() == 0);
      CHECK(diff.narrow(0, t, 32 - t).max().item<double>() > 0);
    }
    model->module().to(torch::kFloat32);

    // Cached generation = the full forward, and = uncached decoding.
    megabench::SamplingOptions greedy;
    greedy.temperature = 0;
    auto prime = full.narrow(0, 0, 1).narrow(1, 0, 3);
    auto cached = model->generate(prime, 29, greedy);
    for (int64_t t = 3; t < 32; ++t) {
      auto row = model->logits(cached.narrow(1, 0, t)).select(1, t - 1);
      CHECK(row.argmax(-1).item<int64_t>() == cached[0][t].item<int64_t>());
    }
    greedy.use_cache = false;
    CHECK(torch::equal(model->generate(prime, 29, greedy), cached));

    // Checkpoint round trip into a model built at another seed.
    const auto path = fresh_dir("paper_round_trip") + "/model.safetensors";
    megabench::checkpoint::save(path, model->module(), {{"config", cfg.dump()}});
    torch::manual_seed(1);
    auto loaded = megabyte().build(*options);
    megabench::checkpoint::load_into(loaded->module(), megabench::safetensors::load(path));
    loaded->module().eval();
    CHECK(torch::equal(loaded->byte_nll(full), model->byte_nll(full)));
  }
}

TEST_CASE("megabyte formulation paper: the global model runs once per patch in decoding",
          "[megabyte][paper]") {
  torch::manual_seed(0);
  megabench::MEGABYTEPaper model(
      megabench::MEGABYTEPaperOptions({32, 16}, {1, 1}, 32, 4).dim_head(8));
  model->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {2, 32}, torch::kLong);
  auto want = model->next_byte_logits(x);  // (B, 32, V)
  auto st = model->begin(2);
  CHECK(st.global.pos == 1);  // the pad patch
  CHECK(rel_err(st.empty_logits, want.select(1, 0)) < 1e-5);
  for (int64_t t = 0; t < 31; ++t) {
    INFO("byte " << t);
    auto logits = model->append(st, x.select(1, t));
    CHECK(st.global.pos == 1 + (t + 1) / 4);  // once per completed patch
    CHECK(st.local.pos == (t + 1) % 4 + 1);   // the current patch's positions only
    CHECK(rel_err(logits, want.select(1, t + 1)) < 1e-5);
  }
  CHECK_FALSE(model->append(st, x.select(1, 31)).defined());  // the context is full
}

TEST_CASE("megabyte formulation paper: options", "[megabyte][paper]") {
  const auto* opt = megabench::find_option(megabyte(), "formulation");
  REQUIRE(opt);
  CHECK(opt->help.find("section 2.2") != std::string::npos);
  CHECK(opt->default_value.is_null());  // unset: the keys of existing points do not change
  const json resolved = megabyte().resolve(tiny_paper());
  for (const char* key : {"heads", "pos_emb", "context", "pad_id", "local_attn_kernel"}) {
    CHECK_FALSE(resolved.contains(key));
  }
  // "reference" is today's model, weight for weight and byte for byte.
  json ref = megabyte().tiny_config;
  ref["formulation"] = "reference";
  torch::manual_seed(0);
  auto a = megabyte().build(*megabyte().parse(megabyte().resolve(ref)));
  torch::manual_seed(0);
  auto b = megabyte().build(*megabyte().parse(megabyte().resolve(megabyte().tiny_config)));
  auto x = torch::randint(0, 256, {2, 32}, torch::kLong);
  torch::NoGradGuard no_grad;
  CHECK(torch::equal(a->byte_nll(x), b->byte_nll(x)));

  CHECK_THROWS_WITH(megabyte().resolve(tiny_paper({{"formulation", "paper2"}})),
                    Catch::Contains("megabyte.formulation: expected \"paper\" or \"reference\""));
  CHECK_THROWS_WITH(megabyte().resolve(tiny_paper({{"heads", 4}})),
                    Catch::Contains("heads: formulation \"paper\" gives each stack"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny_paper({{"cross_patch_attention", 1}})),
                    Catch::Contains("cross_patch_attention: not an option of formulation"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny_paper(
                        {{"patch", {2, 2}}, {"dim", {32, 16, 8}}, {"depth", {1, 1, 1}}})),
                    Catch::Contains("has two stages"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny_paper(
                        {{"dim", {30, 18}}, {"dim_head", 6}, {"patch", 4}, {"seq_len", 32}})),
                    Catch::Contains("multiple of the patch"));
  CHECK_THROWS_WITH(megabyte().resolve(tiny_paper({{"dim", {32, 12}}})),
                    Catch::Contains("multiple of dim_head"));
  // An experiment names the option under its model.
  const json doc = {{"name", "x"},
                    {"models", {{{"name", "megabyte"}, {"config", tiny_paper({{"heads", 2}})}}}},
                    {"metrics", {"params"}}};
  CHECK_THROWS_WITH(megabench::expand(megabench::parse_experiment(doc)),
                    Catch::Contains("models[0].config.heads: formulation \"paper\""));
}
