#pragma once
// The metric table: the one list of what a point can measure. Each metric lives in its own file
// under harness/measure/metrics/ and registers itself there:
//
//   MEGABENCH_REGISTER_METRIC(forward, MetricSpec{
//       .name = "forward", .unit = "ms", .help = "...", .order = 30,
//       .needs = kNeedsModel | kNeedsEval,
//       .run = [](MetricContext& ctx) { ... ctx.metrics()["forward_ms"] = ...; }});
//
// The runner (measure/point.cpp) walks the table in `order`; the experiment parser takes the
// known-metric list from it; `megabench list --metrics` prints it. MetricContext is defined by
// the measure layer (measure/context.h): this layer only names it.
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace megabench {

class MetricContext;

/// What a metric needs before it runs (bit flags, for the runner and for `list --metrics`).
enum MetricNeeds : unsigned {
  kNeedsNothing = 0,
  kNeedsModel = 1u << 0,      // a built model on the point's device
  kNeedsTraining = 1u << 1,   // a TrainSession (optimizer, loss scaling, autocast)
  kNeedsEval = 1u << 2,       // an EvalScope (eval mode, no grad, autocast)
  kNeedsGenerator = 1u << 3,  // the model's decoder (cached and uncached generation)
  kNeedsData = 1u << 4,       // the run's byte data (data.*)
};

struct MetricSpec {
  std::string name;  // as listed in an experiment's "metrics"
  std::string unit;  // of its headline value, e.g. "ms", "bytes", "bits/byte"
  std::string help;  // one line for `list --metrics`
  /// Run order within a point: analytical counts first, training last, profiling after all.
  int order = 0;
  unsigned needs = kNeedsNothing;
  /// The metrics it reads, one of which must also be listed (efficiency: forward | train_step).
  std::vector<std::string> needs_one_of;
  /// False for a metric that a run setting turns on instead of the "metrics" list ("profile").
  bool listable = true;
  /// Measures and writes into ctx.metrics(); throws on failure (the point becomes "failed").
  std::function<void(MetricContext&)> run;
};

class MetricRegistry {
 public:
  static MetricRegistry& instance();
  void add(MetricSpec spec);  // throws std::logic_error on a duplicate name
  const MetricSpec& get(const std::string& name) const;  // throws naming the known metrics
  bool has(const std::string& name) const;
  /// Every metric, in run order.
  std::vector<const MetricSpec*> all() const;
  /// The names an experiment may list, in run order.
  std::vector<std::string> listable_names() const;

 private:
  std::map<std::string, MetricSpec> specs_;
};

struct MetricRegistration {
  explicit MetricRegistration(MetricSpec spec) { MetricRegistry::instance().add(std::move(spec)); }
};

#define MEGABENCH_REGISTER_METRIC(id, ...) \
  static ::megabench::MetricRegistration megabench_metric_registration_##id(__VA_ARGS__)

}  // namespace megabench
