// Hidden benchmark cases, not run by CTest: `megabench_tests "[.bench]"`. They print one
// "BENCH ..." line per measurement; scripts/bench_vs_reference.py runs them beside the Python
// reference in the same run. The config comes from MEGABENCH_BENCH_CONFIG as
// "dim,dim;depth,depth;len,len" (default: the reference README's (512, 256), (6, 4), (1024, 4)),
// the attention path from MEGABENCH_BENCH_ATTENTION ("explicit", the default, or "sdpa").
#include <torch/torch.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "models/megabyte.h"

using namespace megabench;

namespace {
int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : def;
}

MEGABYTEOptions bench_options() {
  const char* env = std::getenv("MEGABENCH_BENCH_CONFIG");
  std::string text = env ? env : "512,256;6,4;1024,4";
  std::vector<std::vector<int64_t>> parts;
  std::stringstream groups(text);
  std::string group;
  while (std::getline(groups, group, ';')) {
    std::vector<int64_t> values;
    std::stringstream items(group);
    std::string item;
    while (std::getline(items, item, ',')) values.push_back(std::stoll(item));
    parts.push_back(values);
  }
  REQUIRE(parts.size() == 3);
  // The third group is the reference's max_seq_len: global patches, then the patch lengths.
  int64_t seq_len = 1;
  for (auto n : parts[2]) seq_len *= n;
  return MEGABYTEOptions(256, parts[0], parts[1], seq_len,
                         std::vector<int64_t>(parts[2].begin() + 1, parts[2].end()))
      .context(ContextMode::kReference)
      .attention(attention_path(std::getenv("MEGABENCH_BENCH_ATTENTION")
                                    ? std::getenv("MEGABENCH_BENCH_ATTENTION")
                                    : "explicit",
                                "MEGABENCH_BENCH_ATTENTION"));
}
}  // namespace

TEST_CASE("bench: MEGABYTE training step", "[.bench]") {
  torch::set_num_threads(env_int("MEGABENCH_THREADS", 2));
  torch::manual_seed(0);
  auto m = MEGABYTE(bench_options());
  auto x = torch::randint(0, 256, {1, m->options.seq_len()}, torch::kLong);
  std::vector<double> ts;
  for (int i = 0; i < 1 + env_int("MEGABENCH_REPEATS", 3); ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto loss = m->forward(x, /*return_loss=*/true);
    loss.backward();
    if (i > 0)
      ts.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  std::cout << "BENCH train_step_ms " << ts[ts.size() / 2] << " min " << ts.front() << std::endl;
}

TEST_CASE("bench: MEGABYTE generation", "[.bench]") {
  torch::set_num_threads(env_int("MEGABENCH_THREADS", 2));
  torch::manual_seed(0);
  auto m = MEGABYTE(bench_options());
  m->eval();
  const int64_t n = env_int("MEGABENCH_GEN_BYTES", static_cast<int>(m->options.seq_len()));
  const bool cached = env_int("MEGABENCH_UNCACHED", 0) == 0;
  auto t0 = std::chrono::steady_clock::now();
  auto out = m->generate({}, n, 1.0, 0.9, 1, cached);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(out.size(1) == n);
  std::cout << "BENCH generate_s " << s << " bytes " << n << " cached " << cached << std::endl;
}
