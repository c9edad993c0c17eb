// The metric table (harness/api/metrics.h): the experiment parser's known metrics come from it,
// a metric registered in one file -- here, the test-only "test_seq_len" -- is accepted and run
// with nothing else changed, and every registered metric runs on a tiny point and writes its
// values.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <sstream>

#include "harness/api/metrics.h"
#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/config/expand.h"
#include "harness/measure/context.h"
#include "harness/measure/timing.h"
#include "kernels/gemv.h"
#include "tests/support.h"

using megabench::json;
using namespace megabench::test;

namespace {

// A metric added by one registration, as a new file under harness/measure/metrics/ would add it.
MEGABENCH_REGISTER_METRIC(test_seq_len, megabench::MetricSpec{
                                            .name = "test_seq_len",
                                            .unit = "bytes",
                                            .help = "test only: the built model's context length",
                                            .order = 45,
                                            .needs = megabench::kNeedsModel,
                                            .run = [](megabench::MetricContext& ctx) {
                                              ctx.metrics()["test_seq_len_bytes"] =
                                                  ctx.model().seq_len();
                                            }});

// One value each metric must write on a point that succeeds. A metric registered without an
// entry here fails the test below, so every metric in the table is run by it.
const std::map<std::string, std::string> kWrites = {{"params", "params_total"},
                                                    {"flops", "flops_forward_per_byte"},
                                                    {"memory", "peak_memory_train_bytes"},
                                                    {"forward", "forward_ms"},
                                                    {"train_step", "train_step_ms"},
                                                    {"efficiency", "flops_utilization"},
                                                    {"generate", "generate_cache_speedup"},
                                                    {"bpb", "bpb"},
                                                    {"profile", "profile_forward_total_ms"},
                                                    {"test_seq_len", "test_seq_len_bytes"}};

}  // namespace

TEST_CASE("metric table: the known metrics are the table's listable ones, in run order",
          "[metrics]") {
  const auto names = megabench::MetricRegistry::instance().listable_names();
  CHECK(megabench::known_metrics() == names);
  for (const char* m : {"params", "flops", "memory", "forward", "train_step", "efficiency",
                        "generate", "bpb", "test_seq_len"}) {
    CHECK(std::find(names.begin(), names.end(), m) != names.end());
  }
  CHECK(std::find(names.begin(), names.end(), "profile") ==
        names.end());  // a run setting turns it on
  int last = -1000;
  for (const auto* m : megabench::MetricRegistry::instance().all()) {
    CHECK(m->order >= last);
    last = m->order;
    CHECK_FALSE(m->unit.empty());
    CHECK_FALSE(m->help.empty());
  }
  CHECK_THROWS_WITH(megabench::MetricRegistry::instance().get("nope"),
                    Catch::Contains("known metrics: params"));
}

TEST_CASE("metric table: every registered metric runs on a tiny point", "[metrics]") {
  json metrics = megabench::MetricRegistry::instance().listable_names();
  const auto dir = fresh_dir("metrics_all");
  json doc = {{"name", "metrics_all"},
              {"models",
               {{{"name", "megabyte"},
                 {"config",
                  {{"dim", {16, 8}},
                   {"depth", {1, 1}},
                   {"seq_len", 32},
                   {"patch", 4},
                   {"dim_head", 8},
                   {"heads", 2}}}}}},
              {"metrics", metrics},
              {"profile", true},
              {"threads", 1},
              {"warmup", 0},
              {"repeat", 1},
              {"data", {{"source", "random"}, {"bytes", 4096}}},
              {"train", {{"steps", 2}, {"batch", 2}, {"eval_bytes", 256}}},
              {"generate", {{"bytes", 4}, {"prime", 4}, {"repeat", 1}, {"warmup", 0}}}};
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
  const json& got = points[0]["metrics"];
  for (const auto* m : megabench::MetricRegistry::instance().all()) {
    INFO("metric " << m->name);
    REQUIRE(kWrites.count(m->name));
    CHECK(got.contains(kWrites.at(m->name)));
  }
  CHECK(got["test_seq_len_bytes"] == 32);
}

TEST_CASE("metric table: a metric's needs_one_of is checked by the parser", "[metrics]") {
  json doc = {{"name", "t"}, {"models", {{{"name", "megabyte"}}}}, {"metrics", {"efficiency"}}};
  CHECK_THROWS_WITH(megabench::parse_experiment(doc),
                    Catch::Contains("efficiency needs forward or train_step"));
}

