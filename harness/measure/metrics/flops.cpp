// "flops": analytical FLOPs per byte of the forward pass and of training (3x), by part.
#include "harness/api/flops.h"

#include "harness/measure/context.h"

namespace megabench {

MEGABENCH_REGISTER_METRIC(flops,
                          MetricSpec{.name = "flops",
                                     .unit = "FLOP/byte",
                                     .help = "analytical FLOPs per byte: flops_forward_per_byte, "
                                             "its attention / dense / embed_logits "
                                             "parts, flops_train_per_byte (3x)",
                                     .order = 20,
                                     .run = [](MetricContext& ctx) {
                                       const auto values = flops::flop_metrics(
                                           ctx.flops());  // kept alive: items() refers to it
                                       for (const auto& [name, value] : values.items())
                                         ctx.metrics()[name] = value;
                                     }});

}  // namespace megabench
