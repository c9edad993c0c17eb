#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "harness/measure/profiler_internal.h"

namespace megabench {

namespace {

using profiler_detail::kOther;

std::string format_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", ms);
  return buf;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Result

std::string ProfileResult::table_markdown() const {
  std::ostringstream out;
  out << "| component | ms | % of total |\n|---|---:|---:|\n";
  std::vector<std::pair<std::string, double>> rows(component_ms.begin(), component_ms.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [name, ms] : rows) {
    const double pct = total_ms > 0 ? 100.0 * ms / total_ms : 0.0;
    out << "| " << name << " | " << format_ms(ms) << " | " << format_ms(pct) << " |\n";
  }
  out << "| total (" << source << ", " << device << ") | " << format_ms(total_ms) << " | |\n";
  return out.str();
}

nlohmann::json ProfileResult::to_json() const {
  nlohmann::json j;
  j["device"] = device;
  j["source"] = source;
  j["total_ms"] = total_ms;
  if (measured_matmul_flops >= 0) j["measured_matmul_flops"] = measured_matmul_flops;
  j["component_ms"] = component_ms;
  auto& ks = j["kernels"] = nlohmann::json::array();
  for (const auto& k : kernels) {
    nlohmann::json r = {{"name", k.name},           {"kind", k.kind},
                        {"component", k.component}, {"start_ns", k.start_ns},
                        {"end_ns", k.end_ns},       {"duration_ms", k.duration_ms()}};
    if (k.kind == "kernel") {
      r["grid"] = k.grid;
      r["block"] = k.block;
      r["registers"] = k.registers;
      r["shared_memory"] = k.shared_memory;
    } else if (k.kind == "memcpy") {
      r["bytes"] = k.bytes;
    }
    ks.push_back(std::move(r));
  }
  return j;
}

nlohmann::json ProfileResult::chrome_trace_events(int pid, const std::string& section,
                                                  double offset_us) const {
  using nlohmann::json;
  const bool gpu = source == "cupti";
  json ev = json::array();
  ev.push_back(
      {{"ph", "M"}, {"name", "process_name"}, {"pid", pid}, {"args", {{"name", section}}}});
  ev.push_back({{"ph", "M"},
                {"name", "thread_name"},
                {"pid", pid},
                {"tid", 1},
                {"args", {{"name", "components"}}}});
  ev.push_back({{"ph", "M"},
                {"name", "thread_name"},
                {"pid", pid},
                {"tid", 2},
                {"args", {{"name", gpu ? "gpu" : "ops"}}}});
  auto span = [&](const std::string& name, const char* cat, int tid, uint64_t a, uint64_t b) {
    return json{{"name", name},
                {"cat", cat},
                {"ph", "X"},
                {"pid", pid},
                {"tid", tid},
                {"ts", offset_us + static_cast<double>(a) * 1e-3},
                {"dur", static_cast<double>(b > a ? b - a : 0) * 1e-3}};
  };
  for (const auto& r : ranges) ev.push_back(span(r.name, "component", 1, r.start_ns, r.end_ns));
  for (const auto& k : kernels) {
    json e = span(k.name, k.kind.c_str(), 2, k.start_ns, k.end_ns);
    e["args"] = {{"component", k.component}};
    ev.push_back(std::move(e));
  }
  return ev;
}

// ---------------------------------------------------------------------------------------------
// LibTorch's profiler (CPU)

namespace {

namespace tp = torch::autograd::profiler;

struct Event {
  std::string name;
  uint64_t start, end, thread;
  bool is_range;
};

// Turns Kineto's flat event list into the component breakdown: exclusive time per range and the
// top-level ops, each under its innermost enclosing range.
void summarize_cpu(const std::vector<Event>& events_in, ProfileResult& r) {
  std::vector<Event> events = events_in;
  uint64_t t0 = UINT64_MAX;  // Kineto's clock: times are made relative to the first event
  for (const auto& e : events) t0 = std::min(t0, e.start);
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.start != b.start) return a.start < b.start;
    return a.end > b.end;  // parents before the children they contain
  });
  double in_ranges_ms = 0;
  std::vector<const Event*> stack;
  uint64_t thread = 0;
  for (const auto& e : events) {
    if (stack.empty() || e.thread != thread) stack.clear();
    thread = e.thread;
    while (!stack.empty() && stack.back()->end <= e.start) stack.pop_back();
    const Event* range = nullptr;
    bool under_op = false;
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      if ((*it)->is_range) {
        if (!range) range = *it;
      } else if (!range) {
        under_op = true;
      }
    }
    const double ms = static_cast<double>(e.end - e.start) * 1e-6;
    if (e.is_range) {
      r.ranges.push_back(
          {e.name, e.start >= t0 ? e.start - t0 : 0, e.end >= t0 ? e.end - t0 : 0, e.thread});
      r.component_ms[e.name] += ms;
      if (range) {
        r.component_ms[range->name] -= ms;  // exclusive times
      } else {
        in_ranges_ms += ms;
      }
    } else if (!under_op) {
      KernelRecord k;
      k.name = e.name;
      k.kind = "cpu_op";
      k.component = range ? range->name : kOther;
      k.start_ns = e.start >= t0 ? e.start - t0 : 0;
      k.end_ns = e.end >= t0 ? e.end - t0 : 0;
      r.kernels.push_back(std::move(k));
    }
    stack.push_back(&e);
  }
  r.component_ms[kOther] = std::max(0.0, r.total_ms - in_ranges_ms);
  std::sort(r.kernels.begin(), r.kernels.end(),
            [](const KernelRecord& a, const KernelRecord& b) { return a.start_ns < b.start_ns; });
  std::sort(r.ranges.begin(), r.ranges.end(),
            [](const RangeSpan& a, const RangeSpan& b) { return a.start_ns < b.start_ns; });
}

