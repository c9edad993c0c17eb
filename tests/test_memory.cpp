// Exact CPU memory accounting: live and peak bytes against numel * itemsize of known tensors.
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "harness/measure/allocator.h"
#include "harness/measure/memory.h"
#include "models/layers.h"
#include "tests/support.h"

using megabench::memory::PeakTracker;

namespace {
constexpr int64_t kMiB = int64_t{1} << 20;

// Allocated during static initialisation, before any test can install the tracking allocator.
torch::Tensor& tensor_from_before_install() {
  static torch::Tensor t = torch::ones({1000}, torch::kFloat64);
  return t;
}
const bool kAllocatedEarly = tensor_from_before_install().defined();

torch::Tensor mib_of_floats(int64_t mib) {
  return torch::empty({mib * kMiB / 4}, torch::kFloat32);
}

bool tracked(const torch::Tensor& t) {
  return t.storage().data_ptr().get_deleter() == c10::GetCPUAllocator()->raw_deleter();
}
}  // namespace

TEST_CASE("CPU live and peak bytes follow a known allocation pattern exactly", "[memory]") {
  PeakTracker tracker(torch::kCPU);
  const int64_t base = tracker.baseline_bytes();
  CHECK(tracker.live_bytes() == base);
  CHECK(tracker.peak_bytes() == base);

  auto a = mib_of_floats(1);
  CHECK(a.numel() * a.element_size() == kMiB);
  CHECK(tracker.live_bytes() == base + kMiB);
  auto b = mib_of_floats(3);
  CHECK(tracker.live_bytes() == base + 4 * kMiB);
  a = torch::Tensor();  // free 1 MiB
  CHECK(tracker.live_bytes() == base + 3 * kMiB);
  CHECK(tracker.peak_bytes() == base + 4 * kMiB);
  auto c = mib_of_floats(2);
  CHECK(tracker.live_bytes() == base + 5 * kMiB);
  CHECK(tracker.peak_bytes() == base + 5 * kMiB);
  b = torch::Tensor();
  c = torch::Tensor();
  CHECK(tracker.live_bytes() == base);
  CHECK(tracker.peak_bytes() == base + 5 * kMiB);
  CHECK(tracker.peak_above_baseline() == 5 * kMiB);

  // Sizes that are not a multiple of any alignment count as requested.
  auto odd = torch::empty({13}, torch::kInt16);  // 26 bytes
  CHECK(tracker.live_bytes() == base + 26);
  odd = torch::Tensor();

  tracker.reset();
  CHECK(tracker.peak_bytes() == tracker.live_bytes());
  CHECK(tracker.peak_above_baseline() == 0);
}

TEST_CASE("CPU tracking installs once and keeps the raw interface", "[memory]") {
  megabench::memory::install_cpu_tracking();
  c10::Allocator* alloc = c10::GetCPUAllocator();
  megabench::memory::install_cpu_tracking();
  CHECK(c10::GetCPUAllocator() == alloc);
  REQUIRE(alloc->raw_deleter() != nullptr);

  const int64_t before = megabench::memory::cpu_live_bytes();
  void* p = alloc->raw_allocate(1000);
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);  // the base allocator's alignment survives
  CHECK(megabench::memory::cpu_live_bytes() == before + 1000);
  alloc->raw_deallocate(p);
  CHECK(megabench::memory::cpu_live_bytes() == before);

  auto empty = torch::empty({0}, torch::kFloat32);
  CHECK(megabench::memory::cpu_live_bytes() == before);
}

TEST_CASE("tensors allocated before installation free cleanly and are not counted", "[memory]") {
  REQUIRE(kAllocatedEarly);
  megabench::memory::install_cpu_tracking();
  torch::Tensor& early = tensor_from_before_install();
  CHECK_FALSE(tracked(early));

  const int64_t before = megabench::memory::cpu_live_bytes();
  auto copy = early.clone();  // new storage: counted
  CHECK(tracked(copy));
  CHECK(megabench::memory::cpu_live_bytes() == before + 8000);
  CHECK(copy.sum().item<double>() == 1000.0);
  early.add_(1.0);
  early = torch::Tensor();  // freed by its original deleter; the count does not move
  CHECK(megabench::memory::cpu_live_bytes() == before + 8000);
  copy = torch::Tensor();
  CHECK(megabench::memory::cpu_live_bytes() == before);
}

