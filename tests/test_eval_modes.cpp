// Held-out evaluation modes (harness/measure/eval_windows.h; Yu et al. 2023, Table 11): which
// windows run, which byte each scores, the cost multipliers, the loss by position on a toy model
// whose losses are known, per-document scoring, and the bpb metric's record fields.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>
#include <sstream>

#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/measure/eval_windows.h"
#include "tests/support.h"

using megabench::json;
using namespace megabench::eval;
using namespace megabench::test;

namespace {

// A toy model whose loss at window position p is (p + 1) / 10 nats, whatever the bytes; it keeps
// every window it is given. `prefix` bytes at the start of a window predict nothing (Perceiver AR).
class PositionModel : public megabench::ByteModel {
 public:
  PositionModel(int64_t T, int64_t prefix = 0, int64_t patch = 0)
      : T_(T), prefix_(prefix), patch_(patch) {}
  torch::nn::Module& module() override { return module_; }
  int64_t seq_len() const override { return T_; }
  int64_t patch_size() const override { return patch_; }
  torch::Tensor byte_nll(const torch::Tensor& bytes) override {
    for (int64_t b = 0; b < bytes.size(0); ++b) windows.push_back(bytes[b].clone());
    auto pos = torch::arange(prefix_, bytes.size(1), torch::kDouble);
    return ((pos + 1) / 10).unsqueeze(0).expand({bytes.size(0), -1}).contiguous();
  }
  torch::Tensor logits(const torch::Tensor&) override { return {}; }
  torch::Tensor generate(const torch::Tensor&, int64_t,
                         const megabench::SamplingOptions&) override {
    return {};
  }
  megabench::ParamCount params() const override { return {}; }
  std::vector<torch::Tensor> windows;

 private:
  int64_t T_, prefix_, patch_;
  torch::nn::Module module_;
};

std::set<int64_t> scored_bytes(const Plan& p) {
  std::set<int64_t> out;
  for (size_t t = 0; t < p.owner.size(); ++t)
    if (p.owner[t] >= 0) out.insert(static_cast<int64_t>(t));
  return out;
}

std::set<int64_t> range(int64_t a, int64_t b) {
  std::set<int64_t> out;
  for (int64_t t = a; t < b; ++t) out.insert(t);
  return out;
}

const std::vector<Mode> kModes = {Mode::kBasic, Mode::kSliding, Mode::kStrided,
                                  Mode::kSlidingStrided};

}  // namespace

TEST_CASE("eval modes: every byte basic scores is scored exactly once in every mode", "[eval]") {
  // T = 16, P = 4; 8 whole windows plus a tail of 5 bytes that no basic window reaches.
  const Geometry g{16, 16, 4};
  const int64_t n = 8 * 16 + 5;
  for (auto mode : kModes) {
    INFO(mode_name(mode));
    const auto plan = plan_segment(mode, g, n, /*to_end=*/false);
    CHECK(scored_bytes(plan) == range(0, 128));
    std::vector<int> times(n, 0);
    for (const auto& w : plan.windows) {
      CHECK(w.start + w.len <= n);
      for (int64_t t = w.scored_from; t < w.start + w.len; ++t)
        if (plan.scored_by[t] == &w - plan.windows.data()) times[t] += 1;
    }
    for (int64_t t = 0; t < 128; ++t) CHECK(times[t] == 1);
  }
  // A window that predicts only its last 10 bytes (Perceiver AR): basic scores [6, 6 + 10 W).
  const Geometry tail{16, 10, 0};
  for (auto mode : {Mode::kBasic, Mode::kSliding}) {
    const auto plan = plan_segment(mode, tail, 100, false);
    CHECK(scored_bytes(plan) == range(6, 6 + 10 * 9));
  }
}

TEST_CASE("eval modes: strided scores each byte in the pass where it sits later in its patch",
          "[eval]") {
  const Geometry g{16, 16, 4};
  for (auto mode : {Mode::kStrided, Mode::kSlidingStrided}) {
    INFO(mode_name(mode));
    const auto plan = plan_segment(mode, g, 128, false);
    // The second pass's windows start at 2, 18, ... (strided: up to [98, 114)) or 2, 10, ...
    // (sliding+strided: up to [106, 122)); inside that span every byte is scored where it sits in
    // the second half of its patch, outside it by the first pass.
    const int64_t second_end = mode == Mode::kStrided ? 114 : 122;
    for (int64_t t = 0; t < 128; ++t) {
      const auto& w = plan.windows[plan.scored_by[t]];
      if (t >= 2 && t < second_end) {
        CHECK((t - w.start) % 4 >= 2);
      } else {
        CHECK(plan.owner[t] == 0);
      }
    }
    CHECK(plan.owner[1] == 0);
    CHECK(plan.owner[2] == 0);  // position 2 of the first pass, 0 of the second
    CHECK(plan.owner[4] == 1);  // position 0 of the first pass, 2 of the second
  }
}

