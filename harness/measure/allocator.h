#pragma once
// Which malloc serves LibTorch's CPU tensors, and a better setting for glibc's when it is the one.
//
// A CPU train step frees and reallocates tensors of many MB. glibc serves each allocation above
// its mmap threshold with a fresh mmap, so every step pays page faults and zero-filling again;
// tcmalloc (linked into the executables when found, CMakeLists.txt: MEGABENCH_ALLOCATOR) keeps
// the memory. Timings depend on it, so the records' provenance names it.
#include <string>

namespace megabench::allocator {

/// "tcmalloc" or "jemalloc" when one of them replaced malloc (linked in or LD_PRELOADed), else
/// "glibc" (with " (mmap threshold 32 MiB)" once tune_glibc() has set it).
std::string name();

/// When glibc's malloc is in use: serve allocations up to 32 MiB (the largest threshold glibc
/// accepts) from the heap and keep up to 1 GiB of freed heap, instead of mapping and unmapping
/// them at every step. Does nothing under tcmalloc or jemalloc. Call once, at the start of main.
void tune_glibc();

/// Hands the allocator's cached free memory back to the system: tcmalloc's
/// MallocExtension_ReleaseFreeMemory, glibc's malloc_trim(0); jemalloc keeps its own policy. The
/// sweep's worker calls it after each point, so what a point holds resident (and the run's
/// max_memory_gb limit) does not depend on the points measured before it in the same worker.
void release_free_memory();

}  // namespace megabench::allocator
