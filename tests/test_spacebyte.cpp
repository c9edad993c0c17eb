// SpaceByte: the patching rule on hand-written strings, causality, cached == full decoding, the
// analytical FLOPs against a hand count, the profiler's measured count and the paper's Appendix A
// formula at a 1e19-FLOP config, and a checkpoint round trip. The reference code has no package
// and decodes without a cache, so every expectation here comes from the paper's definitions.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "harness/api/registry.h"
#include "harness/io/checkpoint.h"
#include "harness/measure/profiler.h"
#include "models/spacebyte.h"
#include "tests/support.h"

using megabench::json;
using megabench::Patching;
using megabench::SpaceByte;
using megabench::SpaceByteOptions;
using megabench::test::rel_err;

namespace {

torch::Tensor bytes_of(const std::string& s) {
  std::vector<int64_t> v;
  for (unsigned char c : s) v.push_back(c);
  return torch::tensor(v, torch::kLong).unsqueeze(0);  // (1, L)
}

// The boundary mask of a string drawn over its bytes: '^' where a byte's position runs the global
// blocks, ' ' elsewhere (the start token, always a boundary, is left out).
std::string marks(const std::string& s, Patching p = Patching::kSpacelike, int64_t patch = 6) {
  auto m = megabench::boundary_mask(bytes_of(s), p, patch);  // (1, L + 1)
  REQUIRE(m[0][0].item<bool>());
  std::string out;
  for (int64_t t = 1; t < m.size(1); ++t) out += m[0][t].item<bool>() ? '^' : ' ';
  return out;
}

SpaceByte tiny_model(Patching patching = Patching::kSpacelike, int64_t global_len = 0,
                     int64_t window = 3) {
  torch::manual_seed(1);
  auto o = SpaceByteOptions(/*dim=*/16, /*dim_local=*/8, /*depth=*/2, /*depth_local=*/3,
                            /*seq_len=*/40)
               .dim_head(4)
               .patch(4)
               .global_len(global_len)
               .window(window)
               .patching(patching);
  SpaceByte m(o);
  m->to(torch::kFloat64);
  m->eval();
  return m;
}

const std::string kText = "Hi, it's me: x=f(a,b); caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC ok. The end";

}  // namespace

TEST_CASE("spacebyte: spacelike bytes are all but letters, digits and continuation bytes",
          "[spacebyte]") {
  auto all = torch::arange(256, torch::kLong);
  auto s = megabench::spacelike(all);
  int64_t count = 0;
  for (int64_t b = 0; b < 256; ++b) {
    INFO("byte " << b);
    CHECK(s[b].item<bool>() == megabench::is_spacelike(b));
    count += s[b].item<bool>();
  }
  CHECK(count == 256 - 10 - 26 - 26 - 64);  // digits, upper, lower, 0x80-0xBF
  for (int b : std::initializer_list<int>{' ', '\n', '\t', ',', '.', '(', '_', '/', '@', '[', '`',
                                          '{', '~', 0, 0x7F, 0xC3, 0xE6, 0xFF})
    CHECK(megabench::is_spacelike(b));
  for (int b : std::initializer_list<int>{'0', '9', 'A', 'Z', 'a', 'z', 0x80, 0xA9, 0xBF})
    CHECK_FALSE(megabench::is_spacelike(b));
}

TEST_CASE("spacebyte: boundaries of hand-written ASCII, UTF-8 and code", "[spacebyte]") {
  // ASCII: after ',' and '!', not after the space that follows them.
  CHECK(marks("Hello, world! ab") == "     ^      ^   ");
  // A leading space follows the start token, which counts as spacelike.
  CHECK(marks(" a b") == "  ^ ");
  CHECK(marks("abc 123 x") == "   ^   ^ ");
  // UTF-8: the leading byte C3 of 'é' is spacelike (after 'f'), its continuation A9 is not, so the
  // space after it is a boundary again.
  CHECK(marks("caf\xC3\xA9 au") == "   ^ ^  ");
  // Each 3-byte CJK character starts with a spacelike leading byte; the first follows the start.
  CHECK(marks("\xE6\x97\xA5\xE6\x9C\xAC") == "   ^  ");
  // Code: every operator after a name; ';' after ')' and the newline after ';' are not.
  CHECK(marks("x=f(a,b);\n") == " ^ ^ ^ ^  ");
  CHECK(marks("if (n >= 10) {") == "  ^  ^     ^  ");
  // SpaceByte-P: every P-th position counting the start token as 0.
  CHECK(marks("abcdefghij", Patching::kPeriodic, 4) == "   ^   ^  ");
}