// Set once LibTorch's profiler has been prepared, and so Kineto's config thread started.
std::atomic<bool> g_kineto_started{false};

void libtorch_start() {
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO,
                                                     /*report_input_shapes=*/true,
                                                     /*profile_memory=*/false,
                                                     /*with_stack=*/false, /*with_flops=*/true);
  const std::set<torch::profiler::impl::ActivityType> activities = {
      torch::profiler::impl::ActivityType::CPU};
  g_kineto_started = true;
  tp::prepareProfiler(config, activities);
  tp::enableProfiler(config, activities);
}

void libtorch_stop(ProfileResult& r) {
  auto result = tp::disableProfiler();
  std::vector<Event> events;
  // Only the matrix products: counting aten::matmul or aten::linear too would count them twice,
  // and elementwise ops are outside the analytical convention (harness/api/FLOPS.md).
  static const std::set<std::string> kMatmuls = {"aten::mm", "aten::addmm", "aten::bmm",
                                                 "aten::baddbmm"};
  double flops = 0;
  if (result) {
    for (const auto& e : result->events()) {
      const std::string name = e.name();
      if (kMatmuls.count(name)) flops += static_cast<double>(e.flops());
      const bool is_range = e.scope() == static_cast<uint8_t>(at::RecordScope::USER_SCOPE) &&
                            profile::is_range_name(name);
      events.push_back({name, e.startNs(), e.endNs(), e.startThreadId(), is_range});
    }
  }
  summarize_cpu(events, r);
  r.measured_matmul_flops = flops;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Profiler

bool Profiler::cupti_available(std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
#ifndef MEGABENCH_WITH_CUPTI
  return fail(
      "megabench was built without CUPTI (CMake found no CUDA toolkit with CUPTI; "
      "configure with the cuda preset on a machine that has one)");
#else
  if (!torch::cuda::is_available()) return fail("no CUDA device is visible to LibTorch");
  const std::string problem = profiler_detail::cupti_problem();
  if (!problem.empty()) return fail("CUPTI is not usable: " + problem);
  return true;
#endif
}

Profiler::Profiler(torch::Device device) : device_(device), impl_(std::make_unique<Impl>()) {
  if (device.is_cuda()) {
    std::string why;
    if (!cupti_available(&why)) {
      throw std::runtime_error("profiler: cannot profile on " + device.str() + ": " + why);
    }
  } else if (!device.is_cpu()) {
    throw std::runtime_error("profiler: device must be cpu or cuda, got " + device.str());
  }
}

Profiler::~Profiler() {
  if (impl_ && impl_->running) {
    try {
      stop();
    } catch (...) {
      // A destructor must not throw; the records of an abandoned run are dropped.
    }
  }
}

void Profiler::start() {
  if (impl_->running) throw std::runtime_error("profiler: start() called twice without stop()");
  const auto mode = device_.is_cuda() ? profile::Mode::kCupti : profile::Mode::kLibTorch;
  if (mode == profile::Mode::kCupti && torch::profiler::impl::profilerEnabled()) {
    throw std::runtime_error(
        "profiler: LibTorch's profiler is active; CUPTI and LibTorch's profiler never run at once");
  }
  if (mode == profile::Mode::kLibTorch && torch::profiler::impl::profilerEnabled()) {
    throw std::runtime_error("profiler: LibTorch's profiler is already active in this thread");
  }
  profile::acquire(mode);
  try {
#ifdef MEGABENCH_WITH_CUPTI
    if (mode == profile::Mode::kCupti) profiler_detail::cupti_start(*impl_);
#endif
    if (mode == profile::Mode::kLibTorch) libtorch_start();
  } catch (...) {
    profile::release(mode);
    throw;
  }
  impl_->mode = mode;
  impl_->running = true;
  impl_->wall_start = std::chrono::steady_clock::now();
}

ProfileResult Profiler::stop() {
  if (!impl_->running) throw std::runtime_error("profiler: stop() called without start()");
  impl_->running = false;
  ProfileResult r;
  r.device = device_.str();
  struct Release {
    profile::Mode m;
    ~Release() { profile::release(m); }
  } release{impl_->mode};
  if (impl_->mode == profile::Mode::kLibTorch) {
    r.source = "libtorch";
    r.total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           impl_->wall_start)
                     .count();
    libtorch_stop(r);
  } else {
    r.source = "cupti";
#ifdef MEGABENCH_WITH_CUPTI
    profiler_detail::cupti_stop(*impl_, r);
#endif
  }
  return r;
}

int end_process(int rc) {
  if (!g_kineto_started) return rc;
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(rc);
}

}  // namespace megabench
