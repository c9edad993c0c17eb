// Experiment files: validation (one test per kind of error), --set, sweep expansion, point keys.
//
// This file also registers "test_tiny", a test-only byte model (a learned bigram: embedding of the
// previous byte -> logits), so that the harness tests do not depend on which real models are in the
// build. Its options: seq_len, patch (must divide seq_len), dim, sleep_ms (slows logits/byte_nll,
// for the kill-and-resume test) and fail ("nan" makes the loss NaN, for the failed-point test).
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <set>
#include <thread>

#include "harness/api/registry.h"
#include "harness/config/expand.h"
#include "models/decoding.h"
#include "tests/support.h"

namespace {

using megabench::json;

struct TinyNetImpl : torch::nn::Module {
  explicit TinyNetImpl(int64_t dim)
      : emb(register_module("emb", torch::nn::Embedding(257, dim))),  // 256 bytes + a start token
        head(register_module("head", torch::nn::Linear(dim, 256))) {}
  torch::nn::Embedding emb;
  torch::nn::Linear head;
};
TORCH_MODULE(TinyNet);

class TinyModel : public megabench::ByteModel {
 public:
  explicit TinyModel(const json& c)
      : net_(c["dim"].get<int64_t>()),
        seq_len_(c["seq_len"].get<int64_t>()),
        patch_(c["patch"].get<int64_t>()),
        sleep_ms_(c["sleep_ms"].get<int64_t>()),
        nan_(c["fail"].get<std::string>() == "nan") {}
  torch::nn::Module& module() override { return *net_; }
  int64_t seq_len() const override { return seq_len_; }
  int64_t seq_multiple() const override { return patch_; }
  torch::Tensor logits(const torch::Tensor& bytes) override {
    nap();
    return net_->head(net_->emb(bytes));  // (B, T, 256): row t predicts byte t + 1
  }
  torch::Tensor byte_nll(const torch::Tensor& bytes) override {
    nap();
    const auto B = bytes.size(0), T = bytes.size(1);
    auto start = torch::full({B, 1}, 256, bytes.options());
    auto prev = torch::cat({start, bytes.slice(1, 0, T - 1)}, 1);  // (B, T)
    auto lg = net_->head(net_->emb(prev)).to(torch::kFloat);       // (B, T, 256)
    auto nll = torch::nn::functional::cross_entropy(
                   lg.reshape({B * T, 256}), bytes.reshape({B * T}),
                   torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
                   .view({B, T});
    return nan_ ? nll * std::numeric_limits<float>::quiet_NaN() : nll;
  }
  torch::Tensor generate(const torch::Tensor& prime, int64_t n,
                         const megabench::SamplingOptions& o) override {
    auto seq = prime;
    for (int64_t i = 0; i < n; ++i) {
      // The bigram needs only the last byte; without the cache, rerun the whole sequence.
      auto ctx = o.use_cache ? seq.slice(1, seq.size(1) - 1) : seq;
      auto next =
          megabench::sample_next(logits(ctx).select(1, -1), o.temperature, o.filter_thres);  // (B)
      seq = torch::cat({seq, next.view({-1, 1}).to(seq.dtype())}, 1);
    }
    return seq;  // prime + new bytes
  }
  megabench::ParamCount params() const override { return count(net_->emb->weight.size(1)); }
  static megabench::ParamCount count(int64_t dim) {
    megabench::ParamCount pc;
    pc.groups = {{"emb", 257 * dim}, {"head", dim * 256 + 256}};
    pc.total = pc.groups[0].second + pc.groups[1].second;
    pc.non_embedding = 0;
    return pc;
  }

 private:
  void nap() const {
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
  }
  TinyNet net_;
  int64_t seq_len_, patch_, sleep_ms_;
  bool nan_;
};

json tiny_resolve(const json& given) {
  json c = {{"seq_len", 64}, {"patch", 4}, {"dim", 16}, {"sleep_ms", 0}, {"fail", "none"}};
  for (const auto& [k, v] : given.items()) {
    if (!c.contains(k)) throw std::invalid_argument(k + ": unknown option of test_tiny");
    c[k] = v;
  }
  for (auto k : {"seq_len", "patch", "dim"}) {
    if (c[k].get<int64_t>() <= 0)
      throw std::invalid_argument(std::string(k) + ": expected a positive integer");
  }
  if (c["seq_len"].get<int64_t>() % c["patch"].get<int64_t>() != 0) {
    throw std::invalid_argument("patch: " + c["patch"].dump() + " does not divide seq_len " +
                                c["seq_len"].dump());
  }
  return c;
}

// Its typed options are the resolved JSON itself: any Options type works with the registry.
MEGABENCH_REGISTER_MODEL(
    test_tiny,
    megabench::TypedModelSpec<json>{
        .name = "test_tiny",
        .description = "test-only bigram byte model",
        .options = {{"seq_len", "int", 64, "bytes per sequence"},
                    {"patch", "int", 4, "must divide seq_len (stands in for MEGABYTE's patch)"},
                    {"dim", "int", 16, "embedding width"},
                    {"sleep_ms", "int", 0, "sleep in every forward (tests only)"},
                    {"fail", "string", "none", "\"nan\": NaN loss"}},
        .resolve = tiny_resolve,
        .parse = [](const json& c) { return c; },
        .build = [](const json& c) -> std::unique_ptr<megabench::ByteModel> {
          return std::make_unique<TinyModel>(c);
        },
        .flops =
            [](const json& c) {
              megabench::FlopBreakdown f;
              f.embed_logits = 2.0 * c["dim"].get<double>() * 256;
              return f;
            },
        .params = [](const json& c) { return TinyModel::count(c["dim"].get<int64_t>()); },
        .tiny_config = json{{"seq_len", 16}, {"patch", 4}, {"dim", 8}}});

json base_doc() {
  return json::parse(R"({
    "name": "t", "description": "test",
    "models": [{"name": "test_tiny", "config": {"dim": 8}}],
    "metrics": ["params", "flops"]
  })");
}

// The message of the ConfigError that `fn` throws ("" when none).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const megabench::ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string parse_error(const json& doc) {
  return error_of([&] { megabench::expand(megabench::parse_experiment(doc)); });
}

}  // namespace

