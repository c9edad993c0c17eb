#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "tests/support.h"

TEST_CASE("LibTorch matmul agrees with a hand-computed product", "[smoke]") {
  auto a = torch::tensor({{1.0, 2.0}, {3.0, 4.0}}, torch::kFloat64);
  auto b = torch::tensor({{5.0, 6.0}, {7.0, 8.0}}, torch::kFloat64);
  auto c = torch::matmul(a, b);
  REQUIRE(c[0][0].item<double>() == 19.0);
  REQUIRE(c[0][1].item<double>() == 22.0);
  REQUIRE(c[1][0].item<double>() == 43.0);
  REQUIRE(c[1][1].item<double>() == 50.0);
}

TEST_CASE("CUDA matmul agrees with CPU", "[gpu]") {
  MEGABENCH_REQUIRE_CUDA();
  auto a = torch::randn({64, 64});
  auto b = torch::randn({64, 64});
  auto cpu = torch::matmul(a, b);
  auto gpu = torch::matmul(a.cuda(), b.cuda()).cpu();
  REQUIRE(torch::allclose(cpu, gpu, 1e-4, 1e-4));
}
