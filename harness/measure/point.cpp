#include "harness/measure/point.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <cmath>

#ifdef MEGABENCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "harness/api/metrics.h"
#include "harness/measure/context.h"

namespace megabench {
namespace {

PointRecord empty_record(const Point& p) {
  PointRecord r;
  r.key = p.key;
  r.name = p.name;
  r.model = p.model;
  r.label = p.label;
  r.axes = p.axes;
  r.config = p.config();
  return r;
}

// Whether the table's metric runs for this point: listed, or turned on by its run setting.
bool selected(const MetricSpec& m, const RunSettings& run) {
  return m.listable ? run.wants(m.name) : (m.name == "profile" && run.profile);
}

void run_metrics(MetricContext& ctx, const RunSettings& run) {
  if (run.device == "cuda" && !torch::cuda::is_available()) {
    throw std::runtime_error("device cuda: no CUDA device available");
  }
  // Intra-op threads, per point: `threads`, or (0) the process's default, read before any point
  // changed it, so that a point after a threads=1 point is not left at 1. Inter-op threads stay
  // LibTorch's: the harness runs one stream of operators and never forks work with them.
  static const int default_threads = at::get_num_threads();
  at::set_num_threads(run.threads > 0 ? static_cast<int>(run.threads) : default_threads);
  ctx.record().extra["threads"] = {{"intra_op", at::get_num_threads()},
                                   {"inter_op", at::get_num_interop_threads()}};
  torch::manual_seed(static_cast<uint64_t>(run.seed));
  for (const MetricSpec* m : MetricRegistry::instance().all()) {
    if (selected(*m, run)) m->run(ctx);
  }
}

// A non-finite figure (a NaN time, an infinite FLOP rate) is never written as a number: it
// becomes null, with a warning that names it.
void null_non_finite(PointRecord& r) {
  for (auto& [name, v] : r.metrics.items()) {
    if (!v.is_number_float() || std::isfinite(v.get<double>())) continue;
    r.warnings.push_back(name + " was not finite (" + std::to_string(v.get<double>()) +
                         "); recorded as null");
    v = nullptr;
  }
}

}  // namespace

PointRecord failed_record(const Point& point, const std::string& error) {
  PointRecord r = empty_record(point);
  r.status = "failed";
  r.error = error;
  r.extra["harness_overhead"] = {{"timed_ms", 0.0}, {"between_repeats_ms", 0.0}};
  return r;
}

PointRecord measure_point(const Point& p, const json& calibration, const std::string& out_dir) {
  const auto t_point = Clock::now();
  PointRecord record = empty_record(p);
  try {
    MetricContext ctx(p, calibration, out_dir.empty() ? "." : out_dir, record);
    try {
      run_metrics(ctx, p.run);
    } catch (...) {
      record.extra["harness_overhead"] = {{"timed_ms", ctx.timed_ms()},
                                          {"between_repeats_ms", ctx.loop_ms() - ctx.timed_ms()}};
      throw;
    }
    record.extra["harness_overhead"] = {{"timed_ms", ctx.timed_ms()},
                                        {"between_repeats_ms", ctx.loop_ms() - ctx.timed_ms()}};
  } catch (const c10::OutOfMemoryError& e) {
    record.status = "failed";
    record.error = std::string("out of memory: ") + e.what_without_backtrace();
#ifdef MEGABENCH_WITH_CUDA
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  } catch (const c10::Error& e) {
    record.status = "failed";
    record.error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    record.status = "failed";
    record.error = e.what();
  }
  if (!record.extra.contains("harness_overhead")) {
    record.extra["harness_overhead"] = {{"timed_ms", 0.0}, {"between_repeats_ms", 0.0}};
  }
  null_non_finite(record);
  record.elapsed_s = ms_since(t_point) * 1e-3;
  return record;
}

}  // namespace megabench
