#include "harness/measure/profiler.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#ifdef MEGABENCH_WITH_CUPTI
#include <cuda_runtime.h>
#include <cupti.h>
#include <cxxabi.h>
#endif

namespace megabench {

namespace {

constexpr const char* kOther = "other";

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
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
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

// ---------------------------------------------------------------------------------------------
// Shared state of one profiling run

struct Profiler::Impl {
  bool running = false;
  profile::Mode mode = profile::Mode::kOff;
  std::chrono::steady_clock::time_point wall_start;
  uint64_t gpu_start_ns = 0;  // CUPTI timestamp at start()
};

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
}

void libtorch_start() {
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO,
                                                      /*report_input_shapes=*/true, /*profile_memory=*/false,
                                                      /*with_stack=*/false, /*with_flops=*/true);
  const std::set<torch::profiler::impl::ActivityType> activities = {
      torch::profiler::impl::ActivityType::CPU};
  tp::prepareProfiler(config, activities);
  tp::enableProfiler(config, activities);
}

void libtorch_stop(ProfileResult& r) {
  auto result = tp::disableProfiler();
  std::vector<Event> events;
  // Only the matrix products: counting aten::matmul or aten::linear too would count them twice,
  // and elementwise ops are outside the analytical convention (harness/api/FLOPS.md).
  static const std::set<std::string> kMatmuls = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"};
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
// CUPTI (CUDA)

#ifdef MEGABENCH_WITH_CUPTI
namespace {

struct CuptiState {
  std::mutex mu;
  std::vector<KernelRecord> records;
  std::unordered_map<uint32_t, uint64_t> correlation_to_range;  // CUPTI correlation -> range id
};
CuptiState& cupti() {
  static CuptiState s;
  return s;
}

std::string cupti_error(CUptiResult res) {
  const char* text = nullptr;
  cuptiGetResultString(res, &text);
  return text ? text : "unknown CUPTI error";
}

void cupti_check(CUptiResult res, const char* what) {
  if (res != CUPTI_SUCCESS) {
    throw std::runtime_error(std::string("profiler: ") + what + " failed: " + cupti_error(res));
  }
}

std::string demangle(const char* name) {
  if (!name) return "?";
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = (status == 0 && out) ? out : name;
  std::free(out);
  return s;
}

const char* memcpy_kind(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy";
  }
}

constexpr size_t kBufferBytes = 8u << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  auto& st = cupti();
  std::lock_guard<std::mutex> lock(st.mu);
  CUpti_Activity* rec = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
      KernelRecord r;
      r.name = demangle(k->name);
      r.kind = "kernel";
      r.start_ns = k->start;  // absolute CUPTI timestamps; made relative in stop()
      r.end_ns = k->end;
      r.grid = {k->gridX, k->gridY, k->gridZ};
      r.block = {k->blockX, k->blockY, k->blockZ};
      r.registers = k->registersPerThread;
      r.shared_memory = static_cast<int64_t>(k->staticSharedMemory) + k->dynamicSharedMemory;
      r.correlation_id = k->correlationId;  // component resolved in stop()
      st.records.push_back(std::move(r));
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
      KernelRecord r;
      r.name = memcpy_kind(m->copyKind);
      r.kind = "memcpy";
      r.start_ns = m->start;
      r.end_ns = m->end;
      r.bytes = static_cast<int64_t>(m->bytes);
      r.correlation_id = m->correlationId;
      st.records.push_back(std::move(r));
    } else if (rec->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
      const auto* x = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(rec);
      if (x->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) {
        st.correlation_to_range[x->correlationId] = x->externalId;
      }
    }
  }
  std::free(buffer);
}

void range_push(uint64_t id) {
  cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id);
}
void range_pop(uint64_t) {
  uint64_t last = 0;
  cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
}

// External correlation records are emitted for traced API calls, so runtime and driver calls
// (cuBLAS launches through the driver) are traced too; their own records are dropped.
const CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                     CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
                                     CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER};

void cupti_start(Profiler::Impl& impl) {
  auto& st = cupti();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.records.clear();
    st.correlation_to_range.clear();
  }
  const cudaError_t sync = cudaDeviceSynchronize();  // earlier work stays out of the region
  if (sync != cudaSuccess) {
    throw std::runtime_error(std::string("profiler: cudaDeviceSynchronize failed: ") +
                             cudaGetErrorString(sync));
  }
  // Every start: another CUPTI client in the process (Kineto, LibTorch's profiler) may have put
  // its own buffer callbacks in place since the last region.
  cupti_check(cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed),
              "cuptiActivityRegisterCallbacks");
  for (auto kind : kKinds) cupti_check(cuptiActivityEnable(kind), "cuptiActivityEnable");
  cupti_check(cuptiGetTimestamp(&impl.gpu_start_ns), "cuptiGetTimestamp");
  profile::set_range_hooks({range_push, range_pop});
}

void cupti_stop(Profiler::Impl& impl, ProfileResult& r) {
  const cudaError_t sync = cudaDeviceSynchronize();
  uint64_t end_ns = 0;
  cuptiGetTimestamp(&end_ns);
  profile::set_range_hooks({});
  for (auto kind : kKinds) cuptiActivityDisable(kind);
  cuptiActivityFlushAll(1);  // forced: delivers incomplete buffers too
  if (sync != cudaSuccess) {
    throw std::runtime_error(std::string("profiler: cudaDeviceSynchronize failed: ") +
                             cudaGetErrorString(sync));
  }
  auto& st = cupti();
  std::lock_guard<std::mutex> lock(st.mu);
  r.total_ms = static_cast<double>(end_ns - impl.gpu_start_ns) * 1e-6;
  for (auto& k : st.records) {
    if (k.end_ns < impl.gpu_start_ns || k.start_ns > end_ns) continue;  // outside the region
    auto it = st.correlation_to_range.find(static_cast<uint32_t>(k.correlation_id));
    k.component = it != st.correlation_to_range.end() ? profile::range_name(it->second) : kOther;
    if (k.component.empty()) k.component = kOther;
    k.start_ns = k.start_ns >= impl.gpu_start_ns ? k.start_ns - impl.gpu_start_ns : 0;
    k.end_ns -= impl.gpu_start_ns;
    r.component_ms[k.component] += k.duration_ms();
    r.kernels.push_back(std::move(k));
  }
  st.records.clear();
  st.correlation_to_range.clear();
  std::sort(r.kernels.begin(), r.kernels.end(),
            [](const KernelRecord& a, const KernelRecord& b) { return a.start_ns < b.start_ns; });
}

}  // namespace
#endif

// ---------------------------------------------------------------------------------------------
// Profiler

bool Profiler::cupti_available(std::string* why) {
  auto fail = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
#ifndef MEGABENCH_WITH_CUPTI
  return fail("megabench was built without CUPTI (CMake found no CUDA toolkit with CUPTI; "
              "configure with the cuda preset on a machine that has one)");
#else
  if (!torch::cuda::is_available()) return fail("no CUDA device is visible to LibTorch");
  uint32_t version = 0;
  const CUptiResult res = cuptiGetVersion(&version);
  if (res != CUPTI_SUCCESS) return fail("CUPTI is not usable: " + cupti_error(res));
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
    if (mode == profile::Mode::kCupti) cupti_start(*impl_);
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
    cupti_stop(*impl_, r);
#endif
  }
  return r;
}

}  // namespace megabench
