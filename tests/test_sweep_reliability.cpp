// Sweeps that survive anything: points isolated in a worker process (a segfault, an abort, a
// memory blow-up and a hang each fail their point while the sweep finishes), one writer per
// results folder, a torn last line set aside, a full disk leaving the records before intact,
// a graceful SIGTERM that says how to resume, strict nested keys, derived-option errors under the
// option the user wrote, and no NaN literal in any record.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "harness/api/record.h"
#include "harness/api/registry.h"
#include "harness/cli/run.h"
#include "harness/config/expand.h"
#include "harness/config/experiment.h"
#include "harness/io/checkpoint.h"
#include "harness/store/folder_lock.h"
#include "harness/store/results.h"
#include "tests/fault_model.h"
#include "tests/support.h"

namespace fs = std::filesystem;
using namespace megabench::test;
using megabench::json;

namespace {

megabench::RunSummary run_logged(const std::string& exp_path, const std::string& out,
                                 std::string& log_text, std::vector<std::string> sets = {}) {
  megabench::RunOptions o;
  o.experiment_path = exp_path;
  o.outdir = out;
  o.sets = std::move(sets);
  o.progress = 0;
  std::ostringstream log;
  auto s = megabench::run_experiment(o, log);
  log_text = log.str();
  return s;
}

std::map<std::string, json> points_by_label(const std::string& results) {
  std::map<std::string, json> out;
  for (const auto& r : megabench::load_results(results).records)
    if (r.value("type", "") == "point") out[r["label"].get<std::string>()] = r;
  return out;
}

json fault_entry(const std::string& kind) {
  return {{"name", "fault"}, {"label", kind}, {"config", {{"kind", kind}}}};
}

}  // namespace

TEST_CASE("isolation: a segfault, an abort, a memory blow-up and a hang fail only their points",
          "[reliability][isolation]") {
  megabench::testing::ScopedFaultModel fault;
  const auto dir = fresh_dir("isolation");
  json exp = {{"name", "faults"},
              {"models",
               {fault_entry("segv"), fault_entry("ok"), fault_entry("abort"), fault_entry("alloc"),
                fault_entry("sleep"), fault_entry("throw"), fault_entry("ok2")}},
              {"metrics", {"forward"}},
              {"warmup", 0},
              {"repeat", 1},
              {"min_time_ms", 0},
              {"threads", 1},
              {"timeout_s", 8},  // long enough for "alloc" to pass the limit on a busy machine
              {"max_memory_gb", 1.5}};
  exp["models"][6]["config"]["kind"] = "ok";
  const auto path = write_file(dir + "/exp.json", exp.dump(2));
  std::string log;
  const auto s = run_logged(path, dir + "/out", log);
  INFO(log);
  CHECK(s.ok == 2);
  CHECK(s.failed == 5);
  // One start, and one more after each death that is not the last point: segv, abort, alloc, sleep.
  CHECK(s.worker_starts == 5);
  CHECK(s.isolation_overhead_ms.size() == 3);  // the points whose worker answered (throw included)

  auto p = points_by_label(dir + "/out/results.jsonl");
  REQUIRE(p.size() == 7);
  CHECK(p["ok"]["status"] == "ok");
  CHECK(p["ok2"]["status"] == "ok");
  CHECK(p["segv"]["error"].get<std::string>().find("crashed: SIGSEGV") == 0);
  CHECK(p["abort"]["error"].get<std::string>().find("crashed: SIGABRT") == 0);
  CHECK(p["alloc"]["error"].get<std::string>().find("out of memory: resident memory") == 0);
  CHECK(p["alloc"]["error"].get<std::string>().find("max_memory_gb 1.5") != std::string::npos);
  CHECK(p["sleep"]["error"] == "timeout after 8 s");
  CHECK(p["throw"]["error"].get<std::string>().find("thrown on purpose") != std::string::npos);
  // The failed records keep the worker's last stderr lines.
  for (const char* k : {"segv", "abort", "alloc", "sleep"}) {
    INFO(k);
    const json tail = p[k]["worker"]["stderr_tail"];
    REQUIRE(tail.is_array());
    CHECK(tail.dump().find(std::string("fault model: about to ") + k) != std::string::npos);
  }
  CHECK(log.find("isolation: 5 worker starts") != std::string::npos);
}

