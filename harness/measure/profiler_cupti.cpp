// CUPTI activity tracing for Profiler on CUDA: kernels, copies and memsets, each attributed to the
// profile::Range open when it was launched.
#include "harness/measure/profiler_internal.h"

#ifdef MEGABENCH_WITH_CUPTI
#include <cuda_runtime.h>
#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace megabench {
// ---------------------------------------------------------------------------------------------
// CUPTI (CUDA)

namespace {

using profiler_detail::kOther;

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
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
      return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return "memcpy PtoP";
    default:
      return "memcpy";
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
    if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ||
        rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
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
const CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                                     CUPTI_ACTIVITY_KIND_MEMCPY,
                                     CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
                                     CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER};

}  // namespace

namespace profiler_detail {

std::string cupti_problem() {
  uint32_t version = 0;
  const CUptiResult res = cuptiGetVersion(&version);
  return res == CUPTI_SUCCESS ? "" : cupti_error(res);
}

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
  // The component spans of the GPU timeline: runs of consecutive work of one component.
  for (const auto& k : r.kernels) {
    if (!r.ranges.empty() && r.ranges.back().name == k.component) {
      r.ranges.back().end_ns = std::max(r.ranges.back().end_ns, k.end_ns);
    } else {
      r.ranges.push_back({k.component, k.start_ns, k.end_ns, 0});
    }
  }
}

}  // namespace profiler_detail

}  // namespace megabench
#endif  // MEGABENCH_WITH_CUPTI
