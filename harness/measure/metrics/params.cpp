// "params": parameter counts from the typed options alone (no allocation).
#include "harness/measure/context.h"

namespace megabench {
namespace {

void run_params(MetricContext& ctx) {
  if (!ctx.spec().params)
    throw std::runtime_error("model '" + ctx.point().model + "' does not count its parameters");
  const ParamCount pc = ctx.spec().params(ctx.options());
  ctx.metrics()["params_total"] = pc.total;
  ctx.metrics()["params_non_embedding"] = pc.non_embedding;
  for (const auto& [group, n] : pc.groups) ctx.metrics()["params_" + group] = n;
}

}  // namespace

MEGABENCH_REGISTER_METRIC(
    params,
    MetricSpec{
        .name = "params",
        .unit = "parameters",
        .help =
            "parameter counts from the config: params_total, params_non_embedding, params_<group>",
        .order = 10,
        .run = run_params});

}  // namespace megabench
