// "train_step": timed training steps (forward, backward, clip, AdamW).
#include "harness/measure/context.h"
#include "harness/measure/session.h"

namespace megabench {
namespace {

void run_train_step(MetricContext& ctx) {
  ByteModel& model = ctx.model();
  const int64_t B = ctx.run().batch, T = model.seq_len();
  model.module().train();
  auto x = ctx.random_bytes(B, T);
  TrainSession train(model, ctx.run());
  torch::Tensor loss;
  const Timing t = ctx.time([&] { loss = train.step(x); });
  check_finite(loss, "train_step");
  ctx.record_timing("train_step_ms", t);
  ctx.metrics()["train_bytes_per_s"] = static_cast<double>(B * T) / (t.median_ms * 1e-3);
  train.clear_gradients();
}

}  // namespace

MEGABENCH_REGISTER_METRIC(
    train_step,
    MetricSpec{.name = "train_step",
               .unit = "ms",
               .help = "one training step: train_step_ms (median, _min, _max), train_bytes_per_s",
               .order = 50,
               .needs = kNeedsModel | kNeedsTraining,
               .run = run_train_step});

}  // namespace megabench