TEST_CASE("isolation: one worker start for a clean sweep; isolation none runs in-process",
          "[reliability][isolation]") {
  const auto dir = fresh_dir("isolation_clean");
  json exp = {{"name", "clean"},
              {"models", {{{"name", "test_tiny"}, {"config", {{"dim", 8}}}}}},
              {"sweep", {{"grid", {{"seed", {0, 1, 2}}}}}},
              {"metrics", {"forward"}},
              {"repeat", 2},
              {"min_time_ms", 0}};
  const auto path = write_file(dir + "/exp.json", exp.dump(2));
  std::string log;
  auto s = run_logged(path, dir + "/a", log);
  CHECK(s.ok == 3);
  CHECK(s.worker_starts == 1);
  CHECK(s.isolation_overhead_ms.size() == 3);
  s = run_logged(path, dir + "/b", log, {"isolation=none"});
  CHECK(s.ok == 3);
  CHECK(s.worker_starts == 0);
  // A limit needs a process to stop.
  json bad = exp;
  bad["isolation"] = "none";
  bad["timeout_s"] = 5;
  CHECK_THROWS_WITH(megabench::parse_experiment(bad),
                    Catch::Contains("timeout_s: needs isolation \"process\""));
}

TEST_CASE("folder lock: a second writer is refused naming the holder; shards share a folder",
          "[reliability][lock]") {
  const auto dir = fresh_dir("lock");
  const std::string pid = std::to_string(::getpid());
  {
    megabench::FolderLock held(dir, {});
    CHECK_THROWS_WITH(megabench::FolderLock(dir, {}), Catch::Contains("pid " + pid));
    CHECK_THROWS_AS(megabench::FolderLock(dir, megabench::parse_shard("0/2")),
                    megabench::FolderBusy);
  }
  megabench::FolderLock a(dir, megabench::parse_shard("0/2"));
  megabench::FolderLock b(dir, megabench::parse_shard("1/2"));  // the other shard: fine
  CHECK_THROWS_WITH(megabench::FolderLock(dir, megabench::parse_shard("1/2")),
                    Catch::Contains("in use by another megabench run"));
  CHECK_THROWS_AS(megabench::FolderLock(dir, {}), megabench::FolderBusy);

  // A whole run into a held folder fails at once, before measuring anything.
  json exp = {{"name", "locked"},
              {"models", {{{"name", "test_tiny"}, {"config", {{"dim", 8}}}}}},
              {"metrics", {"params"}}};
  const auto path = write_file(dir + "/exp.json", exp.dump());
  std::string log;
  CHECK_THROWS_WITH(run_logged(path, dir, log), Catch::Contains("pid " + pid));
  CHECK_FALSE(fs::exists(dir + "/results.jsonl"));
}

TEST_CASE("results store: a torn last line is set aside and its point measured again",
          "[reliability][results]") {
  const auto dir = fresh_dir("torn");
  json exp = {{"name", "torn"},
              {"models", {{{"name", "test_tiny"}, {"config", {{"dim", 8}}}}}},
              {"sweep", {{"grid", {{"seed", {0, 1}}}}}},
              {"metrics", {"params"}}};
  const auto path = write_file(dir + "/exp.json", exp.dump());
  std::string log;
  REQUIRE(run_logged(path, dir + "/out", log).ok == 2);
  const std::string results = dir + "/out/results.jsonl";
  // Cut the last point record in the middle, as a kill mid-write would.
  std::string text = read_text(results);
  const size_t type_at = text.rfind("\"type\":\"point\"");
  REQUIRE(type_at != std::string::npos);
  const size_t last_point = text.rfind('\n', type_at) + 1;
  const std::string torn = text.substr(last_point, 40);
  text = text.substr(0, last_point + 40);
  fs::resize_file(results, 0);
  write_file(results, text);

  const auto s = run_logged(path, dir + "/out", log);
  INFO(log);
  CHECK(log.find("was cut short (40 bytes") != std::string::npos);
  CHECK(read_text(results + ".partial") == torn + "\n");
  CHECK(s.skipped == 1);
  CHECK(s.ok == 1);  // the torn point again
  const auto loaded = megabench::load_results(results);
  CHECK(loaded.partial_tail == 0);
  CHECK(loaded.warnings.empty());
  CHECK(points_by_label(results).size() == 1);  // one label, both seeds, each recorded once
  size_t points = 0;
  for (const auto& r : loaded.records) points += r.value("type", "") == "point";
  CHECK(points == 2);
}

