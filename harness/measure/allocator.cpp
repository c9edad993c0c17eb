#include "harness/measure/allocator.h"

#include <dlfcn.h>
#include <malloc.h>

namespace megabench::allocator {
namespace {

bool tuned = false;

bool defined(const char* symbol) {
  return ::dlsym(RTLD_DEFAULT, symbol) != nullptr;
}

}  // namespace

std::string name() {
  if (defined("tc_malloc")) return "tcmalloc";
  if (defined("mallctl") || defined("je_mallctl")) return "jemalloc";
  return tuned ? "glibc (mmap threshold 32 MiB)" : "glibc";
}

void tune_glibc() {
  if (tuned || name() != "glibc") return;
  constexpr int kMmapThreshold = 32 << 20;  // glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
  constexpr int kTrimThreshold = 1 << 30;
  tuned = ::mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
          ::mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
}

void release_free_memory() {
  // gperftools' C entry point, looked up so that a binary without tcmalloc still links.
  using Release = void (*)();
  if (auto* f =
          reinterpret_cast<Release>(::dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"))) {
    f();
    return;
  }
  if (name().rfind("glibc", 0) == 0) ::malloc_trim(0);
}

}  // namespace megabench::allocator
