#include "kernels/profile_range.h"

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace megabench::profile {
namespace {

std::atomic<int> g_mode{static_cast<int>(Mode::kOff)};
std::atomic<void (*)(uint64_t)> g_push{nullptr};
std::atomic<void (*)(uint64_t)> g_pop{nullptr};

struct Names {
  std::mutex mu;
  std::unordered_map<std::string, uint64_t> ids;
  std::vector<std::string> names{""};  // index 0 unused: ids start at 1
};
Names& names() {
  static Names n;
  return n;
}

}  // namespace

const std::vector<std::string>& component_names() {
  static const std::vector<std::string> kNames = {
      "embedding",   "global_attention", "local_attention", "attention_core",
      "feedforward", "logits",           "sampling"};
  return kNames;
}

Mode active_mode() {
  return static_cast<Mode>(g_mode.load(std::memory_order_acquire));
}

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kOff:
      return "none";
    case Mode::kLibTorch:
      return "LibTorch's profiler";
    case Mode::kCupti:
      return "the CUPTI profiler";
  }
  return "?";
}

void acquire(Mode m) {
  int expected = static_cast<int>(Mode::kOff);
  if (!g_mode.compare_exchange_strong(expected, static_cast<int>(m))) {
    throw std::runtime_error(std::string("profiler: cannot start ") + mode_name(m) + " while " +
                             mode_name(static_cast<Mode>(expected)) +
                             " is active (CUPTI and LibTorch's profiler never run at once; stop "
                             "the other one first)");
  }
}

void release(Mode m) {
  int expected = static_cast<int>(m);
  g_mode.compare_exchange_strong(expected, static_cast<int>(Mode::kOff));
}

void set_range_hooks(const RangeHooks& hooks) {
  g_push.store(hooks.push);
  g_pop.store(hooks.pop);
}

uint64_t range_id(const std::string& name) {
  auto& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  auto it = n.ids.find(name);
  if (it != n.ids.end()) return it->second;
  const uint64_t id = n.names.size();
  n.names.push_back(name);
  n.ids.emplace(name, id);
  return id;
}

std::string range_name(uint64_t id) {
  auto& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  return id < n.names.size() ? n.names[id] : std::string();
}

bool is_range_name(const std::string& name) {
  auto& n = names();
  std::lock_guard<std::mutex> lock(n.mu);
  return n.ids.count(name) > 0;
}

Range::Range(const char* name) {
  const Mode mode = active_mode();
  if (mode == Mode::kCupti) {
    if (auto push = g_push.load()) {
      hook_id_ = range_id(name);
      push(hook_id_);
    }
    return;
  }
  // Outside our CUPTI profiler, anything listening to RecordFunction (our LibTorch mode, or a
  // LibTorch profiler someone else started) sees the range.
  if (mode == Mode::kLibTorch || at::hasCallbacks()) {
    if (mode == Mode::kLibTorch) range_id(name);  // lets the profiler tell ranges from ops
    record_.emplace(at::RecordScope::USER_SCOPE);
    if (record_->isActive()) record_->before(name);
  }
}

Range::~Range() {
  if (hook_id_ != 0) {
    if (auto pop = g_pop.load()) pop(hook_id_);
  }
  // record_'s destructor ends the RecordFunction.
}

}  // namespace megabench::profile
