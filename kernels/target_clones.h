#pragma once
// MEGABENCH_CLONES: compile a function once per x86-64 level (AVX-512, AVX2 + FMA, the baseline)
// and pick one at load time (GCC's target_clones), so that a portable build still runs wide
// vectors in the plain loops it marks. Only the marked function is cloned, not what it calls:
// mark the function whose loops should vectorize, and keep its helpers always_inline. Elsewhere
// (other compilers, other targets) it is empty.
// MEGABENCH_HAS_CLONES is 1 where the clones are built, so code can ask whether a marked loop
// runs wide here: MEGABENCH_HAS_CLONES && __builtin_cpu_supports("x86-64-v3").
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MEGABENCH_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define MEGABENCH_HAS_CLONES 1
#else
#define MEGABENCH_CLONES
#define MEGABENCH_HAS_CLONES 0
#endif
