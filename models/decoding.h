#pragma once
// One decoder interface and one sample loop for every model. A model's Decoder turns a prime into
// the logits of the next byte and then takes one byte at a time; decode() samples from it with the
// references' semantics (top-k, temperature, Gumbel-max; kernels/sampling.h). The byte-id check
// that every model's input goes through lives here too.
//
//   auto decoder = model->decoder(/*use_cache=*/true);            // MEGABYTE, ByteTransformer,
//   PerceiverAR auto out = decode(*decoder, prime, 64, SamplingOptions{});   // (B, L + 64)
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "kernels/sampling.h"

namespace megabench {

using kernels::check_sampling;
using kernels::gumbel_sample;
using kernels::sample_next;
using kernels::top_k_filter;

/// How decode() samples: the reference's top-k (keep max(int((1 - filter_thres) * V), 1) logits),
/// then Gumbel-max at `temperature`; temperature 0 is greedy.
struct SamplingOptions {
  /// Softmax temperature; 0 = greedy (argmax). Default 1.
  double temperature = 1.0;
  /// Top-k threshold of the references. Default 0.9 (keeps 25 of 256 logits).
  double filter_thres = 0.9;
  /// false: rerun the whole sequence for every byte, as the references do. Default true.
  bool use_cache = true;
};

/// Incremental decoding of one model. Implementations keep their KV caches (or, uncached, the
/// sequence so far) between the calls.
class Decoder {
 public:
  virtual ~Decoder() = default;
  /// Starts from prime (B, L), L >= 0, int64 on the model's device: the logits of byte L (B, V).
  virtual torch::Tensor begin(const torch::Tensor& prime) = 0;
  /// Appends one byte per row (B): the logits of the byte after it (B, V).
  virtual torch::Tensor append(const torch::Tensor& byte) = 0;
};

/// The cached decoder of a model with a byte step: Model::begin(batch) returns a State whose
/// empty_logits (B, V) are the distribution of byte 0, and Model::append(State&, byte (B)) returns
/// the next byte's logits (B, V). The prime goes through the step one byte at a time. The model
/// must outlive the decoder.
template <class Model, class State>
class CachedStepDecoder : public Decoder {
 public:
  explicit CachedStepDecoder(Model& model) : model_(model) {}
  torch::Tensor begin(const torch::Tensor& prime) override {
    state_ = model_.begin(prime.size(0));
    torch::Tensor logits = state_.empty_logits;  // (B, V)
    for (int64_t t = 0; t < prime.size(1); ++t) logits = append(prime.select(1, t));
    return logits;
  }
  torch::Tensor append(const torch::Tensor& byte) override { return model_.append(state_, byte); }

 private:
  Model& model_;
  State state_;
};

/// The references' uncached decoding: every byte reruns the model on the whole sequence.
/// next_logits maps the sequence so far (B, T), T >= 0, to the logits of byte T (B, V).
class RerunDecoder : public Decoder {
 public:
  using NextLogits = std::function<torch::Tensor(const torch::Tensor& seq)>;
  explicit RerunDecoder(NextLogits next_logits) : next_logits_(std::move(next_logits)) {}
  torch::Tensor begin(const torch::Tensor& prime) override;
  torch::Tensor append(const torch::Tensor& byte) override;

 private:
  NextLogits next_logits_;
  torch::Tensor seq_;  // (B, T) the sequence so far
};

/// The decoder of a model that predicts byte 0 from a start token (the byte Transformer,
/// SpaceByte, MEGABYTE's paper formulation): with the cache, CachedStepDecoder over
/// Model::begin/append; without it, Model::forward (B, L) -> (B, L, V) over the whole sequence for
/// every byte, the empty sequence's logits from Model::begin. The model must outlive the decoder.
template <class Model, class State>
std::unique_ptr<Decoder> start_token_decoder(Model& model, bool use_cache);

/// The one sample loop: samples n bytes after prime (B, L) and returns prime and them, (B, L + n),
/// int64. The random draws happen in sampling order, one (B, V) uniform per byte, so a fixed seed
/// gives the same bytes cached or not. The last byte is not appended (nothing reads its logits).
/// Runs under InferenceMode.
torch::Tensor decode(Decoder& decoder, const torch::Tensor& prime, int64_t n,
                     const SamplingOptions& options);

/// Checks that ids is a defined integer tensor whose values lie in [0, num_tokens) and returns it
/// as int64. `where` names the input in the message, e.g. "MEGABYTE: ids". Shapes are the caller's.
torch::Tensor check_byte_ids(const torch::Tensor& ids, int64_t num_tokens, const char* where);

/// A start-token model's generate(): checks prime (B, L) (batch > 0, byte ids below num_tokens),
/// moves it to `device` and samples `length` bytes (default: until seq_len) from `decoder`.
/// `where` names the model in errors ("SpaceByte: prime length 9 + length 8 exceeds seq_len 16").
torch::Tensor generate_until_full(Decoder& decoder, const torch::Tensor& prime,
                                  std::optional<int64_t> length, int64_t seq_len,
                                  int64_t num_tokens, const torch::Device& device,
                                  const std::string& where, const SamplingOptions& options);

template <class Model, class State>
std::unique_ptr<Decoder> start_token_decoder(Model& model, bool use_cache) {
  if (use_cache) return std::make_unique<CachedStepDecoder<Model, State>>(model);
  return std::make_unique<RerunDecoder>([&model](const torch::Tensor& seq) {
    if (seq.size(1) == 0) return model.begin(seq.size(0)).empty_logits;
    return model.forward(seq).select(1, seq.size(1) - 1);  // (B, V)
  });
}

}  // namespace megabench
