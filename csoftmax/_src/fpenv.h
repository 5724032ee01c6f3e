/*
 * fpenv.h -- private: the floating-point environment of one kernel call.
 *
 * The kernels need IEEE defaults: round to nearest (TwoSum, Dekker's
 * product, the exp reduction) and gradual underflow (subnormal outputs are
 * promised, never flushed). csm_fp_enter() saves the caller's environment
 * and sets those; csm_fp_leave() puts the saved one back exactly: the mode
 * bits and the sticky exception flags as they were, so that the flags the
 * kernels raise (inexact, underflow, invalid from padded lanes) are dropped.
 *   x86-64:  MXCSR (the only FP state the kernels touch: no x87 code):
 *            round to nearest, FTZ and DAZ off, every exception masked.
 *   aarch64: FPCR (round to nearest, FZ off, no traps) and FPSR.
 *   other:   C99 <fenv.h>: feholdexcept + fesetround(FE_TONEAREST), then
 *            fesetenv (a flush-to-zero mode of such a target is kept).
 * The state is per thread: code that runs the kernels on other threads
 * (a thread pool, OpenMP) must enter and leave on each of them.
 */
#ifndef CSM_FPENV_H
#define CSM_FPENV_H

#if defined(__x86_64__) || defined(_M_X64)

#include <xmmintrin.h>

typedef unsigned int csm_fpstate;

/* MXCSR: flags in bits 0-5 (kept), DAZ bit 6, masks bits 7-12 (all set),
 * rounding bits 13-14 (nearest = 0), FTZ bit 15 */
static inline csm_fpstate csm_fp_enter(void)
{
    unsigned int csr = _mm_getcsr();
    unsigned int want = (csr & 0x3Fu) | 0x1F80u;
    if (want != csr)
        _mm_setcsr(want);
    return csr;
}

static inline void csm_fp_leave(csm_fpstate saved)
{
    _mm_setcsr(saved);
}

#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))

#include <stdint.h>

typedef struct {
    uint64_t fpcr, fpsr;
} csm_fpstate;

/* FPCR: trap enables bits 8-12 and 15, RMode bits 22-23 (nearest = 0),
 * FZ bit 24 */
static inline csm_fpstate csm_fp_enter(void)
{
    csm_fpstate s;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(s.fpcr));
    __asm__ __volatile__("mrs %0, fpsr" : "=r"(s.fpsr));
    uint64_t want = s.fpcr & ~(uint64_t)(0x9F00u | 0xC00000u | 0x1000000u);
    if (want != s.fpcr)
        __asm__ __volatile__("msr fpcr, %0" : : "r"(want));
    return s;
}

static inline void csm_fp_leave(csm_fpstate saved)
{
    __asm__ __volatile__("msr fpsr, %0" : : "r"(saved.fpsr));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(saved.fpcr));
}

#else

#include <fenv.h>

typedef fenv_t csm_fpstate;

static inline csm_fpstate csm_fp_enter(void)
{
    csm_fpstate s;
    feholdexcept(&s);
#ifdef FE_TONEAREST
    fesetround(FE_TONEAREST);
#endif
    return s;
}

static inline void csm_fp_leave(csm_fpstate saved)
{
    fesetenv(&saved);
}

#endif

#endif /* CSM_FPENV_H */
