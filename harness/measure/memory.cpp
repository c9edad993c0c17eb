// Exact CPU allocation counting and the CUDA caching allocator's statistics; see memory.h.
#include "harness/measure/memory.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>

#ifdef MEGABENCH_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace megabench::memory {
namespace {

// Above LibTorch's default CPU allocator (registered at priority 0).
constexpr uint8_t kTrackingPriority = 50;

std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};

void add_live(int64_t n) {
  const int64_t now = g_live.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t prev = g_peak.load(std::memory_order_relaxed);
  while (now > prev && !g_peak.compare_exchange_weak(prev, now, std::memory_order_relaxed)) {
  }
}

// Each allocation is [header | data]: the header holds the requested size, so a free knows
// exactly what to subtract without a lookup table or a lock, and the DataPtr keeps
// context == data, which LibTorch's raw_allocate / raw_deallocate (used e.g. by oneDNN) need.
// The header is one alignment unit, so data keeps the base allocator's alignment.
constexpr size_t kHeader = c10::gAlignment;
static_assert(kHeader >= sizeof(size_t), "the header must hold the size");

class TrackingCPUAllocator final : public c10::Allocator {
 public:
  explicit TrackingCPUAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(size_t n) override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (n == 0) return {nullptr, nullptr, &raw_delete, cpu};
    char* block = static_cast<char*>(base_->raw_allocate(n + kHeader));
    *reinterpret_cast<size_t*>(block) = n;
    add_live(static_cast<int64_t>(n));
    void* data = block + kHeader;
    return {data, data, &raw_delete, cpu};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &raw_delete; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  static void raw_delete(void* data);

 private:
  c10::Allocator* base_;
};

// Set once, before any allocation can carry raw_delete; never freed, since tensors may outlive
// every static destructor.
TrackingCPUAllocator* g_tracker = nullptr;
c10::Allocator* g_base = nullptr;

void TrackingCPUAllocator::raw_delete(void* data) {
  if (data == nullptr) return;
  char* block = static_cast<char*>(data) - kHeader;
  const size_t n = *reinterpret_cast<const size_t*>(block);
  g_live.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
  g_base->raw_deallocate(block);
}

std::mutex g_install_mutex;

}  // namespace

void install_cpu_tracking() {
  std::lock_guard<std::mutex> lock(g_install_mutex);
  if (g_tracker != nullptr) return;
  c10::Allocator* base = c10::GetCPUAllocator();
  if (base == nullptr || base->raw_deleter() == nullptr) {
    throw std::runtime_error(
        "install_cpu_tracking: the current CPU allocator has no raw interface (raw_deleter), "
        "so its allocations cannot be wrapped");
  }
  g_base = base;
  auto* tracker = new TrackingCPUAllocator(base);
  c10::SetCPUAllocator(tracker, kTrackingPriority);
  if (c10::GetCPUAllocator() != tracker) {
    delete tracker;
    throw std::runtime_error("install_cpu_tracking: a CPU allocator with priority above " +
                             std::to_string(kTrackingPriority) + " is installed; cannot wrap it");
  }
  g_tracker = tracker;
}

int64_t cpu_live_bytes() {
  return g_live.load(std::memory_order_relaxed);
}
int64_t cpu_peak_bytes() {
  return g_peak.load(std::memory_order_relaxed);
}
void reset_cpu_peak() {
  g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

#ifdef MEGABENCH_WITH_CUDA
namespace {
c10::DeviceIndex cuda_index(const torch::Device& d) {
  return d.has_index() ? d.index() : c10::cuda::current_device();
}
c10::CachingAllocator::Stat cuda_allocated(const torch::Device& d) {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cuda_index(d));
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)];
}
}  // namespace
#endif

PeakTracker::PeakTracker(torch::Device device) : device_(device) {
  if (device_.is_cpu()) {
    install_cpu_tracking();
  } else if (device_.is_cuda()) {
#ifndef MEGABENCH_WITH_CUDA
    throw std::runtime_error("PeakTracker: device " + device_.str() +
                             " needs a build with CUDA (MEGABENCH_CUDA=ON)");
#endif
  } else {
    throw std::invalid_argument("PeakTracker: device must be cpu or cuda, got " + device_.str());
  }
  reset();
}

void PeakTracker::reset() {
  if (device_.is_cpu()) {
    reset_cpu_peak();
  } else {
#ifdef MEGABENCH_WITH_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(cuda_index(device_));
#endif
  }
  baseline_ = live_bytes();
}

int64_t PeakTracker::peak_bytes() const {
#ifdef MEGABENCH_WITH_CUDA
  if (device_.is_cuda()) return cuda_allocated(device_).peak;
#endif
  return cpu_peak_bytes();
}

int64_t PeakTracker::live_bytes() const {
#ifdef MEGABENCH_WITH_CUDA
  if (device_.is_cuda()) return cuda_allocated(device_).current;
#endif
  return cpu_live_bytes();
}

}  // namespace megabench::memory