TEST_CASE("eval modes: cost multipliers are 1x, 2x, 2x and 4x", "[eval]") {
  const int64_t T = 16, W = 8;
  auto stream = torch::zeros({W * T}, torch::kLong);
  // W windows' worth: the second passes lose their last window or half-window to the stream's end,
  // so the multiplier is (k W - (k - 1)) / W for nominal k.
  for (auto mode : kModes) {
    INFO(mode_name(mode));
    PositionModel model(T, 0, 4);
    auto r = evaluate(model, stream, {0}, mode, {T, T, 4}, 3, torch::kCPU, false);
    const int k = nominal_cost(mode);
    CHECK(r.scored == W * T);
    CHECK(r.cost() == Approx(static_cast<double>(k * W - (k - 1)) / W).epsilon(1e-12));
    CHECK(r.windows == k * W - (k - 1));
  }
  PositionModel model(T, 0, 4);
  auto long_stream = torch::zeros({1000 * T}, torch::kLong);
  for (auto mode : kModes) {
    auto r = evaluate(model, long_stream, {0}, mode, {T, T, 4}, 64, torch::kCPU, false);
    CHECK(r.cost() == Approx(nominal_cost(mode)).epsilon(0.005));
  }
}

TEST_CASE("eval modes: sliding with the window equal to the sequence equals basic", "[eval]") {
  auto& spec = megabench::Registry::instance().get("megabyte");
  auto cfg = spec.resolve(spec.tiny_config);  // seq_len 32, patch 4
  torch::manual_seed(3);
  auto model = spec.build(*spec.parse(cfg));
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto stream = torch::randint(0, 256, {32}, torch::kLong);
  const Geometry g{32, 32, model->patch_size()};
  auto basic = evaluate(*model, stream, {0}, Mode::kBasic, g, 2, torch::kCPU, false);
  auto sliding = evaluate(*model, stream, {0}, Mode::kSliding, g, 2, torch::kCPU, false);
  CHECK(basic.scored == 32);
  CHECK(sliding.scored == 32);
  CHECK(sliding.bpb() == basic.bpb());
  // On a longer stream the second-half bytes see more context, so the two differ.
  auto longer = torch::randint(0, 256, {96}, torch::kLong);
  auto b2 = evaluate(*model, longer, {0}, Mode::kBasic, g, 2, torch::kCPU, false);
  auto s2 = evaluate(*model, longer, {0}, Mode::kSliding, g, 2, torch::kCPU, false);
  CHECK(b2.scored == s2.scored);
  CHECK(b2.bpb() != s2.bpb());
}

TEST_CASE("eval modes: strided refuses models without patches; bad geometries are named",
          "[eval]") {
  CHECK_THROWS_WITH(plan_segment(Mode::kStrided, {16, 16, 0}, 64, false),
                    Catch::Contains("applies to models with patches"));
  CHECK_THROWS_WITH(plan_segment(Mode::kSlidingStrided, {16, 16, 0}, 64, false),
                    Catch::Contains("applies to models with patches"));
  CHECK_THROWS_WITH(plan_segment(Mode::kStrided, {15, 15, 3}, 64, false),
                    Catch::Contains("even patch size"));
  CHECK_THROWS_WITH(plan_segment(Mode::kSliding, {15, 15, 0}, 64, false),
                    Catch::Contains("even number of predicted bytes"));
  CHECK_THROWS_WITH(parse_mode("stride"), Catch::Contains("eval.mode: expected one of basic"));
  CHECK(parse_mode("sliding+strided") == Mode::kSlidingStrided);
}

TEST_CASE("eval modes: loss by position on a toy model with known losses", "[eval]") {
  // T = 8, P = 4, two basic windows: each position p of 0..7 appears twice with (p + 1) / 10 nats.
  PositionModel model(8, 0, 4);
  PositionLoss pos(8, 4, /*buckets=*/3);
  auto r = evaluate(model, torch::zeros({16}, torch::kLong), {0}, Mode::kBasic, {8, 8, 4}, 4,
                    torch::kCPU, false, &pos);
  CHECK(r.scored == 16);
  const double bits = 1 / std::log(2.0);
  // 8^(0/3), 8^(1/3), 8^(2/3) = 1, 2, 4: buckets start at 0, 1, 2, 4.
  CHECK((pos.bucket_starts() == std::vector<int64_t>{0, 1, 2, 4}));
  const auto ctx = pos.by_bucket();
  REQUIRE(ctx.size() == 4);
  CHECK(*ctx[0] == Approx(0.1 * bits));
  CHECK(*ctx[1] == Approx(0.2 * bits));
  CHECK(*ctx[2] == Approx(0.35 * bits));  // positions 2, 3
  CHECK(*ctx[3] == Approx(0.65 * bits));  // positions 4..7
  const auto patch = pos.by_patch_position();
  REQUIRE(patch.size() == 4);
  for (int q = 0; q < 4; ++q) CHECK(*patch[q] == Approx((q + 3) / 10.0 * bits));  // q and q + 4
  CHECK(r.bpb() == Approx(0.45 * bits));
  // A model without patches has no patch positions; an empty bucket is nullopt.
  PositionLoss none(64, 0, 64);
  none.add(0, 1.0);
  CHECK(none.by_patch_position().empty());
  CHECK(none.by_bucket()[0].has_value());
  CHECK_FALSE(none.by_bucket()[1].has_value());
}