TEST_CASE("results store: a full disk leaves the records written before intact",
          "[reliability][results]") {
  const auto dir = fresh_dir("disk_full");
  const std::string path = dir + "/results.jsonl";
  megabench::ResultsFile out(path);
  for (int i = 0; i < 3; ++i) out.append({{"type", "point"}, {"i", i}});
  const std::string before = read_text(path);
  // A file size limit 100 bytes above the current size: the next big record cannot fit.
  struct rlimit old {};
  ::getrlimit(RLIMIT_FSIZE, &old);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = before.size() + 100;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string error;
  try {
    out.append({{"type", "point"}, {"payload", std::string(1000, 'x')}});
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  CHECK(error.find("cannot write to '" + path + "': File too large") == 0);
  CHECK(error.find("the records written before are intact") != std::string::npos);
  CHECK(read_text(path) == before);           // no partial line left behind
  out.append({{"type", "point"}, {"i", 3}});  // and the file takes records again
  CHECK(megabench::load_results(path).records.size() == 4);
}

TEST_CASE("SIGTERM stops a run after the point in flight and says how to resume",
          "[reliability][signal]") {
  const auto dir = fresh_dir("sigterm");
  json exp = {
      {"name", "sigterm"},
      {"models",
       {{{"name", "transformer"}, {"config", {{"dim", 32}, {"depth", 1}, {"seq_len", 64}}}}}},
      {"sweep", {{"grid", {{"seed", {0, 1, 2, 3, 4, 5}}}}}},
      {"metrics", {"forward"}},
      {"threads", 1},
      {"min_time_ms", 400}};
  const auto path = write_file(dir + "/exp.json", exp.dump());
  const std::string out = dir + "/out", log = dir + "/log.txt", results = out + "/results.jsonl";
  const std::vector<std::string> argv = {MEGABENCH_BINARY, "run", path, "-o", out, "--no-progress"};
  auto count_points = [&] {
    size_t n = 0;
    for (const auto& r : megabench::load_results(results).records)
      n += r.value("type", "") == "point";
    return n;
  };
  const pid_t pid = spawn_logged(argv, log);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_points() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const std::string text = read_text(log);
  INFO(text);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  const size_t recorded = count_points();
  CHECK(recorded >= 1);
  CHECK(recorded < 6);
  CHECK(text.find("stopped: " + std::to_string(recorded) +
                  " of 6 points recorded; rerun the same command to resume (SIGTERM)") !=
        std::string::npos);
  CHECK(megabench::load_results(results).partial_tail == 0);

  // The same command again: the rest, each point once.
  const pid_t again = spawn_logged(argv, log);
  ::waitpid(again, &status, 0);
  INFO(read_text(log));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(count_points() == 6);
}

TEST_CASE("strict experiments: unknown keys in report entries, derived options by their name",
          "[reliability][strict]") {
  json exp = {{"name", "strict"},
              {"models", {{{"name", "test_tiny"}, {"config", {{"dim", 8}}}}}},
              {"metrics", {"params"}},
              {"report", {{"plots", {{{"x", "seed"}, {"y", "params"}, {"colour", "red"}}}}}}};
  CHECK_THROWS_WITH(megabench::parse_experiment(exp),
                    Catch::StartsWith("report.plots[0].colour: unknown key"));
  exp["report"] = {{"paper", {{{"metric", "bpb"}, {"value", 1.0}, {"wher", json::object()}}}}};
  CHECK_THROWS_WITH(megabench::parse_experiment(exp),
                    Catch::StartsWith("report.paper[0].wher: unknown key"));
  exp["report"] = {{"columns", {"params", 3}}};
  CHECK_THROWS_WITH(megabench::parse_experiment(exp), Catch::StartsWith("report.columns[1]"));

  json pa = {{"name", "pa"},
             {"models",
              {{{"name", "test_tiny"}, {"config", {{"dim", 8}}}},
               {{"name", "test_tiny"}, {"label", "b"}, {"config", {{"dim", 4}}}},
               {{"name", "perceiver_ar"}, {"config", {{"seq_len", 256}, {"num_latents", -1}}}}}},
             {"metrics", {"params"}}};
  auto points_of = [](const json& doc) {
    return megabench::expand(megabench::parse_experiment(doc));
  };
  // (expand lists every impossible point, each under the option the user wrote)
  CHECK_THROWS_WITH(points_of(pa),
                    Catch::Contains("\n  models[2].config.num_latents: must be between 1 and the "
                                    "window length seq_len (256), got -1"));
  pa["models"][2]["config"]["num_latents"] = 0;
  CHECK_THROWS_WITH(points_of(pa), Catch::Contains("\n  models[2].config.num_latents:"));
  pa["models"][2]["config"] = {{"seq_len", 256}, {"prefix_len", 300}};
  CHECK_THROWS_WITH(points_of(pa), Catch::Contains("\n  models[2].config.prefix_len:"));
  pa["models"][2]["config"] = {{"seq_len", 256}, {"num_latents", 256}, {"dim", 32}};
  CHECK_NOTHROW(points_of(pa));  // prefix_len 0, as the reference allows
}

TEST_CASE("logits accepts a Perceiver AR input of prefix_len + 1 bytes, as the reference does",
          "[reliability][cli]") {
  const auto dir = fresh_dir("pa_logits");
  const auto& spec = megabench::Registry::instance().get("perceiver_ar");
  const json config = spec.resolve({{"dim", 32},
                                    {"depth", 1},
                                    {"seq_len", 24},
                                    {"num_latents", 8},
                                    {"heads", 2},
                                    {"dim_head", 32}});
  auto model = spec.build(*spec.parse(config));
  const std::string ckpt = dir + "/pa.safetensors";
  megabench::checkpoint::save(ckpt, model->module(),
                              {{"model", "perceiver_ar"}, {"config", config.dump()}});
  write_file(dir + "/in.bin", std::string(17, 'a'));  // prefix_len 16 + 1
  const std::string cmd = std::string(MEGABENCH_BINARY) + " logits --checkpoint " + ckpt +
                          " --input " + dir + "/in.bin --out " + dir + "/out.safetensors --json";
  const auto r = run_command(cmd);
  INFO(r.out);
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j["shape"] == json::array({1, 1, 256}));
  CHECK(j["bpb"].is_null());
  // One byte fewer: no latent position, refused with the reason.
  write_file(dir + "/short.bin", std::string(16, 'a'));
  const auto bad = run_command(std::string(MEGABENCH_BINARY) + " logits --checkpoint " + ckpt +
                               " --input " + dir + "/short.bin --out " + dir + "/o2.safetensors");
  CHECK(bad.status != 0);
  CHECK(bad.out.find("prefix_len (16) < length") != std::string::npos);
  CHECK(bad.out.find("frame #") == std::string::npos);  // no C++ backtrace without --debug
}