TEST_CASE("spacebyte: no position sees a later byte", "[spacebyte]") {
  for (auto patching : {Patching::kSpacelike, Patching::kPeriodic}) {
    for (int64_t cap : {0, 3}) {  // 3: the cap is reached inside the text
      INFO("periodic " << (patching == Patching::kPeriodic) << " cap " << cap);
      auto model = tiny_model(patching, cap);
      torch::NoGradGuard no_grad;
      auto x = bytes_of(kText.substr(0, 40));
      auto ref = model->next_byte_logits(x);  // (1, L, V): row t sees bytes < t
      torch::manual_seed(7);
      for (int64_t cut : {1, 5, 12, 23, 39}) {
        // Rewrite every byte from `cut` on, to letters and spaces: boundaries after the cut move.
        auto y = x.clone();
        auto tail = torch::randint(0, 2, {1, 40 - cut}, torch::kLong);
        y.narrow(1, cut, 40 - cut)
            .copy_(torch::where(tail.eq(0), torch::full_like(tail, 32), tail + 97));
        auto got = model->next_byte_logits(y);
        INFO("cut " << cut);
        CHECK(rel_err(got.narrow(1, 0, cut + 1), ref.narrow(1, 0, cut + 1)) < 1e-12);
        if (cut < 39)  // and the rows after the cut do see the rewrite
          CHECK(rel_err(got.narrow(1, cut + 1, 39 - cut), ref.narrow(1, cut + 1, 39 - cut)) > 1e-6);
      }
    }
  }
}

TEST_CASE(
    "spacebyte: cached decoding equals the full forward, the global cache grows at "
    "boundaries only",
    "[spacebyte]") {
  for (auto patching : {Patching::kSpacelike, Patching::kPeriodic}) {
    for (int64_t cap : {0, 4}) {
      INFO("periodic " << (patching == Patching::kPeriodic) << " cap " << cap);
      auto model = tiny_model(patching, cap);
      torch::NoGradGuard no_grad;
      // Two rows whose boundaries fall at different bytes.
      auto a = bytes_of(kText.substr(0, 30)), b = bytes_of("aaaa bbbb, cc; dd\n  e.f.g.h.i.jk");
      auto x = torch::cat({a, b.narrow(1, 0, 30)}, 0);  // (2, 30)
      auto full = model->next_byte_logits(x);           // (2, 30, V)
      auto st = model->begin(2);
      CHECK(rel_err(st.empty_logits, full.select(1, 0)) < 1e-12);
      for (int64_t t = 0; t + 1 < 30; ++t) {
        auto logits = model->append(st, x.select(1, t));  // (2, V): byte t + 1
        INFO("byte " << t + 1);
        REQUIRE(rel_err(logits, full.select(1, t + 1)) < 1e-12);
      }
      // The global KV cache holds exactly the boundaries seen so far (capped), in each row.
      auto mask = megabench::boundary_mask(x.narrow(1, 0, 29), patching, 4);  // (2, 30)
      for (int64_t r = 0; r < 2; ++r) {
        const int64_t boundaries = mask[r].sum().item<int64_t>();
        const int64_t expected = std::min(boundaries, model->options.global_cap());
        CHECK(st.rows[r].global_count == expected);
        CHECK(st.rows[r].global.pos == expected);
        CHECK(st.rows[r].global.layers.at(0).size() == expected);
        CHECK(st.rows[r].initial.layers.at(0).size() == 3);  // the local window
      }
      // Sampling: the same bytes with and without the cache.
      auto cached = model->generate(x.narrow(1, 0, 6), 12, 0.0, 0.9, true);
      auto rerun = model->generate(x.narrow(1, 0, 6), 12, 0.0, 0.9, false);
      CHECK(torch::equal(cached, rerun));
    }
  }
}

TEST_CASE("spacebyte: analytical FLOPs against a hand count and the profiler", "[spacebyte]") {
  const auto& spec = megabench::Registry::instance().get("spacebyte");
  // dim 8, dim_local 4, 1 global + 2 local layers, T = 11 bytes + the start token = 12 positions,
  // P = 4 -> T_G = ceil(12 / 4) = 3, window 2.
  json config = {{"dim", 8},      {"dim_local", 4}, {"depth", 1},  {"depth_local", 2},
                 {"seq_len", 11}, {"patch", 4},     {"window", 2}, {"dim_head", 2}};
  auto f = spec.flops(*spec.parse(spec.resolve(config)));
  // Local layer per position: projections 4*4*4 + feedforward 2*4*16 MACs = 192 -> 384 FLOPs;
  // attention QK^T + AV over 2 keys: 2 * (2 * 2 * 4) = 32. Two layers at 12 positions.
  // Global layer per global position: 4*8*8 + 2*8*32 = 768 MACs -> 1536; attention over 3 keys:
  // 2 * (2 * 3 * 8) = 96. One layer at 3 positions. Logits: 2 * 4 * 256 = 2048 at 12 positions.
  CHECK(f.dense == Approx((12.0 * 2 * 384 + 3.0 * 1536) / 11));
  CHECK(f.attention == Approx((12.0 * 2 * 32 + 3.0 * 96) / 11));
  CHECK(f.embed_logits == Approx(12.0 * 2048 / 11));
  CHECK(f.total() == Approx(39456.0 / 11));

  // The profiler's count of the matrix products of one forward pass, with full local attention
  // (the explicit path computes every score, so the count convention is what it does).
  config["window"] = 0;
  const auto options = spec.parse(spec.resolve(config));
  const auto full = spec.flops(*options);
  CHECK(full.attention == Approx((12.0 * 2 * (2 * 2 * 12 * 4) + 3.0 * 96) / 11));
  auto model = spec.build(*options);
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {2, 11}, torch::kLong);
  megabench::Profiler prof(torch::kCPU);
  prof.start();
  model->logits(x);
  auto r = prof.stop();
  CHECK(r.measured_matmul_flops / (2.0 * 11) == Approx(full.total()).epsilon(1e-9));
}

