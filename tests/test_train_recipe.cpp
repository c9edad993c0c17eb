// The training recipe (train.betas, warmup_steps, schedule, init_std) and resumable training
// (train.checkpoint_minutes): settings, the learning rate each step uses, the initial weights, and
// a training killed mid-way that resumes to exactly the uninterrupted result.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>

#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/config/expand.h"
#include "harness/config/experiment.h"
#include "harness/config/run_settings.h"
#include "harness/io/safetensors.h"
#include "harness/measure/session.h"
#include "harness/store/results.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using namespace megabench::test;
using megabench::json;

namespace {

json base_doc(json train) {
  return {{"name", "recipe"},
          {"models",
           {{{"name", "transformer"},
             {"config",
              {{"dim", 32}, {"depth", 1}, {"seq_len", 32}, {"heads", 2}, {"dim_head", 16}}}}}},
          {"metrics", {"bpb"}},
          {"threads", 1},
          {"data", {{"source", "builtin"}, {"corpus", "text"}}},
          {"train", train}};
}

}  // namespace

TEST_CASE("train recipe settings: defaults stay out of the key, bad values name the field",
          "[train][config]") {
  const auto plain = megabench::resolve_run(base_doc({{"steps", 4}}));
  for (const char* key : {"betas", "warmup_steps", "schedule", "init_std", "checkpoint_minutes"}) {
    INFO(key);
    CHECK_FALSE(plain.resolved["train"].contains(key));
  }
  CHECK(plain.train.betas == std::vector<double>{0.9, 0.999});
  CHECK(plain.train.checkpoint_minutes == 10);

  const auto paper = megabench::resolve_run(base_doc({{"steps", 4},
                                                      {"betas", {0.9, 0.98}},
                                                      {"warmup_steps", 2},
                                                      {"schedule", "cosine"},
                                                      {"init_std", 0.006},
                                                      {"checkpoint_minutes", 0}}));
  CHECK(paper.resolved["train"]["betas"] == json({0.9, 0.98}));
  CHECK(paper.resolved["train"]["schedule"] == "cosine");
  CHECK(paper.resolved["train"]["init_std"] == 0.006);
  CHECK_FALSE(paper.resolved["train"].contains("checkpoint_minutes"));  // never in the key
  CHECK(paper.train.checkpoint_minutes == 0);

  CHECK_THROWS_WITH(megabench::resolve_run(base_doc({{"betas", {0.9, 1.0}}})),
                    Catch::Contains("train.betas[1]") && Catch::Contains("[0, 1)"));
  CHECK_THROWS_WITH(megabench::resolve_run(base_doc({{"betas", 0.9}})),
                    Catch::Contains("train.betas: expected [beta1, beta2]"));
  CHECK_THROWS_WITH(megabench::resolve_run(base_doc({{"schedule", "step"}})),
                    Catch::Contains("train.schedule") && Catch::Contains("cosine"));
  CHECK_THROWS_WITH(megabench::resolve_run(base_doc({{"init_std", -1}})),
                    Catch::Contains("train.init_std"));
  CHECK_THROWS_WITH(megabench::resolve_run(base_doc({{"warmup_steps", -1}})),
                    Catch::Contains("train.warmup_steps"));
}

TEST_CASE("scheduled_lr: linear warmup, then constant, linear or cosine decay to 0", "[train]") {
  megabench::TrainSettings t;
  t.lr = 1.0;
  t.warmup_steps = 4;
  // Warmup: lr (s + 1) / 4.
  for (int64_t s = 0; s < 4; ++s) CHECK(megabench::scheduled_lr(t, s, 12) == (s + 1) / 4.0);
  CHECK(megabench::scheduled_lr(t, 11, 12) == 1.0);  // constant
  t.schedule = "linear";                             // 8 decay steps: 1, 7/8, ..., 1/8
  CHECK(megabench::scheduled_lr(t, 4, 12) == 1.0);
  CHECK(megabench::scheduled_lr(t, 8, 12) == Approx(0.5));
  CHECK(megabench::scheduled_lr(t, 11, 12) == Approx(1.0 / 8));
  t.schedule = "cosine";
  CHECK(megabench::scheduled_lr(t, 8, 12) == Approx(0.5));
  CHECK(megabench::scheduled_lr(t, 6, 12) == Approx(0.5 * (1 + std::cos(M_PI / 4))));
  CHECK(megabench::scheduled_lr(t, 5, 0) == 1.0);  // total unknown: no decay

  // The session steps with it.
  auto run = megabench::resolve_run(
      base_doc({{"steps", 6}, {"lr", 0.01}, {"warmup_steps", 2}, {"schedule", "linear"}}));
  const auto& spec = megabench::Registry::instance().get("transformer");
  torch::manual_seed(0);
  auto model = spec.build(*spec.parse(spec.resolve(base_doc({})["models"][0]["config"])));
  megabench::TrainSession session(*model, run, 6);
  for (int64_t s = 0; s < 6; ++s) {
    session.step(torch::randint(0, 256, {2, 32}, torch::kLong));
    CHECK(session.lr() == Approx(megabench::scheduled_lr(run.train, s, 6)));
  }
  CHECK(session.steps() == 6);
}

