// The megabench command line, run as a user would: a checkpoint saved from the Python reference
// (tests/save_reference_checkpoint.py) gives the reference's logits through `megabench logits`;
// `generate`, `list` and `flops paper` print what they promise; bad input exits non-zero.
#include <torch/torch.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "harness/io/safetensors.h"
#include "harness/report/report.h"
#include "tests/support.h"

using json = nlohmann::json;
using megabench::test::source_path;

namespace {
struct Result {
  int status;
  std::string out;
};
Result run(const std::string& args, bool with_stderr = true) {
  std::string cmd =
      std::string(MEGABENCH_BINARY) + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}
std::string temp_path(const std::string& name) {
  return "/tmp/megabench_cli_" + std::to_string(getpid()) + "_" + name;
}
}  // namespace

TEST_CASE("megabench logits reproduces the reference from a Python checkpoint", "[cli]") {
  const auto out = temp_path("logits.safetensors");
  auto r = run("logits --checkpoint " +
               source_path("tests/fixtures/megabyte/checkpoint_s2.safetensors") + " --input " +
               source_path("tests/fixtures/megabyte/checkpoint_s2_input.bin") + " --out " + out);
  INFO(r.out);
  REQUIRE(r.status == 0);
  auto ours = megabench::safetensors::load(out).tensors.at("logits");
  auto ref = megabench::safetensors::load(
                 source_path("tests/fixtures/megabyte/checkpoint_s2_expected.safetensors"))
                 .tensors.at("logits");
  REQUIRE(ours.sizes() == ref.sizes());
  CHECK(((ours - ref).abs().max() / ref.abs().max()).item<double>() < 1e-5);
  std::remove(out.c_str());
}

TEST_CASE("megabench generate samples from a checkpoint - cached and uncached alike", "[cli]") {
  const auto ckpt = source_path("tests/fixtures/megabyte/checkpoint_s2.safetensors");
  auto a =
      run("generate --checkpoint " + ckpt + " --prime hello --bytes 12 --temperature 0 --json");
  auto b = run("generate --checkpoint " + ckpt +
               " --prime hello --bytes 12 --temperature 0 --json --no-cache");
  INFO(a.out << b.out);
  REQUIRE(a.status == 0);
  REQUIRE(b.status == 0);
  auto ja = json::parse(a.out), jb = json::parse(b.out);
  CHECK(ja["bytes"].size() == 12);  // the new bytes only
  CHECK(ja["bytes"] == jb["bytes"]);
  CHECK(ja["generate_bytes_per_s"].get<double>() > 0);
  auto too_long = run("generate --checkpoint " + ckpt + " --prime hello --bytes 40");
  CHECK(too_long.status != 0);
  CHECK_THAT(too_long.out, Catch::Contains("exceeds"));
}

TEST_CASE("megabench rejects bad checkpoints and arguments with a message", "[cli]") {
  auto missing = run("logits --checkpoint /nonexistent.safetensors --input /dev/null --out /tmp/x");
  CHECK(missing.status != 0);
  CHECK_THAT(missing.out, Catch::Contains("nonexistent"));
  const auto bad = temp_path("bad.safetensors");
  {
    FILE* f = std::fopen(bad.c_str(), "wb");
    std::fputs("\x10\x00\x00\x00\x00\x00\x00\x00{not json}", f);
    std::fclose(f);
  }
  auto r = run("generate --checkpoint " + bad + " --bytes 3");
  CHECK(r.status != 0);
  CHECK_THAT(r.out, Catch::Contains(bad));
  std::remove(bad.c_str());
  CHECK(run("generate --checkpoint x --bytes -3").status != 0);
}

TEST_CASE("megabench list and flops paper print machine-readable figures", "[cli]") {
  auto l = run("list --json");
  REQUIRE(l.status == 0);
  auto models = json::parse(l.out);
  std::set<std::string> names;
  for (const auto& m : models) names.insert(m["name"].get<std::string>());
  CHECK(names.count("megabyte"));
  CHECK(names.count("transformer"));
  CHECK(names.count("perceiver_ar"));
  auto f = run("flops paper --json");
  REQUIRE(f.status == 0);
  auto rows = json::parse(f.out);
  REQUIRE(rows.size() == 4);
  for (const auto& row : rows) {
    INFO(row.dump());
    CHECK(std::abs(row["flops_forward_per_byte"].get<double>() /
                       row["paper_flops_per_byte"].get<double>() -
                   1) < 0.005);
  }
}

