/*
 * cpu.c -- instruction-set detection (cpu.h).
 *
 * x86: AVX2 needs cpuid.1:ECX.{FMA,OSXSAVE,AVX}, cpuid.7:EBX.AVX2 and the OS
 * saving the YMM state (XCR0 bits 1-2, read with xgetbv); AVX-512F needs
 * cpuid.7:EBX.AVX512F and XCR0 bits 5-7 (opmask and ZMM state) as well.
 * aarch64: Advanced SIMD is part of the baseline.
 */
#include "cpu.h"

#if CSM_HAVE_AVX2
#include <cpuid.h>
#include <stdint.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static int x86_has(csm_isa isa)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!(fma && osxsave && avx))
        return 0;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* SSE and AVX state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (isa == CSM_ISA_AVX2)
        return avx2;
    if (isa == CSM_ISA_AVX512)
        return avx2 && avx512f && (xcr0 & 0xE0) == 0xE0;
    return 0;
}
#endif

int csm_cpu_has(csm_isa isa)
{
    switch (isa) {
    case CSM_ISA_SCALAR:
        return 1;
#if CSM_HAVE_AVX2
    case CSM_ISA_AVX2:
    case CSM_ISA_AVX512:
        return x86_has(isa);
#endif
#if CSM_HAVE_NEON
    case CSM_ISA_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}