TEST_CASE("efficiency counts the bytes a window predicts: Perceiver AR's latents", "[metrics]") {
  const auto dir = fresh_dir("efficiency_par");
  const json cfg = {{"dim", 32},      {"depth", 1},    {"heads", 2},
                    {"dim_head", 32}, {"seq_len", 64}, {"num_latents", 16}};
  json doc = {{"name", "e"},
              {"models", {{{"name", "perceiver_ar"}, {"config", cfg}}}},
              {"metrics", {"flops", "train_step", "efficiency"}},
              {"threads", 1},
              {"warmup", 0},
              {"repeat", 2},
              {"batch", 2}};
  const auto run = run_doc(doc, dir);
  REQUIRE(run.summary.ok == 1);
  const json rec = run.points.at(0);
  const auto& m = rec["metrics"];
  // The model predicts N of its 64 bytes per window; the FLOPs are per predicted byte.
  const auto& spec = megabench::Registry::instance().get("perceiver_ar");
  auto model = spec.build(*spec.parse(spec.resolve(cfg)));
  torch::NoGradGuard no_grad;
  const int64_t N = model->byte_nll(torch::randint(0, 256, {1, 64}, torch::kLong)).size(1);
  REQUIRE(N < 64);
  const double want = 3 * m["flops_forward_per_byte"].get<double>() *
                      m["train_bytes_per_s"].get<double>() * static_cast<double>(N) / 64.0;
  CHECK(m["achieved_flops_per_s"].get<double>() == Approx(want).epsilon(1e-9));
}

TEST_CASE("threads is set per point, and each record says what ran", "[metrics][threads]") {
  auto run = [](const json& threads, const std::string& name) {
    const auto dir = fresh_dir(name);
    json doc = {
        {"name", "t"},
        {"models",
         {{{"name", "transformer"},
           {"config",
            {{"dim", 16}, {"depth", 1}, {"heads", 1}, {"dim_head", 16}, {"seq_len", 16}}}}}},
        {"sweep", {{"grid", {{"threads", threads}}}}},
        {"metrics", {"params"}}};
    const auto run = run_doc(doc, dir);
    REQUIRE(run.summary.ok == threads.size());
    std::map<int64_t, json> by;
    for (const auto& r : run.points)
      by[r["config"]["run"]["threads"].get<int64_t>()] = r["threads"];
    return by;
  };
  // One worker measures the three points in this order: 1, 2, then 0 (the default again).
  const auto swept = run(json{1, 2, 0}, "threads_sweep");
  const auto fresh = run(json{0}, "threads_default");
  CHECK(swept.at(1)["intra_op"] == 1);
  CHECK(swept.at(2)["intra_op"] == 2);
  CHECK(swept.at(0)["intra_op"] == fresh.at(0)["intra_op"]);
  CHECK(swept.at(1)["inter_op"].get<int64_t>() >= 1);
}

TEST_CASE("the matmul peak is the calibration's only at the thread count it was measured at",
          "[metrics][threads]") {
  // A calibration with an impossible peak (1 MFLOP/s) is used as it stands when its dtype, device
  // and threads match the point's, and measured afresh (far above it) when the threads differ.
  const int threads = at::get_num_threads();
  json cal = {{"matmul_gflops_per_s", 1e-3},
              {"matmul_dtype", "Float"},
              {"device_type", "cpu"},
              {"matmul_threads", threads}};
  const torch::Device cpu(torch::kCPU);
  CHECK(megabench::matmul_peak(cal, cpu, torch::kFloat32) == Approx(1e6));
  cal["matmul_threads"] = threads + 1;
  CHECK(megabench::matmul_peak(cal, cpu, torch::kFloat32) > 1e8);
  cal.erase("matmul_threads");  // a record from before the field: matches any thread count
  CHECK(megabench::matmul_peak(cal, cpu, torch::kFloat32) == Approx(1e6));
}

