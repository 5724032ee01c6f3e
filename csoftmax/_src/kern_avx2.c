/*
 * kern_avx2.c -- kernels.inc over vec_avx2.h (AVX2 + FMA, four doubles).
 * Compiled for x86-64 with GCC or clang whatever the build flags (the
 * target pragma comes before any include); dispatched only when cpuid and
 * xgetbv say the CPU and the OS support AVX2 and FMA. Elsewhere: empty.
 */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC target("avx2,fma")
#endif
#include "kernels.h"
#include "vec_avx2.h"
#include "kernels.inc"
#include "weighted.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#else
typedef int csm_kern_avx2_is_empty_here;
#endif
