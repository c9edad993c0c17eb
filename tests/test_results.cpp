// The results store (append, reload, skip by key, partial lines), data sources, timing, whole runs
// in-process (metrics, failed points, resume, shards) and resume after SIGKILL of a real process.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "harness/api/record.h"
#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/io/data.h"
#include "harness/measure/timing.h"
#include "harness/store/results.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using namespace megabench::test;
using megabench::json;

namespace {

megabench::RunSummary run_quiet(const std::string& exp_path, const std::string& out,
                                std::vector<std::string> sets = {}, megabench::Shard shard = {}) {
  megabench::RunOptions o;
  o.experiment_path = exp_path;
  o.outdir = out;
  o.sets = std::move(sets);
  o.shard = shard;
  o.progress = 0;
  std::ostringstream log;
  auto s = megabench::run_experiment(o, log);
  INFO(log.str());
  return s;
}

}  // namespace

TEST_CASE("results store: append - reload - ok keys", "[results]") {
  auto dir = fresh_dir("store");
  auto path = megabench::results_path(dir, {});
  CHECK(path == dir + "/results.jsonl");
  auto point = [](const std::string& key, const std::string& status) {
    megabench::PointRecord r;
    r.key = key;
    r.name = "tiny/seed=" + key;
    r.model = "test_tiny";
    r.label = "tiny";
    r.status = status;
    if (status != "ok") r.error = "boom";
    return r.to_json();
  };
  {
    megabench::ResultsFile f(path);
    f.append({{"type", "context"}});
    f.append(point("a", "ok"));
    f.append(point("b", "failed"));
  }
  {
    megabench::ResultsFile f(path);  // reopening appends
    f.append(point("c", "ok"));
  }
  auto loaded = megabench::load_results(path);
  REQUIRE(loaded.records.size() == 4);
  CHECK(loaded.partial_tail == 0);
  CHECK(loaded.records[3]["key"] == "c");
  CHECK(megabench::completed_keys(dir) == std::set<std::string>{"a", "c"});  // failed points rerun
}

TEST_CASE("results store: a partial trailing line is ignored and cut before appending",
          "[results]") {
  auto dir = fresh_dir("partial");
  auto path = write_file(dir + "/results.jsonl",
                         "{\"type\":\"context\"}\n{\"type\":\"point\",\"key\":\"a\",\"status\":"
                         "\"ok\"}\n{\"type\":\"po");
  auto loaded = megabench::load_results(path);
  CHECK(loaded.records.size() == 2);
  CHECK(loaded.partial_tail == 1);
  CHECK(loaded.warnings.empty());
  {
    megabench::ResultsFile f(path);
    CHECK(f.truncated_bytes() == std::string("{\"type\":\"po").size());
    f.append({{"type", "point"}, {"key", "b"}, {"status", "ok"}});
  }
  loaded = megabench::load_results(path);
  REQUIRE(loaded.records.size() == 3);
  CHECK(loaded.partial_tail == 0);
  CHECK(loaded.records[2]["key"] == "b");
  // A broken line in the middle is skipped with a warning, the rest still read.
  write_file(path, "{\"a\":1}\nnot json\n{\"b\":2}\n");
  loaded = megabench::load_results(path);
  CHECK(loaded.records.size() == 2);
  CHECK(loaded.warnings.size() == 1);
}

TEST_CASE("shard arguments and file names", "[results]") {
  auto s = megabench::parse_shard("1/4");
  CHECK(s.index == 1);
  CHECK(s.count == 4);
  CHECK(megabench::results_path("out", s) == "out/results.shard-1-of-4.jsonl");
  CHECK_THROWS_WITH(megabench::parse_shard("4/4"), Catch::Contains("0 <= I < N"));
  CHECK_THROWS_WITH(megabench::parse_shard("1-4"), Catch::Contains("--shard"));
  CHECK_THROWS_WITH(megabench::parse_shard("1/4x"), Catch::Contains("--shard"));
}