TEST_CASE("a valid experiment parses with defaults filled", "[experiment]") {
  auto exp = megabench::parse_experiment(base_doc());
  CHECK(exp.name == "t");
  CHECK(exp.run.resolved["device"] == "cpu");
  CHECK(exp.run.resolved["dtype"] == "float32");
  CHECK(exp.run.resolved["repeat"] == 5);
  CHECK(exp.run.resolved["train"]["steps"] == 100);
  CHECK(exp.run.resolved["data"]["source"] == "random");
  auto points = megabench::expand(exp);
  REQUIRE(points.size() == 1);
  CHECK(points[0].model_config["dim"] == 8);
  CHECK(points[0].model_config["seq_len"] == 64);  // default filled by the spec's resolve
  CHECK(points[0].config()["run"]["metrics"] == json({"params", "flops"}));
}

TEST_CASE("unknown keys are errors naming their JSON path", "[experiment]") {
  auto doc = base_doc();
  doc["repeats"] = 3;
  CHECK(parse_error(doc).rfind("repeats: unknown key; expected one of:", 0) == 0);

  doc = base_doc();
  doc["models"][0]["config"]["width"] = 3;
  CHECK(parse_error(doc).rfind("models[0].config.width: unknown option of model 'test_tiny'", 0) ==
        0);

  doc = base_doc();
  doc["train"] = {{"stepz", 3}};
  CHECK(parse_error(doc).rfind("train.stepz: unknown key", 0) == 0);
}

TEST_CASE("wrong types are errors naming the path and what was expected", "[experiment]") {
  auto doc = base_doc();
  doc["models"][0]["config"]["patch"] = "x";
  CHECK(parse_error(doc) == "models[0].config.patch: expected an integer, got \"x\"");

  doc = base_doc();
  doc["repeat"] = 0;
  CHECK(parse_error(doc) == "repeat: expected an integer >= 1, got 0");

  doc = base_doc();
  doc["batch"] = "x";
  CHECK(parse_error(doc) == "batch: expected a positive integer, got \"x\"");
}