TEST_CASE("train.init_std redraws every weight matrix and embedding", "[train][cli]") {
  const auto dir = fresh_dir("init_std");
  const auto r = run_doc(
      base_doc({{"steps", 1}, {"lr", 1e-12}, {"init_std", 0.006}, {"eval_bytes", 256}}), dir);
  REQUIRE(r.summary.ok == 1);
  const auto file =
      megabench::safetensors::load(dir + "/out/" + r.points[0]["checkpoint"].get<std::string>());
  int64_t matrices = 0;
  for (const auto& [name, t] : file.tensors) {
    if (t.dim() < 2 || t.numel() < 256) continue;
    INFO(name);
    ++matrices;
    CHECK(t.to(torch::kFloat64).std().item<double>() == Approx(0.006).epsilon(0.1));
  }
  CHECK(matrices >= 5);
}

TEST_CASE("a training killed mid-way resumes from its saved state to the uninterrupted result",
          "[train][cli][reliability]") {
  const json doc = base_doc(
      {{"steps", 16}, {"curve_every", 4}, {"eval_bytes", 512}, {"checkpoint_minutes", 1e-9}});
  const auto clean_dir = fresh_dir("resume_clean");
  const auto clean = run_doc(doc, clean_dir);
  REQUIRE(clean.summary.ok == 1);

  const auto dir = fresh_dir("resume_killed");
  ::setenv("MEGABENCH_FAULT_KILL_AFTER_STEP", "9", 1);
  const auto killed = run_doc(doc, dir);
  ::unsetenv("MEGABENCH_FAULT_KILL_AFTER_STEP");
  INFO(killed.log);
  REQUIRE(killed.summary.failed == 1);
  CHECK(killed.points[0]["error"].get<std::string>().find("SIGKILL") != std::string::npos);
  const std::string key = killed.points[0]["key"];
  CHECK(fs::exists(dir + "/out/checkpoints/" + key + ".resume.pt"));

  const auto resumed = run_doc(doc, dir);  // the same command again: retries the failed point
  INFO(resumed.log);
  REQUIRE(resumed.summary.ok == 1);
  const json& a = resumed.points.back();
  const json& b = clean.points[0];
  CHECK(a["resumed_from_step"] == 9);
  CHECK_FALSE(fs::exists(dir + "/out/checkpoints/" + key + ".resume.pt"));
  CHECK(a["metrics"]["bpb"] == b["metrics"]["bpb"]);
  CHECK(a["metrics"]["train_bpb_final"] == b["metrics"]["train_bpb_final"]);
  CHECK(read_text(dir + "/out/" + a["curve_file"].get<std::string>()) ==
        read_text(clean_dir + "/out/" + b["curve_file"].get<std::string>()));
  const auto wa = megabench::safetensors::load(dir + "/out/" + a["checkpoint"].get<std::string>());
  const auto wb =
      megabench::safetensors::load(clean_dir + "/out/" + b["checkpoint"].get<std::string>());
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (const auto& [name, t] : wa.tensors) {
    INFO(name);
    CHECK(torch::equal(t, wb.tensors.at(name)));
  }

  // An unreadable state is set aside with a warning, and the point trains from step 0.
  const auto dir2 = fresh_dir("resume_bad");
  ::setenv("MEGABENCH_FAULT_KILL_AFTER_STEP", "5", 1);
  run_doc(doc, dir2);
  ::unsetenv("MEGABENCH_FAULT_KILL_AFTER_STEP");
  write_file(dir2 + "/out/checkpoints/" + key + ".resume.pt", "not an archive");
  const auto fresh = run_doc(doc, dir2);
  REQUIRE(fresh.summary.ok == 1);
  const json& c = fresh.points.back();
  CHECK_FALSE(c.contains("resumed_from_step"));
  CHECK(c["warnings"].dump().find("cannot resume") != std::string::npos);
  CHECK(fs::exists(dir2 + "/out/checkpoints/" + key + ".resume.pt.unusable"));
  CHECK(c["metrics"]["train_bpb_final"].get<double>() > 0);
}

