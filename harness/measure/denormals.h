#pragma once
// Denormal (subnormal) floats on the CPU: megabench flushes them to zero by default.
//
// Training drives some activations and gradients into float's subnormal range (below 1.2e-38),
// where x86 cores take a slow microcode path for every operation on them: a MEGABYTE point of the
// campaign trained 1.37x faster with them flushed, to the same bits per byte (4 decimals). The
// flush mode (FTZ + DAZ) is a per-thread CPU register that threads inherit from the thread that
// starts them, so it is set at the start of main, before LibTorch starts its thread pools, and
// worker processes set it again. MEGABENCH_DENORMALS=keep keeps IEEE subnormals. Timings depend
// on it, so the records' provenance says which (state(), read back from the CPU).
#include <string>

namespace megabench::denormals {

/// Flush subnormals to zero on this thread (and the threads it starts) unless the environment
/// says MEGABENCH_DENORMALS=keep. Call once, at the start of main.
void configure_from_env();

/// "flushed" or "kept": this thread's mode as the CPU reports it (x86: MXCSR's FTZ and DAZ bits),
/// or as configure_from_env() set it where it cannot be read back.
std::string state();

}  // namespace megabench::denormals
