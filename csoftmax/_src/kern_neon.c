/*
 * kern_neon.c -- kernels.inc over vec_neon.h (AArch64 Advanced SIMD, two
 * doubles). Advanced SIMD is part of the AArch64 baseline, so no target
 * pragma is needed and the kernels are always dispatchable there.
 * Elsewhere: empty.
 */
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#include "kernels.h"
#include "vec_neon.h"
#include "kernels.inc"
#include "weighted.inc"
#else
typedef int csm_kern_neon_is_empty_here;
#endif
