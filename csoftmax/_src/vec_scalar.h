/*
 * vec_scalar.h -- the cv_* vocabulary for the portable scalar target.
 *
 * One lane of double. Every instruction set provides the same names with the
 * same meaning (vec_<isa>.h); kernels.inc is written only in these terms
 * and in plain C on the per-row scalars.
 *
 * cv_exp_nonpos(d, r) = exp(d + r) for d in [-inf, 0] and |r| <= ulp(d):
 *   Cody-Waite reduction d = k ln2 + t (t exact with LN2_HI), the residual of
 *   the reduction and r folded in to first order, exp(t) = 1 + t + t^2 Q(t)
 *   with the 1 added last; result scaled by 2^k in two exact steps so a
 *   subnormal result is rounded once. Measured max error 0.631 ULP
 *   (tests/test_exp.py, 5.5e6 arguments against long double expl).
 *   NaN in -> NaN out; d < -746 -> +0.
 * cv_exp_nonpos_sc(d, r, sc) = exp(d + r) * 2^sc, rounded once (sc <= 600).
 */
#ifndef CSM_VEC_SCALAR_H
#define CSM_VEC_SCALAR_H

#include <stdint.h>
#include <string.h>
#include "exp_coeffs.h"

#define CV_ISA scalar
#define CV_W 1

#if defined(__GNUC__) || defined(__clang__)
#define CV_INLINE static inline __attribute__((always_inline))
#else
#define CV_INLINE static inline
#endif

typedef double cv_f64;

CV_INLINE uint64_t cv_bits(double v) { uint64_t u; memcpy(&u, &v, sizeof u); return u; }
CV_INLINE double cv_from_bits(uint64_t u) { double v; memcpy(&v, &u, sizeof v); return v; }

/* exp(d + r) * 2^sc for d <= 0 and sc in [0, 600] (see the file comment);
 * sc > 0 keeps results that would be subnormal in the normal range. */
CV_INLINE double cv_exp_nonpos_sc(double d, double r, int64_t sc)
{
    /* clamp: keeps k in range; NaN stays NaN (the comparison is false) */
    int under = d < CSM_EXP_MIN;
    d = under ? CSM_EXP_MIN : d;
    r = under ? 0.0 : r;
    double kf = d * CSM_LOG2E + CSM_SHIFTER;   /* round to nearest integer */
    uint64_t kbits = cv_bits(kf);
    kf -= CSM_SHIFTER;                         /* k as a double, k in [-1077, 0] */
    double th = d - kf * CSM_LN2_HI;           /* exact (Sterbenz) */
    double tl = r - kf * CSM_LN2_LO;           /* |tl| < 2^-33 */
    double t = th + tl;                        /* reduced argument, |t| <= 0.347 */
    double c = (th - t) + tl;                  /* its rounding error */
    double q = CSM_Q10;
    q = q * t + CSM_Q9; q = q * t + CSM_Q8; q = q * t + CSM_Q7; q = q * t + CSM_Q6;
    q = q * t + CSM_Q5; q = q * t + CSM_Q4; q = q * t + CSM_Q3; q = q * t + CSM_Q2;
    q = q * t + CSM_Q1; q = q * t + CSM_Q0;
    /* exp(t + c) = 1 + t + t^2 q + c (1 + t): 1 + t split exactly into
     * hi + lo (Fast2Sum), the small terms added to lo, one final rounding */
    double hi = 1.0 + t;
    double lo = t - (hi - 1.0);
    double p = hi + (lo + (t * t * q + (c + c * t)));
    /* 2^k = 2^k1 * 2^k2 with both factors normal: k2 = -600 when k < -1000 */
    int64_t k = (int64_t)(kbits - cv_bits(CSM_SHIFTER)) + sc; /* wraps: two's complement */
    int64_t k2 = k < -1000 ? -600 : 0;
    double s1 = cv_from_bits((uint64_t)(k - k2 + 1023) << 52);
    double s2 = cv_from_bits((uint64_t)(k2 + 1023) << 52);
    return (p * s1) * s2;
}

/* exp(d + r), d <= 0 */
CV_INLINE double cv_exp_nonpos(double d, double r)
{
    return cv_exp_nonpos_sc(d, r, 0);
}

#endif
