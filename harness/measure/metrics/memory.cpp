// "memory": peak memory above the weights of one forward pass and of one training step.
#include "harness/measure/memory.h"

#include "harness/measure/context.h"
#include "harness/measure/session.h"

namespace megabench {
namespace {

void run_memory(MetricContext& ctx) {
  ByteModel& model = ctx.model();
  memory::PeakTracker tracker(ctx.device());
  auto x = ctx.random_bytes(ctx.run().batch, model.seq_len());
  model.module().eval();
  tracker.reset();
  {
    EvalScope eval(model, ctx.run());
    model.logits(x);
  }
  ctx.metrics()["peak_memory_forward_bytes"] = tracker.peak_above_baseline();
  TrainSession train(model, ctx.run());
  tracker.reset();
  train.step(x);
  ctx.metrics()["peak_memory_train_bytes"] = tracker.peak_above_baseline();
  train.clear_gradients();
}

}  // namespace

MEGABENCH_REGISTER_METRIC(
    memory,
    MetricSpec{
        .name = "memory",
        .unit = "bytes",
        .help = "peak memory above the weights: peak_memory_forward_bytes, peak_memory_train_bytes",
        .order = 30,
        .needs = kNeedsModel | kNeedsEval | kNeedsTraining,
        .run = run_memory});

}  // namespace megabench
