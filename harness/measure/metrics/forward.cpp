// "forward": timed logits of a (batch, seq_len) input under no-grad.
#include "harness/measure/context.h"
#include "harness/measure/session.h"

namespace megabench {
namespace {

void run_forward(MetricContext& ctx) {
  ByteModel& model = ctx.model();
  const int64_t B = ctx.run().batch, T = model.seq_len();
  model.module().eval();
  auto x = ctx.random_bytes(B, T);
  EvalScope eval(model, ctx.run());
  const Timing t = ctx.time([&] { model.logits(x); });
  ctx.record_timing("forward_ms", t);
  ctx.metrics()["forward_bytes_per_s"] = static_cast<double>(B * T) / (t.median_ms * 1e-3);
}

}  // namespace

MEGABENCH_REGISTER_METRIC(
    forward,
    MetricSpec{
        .name = "forward",
        .unit = "ms",
        .help = "forward pass: forward_ms (median, _min, _max of `repeat`), forward_bytes_per_s",
        .order = 40,
        .needs = kNeedsModel | kNeedsEval,
        .run = run_forward});

}  // namespace megabench
