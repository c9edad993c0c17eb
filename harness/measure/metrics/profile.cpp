// "profile" (the run setting "profile": true, not a listed metric): one profiled forward pass and,
// when train_step is measured, one profiled training step, after every timed metric; and a short
// profiled generation for the Chrome trace (profiles/<point>.trace.json). A profiler
// that cannot run does not fail the point: the record gets "profile_error" and a warning.
#include <c10/util/Exception.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#ifdef MEGABENCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "harness/measure/context.h"
#include "harness/measure/profile_markdown.h"
#include "harness/measure/profiler.h"
#include "harness/measure/session.h"

namespace megabench {
namespace {

// A component's exclusive time; 0 when the call never entered it.
double component_ms(const ProfileResult& r, const char* name) {
  const auto it = r.component_ms.find(name);
  return it == r.component_ms.end() ? 0.0 : it->second;
}

double core_ms(const ProfileResult& r) {
  return component_ms(r, "attention_core");
}

// The attention sublayers: the attention core and the stages' ranges it nests in (the components
// are exclusive).
double attention_ms(const ProfileResult& r) {
  return core_ms(r) + component_ms(r, "global_attention") + component_ms(r, "local_attention");
}

// The profiled forward, repeated like any timing: the first call's components and files,
// and attention_forward_ms as the median of every call's attention time, with its samples and CI
// like any timing. Preceded by one unprofiled call, so lazy initialization stays out of it.
ProfileResult profile_forward(MetricContext& ctx, const torch::Tensor& x) {
  ByteModel& model = ctx.model();
  EvalScope eval(model, ctx.run());
  model.logits(x);
  if (ctx.device().is_cuda()) torch::cuda::synchronize();
  ProfileResult r;
  Timing attention, core;
  // As time_repeats: at least `repeat` calls, then more until min_time_ms, at most max_repeat.
  double total = 0;
  for (int64_t i = 0;
       i < ctx.run().repeat || (total < ctx.run().min_time_ms && i < ctx.run().max_repeat); ++i) {
    Profiler prof(ctx.device());
    prof.start();
    model.logits(x);
    ProfileResult ri = prof.stop();
    attention.samples_ms.push_back(attention_ms(ri));
    core.samples_ms.push_back(core_ms(ri));
    total += ri.total_ms;
    if (i == 0) r = std::move(ri);
  }
  auto& m = ctx.metrics();
  for (const auto& [component, ms] : r.component_ms) m["profile_forward_" + component + "_ms"] = ms;
  m["profile_forward_total_ms"] = r.total_ms;
  ctx.record_timing("attention_forward_ms", attention);
  ctx.record_timing("attention_core_forward_ms", core);
  m["attention_forward_share"] = r.total_ms > 0 ? attention_ms(r) / r.total_ms : 0.0;
  if (r.measured_matmul_flops >= 0) {  // what the profiler counted, beside the analytical count
    m["flops_forward_measured_per_byte"] = r.measured_matmul_flops / static_cast<double>(x.numel());
  }
  return r;
}

ProfileResult profile_train_step(MetricContext& ctx, const torch::Tensor& x) {
  TrainSession train(ctx.model(), ctx.run());
  // One step first, unprofiled: the first allocates the optimizer's state (the moments), which
  // the timed steps (after their warmup) do not pay.
  train.step(x);
  Profiler prof(ctx.device());
  prof.start();
  train.step(x);
  if (ctx.device().is_cuda()) torch::cuda::synchronize();
  ProfileResult r = prof.stop();
  for (const auto& [component, ms] : r.component_ms)
    ctx.metrics()["profile_train_step_" + component + "_ms"] = ms;
  ctx.metrics()["profile_train_step_total_ms"] = r.total_ms;
  train.clear_gradients();
  return r;
}

// One profiled cached generation of a few bytes, for the sampling spans of the trace (not timed:
// the generate metric times generation).
ProfileResult profile_generate(MetricContext& ctx) {
  ByteModel& model = ctx.model();
  const int64_t T = model.seq_len(), prime_len = std::min<int64_t>(8, T / 2);
  const int64_t n = std::min<int64_t>(8, T - prime_len);
  EvalScope eval(model, ctx.run());
  auto prime = ctx.random_bytes(1, prime_len);
  SamplingOptions so;
  so.use_cache = true;
  Profiler prof(ctx.device());
  prof.start();
  model.generate(prime, n, so);
  return prof.stop();
}

// profiles/<point>.trace.json: the sections one after another on one timeline (Chrome's JSON
// Object Format: Perfetto and chrome://tracing open it).
json chrome_trace(const Point& p,
                  const std::vector<std::pair<std::string, const ProfileResult*>>& sections) {
  json events = json::array();
  double offset_us = 0;
  int pid = 1;
  for (const auto& [name, r] : sections) {
    for (auto& e : r->chrome_trace_events(pid++, name, offset_us)) events.push_back(std::move(e));
    offset_us += r->total_ms * 1e3 + 1000;  // 1 ms apart
  }
  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData", {{"point", p.name}, {"key", p.key}, {"model", p.model}}}};
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f.flush()) throw std::runtime_error("cannot write " + path);
}

void profile_point(MetricContext& ctx) {
  const Point& p = ctx.point();
  const int64_t B = ctx.run().batch, T = ctx.model().seq_len();
  auto x = ctx.random_bytes(B, T);
  json doc = {{"point", p.name}, {"key", p.key}, {"model", p.model}, {"axes", p.axes}};
  std::ostringstream md;
  md << "# Profile of " << p.name << "\n\n"
     << "One profiled call after the timed metrics; components are the models' profile::Range "
        "names, "
        "times exclusive of nested ranges; \"other\" is time outside any range.\n\n";
  const ProfileResult fwd = profile_forward(ctx, x);
  md << profile_section_markdown(
      "Forward (logits of " + std::to_string(B) + " x " + std::to_string(T) + " bytes)", fwd);
  doc["forward"] = fwd.to_json();
  std::vector<std::pair<std::string, const ProfileResult*>> sections = {{"forward", &fwd}};
  ProfileResult step;
  if (ctx.wants("train_step")) {
    step = profile_train_step(ctx, x);
    md << profile_section_markdown("Training step (forward, backward, clip, AdamW)", step);
    doc["train_step"] = step.to_json();
    sections.emplace_back("train_step", &step);
  }
  const ProfileResult gen = profile_generate(ctx);
  sections.emplace_back("generate (cached, 8 bytes)", &gen);
  std::filesystem::create_directories(ctx.profile_dir());
  const std::string stem = ctx.profile_dir() + "/" + profile_file_stem(p.name);
  write_text(stem + ".md", md.str());
  write_text(stem + ".json", doc.dump(1) + "\n");
  write_text(stem + ".trace.json", chrome_trace(p, sections).dump() + "\n");
  ctx.record().extra["profile_files"] = {stem + ".md", stem + ".json", stem + ".trace.json"};
}

void run_profile(MetricContext& ctx) {
  try {
    profile_point(ctx);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (const auto* ce = dynamic_cast<const c10::Error*>(&e)) what = ce->what_without_backtrace();
#ifdef MEGABENCH_WITH_CUDA
    if (dynamic_cast<const c10::OutOfMemoryError*>(&e))
      c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    ctx.record().extra["profile_error"] = what;
    ctx.record().warnings.push_back("profile: " + what);
  }
}

}  // namespace

MEGABENCH_REGISTER_METRIC(
    profile, MetricSpec{.name = "profile",
                        .unit = "ms",
                        .help = "(run setting \"profile\": true) one profiled forward and training "
                                "step: profile_forward_<component>_ms, "
                                "attention_forward_ms, attention_forward_share, profile files",
                        .order = 90,
                        .needs = kNeedsModel | kNeedsEval | kNeedsTraining,
                        .listable = false,
                        .run = run_profile});

}  // namespace megabench