TEST_CASE("records never hold a NaN literal: non-finite figures are written as null",
          "[reliability][results]") {
  megabench::PointRecord r;
  r.key = "k";
  r.name = "n";
  r.model = "m";
  r.label = "m";
  r.status = "ok";
  r.metrics["forward_ms"] = std::nan("");
  r.metrics["flops_per_byte"] = std::numeric_limits<double>::infinity();
  const auto dir = fresh_dir("nan");
  megabench::ResultsFile out(dir + "/results.jsonl");
  out.append(r.to_json());
  const std::string text = read_text(dir + "/results.jsonl");
  CHECK(text.find("NaN") == std::string::npos);
  CHECK(text.find("nan") == std::string::npos);
  CHECK(text.find("Infinity") == std::string::npos);
  const json back = json::parse(text);  // strict JSON
  CHECK(back["metrics"]["forward_ms"].is_null());
  CHECK(back["metrics"]["flops_per_byte"].is_null());
}

TEST_CASE("config: --set refuses text that is not UTF-8 and numbers out of range (fuzz findings)",
          "[reliability][strict]") {
  // tests/fuzz: "models[0].config.x=\xCB" used to reach a dump() that threw nlohmann's type_error.
  megabench::json doc = {{"name", "x"}};
  CHECK_THROWS_WITH(megabench::apply_set(doc, "description=caf\xCB"),
                    Catch::Contains("--set: the assignment is not valid UTF-8"));
  CHECK_THROWS_AS(megabench::apply_set(doc, "descr\xFFiption=1"), megabench::ConfigError);
  CHECK_NOTHROW(megabench::apply_set(doc, "description=caf\xC3\xA9"));  // valid UTF-8
  CHECK(doc["description"] == "caf\xC3\xA9");
  // A number past a double's range (fuzz finding: nlohmann's out_of_range escaped).
  CHECK_THROWS_WITH(megabench::apply_set(doc, "train.lr=-1e3085"),
                    Catch::Contains("out of range of a double"));
  const auto dir = fresh_dir("bignum");
  write_file(dir + "/exp.json", R"({"name": "x", "seed": 1e999})");
  CHECK_THROWS_WITH(megabench::load_json_file(dir + "/exp.json"),
                    Catch::Contains("is not valid JSON"));
}

TEST_CASE("patch \"cbrt\" of a huge seq_len resolves at once (fuzz finding)",
          "[reliability][strict]") {
  // tests/fuzz: the divisor search was O(seq_len) and hung the parser for seq_len 8192096384.
  const auto& spec = megabench::Registry::instance().get("megabyte");
  const auto t0 = std::chrono::steady_clock::now();
  const json r = spec.resolve(
      {{"dim", {64, 32}}, {"depth", {1, 1}}, {"seq_len", 8192096384LL}, {"patch", "cbrt"}});
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  // 8192096384 = 2^7 * 64000753 (a prime); its cube root is 2015.9; the nearest divisor is 128.
  CHECK(r["patch"] == json::array({128}));
  // Small cases against a brute-force search: the divisor nearest the cube root.
  for (int64_t n : {1, 8, 64, 100, 4096, 65536, 1000000, 3 * 5 * 7 * 11}) {
    const json c =
        spec.resolve({{"dim", {64, 32}}, {"depth", {1, 1}}, {"seq_len", n}, {"patch", "cbrt"}});
    int64_t best = 1;
    const double t = std::cbrt(static_cast<double>(n));
    for (int64_t p = 1; p <= n; ++p)
      if (n % p == 0 && std::abs(p - t) < std::abs(best - t)) best = p;
    INFO(n);
    CHECK(c["patch"] == json::array({best}));
  }
}