TEST_CASE("eval modes: documents are scored from their first byte, no window crosses one",
          "[eval]") {
  // Three documents of 20, 5 and 11 bytes; each byte holds its document's number.
  auto stream = torch::cat({torch::full({20}, 1, torch::kLong), torch::full({5}, 2, torch::kLong),
                            torch::full({11}, 3, torch::kLong)});
  for (auto mode : kModes) {
    INFO(mode_name(mode));
    PositionModel model(8, 0, 4);
    PositionLoss pos(8, 4, 8);
    auto r = evaluate(model, stream, {0, 20, 25}, mode, {8, 8, 4}, 4, torch::kCPU, true, &pos);
    CHECK(r.scored == 36);
    for (const auto& w : model.windows) {
      CHECK(w.min().item<int64_t>() == w.max().item<int64_t>());  // one document per window
      CHECK(w.size(0) <= 8);
    }
    // The first byte of each document sits at window position 0.
    CHECK(pos.by_bucket()[0].has_value());
  }
  // Basic: windows [0,8) [8,16) [12,20) | [20,25) | [25,33) [28,36): first bytes at 0, 20, 25.
  PositionModel model(8, 0, 4);
  auto r = evaluate(model, stream, {0, 20, 25}, Mode::kBasic, {8, 8, 4}, 4, torch::kCPU, true);
  CHECK(r.windows == 6);
  const double want = (36 + 36 + 26 + 15 + 36 + 21) / 10.0;  // sums of (p + 1) over scored p
  CHECK(r.nats == Approx(want));
  // A prefix that predicts nothing: a document shorter than prefix + 1 has no window.
  PositionModel prefixed(8, 3);
  auto rp = evaluate(prefixed, stream, {0, 20, 25}, Mode::kBasic, {8, 5, 0}, 4, torch::kCPU, true);
  CHECK(rp.scored == (20 - 3) + (5 - 3) + (11 - 3));
}

TEST_CASE("eval modes: bpb records each mode, its cost and the loss by position", "[eval]") {
  const auto dir = fresh_dir("eval_modes");
  json doc = {{"name", "eval_modes"},
              {"models",
               {{{"name", "megabyte"},
                 {"config",
                  {{"dim", {16, 8}},
                   {"depth", {1, 1}},
                   {"seq_len", 32},
                   {"patch", 4},
                   {"dim_head", 8},
                   {"heads", 2}}}}}},
              {"metrics", {"bpb"}},
              {"threads", 1},
              {"data", {{"source", "random"}, {"bytes", 4096}}},
              {"train", {{"steps", 2}, {"batch", 2}, {"eval_bytes", 256}}},
              {"eval",
               {{"mode", {"basic", "sliding", "strided", "sliding+strided"}},
                {"loss_by_position", true},
                {"buckets", 8}}}};
  megabench::RunOptions o;
  o.experiment_path = write_file(dir + "/exp.json", doc.dump());
  o.outdir = dir + "/out";
  o.progress = 0;
  std::ostringstream log;
  const auto s = megabench::run_experiment(o, log);
  INFO(log.str());
  REQUIRE(s.ok == 1);
  const auto points = points_of(o.outdir + "/results.jsonl");
  REQUIRE(points.size() == 1);
  const json& m = points[0]["metrics"];
  CHECK(m["bpb"] == m["bpb_basic"]);
  CHECK(m["eval_cost_basic"] == 1.0);
  for (const char* k : {"sliding", "strided", "sliding_strided"}) {
    CHECK(m.contains(std::string("bpb_") + k));
    CHECK(m[std::string("eval_cost_") + k].get<double>() > 1.5);
  }
  const json& lp = points[0]["loss_by_position"];
  CHECK(lp["mode"] == "basic");
  CHECK(lp["patch"].size() == 4);
  CHECK(lp["context_start"][0] == 0);
  CHECK(lp["context"].size() == lp["context_start"].size());
  CHECK(points[0]["config"]["run"]["eval"]["loss_by_position"] == true);

  // Per-document scoring needs a source with document boundaries.
  doc["eval"] = {{"per_document", true}};
  doc["name"] = "eval_docs";
  o.experiment_path = write_file(dir + "/docs.json", doc.dump());
  o.outdir = dir + "/docs";
  const auto s2 = megabench::run_experiment(o, log);
  CHECK(s2.failed == 1);
  CHECK(log.str().find("document boundaries") != std::string::npos);
}
