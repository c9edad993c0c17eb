// The fused cross-entropy's row loops at this x86-64 level (see cross_entropy_rows.inc).
#define MEGABENCH_ISA avx2
#include "kernels/cross_entropy_rows.inc"
