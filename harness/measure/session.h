#pragma once
// The two ways a metric runs a model, written once:
//
//   TrainSession train(model, run);            // train mode, a fresh AdamW, loss scaling for fp16
//   torch::Tensor loss = train.step(x);        // forward under autocast, backward, clip, step
//
//   { EvalScope eval(model, run); model.logits(x); }   // eval mode, no grad, autocast
#include <torch/torch.h>

#include <memory>

#include "harness/api/model.h"
#include "harness/config/run_settings.h"
#include "harness/measure/optimizer.h"
#include "harness/measure/precision.h"

namespace megabench {

class TrainSession {
 public:
  /// Puts the model in train mode with a fresh AdamW (train.lr, train.weight_decay, train.betas,
  /// train.optimizer: fused or LibTorch's).
  /// total_steps > 0 lets the learning rate follow train.warmup_steps and train.schedule
  /// (scheduled_lr); 0: warmup only.
  TrainSession(ByteModel& model, const RunSettings& run, int64_t total_steps = 0);
  /// One step on bytes (B, T): zero_grad, the step's learning rate, loss under autocast,
  /// backward, unscale, clip (train.grad_clip > 0), AdamW step (skipped when fp16 gradients
  /// overflow). The detached loss. A NaN / Inf loss throws, naming the step, unless
  /// train.stop_on_nonfinite is false.
  torch::Tensor step(const torch::Tensor& x);
  /// Drops the gradients, so a later metric starts clean.
  void clear_gradients() { model_.module().zero_grad(); }
  /// Steps taken so far.
  int64_t steps() const { return steps_; }
  /// The learning rate the last step used (train.lr before the first).
  double lr() const;
  /// The optimizer's state and the step count, for a resumable checkpoint (fp16 loss scaling
  /// restarts from its initial scale).
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  ByteModel& model_;
  torch::Device device_;
  torch::ScalarType dtype_;
  double grad_clip_;
  TrainSettings train_;
  int64_t total_steps_;
  bool stop_on_nonfinite_;
  int64_t steps_ = 0;
  std::unique_ptr<torch::optim::AdamW> opt_;
  LossScaler scaler_;
};

class EvalScope {
 public:
  /// Eval mode, no gradients and autocast in the run's dtype for the scope's lifetime.
  EvalScope(ByteModel& model, const RunSettings& run);

 private:
  torch::NoGradGuard no_grad_;
  AutocastGuard autocast_;
};

/// Fails with `where` and the value when a loss is not finite.
void check_finite(const torch::Tensor& loss, const std::string& where);

}  // namespace megabench
