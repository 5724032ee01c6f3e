/*
 * cpu.h -- what this CPU (and its OS) can run: cpuid + xgetbv on x86,
 * the baseline on aarch64. Private to the C core.
 */
#ifndef CSM_CPU_H
#define CSM_CPU_H

#include "csoftmax/csoftmax.h"

/* ISAs compiled into this build (kern_<isa>.c not empty here) */
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CSM_HAVE_AVX2 1
#define CSM_HAVE_AVX512 1
#else
#define CSM_HAVE_AVX2 0
#define CSM_HAVE_AVX512 0
#endif
#if defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define CSM_HAVE_NEON 1
#else
#define CSM_HAVE_NEON 0
#endif

/* 1 if the CPU and the OS support the instruction set */
int csm_cpu_has(csm_isa isa);

#endif
