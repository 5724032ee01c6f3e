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
 *   cv_pow2k(kf)          2^k for kf = k + CSM_SHIFTER (k an integer in [-1022, 1023])
 * The exp functions are built from these in kernels.inc (exp_f64data,
 * exp_f32data), once for every instruction set.
 */
#ifndef CSM_VEC_SCALAR_H
#define CSM_VEC_SCALAR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "exp_coeffs.h"

#define CV_ISA scalar
#define CV_HAS_FMA 0 /* cv_fma is a product and a sum here: two roundings */
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

#endif