TEST_CASE("missing required keys are errors", "[experiment]") {
  auto doc = base_doc();
  doc.erase("metrics");
  CHECK(parse_error(doc).rfind("metrics: missing required key", 0) == 0);
  doc = base_doc();
  doc.erase("name");
  CHECK(parse_error(doc).rfind("name: missing required key", 0) == 0);
  doc = base_doc();
  doc["data"] = {{"source", "file"}};
  CHECK(parse_error(doc).rfind("data.path: missing required key", 0) == 0);
}

TEST_CASE("bad enum values list the allowed ones", "[experiment]") {
  auto doc = base_doc();
  doc["dtype"] = "float64";
  CHECK(parse_error(doc) == "dtype: expected one of float32, bfloat16, float16, got \"float64\"");
  doc = base_doc();
  doc["metrics"] = {"params", "speed"};
  CHECK(parse_error(doc).rfind("metrics[1]: expected one of params, flops", 0) == 0);
  doc = base_doc();
  doc["models"][0]["name"] = "nope";
  CHECK(parse_error(doc).rfind("models[0].name: model 'nope' is not registered; registered models:",
                               0) == 0);
}

TEST_CASE("impossible combinations are errors before anything runs", "[experiment]") {
  // A length the patch does not divide: found by the model's resolve, for that point only.
  auto doc = base_doc();
  doc["sweep"] = {{"zip", {{"seq_len", {64, 100}}, {"patch", {4, 8}}}}};
  auto msg = parse_error(doc);
  CHECK(msg.rfind("sweep: impossible combination in 1 sweep point(s):", 0) == 0);
  CHECK(msg.find("point 'test_tiny/patch=8/seq_len=100'") != std::string::npos);
  CHECK(msg.find("sweep.zip.seq_len[1]") != std::string::npos);
  CHECK(msg.find("patch: 8 does not divide seq_len 100") != std::string::npos);

  doc = base_doc();
  doc["sweep"] = {{"zip", {{"seq_len", {64, 128}}, {"patch", {4}}}}};
  CHECK(parse_error(doc).find("impossible combination: zipped axes need equal lengths") !=
        std::string::npos);

  doc = base_doc();
  doc["train"] = {{"steps", 10}, {"flop_budget", 1e9}};
  CHECK(parse_error(doc) ==
        "train: impossible combination: give either steps or flop_budget, not both");

  doc = base_doc();
  doc["metrics"] = {"efficiency"};
  CHECK(parse_error(doc).find("efficiency needs forward or train_step") != std::string::npos);

  doc = base_doc();
  doc["sweep"] = {{"grid", {{"heads", {1, 2}}}}};
  CHECK(parse_error(doc).rfind("sweep.grid.heads: axis 'heads' is not an option of any model", 0) ==
        0);

  doc = base_doc();
  doc["sweep"] = {{"grid", {{"batch", {1, "two"}}}}};
  CHECK(parse_error(doc).rfind(
            "sweep.grid.batch[1]: as run setting: batch: expected a positive integer", 0) == 0);
}