TEST_CASE("a matmul's peak covers at least its output", "[memory]") {
  auto a = torch::randn({256, 512});
  auto b = torch::randn({512, 384});
  PeakTracker tracker(torch::kCPU);
  auto c = torch::mm(a, b);
  const int64_t out_bytes = c.numel() * c.element_size();
  CHECK(tracker.live_bytes() - tracker.baseline_bytes() >= out_bytes);
  CHECK(tracker.peak_above_baseline() >= out_bytes);
}

TEST_CASE("a Transformer trains under tracking and gives back what it took", "[memory]") {
  megabench::Transformer tr(
      megabench::TransformerOptions(/*dim=*/32, /*depth=*/2).dim_head(8).heads(2));
  auto x = torch::randn({2, 16, 32});
  PeakTracker tracker(torch::kCPU);
  {
    auto y = tr->forward(x);  // (B, T, D)
    CHECK(tracker.peak_above_baseline() >= y.numel() * y.element_size());
    y.pow(2).mean().backward();
  }
  int64_t grad_bytes = 0;
  for (const auto& p : tr->parameters()) {
    REQUIRE(p.grad().defined());
    grad_bytes += p.grad().numel() * p.grad().element_size();
  }
  CHECK(tracker.live_bytes() - tracker.baseline_bytes() == grad_bytes);
  tr->zero_grad(/*set_to_none=*/true);
  CHECK(tracker.live_bytes() == tracker.baseline_bytes());
}

TEST_CASE("CPU counting is exact under concurrent allocation", "[memory]") {
  PeakTracker tracker(torch::kCPU);
  const int64_t base = tracker.baseline_bytes();
  constexpr int kThreads = 4, kRounds = 200;
  constexpr int64_t kBytes = 4096 * 4;
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        auto t = torch::empty({4096}, torch::kFloat32);
        if (!tracked(t)) ok = false;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok);
  CHECK(tracker.live_bytes() == base);
  CHECK(tracker.peak_above_baseline() >= kBytes);
  CHECK(tracker.peak_above_baseline() <= kThreads * kBytes);
}

TEST_CASE("PeakTracker rejects devices it cannot measure", "[memory]") {
  CHECK_THROWS_AS(PeakTracker(torch::Device(torch::kMeta)), std::invalid_argument);
#ifndef MEGABENCH_WITH_CUDA
  CHECK_THROWS_AS(PeakTracker(torch::Device(torch::kCUDA, 0)), std::runtime_error);
#endif
}

TEST_CASE("CUDA peak covers a known allocation", "[memory][gpu]") {
  MEGABENCH_REQUIRE_CUDA();
#ifdef MEGABENCH_WITH_CUDA
  PeakTracker tracker(torch::Device(torch::kCUDA, 0));
  {
    auto t = torch::empty({kMiB / 4},
                          torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA));
    CHECK(tracker.live_bytes() - tracker.baseline_bytes() >= kMiB);
  }
  CHECK(tracker.peak_above_baseline() >= kMiB);
  tracker.reset();
  CHECK(tracker.peak_bytes() == tracker.live_bytes());
#endif
}

namespace {
// The process's resident set in MiB, from /proc/self/statm.
double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / kMiB;
}
}  // namespace

// What the sweep's worker calls between points: memory freed by one point does not stay resident
// for the next, whichever malloc the binary runs with (tcmalloc keeps freed spans cached).
TEST_CASE("release_free_memory gives freed heap memory back to the system", "[memory]") {
  const double before = resident_mib();
  {
    std::vector<std::unique_ptr<char[]>> blocks;  // 512 blocks of 1 MiB, each page touched
    for (int i = 0; i < 512; ++i) {
      blocks.emplace_back(new char[kMiB]);
      std::memset(blocks.back().get(), 1, kMiB);
    }
    INFO("allocator: " << megabench::allocator::name());
    CHECK(resident_mib() > before + 400);
  }
  megabench::allocator::release_free_memory();
  INFO("allocator: " << megabench::allocator::name() << ", resident before " << before
                     << " MiB, after " << resident_mib() << " MiB");
  CHECK(resident_mib() < before + 64);
}
