// Hidden benchmark cases (not run by ctest): `megabench_tests "[.bench]"`. They print timings;
// scripts/bench_vs_reference.py runs them beside the Python reference.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "models/megabyte.h"

using namespace megabench;

namespace {
double median_ms(const std::function<void()>& f, int warmup, int repeats) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> ts;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    ts.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}
int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : def;
}
}  // namespace

TEST_CASE("bench: MEGABYTE training step", "[.bench]") {
  torch::set_num_threads(env_int("MEGABENCH_THREADS", 2));
  struct Cfg { const char* name; std::vector<int64_t> dim, depth, msl; };
  for (const auto& c : {Cfg{"readme", {512, 256}, {6, 4}, {1024, 4}}, Cfg{"s3", {256, 128, 64}, {4, 2, 2}, {64, 8, 4}}}) {
    torch::manual_seed(0);
    auto m = MEGABYTE(MEGABYTEOptions(256, c.dim, c.depth, c.msl));
    auto x = torch::randint(0, 256, {1, m->options.total_len()}, torch::kLong);
    double ms = median_ms([&] {
      auto loss = m->forward(x, true);
      loss.backward();
    }, 1, env_int("MEGABENCH_REPEATS", 3));
    std::cout << "BENCH train_step " << c.name << " ms " << ms << std::endl;
  }
}

TEST_CASE("bench: MEGABYTE generation", "[.bench]") {
  torch::set_num_threads(env_int("MEGABENCH_THREADS", 2));
  torch::manual_seed(0);
  const int64_t n = env_int("MEGABENCH_GEN_BYTES", 4096);
  auto m = MEGABYTE(MEGABYTEOptions(256, {512, 256}, {6, 4}, {1024, 4}).context(ContextMode::kReference));
  m->eval();
  for (bool cached : {true, false}) {
    if (!cached && !env_int("MEGABENCH_UNCACHED", 0)) continue;
    auto t0 = std::chrono::steady_clock::now();
    auto out = m->generate({}, n, 1.0, 0.9, 1, cached);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "BENCH generate cached=" << cached << " bytes " << n << " s " << s << " bytes_per_s "
              << n / s << std::endl;
  }
}