TEST_CASE("spacebyte: FLOPs per byte at a paper 1e19-FLOP config match Appendix A within 2%",
          "[spacebyte]") {
  // PG-19 / arXiv grid point of the paper's 1e19-FLOP runs (reference reproduce/jobs.py):
  // D = 1024, D_local = 768, L_global = L_local = 16, T_G = D = 1024, T = 6 T_G = 6144,
  // W_local = D_local. Appendix A.1, e_ff = 4, V = 256:
  //   m_G = L_G (4 D^2 + 2 e_ff D^2),  m_L = L_L (4 D_l^2 + 2 e_ff D_l^2) + D_l V,
  //   FLOPs/byte = 2 m_G T_G/T + 2 L_G (2 T_G D) T_G/T + 2 m_L + 2 L_L (2 W D_l).
  const double D = 1024, d = 768, L = 16, TG = 1024, T = 6144, W = 768, V = 256, e = 4;
  const double m_g = L * (4 * D * D + 2 * e * D * D), m_l = L * (4 * d * d + 2 * e * d * d) + d * V;
  const double paper =
      2 * m_g * TG / T + 2 * L * (2 * TG * D) * TG / T + 2 * m_l + 2 * L * (2 * W * d);
  const auto& spec = megabench::Registry::instance().get("spacebyte");
  json config = {{"dim", 1024},       {"dim_local", 768}, {"depth", 16},
                 {"depth_local", 16}, {"seq_len", 6144},  {"global_len", 1024}};
  const double ours = spec.flops(*spec.parse(spec.resolve(config))).total();
  CHECK(paper == Approx(342.8e6).epsilon(0.001));
  CHECK(ours == Approx(paper).epsilon(0.02));
  // The default cap is the paper's expected patch length: T_G = ceil((T + 1) / 6) = 1025.
  config.erase("global_len");
  CHECK(spec.flops(*spec.parse(spec.resolve(config))).total() == Approx(paper).epsilon(0.02));
}

TEST_CASE("spacebyte: options are checked and named", "[spacebyte]") {
  const auto& spec = megabench::Registry::instance().get("spacebyte");
  CHECK_THROWS_WITH(spec.resolve({{"dim", 32}, {"dim_local", 64}}),
                    Catch::Contains("spacebyte.dim_local"));
  CHECK_THROWS_WITH(spec.resolve({{"patching", "words"}}), Catch::Contains("spacebyte.patching"));
  CHECK_THROWS_WITH(spec.resolve({{"dim_head", 48}}), Catch::Contains("spacebyte.dim_head"));
  CHECK_THROWS_WITH(spec.resolve({{"depth_initial", 9}}),
                    Catch::Contains("spacebyte.depth_initial"));
  auto model = tiny_model();
  CHECK_THROWS_WITH(model->forward(torch::zeros({1, 41}, torch::kLong)),
                    Catch::Contains("exceeds seq_len"));
}

TEST_CASE("spacebyte: a checkpoint round trip restores the logits", "[spacebyte]") {
  auto source = tiny_model();
  const std::string path = megabench::test::fresh_dir("spacebyte") + "/model.safetensors";
  megabench::checkpoint::save(path, *source, {{"model", "spacebyte"}});
  torch::manual_seed(99);
  SpaceByte target(source->options);
  target->to(torch::kFloat64);
  target->eval();
  auto x = bytes_of(kText.substr(0, 20));
  torch::NoGradGuard no_grad;
  REQUIRE(rel_err(target->forward(x), source->forward(x)) > 1e-3);
  megabench::checkpoint::load_into(*target, megabench::safetensors::load(path));
  CHECK(rel_err(target->forward(x), source->forward(x)) == 0);
}