TEST_CASE("data sources: file and random split - built-in corpora deterministic", "[data]") {
  auto dir = fresh_dir("data");
  std::string text(1000, 'a');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
  write_file(dir + "/f.txt", text);
  auto d =
      megabench::data::load({.source = "file", .path = dir + "/f.txt", .held_out_fraction = 0.1});
  CHECK(d.train.size() == 900);
  CHECK(d.held_out.size() == 100);
  CHECK(d.held_out[0] == static_cast<uint8_t>(text[900]));
  CHECK_THROWS_WITH(
      megabench::data::load({.source = "file", .path = dir + "/none", .held_out_fraction = 0.1}),
      Catch::Contains("no such file"));

  auto r1 = megabench::data::load(
      {.source = "random", .bytes = 4096, .held_out_fraction = 0.25, .seed = 1});
  auto r2 = megabench::data::load(
      {.source = "random", .bytes = 4096, .held_out_fraction = 0.25, .seed = 1});
  CHECK(r1.held_out.size() == 1024);
  CHECK(r1.train == r2.train);

  for (std::string corpus : {"code", "text"}) {
    INFO(corpus);
    auto files = megabench::data::corpus_files(corpus);
    CHECK(std::is_sorted(files.begin(), files.end()));
    auto a = megabench::data::load({.source = "builtin", .corpus = corpus, .seed = 0});
    auto b = megabench::data::load({.source = "builtin", .corpus = corpus, .seed = 0});
    CHECK(a.info["fingerprint"] == b.info["fingerprint"]);
    CHECK(a.train.size() > 100000);
    CHECK(a.held_out.size() > 10000);
    // Real text: mostly printable ASCII.
    size_t printable = std::count_if(a.held_out.begin(), a.held_out.end(), [](uint8_t c) {
      return (c >= 32 && c < 127) || c == '\n' || c == '\t';
    });
    CHECK(printable > a.held_out.size() * 9 / 10);
  }
}

TEST_CASE("time_repeats: median - min and max over the repeats", "[results][timing]") {
  int calls = 0;
  auto t = megabench::time_repeats(
      [&] {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      },
      2, 5, torch::kCPU);
  CHECK(calls == 7);
  REQUIRE(t.samples_ms.size() == 5);
  CHECK(t.min_ms >= 2.0);
  CHECK(t.min_ms <= t.median_ms);
  CHECK(t.median_ms <= t.max_ms);
  CHECK(t.loop_ms >= t.measured_ms);
  WARN("timing overhead between repeats: " << 100 * (t.loop_ms - t.measured_ms) / t.loop_ms << "%");
}

TEST_CASE("time_repeats: repeats past `repeat` until min_time_ms, capped by max_repeat",
          "[results][timing]") {
  int calls = 0;
  auto sleep2 = [&] {
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  };
  auto t =
      megabench::time_repeats(sleep2, 0, 2, torch::kCPU, /*min_time_ms=*/20, /*max_repeat=*/100);
  CHECK(t.samples_ms.size() >= 2);
  CHECK(t.samples_ms.size() <= 10);  // each call sleeps >= 2 ms
  CHECK(t.measured_ms >= 20);
  calls = 0;
  t = megabench::time_repeats(sleep2, 1, 2, torch::kCPU, /*min_time_ms=*/1000, /*max_repeat=*/5);
  CHECK(calls == 6);  // 1 warmup + the cap of 5
  CHECK(t.samples_ms.size() == 5);
  t = megabench::time_repeats(sleep2, 0, 3, torch::kCPU, /*min_time_ms=*/0, /*max_repeat=*/100);
  CHECK(t.samples_ms.size() == 3);  // no minimum time: exactly `repeat`
}