TEST_CASE("the read bandwidth is the calibration's only at the thread count it was measured at",
          "[metrics][threads]") {
  // An impossible calibration (1 MB/s) stands when the threads match; at another thread count
  // the bandwidth is measured (far above it), once per process.
  const int threads = at::get_num_threads();
  json cal = {{"read_gb_per_s", 1e-3}, {"device_type", "cpu"}, {"matmul_threads", threads}};
  const torch::Device cpu(torch::kCPU);
  CHECK(megabench::read_bandwidth(cal, cpu) == Approx(1e6));
  cal["matmul_threads"] = threads + 1;
  const double measured = megabench::read_bandwidth(cal, cpu);
  CHECK(measured > 1e8);
  CHECK(megabench::read_bandwidth(cal, cpu) == measured);
  cal.erase("read_gb_per_s");  // a calibration without it: measured too
  cal["matmul_threads"] = threads;
  CHECK(megabench::read_bandwidth(cal, cpu) > 1e8);
}

TEST_CASE("generate runs past seq_len only for a model whose window slides", "[metrics]") {
  const auto dir = fresh_dir("generate_past");
  // prime 24 + 16 bytes > seq_len 24: Perceiver AR slides its window (both decode_window modes);
  // the byte Transformer is held to its context with an error naming the numbers.
  json doc = {
      {"name", "g"},
      {"models",
       {{{"name", "perceiver_ar"},
         {"label", "par"},
         {"config",
          {{"dim", 32},
           {"depth", 1},
           {"heads", 2},
           {"dim_head", 32},
           {"seq_len", 24},
           {"num_latents", 8}}}},
        {{"name", "transformer"},
         {"label", "tf"},
         {"config", {{"dim", 16}, {"depth", 1}, {"seq_len", 24}, {"dim_head", 8}, {"heads", 2}}}}}},
      {"sweep", {{"grid", {{"par.decode_window", {"recompute", "slide"}}}}}},
      {"metrics", {"generate"}},
      {"threads", 1},
      {"generate", {{"bytes", 16}, {"prime", 24}, {"repeat", 1}, {"warmup", 0}}}};
  const auto run = run_doc(doc, dir);
  CHECK(run.summary.ok == 2);
  int par_ok = 0, tf_failed = 0;
  for (const auto& p : run.points) {
    if (p["model"] == "perceiver_ar" && p["status"] == "ok") {
      ++par_ok;
      CHECK(p["metrics"]["generate_ms_per_byte"].get<double>() > 0);
    }
    if (p["model"] == "transformer" && p["status"] == "failed") {
      ++tf_failed;
      CHECK_THAT(p["error"].get<std::string>(),
                 Catch::Contains("prime 24 + bytes 16 exceed the model's seq_len 24"));
    }
  }
  CHECK(par_ok == 2);
  CHECK(tf_failed >= 1);
}

TEST_CASE("calibration records the matmul peak, the triad and the read bandwidth", "[metrics]") {
  const auto c = megabench::calibrate(torch::Device(torch::kCPU), torch::kFloat32);
  for (const char* key : {"matmul_gflops_per_s", "triad_gb_per_s", "read_gb_per_s"}) {
    INFO(key);
    REQUIRE(c.contains(key));
    CHECK(c[key].get<double>() > 0);
    CHECK(std::isfinite(c[key].get<double>()));
  }
  CHECK(c["read_bytes"] == int64_t{256} << 20);  // 32768 x 2048 float32
  // The roof is the fastest of the ways of reading, and names it (ties: mv, then amax); the bf16
  // GEMV kernel is one exactly where its AVX512-BF16 path runs.
  const double mv = c["read_mv_gb_per_s"].get<double>(),
               amax = c["read_amax_gb_per_s"].get<double>();
  CHECK(mv > 0);
  CHECK(amax > 0);
  double best = std::max(mv, amax);
  std::string fastest = mv >= amax ? "mv" : "amax";
  const bool gemv =
      megabench::kernels::gemv_bf16_auto_path() == megabench::kernels::GemvPath::kAvx512Bf16;
  CHECK(c.contains("read_gemv_bf16_gb_per_s") == gemv);
  if (gemv) {
    const double g = c["read_gemv_bf16_gb_per_s"].get<double>();
    CHECK(g > 0);
    if (g > best) best = g, fastest = "gemv_bf16";
  }
  CHECK(c["read_gb_per_s"].get<double>() == best);
  CHECK(c["read_kernel"] == fastest);
  const auto small = megabench::calibrate_read(torch::Device(torch::kCPU), 1 << 20);
  CHECK(small["read_bytes"] == 1 << 20);
}
