// Metrics the report derives from a point's own record; never written into results.jsonl.
//
// The bandwidth roofline of batch-1 generation. Decoding one byte at batch 1 does one multiply-add
// per operand element it reads (each weight once, each cached key and value once), so it can go no
// faster than the memory bandwidth over the bytes of those elements:
//   elements per byte  = flops_forward_per_byte / 2   (the harness's analytical count)
//   bytes per element  = generate_weight_bytes / params_total   (2 for bf16 weights, 4 for fp32)
//   generate_roofline_bytes_per_s = triad bandwidth / (elements per byte x bytes per element)
//   generate_roofline_fraction    = generate_bytes_per_s / generate_roofline_bytes_per_s
// The bandwidth is the point's calibration triad (STREAM-like, harness/measure/timing.cpp). The
// FLOP count includes the patch models' start position (P + 1 local positions per patch), so the
// prediction is slightly pessimistic for them.
#include "harness/report/internal.h"

namespace megabench::report::detail {

void add_derived_metrics(ResultSet& r) {
  for (auto& p : r.points) {
    if (!p.ok()) continue;
    const auto rate = as_number(metric_of(p, "generate_bytes_per_s"));
    const auto flops = as_number(metric_of(p, "flops_forward_per_byte"));
    const auto weight_bytes = as_number(metric_of(p, "generate_weight_bytes"));
    const auto params = as_number(metric_of(p, "params_total"));
    const auto cal = p.extra.find("calibration");
    if (!rate || !flops || !weight_bytes || !params || *params <= 0 || *flops <= 0 ||
        cal == p.extra.end() || !cal->is_object())
      continue;
    const auto triad = as_number(cal->value("triad_gb_per_s", ojson()));
    if (!triad || *triad <= 0) continue;
    const double bytes_read = *flops / 2 * (*weight_bytes / *params);
    const double roofline = *triad * 1e9 / bytes_read;
    p.metrics["generate_roofline_bytes_per_s"] = roofline;
    p.metrics["generate_roofline_fraction"] = *rate / roofline;
  }
}

}  // namespace megabench::report::detail
