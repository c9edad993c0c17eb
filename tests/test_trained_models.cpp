// Trained models you can keep: a bpb point saves its weights (checkpoints/<key>.safetensors, with
// its config in the metadata), its training curve (curves/<key>.jsonl) and a greedy sample; the
// checkpoint reloads to the same held-out bpb and the same greedy bytes, in-process and through
// `megabench eval` / `megabench generate`; the report plots the curves and shows the samples.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>
#include <string>

#include "harness/cli/model_commands.h"
#include "harness/cli/run.h"
#include "harness/measure/held_out.h"
#include "harness/store/results.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using namespace megabench::test;
using megabench::json;

namespace {

json trained_experiment() {
  return {{"name", "trained"},
          {"models",
           {{{"name", "transformer"},
             {"config",
              {{"dim", 32}, {"depth", 1}, {"seq_len", 64}, {"heads", 2}, {"dim_head", 16}}}}}},
          {"metrics", {"bpb"}},
          {"threads", 1},
          {"data", {{"source", "builtin"}, {"corpus", "text"}}},
          {"train", {{"steps", 12}, {"batch", 2}, {"eval_bytes", 2048}}}};
}

json run_one(const json& exp, const std::string& dir) {
  const auto path = write_file(dir + "/exp.json", exp.dump());
  megabench::RunOptions o;
  o.experiment_path = path;
  o.outdir = dir + "/out";
  o.progress = 0;
  std::ostringstream log;
  const auto s = megabench::run_experiment(o, log);
  INFO(log.str());
  REQUIRE(s.ok == 1);
  for (const auto& r : megabench::load_results(dir + "/out/results.jsonl").records)
    if (r.value("type", "") == "point") return r;
  FAIL("no point record");
  return {};
}

}  // namespace

TEST_CASE("a bpb point keeps its weights, curve and sample; the checkpoint reloads exactly",
          "[trained][cli]") {
  const auto dir = fresh_dir("trained");
  const json rec = run_one(trained_experiment(), dir);
  const std::string out = dir + "/out/";
  const std::string key = rec["key"];
  REQUIRE(rec["checkpoint"] == "checkpoints/" + key + ".safetensors");
  REQUIRE(rec["curve_file"] == "curves/" + key + ".jsonl");
  REQUIRE(fs::exists(out + rec["checkpoint"].get<std::string>()));

  // The curve: every step (12 <= 1000), FLOPs growing to the record's train_flops, held-out bpb.
  std::istringstream curve(read_text(out + rec["curve_file"].get<std::string>()));
  std::string line;
  int64_t steps = 0;
  double last_flops = 0;
  while (std::getline(curve, line)) {
    const json row = json::parse(line);
    CHECK(row["key"] == key);
    CHECK(row["step"] == ++steps);
    CHECK(row["train_flops"].get<double>() > last_flops);
    last_flops = row["train_flops"].get<double>();
    CHECK(row["train_loss_bpb"].get<double>() > 0);
    CHECK(row.contains("held_out_bpb"));
  }
  CHECK(steps == 12);
  CHECK(last_flops == Approx(rec["metrics"]["train_flops"].get<double>()));

  // Reloaded: the same held-out bpb (the same windows and batches) and the same greedy bytes.
  auto m = megabench::load_checkpoint_model(out + rec["checkpoint"].get<std::string>());
  CHECK(m.name == "transformer");
  megabench::data::DataSpec spec;
  spec.source = "builtin";
  spec.corpus = "text";
  const auto data = megabench::data::load(spec);
  torch::NoGradGuard no_grad;
  const auto scores = megabench::score_held_out(*m.model, data, {}, 2048, 2, 64,
                                                torch::Device(torch::kCPU), "builtin");
  CHECK(scores.results[0].bpb() == rec["metrics"]["bpb"].get<double>());
  CHECK(megabench::greedy_sample(*m.model, data, torch::Device(torch::kCPU)) == rec["sample"]);
  CHECK(rec["sample"]["continuation"].get<std::string>().size() > 0);

  // Through the binary: eval gives the same bpb; generate samples from the checkpoint.
  const std::string ckpt = out + rec["checkpoint"].get<std::string>();
  const auto ev = run_command(std::string(MEGABENCH_BINARY) + " eval --checkpoint " + ckpt +
                              " --data text --bytes 2048 --batch 2 --mode basic --mode sliding" +
                              " --json 2>/dev/null");
  INFO(ev.out);
  REQUIRE(ev.status == 0);
  const json e = json::parse(ev.out);
  CHECK(e["modes"][0]["mode"] == "basic");
  CHECK(e["modes"][0]["bpb"].get<double>() == rec["metrics"]["bpb"].get<double>());
  CHECK(e["modes"][1]["cost"].get<double>() > 1.5);  // sliding: about two passes per byte
  CHECK(e["sample"] == rec["sample"]);
  const auto gen = run_command(std::string(MEGABENCH_BINARY) + " generate --checkpoint " + ckpt +
                               " --prime hello --bytes 8 --temperature 0 --json");
  INFO(gen.out);
  CHECK(gen.status == 0);

  // The report: the curves plotted against FLOPs and steps, the sample beside the bpb.
  CHECK(fs::exists(out + "plots/train_loss_vs_flops.png"));
  CHECK(fs::exists(out + "plots/train_loss_vs_steps.png"));
  const std::string table = read_text(out + "table.md");
  CHECK(table.find("## Samples") != std::string::npos);
  CHECK(read_text(out + "index.html").find("<h2>Samples</h2>") != std::string::npos);
}

