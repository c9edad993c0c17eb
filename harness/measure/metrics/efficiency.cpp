// "efficiency": achieved FLOP/s of the timed training step (else the forward pass) against the
// calibrated matmul peak in the run's dtype. Bytes/s count the window's bytes; FLOPs count the
// bytes it predicts.
#include "harness/measure/context.h"

namespace megabench {
namespace {

// The bytes a window of seq_len predicts: the analytical FLOPs are per predicted byte, and a model
// that predicts only part of its window (Perceiver AR: its latents) processes seq_len bytes per
// window but is counted for these. As the bpb metric counts them.
double predicted_fraction(MetricContext& ctx) {
  ByteModel& model = ctx.model();
  const int64_t T = model.seq_len();
  torch::NoGradGuard no_grad;
  model.module().eval();
  const int64_t predicted = model.byte_nll(ctx.random_bytes(1, T)).size(1);
  return static_cast<double>(predicted) / static_cast<double>(T);
}

void run_efficiency(MetricContext& ctx) {
  auto& m = ctx.metrics();
  const double per_byte = ctx.flops().total() * predicted_fraction(ctx);
  const double achieved = m.contains("train_step_ms")
                              ? 3 * per_byte * m["train_bytes_per_s"].get<double>()
                              : per_byte * m["forward_bytes_per_s"].get<double>();
  const double peak = matmul_peak(ctx.calibration(), ctx.device(), ctx.dtype());
  m["achieved_flops_per_s"] = achieved;
  m["matmul_peak_flops_per_s"] = peak;
  m["flops_utilization"] = achieved / peak;
}

}  // namespace

MEGABENCH_REGISTER_METRIC(efficiency,
                          MetricSpec{.name = "efficiency",
                                     .unit = "fraction",
                                     .help = "achieved_flops_per_s of train_step (else forward), "
                                             "matmul_peak_flops_per_s, flops_utilization",
                                     .order = 60,
                                     .needs = kNeedsModel,
                                     .needs_one_of = {"forward", "train_step"},
                                     .run = run_efficiency});

}  // namespace megabench
