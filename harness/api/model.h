#pragma once
// The small interface through which the harness sees a model. Models themselves (models/,
// baselines/) know nothing of it: each model's *_plugin.cpp adapts it and registers it.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "models/decoding.h"  // SamplingOptions

namespace megabench {

/// Analytical FLOPs per byte of the forward pass (a multiply-add counts 2). Training is 3x.
struct FlopBreakdown {
  double attention = 0;     // score (QK^T) and value (AV) products
  double dense = 0;         // feedforward, attention projections, patch and stage projections
  double embed_logits = 0;  // embeddings and the output projection to logits
  double total() const { return attention + dense + embed_logits; }
};

/// Parameter counts. `groups` is per stage (MEGABYTE) or per part (baselines), in model order.
struct ParamCount {
  int64_t total = 0;
  int64_t non_embedding = 0;  // total minus token/position embeddings and the logits projection
  std::vector<std::pair<std::string, int64_t>> groups;
};

/// Negative log-likelihood in nats of `bytes` (B, L) under next-byte `logits` (B, L, V) whose row
/// t is the distribution of byte t: (B, L).
inline torch::Tensor nll_from_logits(const torch::Tensor& logits, const torch::Tensor& bytes) {
  return -torch::log_softmax(logits, -1)
              .gather(-1, bytes.to(torch::kLong).unsqueeze(-1))
              .squeeze(-1);
}

class ByteModel {
 public:
  virtual ~ByteModel() = default;

  /// The underlying module: parameters, train()/eval(), to(device, dtype), named_parameters().
  virtual torch::nn::Module& module() = 0;

  /// The context in bytes (every model's seq_len option): the longest byte sequence the model
  /// accepts; and the multiple that training lengths must be.
  virtual int64_t seq_len() const = 0;
  virtual int64_t seq_multiple() const { return 1; }
  /// Bytes per global patch for models that group bytes into patches (MEGABYTE), 0 for models
  /// without patches. The strided evaluation and the loss by position within a patch use it.
  virtual int64_t patch_size() const { return 0; }

  /// Negative log-likelihood in nats of every byte the model predicts, (B, N), for int64 bytes
  /// (B, T). Every byte counts, byte 0 and 0x00 bytes included. N == T, except for models that
  /// predict only part of the window (Perceiver AR: its latent positions).
  virtual torch::Tensor byte_nll(const torch::Tensor& bytes) = 0;

  /// Training loss: mean of byte_nll. Models may override with a cheaper equivalent.
  virtual torch::Tensor loss(const torch::Tensor& bytes) { return byte_nll(bytes).mean(); }

  /// Logits for input (B, T), as the references' forward pass returns them: (B, T, V) with row t
  /// the distribution of byte t + 1 -- or, for a model that predicts only part of its window
  /// (Perceiver AR), the rows of the positions it predicts.
  virtual torch::Tensor logits(const torch::Tensor& bytes) = 0;

  /// Samples `n` bytes after `prime` (B, L) and returns the prime followed by them, (B, L + n),
  /// as every model's generate does. Uses the model's KV caches unless opts.use_cache is false.
  virtual torch::Tensor generate(const torch::Tensor& prime, int64_t n,
                                 const SamplingOptions& opts) = 0;
  /// Whether generate() goes on past seq_len bytes (its window slides: Perceiver AR). The
  /// generate metric holds every other model to prime + bytes <= seq_len.
  virtual bool generates_past_seq_len() const { return false; }

  virtual ParamCount params() const = 0;

  /// Models that learn by counting (the n-gram baseline) instead of by gradient steps: fit()
  /// counts the training split, and the bpb metric takes no steps. Default: a gradient model.
  virtual bool learns_by_counting() const { return false; }
  virtual void fit(const std::vector<uint8_t>& /*train*/) {
    throw std::logic_error("fit: this model learns by gradient steps");
  }
};

/// The ByteModel of a module that predicts every byte from a start token, as the byte Transformer
/// and SpaceByte do: Module (a TORCH_MODULE holder built from Options) has forward (logits of
/// bytes 1..L), next_byte_logits (of bytes 0..L-1), loss, generate(prime, n, temperature,
/// filter_thres, use_cache) and options.seq_len(); `count` gives the parameter counts.
template <class Module, class Options>
class StartTokenByteModel : public ByteModel {
 public:
  using Count = ParamCount (*)(const Options&);
  StartTokenByteModel(const Options& o, Count count) : model_(o), count_(count) {}
  torch::nn::Module& module() override { return *model_; }
  int64_t seq_len() const override { return model_->options.seq_len(); }
  torch::Tensor byte_nll(const torch::Tensor& bytes) override {
    return nll_from_logits(model_->next_byte_logits(bytes), bytes);  // (B, L)
  }
  torch::Tensor loss(const torch::Tensor& bytes) override { return model_->loss(bytes); }
  torch::Tensor logits(const torch::Tensor& bytes) override { return model_->forward(bytes); }
  torch::Tensor generate(const torch::Tensor& prime, int64_t n, const SamplingOptions& o) override {
    return model_->generate(prime, n, o.temperature, o.filter_thres, o.use_cache);
  }
  ParamCount params() const override { return count_(model_->options); }

 private:
  Module model_;
  Count count_;
};

}  // namespace megabench