TEST_CASE("train.save false keeps no checkpoint and leaves the point key alone", "[trained]") {
  const auto a = run_one(trained_experiment(), fresh_dir("save_on"));
  json exp = trained_experiment();
  exp["train"]["save"] = false;
  exp["train"]["curve_every"] = 5;
  const auto dir = fresh_dir("save_off");
  const auto b = run_one(exp, dir);
  CHECK(a["key"] == b["key"]);
  CHECK_FALSE(b.contains("checkpoint"));
  CHECK_FALSE(fs::exists(dir + "/out/checkpoints"));
  CHECK(a["metrics"]["bpb"] == b["metrics"]["bpb"]);  // what is kept never changes what is measured
}

TEST_CASE("a NaN training loss fails the point naming the step, unless asked to keep going",
          "[trained][reliability]") {
  json exp = trained_experiment();
  exp["models"] = {{{"name", "test_tiny"}, {"config", {{"fail", "nan"}}}}};  // a NaN loss
  const auto dir = fresh_dir("nan_loss");
  const auto path = write_file(dir + "/exp.json", exp.dump());
  megabench::RunOptions o;
  o.experiment_path = path;
  o.outdir = dir + "/out";
  o.progress = 0;
  std::ostringstream log;
  CHECK(megabench::run_experiment(o, log).failed == 1);
  const auto recs = megabench::load_results(dir + "/out/results.jsonl").records;
  std::string error;
  for (const auto& r : recs)
    if (r.value("type", "") == "point") error = r["error"];
  CHECK_THAT(error, Catch::Matches("training loss is -?nan at step 1 .*"));
  // Asked to keep going, the point completes and its non-finite figures are null, not NaN.
  exp["train"]["stop_on_nonfinite"] = false;
  exp["train"]["save"] = false;
  const auto dir2 = fresh_dir("nan_loss_keep");
  const auto path2 = write_file(dir2 + "/exp.json", exp.dump());
  o.experiment_path = path2;
  o.outdir = dir2 + "/out";
  CHECK(megabench::run_experiment(o, log).ok == 1);
  const std::string text = read_text(dir2 + "/out/results.jsonl");
  CHECK(text.find("NaN") == std::string::npos);
  CHECK(text.find("not finite") != std::string::npos);
}
