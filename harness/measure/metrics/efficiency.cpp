// "efficiency": achieved FLOP/s of the timed training step (else the forward pass) against the
// calibrated matmul peak in the run's dtype.
#include "harness/measure/context.h"

namespace megabench {
namespace {

void run_efficiency(MetricContext& ctx) {
  auto& m = ctx.metrics();
  const double per_byte = ctx.flops().total();
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
