#include "harness/measure/denormals.h"

#include <ATen/Context.h>

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace megabench::denormals {
namespace {

bool flushed = false;  // what configure_from_env() set, where the CPU cannot be asked

}  // namespace

void configure_from_env() {
  const char* v = std::getenv("MEGABENCH_DENORMALS");
  const bool keep = v != nullptr && std::strcmp(v, "keep") == 0;
  // LibTorch's own switch (torch.set_flush_denormal): false where the CPU has no such mode.
  flushed = at::globalContext().setFlushDenormal(!keep) && !keep;
}

std::string state() {
#if defined(__x86_64__) || defined(_M_X64)
  constexpr unsigned kFtz = 0x8000, kDaz = 0x0040;
  return (_mm_getcsr() & (kFtz | kDaz)) == (kFtz | kDaz) ? "flushed" : "kept";
#else
  return flushed ? "flushed" : "kept";
#endif
}

}  // namespace megabench::denormals