TEST_CASE("a model entry's train settings replace the experiment's for its points",
          "[train][config]") {
  json doc = base_doc({{"steps", 4}, {"lr", 1e-3}});
  doc["models"].push_back({{"name", "transformer"},
                           {"label", "fast"},
                           {"config", doc["models"][0]["config"]},
                           {"train", {{"lr", 3e-3}, {"warmup_steps", 2}}}});
  const auto points = megabench::expand(megabench::parse_experiment(doc));
  REQUIRE(points.size() == 2);
  CHECK(points[0].run.train.lr == 1e-3);
  CHECK(points[0].run.train.warmup_steps == 0);
  CHECK(points[1].run.train.lr == 3e-3);
  CHECK(points[1].run.train.warmup_steps == 2);
  CHECK(points[1].run.train.steps == 4);  // the rest is the experiment's
  CHECK(points[0].key != points[1].key);
  // A sweep axis overrides both.
  doc["sweep"] = {{"grid", {{"train.lr", {2e-3}}}}};
  for (const auto& p : megabench::expand(megabench::parse_experiment(doc)))
    CHECK(p.run.train.lr == 2e-3);
  doc.erase("sweep");
  doc["models"][1]["train"]["lr"] = -1;
  CHECK_THROWS_WITH(megabench::expand(megabench::parse_experiment(doc)),
                    Catch::Contains("models[1] (its train settings): train.lr"));
  doc["models"][1]["train"] = 3;
  CHECK_THROWS_WITH(megabench::parse_experiment(doc), Catch::Contains("models[1].train"));
}

TEST_CASE("bf16 training follows fp32 on a small model over 300 steps", "[train][precision]") {
  // The same model, data, seed and recipe, trained in fp32 and in bf16 (autocast, fp32 master
  // weights). bf16 rounds each matmul operand to 8 significant bits (relative error <= 2^-9, about
  // 0.2%) and accumulates in fp32, so each step's loss moves by a fraction of a percent and the two
  // trajectories drift apart only slowly. A systematic gap (updates lost to rounding, a cast in
  // the wrong place) shows as the bf16 curve lagging: the test allows 0.1 bits per byte, about 2.5%
  // of the loss here, on the mean of the last 100 steps and on the held-out bpb, and requires both
  // runs to have learned (at least 1 bit per byte below their first steps) so it cannot pass idle.
  json doc = base_doc({{"steps", 300}, {"curve_every", 1}, {"eval_bytes", 4096}, {"lr", 3e-3}});
  doc["sweep"] = {{"grid", {{"dtype", {"float32", "bfloat16"}}}}};
  const auto dir = fresh_dir("bf16_follows_fp32");
  const auto r = run_doc(doc, dir);
  INFO(r.log);
  REQUIRE(r.summary.ok == 2);
  std::map<std::string, std::vector<double>> curves;
  std::map<std::string, double> bpb;
  for (const auto& p : r.points) {
    const std::string dtype = p["config"]["run"]["dtype"];
    bpb[dtype] = p["metrics"]["bpb"].get<double>();
    std::istringstream in(read_text(dir + "/out/" + p["curve_file"].get<std::string>()));
    for (std::string line; std::getline(in, line);) {
      const json row = json::parse(line);
      if (row.contains("train_loss_bpb")) curves[dtype].push_back(row["train_loss_bpb"]);
    }
  }
  const auto& a = curves.at("float32");
  const auto& b = curves.at("bfloat16");
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() >= 200);
  auto mean = [](const std::vector<double>& v, size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) s += v[i];
    return s / static_cast<double>(to - from);
  };
  const size_t n = a.size();
  INFO("fp32 first/last " << mean(a, 0, 10) << " / " << mean(a, n - 100, n) << ", bf16 "
                          << mean(b, 0, 10) << " / " << mean(b, n - 100, n) << ", held-out "
                          << bpb["float32"] << " / " << bpb["bfloat16"]);
  CHECK(mean(a, n - 100, n) < mean(a, 0, 10) - 1.0);
  CHECK(mean(b, n - 100, n) < mean(b, 0, 10) - 1.0);
  CHECK(std::abs(mean(b, n - 100, n) - mean(a, n - 100, n)) < 0.1);
  CHECK(std::abs(bpb["bfloat16"] - bpb["float32"]) < 0.1);
}