TEST_CASE("megabench run --json prints the records as JSON", "[cli]") {
  const auto dir = megabench::test::fresh_dir("cli_run");
  const auto exp = megabench::test::write_file(dir + "/e.json", R"({
    "name": "cli_json",
    "models": [{"name": "transformer", "config": {"dim": 16, "depth": 1, "seq_len": 16, "dim_head": 8, "heads": 2}}],
    "metrics": ["params", "flops"]
  })");
  auto r = run("run " + exp + " -o " + dir + "/out --json", /*with_stderr=*/false);
  REQUIRE(r.status == 0);
  auto j = json::parse(r.out);
  CHECK(j["ok"] == 1);
  REQUIRE(j["records"].size() == 1);
  CHECK(j["records"][0]["metrics"]["params_total"].get<int64_t>() > 0);
  // The context record names the allocator the binary runs with (CMakeLists.txt:
  // MEGABENCH_ALLOCATOR): tcmalloc where it was linked in, else glibc's, tuned.
  std::ifstream in(dir + "/out/results.jsonl");
  std::string first;
  REQUIRE(std::getline(in, first));
  CHECK(json::parse(first)["provenance"]["allocator"] == MEGABENCH_BINARY_ALLOCATOR);
#if defined(__x86_64__)
  // Denormals flushed by default, in the parent and in the point's worker process
  // (harness/measure/denormals.h); MEGABENCH_DENORMALS=keep keeps them.
  CHECK(json::parse(first)["provenance"]["denormals"] == "flushed");
  CHECK(j["records"][0]["provenance"]["denormals"] == "flushed");
  ::setenv("MEGABENCH_DENORMALS", "keep", 1);
  auto kept = run("run " + exp + " -o " + dir + "/kept --json", /*with_stderr=*/false);
  ::unsetenv("MEGABENCH_DENORMALS");
  REQUIRE(kept.status == 0);
  auto jk = json::parse(kept.out);
  REQUIRE(jk["records"].size() == 1);
  CHECK(jk["records"][0]["provenance"]["denormals"] == "kept");
#endif
  auto bad = run("run " + exp + " --set models[0].config.dim=-3 --json");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.out, Catch::Contains("transformer.dim"));
}

TEST_CASE("megabench report --claims --json prints the verdicts and writes nothing", "[cli]") {
  // Two committed claims, judged from the committed results (paths from the repository root).
  const auto dir = megabench::test::fresh_dir("cli_claims");
  const auto all = json::parse(megabench::test::read_text(source_path("results/claims.json")));
  const auto file = megabench::test::write_file(
      dir + "/claims.json", json{{"claims", {all["claims"][0], all["claims"][3]}}}.dump());
  auto r = megabench::test::run_command("cd " + source_path("") + " && " + MEGABENCH_BINARY +
                                        " report --claims " + file + " --json 2>/dev/null");
  REQUIRE(r.status == 0);
  const auto printed = json::parse(r.out);
  const auto judged = megabench::report::judge_claims(file, source_path(""));
  REQUIRE(printed.size() == 2);
  for (size_t i = 0; i < judged.size(); ++i) {
    CHECK(printed[i]["id"] == judged[i].id);
    CHECK(printed[i]["verdict"] == judged[i].verdict);
    CHECK(printed[i]["ours"] == judged[i].ours);
  }
  CHECK_FALSE(std::filesystem::exists(dir + "/verdicts.md"));
}

TEST_CASE("megabench run --dry-run lists a CUDA experiment's points on any machine", "[cli]") {
  const auto exp = source_path("experiments/gpu_training.json");
  auto dry = run("run " + exp + " --dry-run --out " + temp_path("gpu_dry"));
  INFO(dry.out);
  CHECK(dry.status == 0);
  CHECK(dry.out.find("megabyte/megabyte.local_attn_kernel=generic") != std::string::npos);
  CHECK(dry.out.find("megabyte/megabyte.local_attn_kernel=cuda") != std::string::npos);
  if (!torch::cuda::is_available()) {
    // Without a GPU the real run stops before measuring anything, naming the field.
    const auto out = temp_path("gpu_run");
    auto r = run("run " + exp + " --out " + out);
    INFO(r.out);
    CHECK(r.status == 2);
    CHECK(r.out.find("device") != std::string::npos);
    CHECK(r.out.find("no CUDA device") != std::string::npos);
    CHECK(::access((out + "/results.jsonl").c_str(), F_OK) != 0);
  }
}
