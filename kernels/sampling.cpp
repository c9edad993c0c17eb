#include "kernels/sampling.h"

#include <algorithm>
#include <limits>

#include "kernels/checks.h"
#include "kernels/cuda_launch.h"
#include "kernels/profile_range.h"

#ifdef MEGABENCH_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace megabench::kernels {

constexpr int64_t kMaxVocab = 4096;  // the kernel keeps a row in shared memory

torch::Tensor top_k_filter(const torch::Tensor& logits, double thres) {
  const int64_t k = top_k_count(logits.size(-1), thres);
  auto [val, ind] = torch::topk(logits, k);
  auto probs = torch::full_like(logits, -std::numeric_limits<double>::infinity());
  probs.scatter_(1, ind, val);
  return probs;
}

torch::Tensor gumbel_sample(const torch::Tensor& logits, double temperature) {
  return gumbel_sample(logits, temperature, torch::zeros_like(logits).uniform_(0, 1));
}

torch::Tensor gumbel_sample(const torch::Tensor& logits, double temperature,
                            const torch::Tensor& noise) {
  if (temperature == 0.0) return logits.argmax(-1);
  auto gumbel = -torch::log((-torch::log(noise.clamp_min(1e-20))).clamp_min(1e-20));
  return (logits / temperature + gumbel).argmax(-1);
}

void check_sampling(const char* where, double temperature, double filter_thres) {
  TORCH_CHECK(temperature >= 0, where, ": temperature must be >= 0, got ", temperature);
  TORCH_CHECK(filter_thres >= 0 && filter_thres <= 1, where,
              ": filter_thres must lie in [0, 1], got ", filter_thres);
}

torch::Tensor sample_next(const torch::Tensor& logits, double temperature, double filter_thres) {
  profile::Range r("sampling");
  return gumbel_sample(top_k_filter(logits, filter_thres), temperature);
}

int64_t top_k_count(int64_t vocab, double filter_thres) {
  return std::max<int64_t>(static_cast<int64_t>((1.0 - filter_thres) * static_cast<double>(vocab)),
                           1);
}

torch::Tensor fused_sample_reference(const torch::Tensor& logits, double temperature,
                                     double filter_thres, const torch::Tensor& noise) {
  return gumbel_sample(top_k_filter(logits, filter_thres), temperature, noise);
}

namespace {

void check_sample_inputs(const torch::Tensor& logits, double temperature, double filter_thres) {
  constexpr const char* fn = "fused_sample";
  TORCH_CHECK(logits.defined() && logits.dim() == 2, fn, ": logits must be (B, V), got ",
              logits.defined() ? logits.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(logits.size(1) >= 1 && logits.size(1) <= kMaxVocab, fn,
              ": vocabulary V = logits.size(1) must be in [1, ", kMaxVocab, "], got ",
              logits.size(1));
  TORCH_CHECK(is_kernel_dtype(logits.scalar_type()), fn,
              ": logits must be float32, float16 or bfloat16, got ", logits.scalar_type());
  check_sampling(fn, temperature, filter_thres);  // the models' limits: thres 1 keeps one logit
  MEGABENCH_CHECK_CONTIGUOUS("fused_sample", logits);
#ifndef MEGABENCH_WITH_CUDA
  TORCH_CHECK(false, fn, ": megabench was built without CUDA; use fused_sample_reference");
#endif
  MEGABENCH_CHECK_CUDA("fused_sample", logits);
}

#ifdef MEGABENCH_WITH_CUDA
torch::Tensor run(const torch::Tensor& logits, double temperature, double filter_thres,
                  const float* noise, uint64_t seed, uint64_t offset, float* noise_out) {
  const c10::cuda::CUDAGuard guard(logits.device());
  auto out = torch::empty({logits.size(0)}, logits.options().dtype(torch::kLong));  // (B)
  const auto dtype = logits.scalar_type() == torch::kFloat16    ? launch::DType::kFloat16
                     : logits.scalar_type() == torch::kBFloat16 ? launch::DType::kBFloat16
                                                                : launch::DType::kFloat32;
  const std::string err = launch::fused_sample(
      dtype, logits.data_ptr(), logits.size(0), static_cast<int>(logits.size(1)),
      static_cast<int>(top_k_count(logits.size(1), filter_thres)), static_cast<float>(temperature),
      noise, seed, offset, noise_out, out.data_ptr<int64_t>(),
      c10::cuda::getCurrentCUDAStream(logits.device().index()).stream());
  TORCH_CHECK(err.empty(), "fused_sample: kernel failed: ", err);
  return out;
}
#endif

}  // namespace

torch::Tensor fused_sample(const torch::Tensor& logits, double temperature, double filter_thres,
                           const torch::Tensor& noise) {
  check_sample_inputs(logits, temperature, filter_thres);
  TORCH_CHECK(noise.defined() && noise.sizes() == logits.sizes(),
              "fused_sample: noise must have the logits' shape ", logits.sizes(), ", got ",
              noise.defined() ? noise.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(noise.scalar_type() == torch::kFloat32 && noise.is_contiguous(),
              "fused_sample: noise must be contiguous float32, got ", noise.scalar_type());
  MEGABENCH_CHECK_SAME_DEVICE("fused_sample", logits, noise);
#ifdef MEGABENCH_WITH_CUDA
  return run(logits, temperature, filter_thres, noise.data_ptr<float>(), 0, 0, nullptr);
#else
  throw std::runtime_error("fused_sample: megabench was built without CUDA");
#endif
}

torch::Tensor fused_sample_philox(const torch::Tensor& logits, double temperature,
                                  double filter_thres, uint64_t seed, uint64_t offset,
                                  torch::Tensor* noise_out) {
  check_sample_inputs(logits, temperature, filter_thres);
#ifdef MEGABENCH_WITH_CUDA
  float* noise_ptr = nullptr;
  if (noise_out) {
    *noise_out = torch::empty(logits.sizes(), logits.options().dtype(torch::kFloat32));
    noise_ptr = noise_out->data_ptr<float>();
  }
  return run(logits, temperature, filter_thres, nullptr, seed, offset, noise_ptr);
#else
  (void)seed, (void)offset, (void)noise_out;
  throw std::runtime_error("fused_sample_philox: megabench was built without CUDA");
#endif
}

}  // namespace megabench::kernels
