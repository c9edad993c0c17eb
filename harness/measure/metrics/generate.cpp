// "generate": timed sampling of generate.bytes after a random prime, with and without KV caches.
#include "harness/measure/context.h"
#include "harness/measure/precision.h"
#include "harness/measure/session.h"
#include "harness/measure/timing.h"

namespace megabench {
namespace {

void run_generate(MetricContext& ctx) {
  ByteModel& model = ctx.model();
  const GenerateSettings& g = ctx.run().generate;
  const int64_t n = g.bytes, T = model.seq_len();
  if (g.prime + n > T && !model.generates_past_seq_len()) {
    throw std::runtime_error("generate: prime " + std::to_string(g.prime) + " + bytes " +
                             std::to_string(n) + " exceed the model's seq_len " +
                             std::to_string(T));
  }
  cast_inference_weights(model.module(), g.weights);
  ctx.metrics()["generate_weight_bytes"] = weight_bytes(model.module());
  EvalScope eval(model, ctx.run());
  auto prime = ctx.random_bytes(1, g.prime);
  SamplingOptions so;
  so.temperature = g.temperature;
  so.filter_thres = g.filter_thres;
  so.use_cache = true;
  const Timing cached = ctx.time([&] { model.generate(prime, n, so); }, g.warmup, g.repeat);
  auto& m = ctx.metrics();
  ctx.record_timing("generate_ms_per_byte", cached, 1.0 / static_cast<double>(n));
  m["generate_bytes_per_s"] = n / (cached.median_ms * 1e-3);
  // The roofline's bandwidth at this point's thread count (report:
  // generate_read_roofline_fraction).
  m["generate_read_bandwidth_gb_per_s"] = read_bandwidth(ctx.calibration(), ctx.device()) / 1e9;
  if (!g.uncached) return;
  so.use_cache = false;
  const Timing uncached = ctx.time([&] { model.generate(prime, n, so); }, g.warmup, g.repeat);
  ctx.record_timing("generate_uncached_ms_per_byte", uncached, 1.0 / static_cast<double>(n));
  m["generate_uncached_bytes_per_s"] = n / (uncached.median_ms * 1e-3);
  m["generate_cache_speedup"] = uncached.median_ms / cached.median_ms;
}

void run_generate_metric(MetricContext& ctx) {
  run_generate(ctx);
  // The later metrics get the fp32 model back (the cast kept no copy).
  if (ctx.run().generate.weights != "float32") ctx.fresh_model();
}

}  // namespace

MEGABENCH_REGISTER_METRIC(generate,
                          MetricSpec{.name = "generate",
                                     .unit = "ms/byte",
                                     .help = "sampling: generate_ms_per_byte, generate_bytes_per_s "
                                             "(KV-cached), the uncached ones and "
                                             "generate_cache_speedup; generate_weight_bytes "
                                             "(parameters and buffers as generate.weights "
                                             "stores them); generate_read_bandwidth_gb_per_s "
                                             "(the read bandwidth at the point's threads)",
                                     .order = 70,
                                     .needs = kNeedsModel | kNeedsEval | kNeedsGenerator,
                                     .run = run_generate_metric});

}  // namespace megabench