TEST_CASE("Overrides given with --set reach any field - bad paths are errors", "[experiment]") {
  auto doc = base_doc();
  megabench::apply_set(doc, "models[0].config.dim=32");
  megabench::apply_set(doc, "train.steps=7");
  megabench::apply_set(doc, "description=hello world");  // not JSON: taken as a string
  megabench::apply_set(doc, "models.0.config.patch=8");
  CHECK(doc["models"][0]["config"]["dim"] == 32);
  CHECK(doc["models"][0]["config"]["patch"] == 8);
  CHECK(doc["train"]["steps"] == 7);
  CHECK(doc["description"] == "hello world");
  auto exp = megabench::parse_experiment(doc);
  CHECK(exp.run.resolved["train"]["steps"] == 7);

  CHECK(error_of([&] {
          megabench::apply_set(doc, "models[3].config.dim=1");
        }).find("'models' has 1 entries; index 3 is out of range") != std::string::npos);
  CHECK(error_of([&] {
          megabench::apply_set(doc, "name.x=1");
        }).find("'name' is \"t\", not an object or list") != std::string::npos);
  CHECK(error_of([&] { megabench::apply_set(doc, "train.steps"); }).find("expected PATH=VALUE") !=
        std::string::npos);
  CHECK(error_of([&] { megabench::apply_set(doc, "models[x].dim=1"); }).find("bad path") !=
        std::string::npos);
  // A new key through --set is caught by validation, with its path.
  megabench::apply_set(doc, "train.stepz=3");
  CHECK(parse_error(doc).rfind("train.stepz: unknown key", 0) == 0);
}

TEST_CASE("sweep expansion: grid x zip counts - values and names", "[experiment]") {
  auto doc = base_doc();
  doc["sweep"] = json::parse(R"({
    "grid": {"seq_len": [64, 128, 256], "batch": [1, 2]},
    "zip": [{"patch": [4, 8], "dim": [8, 16]}]
  })");
  auto points = megabench::expand(megabench::parse_experiment(doc));
  REQUIRE(points.size() == 3 * 2 * 2);
  std::set<std::string> keys, names;
  for (const auto& p : points) {
    keys.insert(p.key);
    names.insert(p.name);
    CHECK(p.key.size() == 16);
    // zipped values stay paired
    CHECK(p.model_config["dim"].get<int>() == (p.model_config["patch"].get<int>() == 4 ? 8 : 16));
    CHECK(p.run.resolved["batch"] == p.axes["batch"]);
    CHECK(p.model_config["seq_len"] == p.axes["seq_len"]);
  }
  CHECK(keys.size() == points.size());
  CHECK(names.size() == points.size());
  // JSON objects are unordered: grid axes nest in name order (batch outermost, then seq_len), then
  // the zip group.
  CHECK(points[0].model_config["seq_len"] == 64);
  CHECK(points[0].run.resolved["batch"] == 1);
  CHECK(points[1].model_config["patch"] == 8);
  CHECK(points[2].model_config["seq_len"] == 128);
  CHECK(points[6].run.resolved["batch"] == 2);
  CHECK(points[11].name == "test_tiny/batch=2/seq_len=256/dim=16/patch=8");
}

TEST_CASE("axes can target one model - points that do not differ appear once", "[experiment]") {
  auto doc = base_doc();
  doc["models"] =
      json::parse(R"([{"name": "test_tiny", "label": "a"}, {"name": "test_tiny", "label": "b"}])");
  doc["sweep"] = {{"grid", {{"a.dim", {8, 16}}, {"train.lr", {0.1, 0.01}}}}};
  auto points = megabench::expand(megabench::parse_experiment(doc));
  // a: 2 dims x 2 lr; b: the dim axis does not apply -> 2 lr
  REQUIRE(points.size() == 6);
  int a = 0, b = 0;
  for (const auto& p : points) {
    (p.name.rfind("a/", 0) == 0 ? a : b)++;
    if (p.name.rfind("b/", 0) == 0) CHECK(!p.axes.contains("a.dim"));
  }
  CHECK(a == 4);
  CHECK(b == 2);
  CHECK(points[0].run.resolved["train"]["lr"] == 0.1);
}

TEST_CASE("point keys depend on model and config only", "[experiment]") {
  json c = {{"dim", 8}, {"run", {{"batch", 1}}}};
  auto k = megabench::point_key("test_tiny", c);
  CHECK(k.size() == 16);
  CHECK(k.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(megabench::point_key("test_tiny", json::parse(R"({"run": {"batch": 1}, "dim": 8})")) == k);
  CHECK(megabench::point_key("test_tiny", {{"dim", 9}, {"run", {{"batch", 1}}}}) != k);
  CHECK(megabench::point_key("other", c) != k);
}
