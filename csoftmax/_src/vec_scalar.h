/*
 * vec_scalar.h -- the cv_* vocabulary for the portable scalar target.
 *
 * A "vector" is CV_W lanes of double; here one. Every instruction set
 * provides the same names with the same meaning (vec_<isa>.h), and
 * kernels.inc is written only in these terms:
 *   cv_d, cv_b            vector of doubles, lane mask
 *   cv_set(v)             all lanes v
 *   cv_add/sub/mul/div    lane-wise, correctly rounded
 *   cv_fma(a, b, c)       a*b + c (fused, one rounding, where CV_HAS_FMA; here two)
 *   cv_max(acc, v)        v > acc ? v : acc (a NaN in v is ignored)
 *   cv_lt/eq/gt, cv_isnan comparisons; cv_sel(m, a, b) = m ? a : b; cv_any(m)
 *   cv_ld(p, s, f32)      CV_W elements p[0], p[s], ... (float or double) as doubles
 *   cv_ldn(p, s, n, f32, pad)  the first n <= CV_W of them, other lanes = pad
 *   cv_st / cv_stn        the reverse (rounding to float for f32)
 *   cv_lanes(v, out)      lanes to an array
 *   cv_exp(d, r, &es)     exp(d + r) for d <= 0; es = exp(d + r) * 2^600
 *   cv_pow2k(kf)          2^k for kf = k + CSM_SHIFTER (k an integer in [-1022, 1023])
 *
 * cv_exp(d, r) = exp(d + r) for d in [-inf, 0] and |r| <= ulp(d):
 *   Cody-Waite reduction d = k ln2 + t (t exact with LN2_HI), the residual of
 *   the reduction and r folded in to first order, exp(t) = 1 + t + t^2 Q(t)
 *   with 1 + t split exactly and added last; result scaled by 2^k in two
 *   exact steps so a subnormal result is rounded once. Measured max error
 *   0.631 ULP (tests/test_exp.py, 5.5e6 arguments against long double expl).
 *   NaN in -> NaN out; d < -746 -> +0. es, exp * 2^600 rounded once, keeps
 *   results that would be subnormal in the normal range (es < 2^-400 for
 *   d < -700, so it never overflows).
 */
#ifndef CSM_VEC_SCALAR_H
#define CSM_VEC_SCALAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "exp_coeffs.h"

#define CV_ISA scalar
#define CV_HAS_FMA 0 /* cv_fma rounds once */
#define CV_W 1

#if defined(__GNUC__) || defined(__clang__)
#define CV_INLINE static inline __attribute__((always_inline))
#else
#define CV_INLINE static inline
#endif

typedef double cv_d;
typedef int cv_b;

CV_INLINE cv_d cv_set(double v) { return v; }
CV_INLINE cv_d cv_add(cv_d a, cv_d b) { return a + b; }
CV_INLINE cv_d cv_sub(cv_d a, cv_d b) { return a - b; }
CV_INLINE cv_d cv_mul(cv_d a, cv_d b) { return a * b; }
CV_INLINE cv_d cv_div(cv_d a, cv_d b) { return a / b; }
CV_INLINE cv_d cv_fma(cv_d a, cv_d b, cv_d c) { return a * b + c; }
CV_INLINE cv_d cv_max(cv_d acc, cv_d v) { return v > acc ? v : acc; }
CV_INLINE cv_b cv_lt(cv_d a, cv_d b) { return a < b; }
CV_INLINE cv_b cv_eq(cv_d a, cv_d b) { return a == b; }
CV_INLINE cv_b cv_gt(cv_d a, cv_d b) { return a > b; }
CV_INLINE cv_b cv_isnan(cv_d a) { return a != a; }
CV_INLINE cv_d cv_sel(cv_b m, cv_d a, cv_d b) { return m ? a : b; }
CV_INLINE int cv_any(cv_b m) { return m; }

CV_INLINE cv_d cv_ld(const void *p, ptrdiff_t s, int f32)
{
    (void)s;
    return f32 ? (double)*(const float *)p : *(const double *)p;
}

CV_INLINE cv_d cv_ldn(const void *p, ptrdiff_t s, size_t n, int f32, double pad)
{
    return n ? cv_ld(p, s, f32) : pad;
}

CV_INLINE void cv_st(void *p, ptrdiff_t s, cv_d v, int f32)
{
    (void)s;
    if (f32)
        *(float *)p = (float)v;
    else
        *(double *)p = v;
}

CV_INLINE void cv_stn(void *p, ptrdiff_t s, size_t n, cv_d v, int f32)
{
    if (n)
        cv_st(p, s, v, f32);
}

CV_INLINE void cv_lanes(cv_d v, double *out) { out[0] = v; }

CV_INLINE uint64_t cv_bits(double v) { uint64_t u; memcpy(&u, &v, sizeof u); return u; }
CV_INLINE double cv_from_bits(uint64_t u) { double v; memcpy(&v, &u, sizeof v); return v; }

/* 2^k for kf = k + CSM_SHIFTER (the shifter trick), k in [-1022, 1023] */
CV_INLINE cv_d cv_pow2k(cv_d kf)
{
    return cv_from_bits((cv_bits(kf) - cv_bits(CSM_SHIFTER) + 1023) << 52);
}

/* exp(d + r), d <= 0; *es = exp(d + r) * 2^600 (see the file comment) */
CV_INLINE cv_d cv_exp(cv_d d, cv_d r, cv_d *es)
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
    int64_t k = (int64_t)(kbits - cv_bits(CSM_SHIFTER)); /* wraps: two's complement */
    int64_t k2 = k < -1000 ? -600 : 0;
    double s1 = cv_from_bits((uint64_t)(k - k2 + 1023) << 52);
    double s2 = cv_from_bits((uint64_t)(k2 + 1023) << 52);
    if (es)
        *es = p * cv_from_bits((uint64_t)(k + 600 + 1023) << 52);
    return (p * s1) * s2;
}

#endif
