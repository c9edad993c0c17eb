// harness/measure/profiler.h: the component breakdown from profile::Range, on CPU through
// LibTorch's profiler and on CUDA through CUPTI, and the guard that keeps the two apart.
#include <catch2/catch.hpp>
#include <string>

#include "harness/measure/profiler.h"
#include "support.h"

namespace {

using megabench::Profiler;
using megabench::ProfileResult;
namespace profile = megabench::profile;

// A small model-shaped workload: each component does real work inside its range.
void workload(torch::Device device) {
  auto opts = torch::TensorOptions().device(device);
  auto x = torch::randn({64, 128}, opts);
  auto w = torch::randn({128, 128}, opts);
  for (int step = 0; step < 3; ++step) {
    {
      profile::Range r("embedding");
      x = x + torch::randn({64, 128}, opts);
    }
    {
      profile::Range r("global_attention");
      auto s = torch::matmul(x, x.t()).softmax(-1);
      x = torch::matmul(s, x);
      {
        profile::Range inner("local_attention");  // nested: its time is not global_attention's
        x = torch::matmul(torch::matmul(x, x.t()).softmax(-1), x);
      }
    }
    {
      profile::Range r("feedforward");
      x = torch::gelu(torch::matmul(x, w)) / 128;
    }
  }
  x.sum().item<float>();
}

}  // namespace

TEST_CASE("CPU profiler breaks the region down by Range", "[profiler]") {
  Profiler prof(torch::kCPU);
  prof.start();
  workload(torch::kCPU);
  ProfileResult r = prof.stop();
  CHECK(r.source == "libtorch");
  CHECK(r.total_ms > 0);
  for (const char* name : {"embedding", "global_attention", "local_attention", "feedforward"}) {
    INFO(name);
    REQUIRE(r.component_ms.count(name) == 1);
    CHECK(r.component_ms.at(name) > 0);
  }
  CHECK(r.component_ms.count("sampling") == 0);  // never entered
  // Exclusive times fit inside the region's wall time.
  double sum = 0;
  for (const auto& [name, ms] : r.component_ms) {
    if (name != "other") sum += ms;
  }
  CHECK(sum <= r.total_ms * 1.05);
  // The ops carry their innermost range.
  bool saw_mm_in_ff = false, saw_mm_in_local = false;
  for (const auto& k : r.kernels) {
    CHECK(k.kind == "cpu_op");
    CHECK(k.end_ns >= k.start_ns);
    if (k.name == "aten::matmul" || k.name == "aten::mm") {
      saw_mm_in_ff |= k.component == "feedforward";
      saw_mm_in_local |= k.component == "local_attention";
    }
  }
  CHECK(saw_mm_in_ff);
  CHECK(saw_mm_in_local);
  const auto j = r.to_json();
  CHECK(j.at("component_ms").at("feedforward").get<double>() > 0);
  CHECK(j.at("kernels").size() == r.kernels.size());
  CHECK_THAT(r.table_markdown(), Catch::Contains("| global_attention |"));
}

TEST_CASE("Range is a no-op without a profiler", "[profiler]") {
  CHECK(profile::active_mode() == profile::Mode::kOff);
  profile::Range r("feedforward");
  CHECK(profile::active_mode() == profile::Mode::kOff);
}

TEST_CASE("CUPTI and LibTorch's profiler never run at once", "[profiler]") {
  profile::acquire(profile::Mode::kCupti);  // as the CUPTI profiler does in start()
  Profiler prof(torch::kCPU);
  CHECK_THROWS_WITH(prof.start(), Catch::Contains("never run at once"));
  profile::release(profile::Mode::kCupti);
  prof.start();
  CHECK_THROWS_WITH(prof.start(), Catch::Contains("start() called twice"));
  CHECK_THROWS_WITH(profile::acquire(profile::Mode::kCupti),
                    Catch::Contains("LibTorch's profiler is active"));
  prof.stop();
  CHECK_THROWS_WITH(prof.stop(), Catch::Contains("without start()"));
  CHECK(profile::active_mode() == profile::Mode::kOff);
}

TEST_CASE("CUDA profiling without CUPTI or a GPU fails with a clear message", "[profiler]") {
  std::string why;
  if (Profiler::cupti_available(&why)) {
    SUCCEED("CUPTI is available here; the [gpu] test covers it");
    return;
  }
  CHECK_FALSE(why.empty());
  CHECK_THROWS_WITH(Profiler(torch::Device(torch::kCUDA)),
                    Catch::Contains("cannot profile on cuda") && Catch::Contains(why));
}

TEST_CASE("CUPTI profiler records kernels and attributes them to ranges", "[profiler][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  std::string why;
  REQUIRE(Profiler::cupti_available(&why));
  workload(torch::kCUDA);  // warm-up: cuBLAS handles, allocator
  Profiler prof(torch::kCUDA);
  prof.start();
  auto host = torch::randn({256, 256});
  auto dev = host.to(torch::kCUDA);  // one HtoD copy, outside any range
  workload(torch::kCUDA);
  ProfileResult r = prof.stop();
  CHECK(r.source == "cupti");
  CHECK(r.total_ms > 0);
  for (const char* name : {"embedding", "global_attention", "local_attention", "feedforward"}) {
    INFO(name);
    REQUIRE(r.component_ms.count(name) == 1);
    CHECK(r.component_ms.at(name) > 0);
  }
  bool saw_kernel = false, saw_memcpy = false;
  for (const auto& k : r.kernels) {
    CHECK(k.end_ns >= k.start_ns);
    if (k.kind == "kernel") {
      saw_kernel = true;
      CHECK(k.grid[0] > 0);
      CHECK(k.block[0] > 0);
      CHECK(k.registers > 0);
    }
    if (k.kind == "memcpy" && k.bytes == 256 * 256 * 4) {
      saw_memcpy = true;
      CHECK(k.component == "other");
    }
  }
  CHECK(saw_kernel);
  CHECK(saw_memcpy);
  // The LibTorch profiler cannot start while CUPTI runs.
  Profiler cupti_prof(torch::kCUDA);
  cupti_prof.start();
  Profiler cpu_prof(torch::kCPU);
  CHECK_THROWS_WITH(cpu_prof.start(), Catch::Contains("never run at once"));
  cupti_prof.stop();
}

TEST_CASE("CPU profiler counts matrix-product FLOPs from the shapes", "[profiler]") {
  auto a = torch::randn({32, 48});
  auto b = torch::randn({48, 20});
  auto c = torch::randn({3, 8, 5});
  auto d = torch::randn({3, 5, 7});
  auto lin = torch::nn::Linear(48, 16);
  megabench::Profiler prof(torch::kCPU);
  prof.start();
  torch::mm(a, b);   // 2 * 32 * 48 * 20
  torch::bmm(c, d);  // 2 * 3 * 8 * 5 * 7
  lin(a);            // addmm: 2 * 32 * 48 * 16
  (a + 1).relu();    // elementwise: not counted
  auto r = prof.stop();
  const double expected = 2.0 * 32 * 48 * 20 + 2.0 * 3 * 8 * 5 * 7 + 2.0 * 32 * 48 * 16;
  CHECK(r.measured_matmul_flops == expected);
}