TEST_CASE("a run measures every metric - records failures and skips recorded points",
          "[results][run]") {
  auto dir = fresh_dir("run");
  auto exp = write_file(dir + "/exp.json", R"({
    "name": "run_test",
    "models": [{"name": "test_tiny", "config": {"dim": 16}}],
    "sweep": {"grid": {"seq_len": [32, 64]}},
    "metrics": ["params", "flops", "forward", "train_step", "generate", "bpb", "efficiency"],
    "warmup": 1, "repeat": 3, "batch": 2, "threads": 1,
    "train": {"steps": 30, "lr": 0.01, "batch": 8, "eval_bytes": 16384},
    "generate": {"bytes": 8, "prime": 4, "repeat": 2}
  })");
  auto out = dir + "/out";
  auto s = run_quiet(exp, out);
  CHECK(s.points == 2);
  CHECK(s.ok == 2);
  CHECK(s.failed == 0);
  auto pts = points_of(out + "/results.jsonl");
  REQUIRE(pts.size() == 2);
  auto ctx = megabench::load_results(out + "/results.jsonl").records[0];
  CHECK(ctx["type"] == "context");
  CHECK(ctx["schema_version"] == megabench::kSchemaVersion);
  CHECK(ctx["calibration"]["matmul_gflops_per_s"].get<double>() > 0);
  CHECK(ctx["experiment"]["train"]["steps"] == 30);
  for (const auto& p : pts) {
    INFO(p.dump());
    const auto& m = p["metrics"];
    CHECK(p["status"] == "ok");
    CHECK(p["config"]["run"]["batch"] == 2);  // the resolved config is saved with the result
    CHECK(m["params_total"] == 257 * 16 + 16 * 256 + 256);
    CHECK(m["params_emb"] == 257 * 16);
    CHECK(m["flops_train_per_byte"] == 3 * m["flops_forward_per_byte"].get<double>());
    CHECK(m["forward_ms_min"] <= m["forward_ms"]);
    CHECK(m["forward_ms"] <= m["forward_ms_max"]);
    const double T = p["config"]["seq_len"].get<double>();
    CHECK(m["forward_bytes_per_s"].get<double>() ==
          Approx(2 * T / (m["forward_ms"].get<double>() * 1e-3)));
    CHECK(m["train_step_ms"].get<double>() > 0);
    CHECK(m["generate_ms_per_byte"].get<double>() > 0);
    CHECK(m["generate_cache_speedup"].get<double>() > 0);
    CHECK(m["achieved_flops_per_s"].get<double>() ==
          Approx(m["flops_train_per_byte"].get<double>() * m["train_bytes_per_s"].get<double>()));
    // Uniform random bytes carry exactly 8 bits each: no model can beat that on held-out bytes, and
    // a barely trained one sits just above it.
    CHECK(m["bpb"].get<double>() > 7.95);
    CHECK(m["bpb"].get<double>() < 8.6);
    CHECK(m["train_steps"] == 30);
    CHECK(p["data"]["eval_bytes"].get<double>() == T * std::floor(16384 / T));
  }

  // Rerun: everything is recorded, nothing runs again.
  auto again = run_quiet(exp, out);
  CHECK(again.skipped == 2);
  CHECK(again.ok == 0);
  CHECK(points_of(out + "/results.jsonl").size() == 2);
}

TEST_CASE("bpb learns a predictable file - a NaN point fails and the sweep goes on",
          "[results][run]") {
  auto dir = fresh_dir("bpb");
  std::string text(40000, 'a');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
  write_file(dir + "/abc.txt", text);
  auto exp = write_file(dir + "/exp.json", R"({
    "name": "bpb_test",
    "models": [{"name": "test_tiny", "config": {"dim": 32, "seq_len": 64}}],
    "sweep": {"grid": {"fail": ["none", "nan"]}},
    "metrics": ["bpb"], "threads": 1,
    "data": {"source": "file", "path": ")" + dir +
                                               R"(/abc.txt"},
    "train": {"steps": 150, "lr": 0.05, "batch": 8, "eval_bytes": 3200}
  })");
  auto out = dir + "/out";
  auto s = run_quiet(exp, out);
  CHECK(s.ok == 1);
  CHECK(s.failed == 1);
  auto pts = points_of(out + "/results.jsonl");
  REQUIRE(pts.size() == 2);
  for (const auto& p : pts) {
    INFO(p.dump());
    if (p["axes"]["fail"] == "nan") {
      CHECK(p["status"] == "failed");
      CHECK(p["error"].get<std::string>().find("loss is nan") != std::string::npos);
    } else {
      // Each byte follows from the last; only each window's first byte (1 in 64) is uncertain.
      CHECK(p["status"] == "ok");
      CHECK(p["metrics"]["bpb"].get<double>() < 0.5);
      CHECK(p["data"]["eval_bytes"] == 3200);
    }
  }
  // The failed point runs again on rerun; the ok one is skipped.
  auto again = run_quiet(exp, out);
  CHECK(again.skipped == 1);
  CHECK(again.failed == 1);
}

TEST_CASE("shards split the sweep without overlap", "[results][run]") {
  auto dir = fresh_dir("shards");
  auto exp = write_file(dir + "/exp.json", R"({
    "name": "shard_test", "models": [{"name": "test_tiny"}],
    "sweep": {"grid": {"dim": [4, 8, 12], "seq_len": [16, 32]}},
    "metrics": ["params"]
  })");
  auto out = dir + "/out";
  auto s0 = run_quiet(exp, out, {}, megabench::parse_shard("0/2"));
  auto s1 = run_quiet(exp, out, {}, megabench::parse_shard("1/2"));
  CHECK(s0.in_shard + s1.in_shard == 6);
  auto a = points_of(out + "/results.shard-0-of-2.jsonl"),
       b = points_of(out + "/results.shard-1-of-2.jsonl");
  std::set<std::string> keys;
  for (const auto& p : a) keys.insert(p["key"].get<std::string>());
  for (const auto& p : b) keys.insert(p["key"].get<std::string>());
  CHECK(a.size() == 3);
  CHECK(b.size() == 3);
  CHECK(keys.size() == 6);
  // --set reaches the run: a full run now skips the shards' points.
  auto full = run_quiet(exp, out, {"description=all"});
  CHECK(full.skipped == 6);
}

