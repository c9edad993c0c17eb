#include "models/decoding.h"

#include <vector>

namespace megabench {

torch::Tensor RerunDecoder::begin(const torch::Tensor& prime) {
  seq_ = prime;
  return next_logits_(seq_);
}

torch::Tensor RerunDecoder::append(const torch::Tensor& byte) {
  seq_ = torch::cat({seq_, byte.view({-1, 1})}, 1);  // (B, T + 1)
  return next_logits_(seq_);
}

torch::Tensor decode(Decoder& decoder, const torch::Tensor& prime, int64_t n,
                     const SamplingOptions& options) {
  TORCH_CHECK(prime.defined() && prime.dim() == 2, "decode: prime must have shape (batch, length)");
  TORCH_CHECK(n >= 0, "decode: length must be >= 0, got ", n);
  check_sampling("decode", options.temperature, options.filter_thres);
  c10::InferenceMode inference;        // cheaper than NoGradGuard for decoding
  auto logits = decoder.begin(prime);  // (B, V)
  std::vector<torch::Tensor> sampled;
  sampled.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    auto next = sample_next(logits, options.temperature, options.filter_thres);  // (B)
    sampled.push_back(next);
    if (i + 1 < n) logits = decoder.append(next);
  }
  if (sampled.empty()) return prime;
  return torch::cat({prime, torch::stack(sampled, 1)}, 1);  // (B, L + n)
}

torch::Tensor check_byte_ids(const torch::Tensor& ids, int64_t num_tokens, const char* where) {
  TORCH_CHECK(ids.defined(), where, " is undefined");
  const auto t = ids.scalar_type();
  TORCH_CHECK(!at::isFloatingType(t) && !at::isComplexType(t) && t != torch::kBool, where,
              " must be an integer tensor, got ", t);
  auto out = ids.to(torch::kLong);
  if (out.numel() == 0) return out;
  const int64_t lo = out.min().item<int64_t>(), hi = out.max().item<int64_t>();
  TORCH_CHECK(lo >= 0 && hi < num_tokens, where, " must lie in [0, ", num_tokens,
              "), got values in [", lo, ", ", hi, "]");
  return out;
}

torch::Tensor generate_until_full(Decoder& decoder, const torch::Tensor& prime,
                                  std::optional<int64_t> length, int64_t seq_len,
                                  int64_t num_tokens, const torch::Device& device,
                                  const std::string& where, const SamplingOptions& options) {
  TORCH_CHECK(prime.defined() && prime.dim() == 2 && prime.size(0) > 0, where,
              ": prime must have shape (batch, length) with batch > 0");
  const std::string ids = where + ": prime";
  auto seq = check_byte_ids(prime, num_tokens, ids.c_str()).to(device);
  const int64_t L = seq.size(1);
  const int64_t n = length.value_or(seq_len - L);
  TORCH_CHECK(n >= 0 && L + n <= seq_len, where, ": prime length ", L, " + length ", n,
              " exceeds seq_len ", seq_len);
  return decode(decoder, seq, n, options);
}

}  // namespace megabench