// ---- resume after SIGKILL
// --------------------------------------------------------------------------

namespace {

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

size_t count_points(const std::string& file) {
  return points_of(file).size();
}

// Starts the run, SIGKILLs it once `kill_after` points are recorded, reruns it to the end, and
// checks that every point is recorded exactly once and the first records survived unchanged.
void kill_and_resume(const std::vector<std::string>& argv, const std::string& results, size_t total,
                     size_t kill_after, const std::string& log) {
  pid_t pid = spawn_logged(argv, log);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_points(results) < kill_after && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(pid, SIGKILL);
  CHECK(wait_exit(pid) == -SIGKILL);
  auto before = points_of(results);
  INFO("points recorded at the kill: " << before.size());
  REQUIRE(before.size() >= kill_after);
  CHECK(before.size() < total);  // the kill landed mid-sweep

  pid = spawn_logged(argv, log);
  int rc = wait_exit(pid);
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO(text);
  REQUIRE(rc == 0);
  auto loaded = megabench::load_results(results);
  CHECK(loaded.partial_tail == 0);
  CHECK(loaded.warnings.empty());
  auto after = points_of(results);
  std::map<std::string, int> seen;
  for (const auto& p : after) {
    seen[p["key"].get<std::string>()]++;
    CHECK(p["status"] == "ok");
  }
  CHECK(after.size() == total);
  CHECK(seen.size() == total);
  for (size_t i = 0; i < before.size(); ++i) CHECK(after[i] == before[i]);
  size_t contexts = 0;
  for (const auto& r : loaded.records) contexts += r.value("type", "") == "context";
  CHECK(contexts == 2);
}

std::string resume_experiment(const std::string& dir, const std::string& model,
                              const json& config) {
  json exp = {{"name", "resume"},
              {"models", {{{"name", model}, {"config", config}}}},
              {"sweep", {{"grid", {{"seed", {0, 1, 2, 3, 4, 5, 6, 7}}}}}},
              {"metrics", {"forward", "train_step"}},
              {"warmup", 1},
              {"repeat", 10},
              {"threads", 1}};
  return write_file(dir + "/exp.json", exp.dump(2));
}

}  // namespace

// The child of the test below: runs the experiment in this test binary, where test_tiny exists.
TEST_CASE("resume child (run by the kill test)", "[.][resume-child]") {
  const char* exp = std::getenv("MEGABENCH_RESUME_EXPERIMENT");
  const char* out = std::getenv("MEGABENCH_RESUME_OUT");
  REQUIRE(exp);
  REQUIRE(out);
  megabench::RunOptions o;
  o.experiment_path = exp;
  o.outdir = out;
  o.progress = 0;
  megabench::run_experiment(o, std::cout);
}

TEST_CASE("resume after SIGKILL loses no point and duplicates none (harness process)",
          "[results][resume]") {
  auto dir = fresh_dir("resume_self");
  auto exp = resume_experiment(dir, "test_tiny", {{"sleep_ms", 15}});  // ~0.5 s a point
  auto out = dir + "/out";
  ::setenv("MEGABENCH_RESUME_EXPERIMENT", exp.c_str(), 1);
  ::setenv("MEGABENCH_RESUME_OUT", out.c_str(), 1);
  kill_and_resume({"/proc/self/exe", "[resume-child]"}, out + "/results.jsonl", 8, 2,
                  dir + "/log.txt");
}

TEST_CASE("resume after SIGKILL of the megabench binary", "[results][resume]") {
  // The binary links the real models' plugins; use the first registered one at its tiny config.
  auto dir = fresh_dir("resume_bin");
  std::string list_out = dir + "/list.json";
  int rc = wait_exit(spawn_logged({MEGABENCH_BINARY, "list", "--json"}, list_out));
  REQUIRE(rc == 0);
  std::ifstream in(list_out);
  json models = json::parse(in);
  if (models.empty()) {
    std::cout << "SKIPPED: no model is registered in " << MEGABENCH_BINARY << std::endl;
    return;
  }
  json pick = models[0];
  for (const auto& m : models) {
    if (m["name"] == "megabyte") pick = m;
  }
  auto exp = resume_experiment(dir, pick["name"], pick["tiny_config"]);
  auto out = dir + "/out";
  kill_and_resume({MEGABENCH_BINARY, "run", exp, "-o", out, "--no-progress"},
                  out + "/results.jsonl", 8, 1, dir + "/log.txt");
}
