/*
 * vec_neon.h -- the cv_* vocabulary (see vec_scalar.h) on AArch64 Advanced
 * SIMD: two doubles per vector (float64x2_t), all-ones/zero 64-bit lane masks
 * (uint64x2_t). float32 data is widened on load (fcvtl) and narrowed on
 * store (fcvtn), so the arithmetic, and the accuracy, are the float64 ones.
 * The exp (kernels.inc) gets FMA (vfmaq_f64) through cv_fma, as on AVX2.
 * Advanced SIMD is part of the AArch64 baseline: no target attribute is
 * needed.
 */
#ifndef CSM_VEC_NEON_H
#define CSM_VEC_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include "exp_coeffs.h"
#include "vec_lanes.h"

#define CV_ISA neon
#define CV_HAS_FMA 1 /* cv_fma rounds once (vfmaq_f64) */
#define CV_W 2

#define CV_INLINE static inline __attribute__((always_inline))

typedef float64x2_t cv_d;
typedef uint64x2_t cv_b;

CV_INLINE cv_d cv_set(double v) { return vdupq_n_f64(v); }
CV_INLINE cv_d cv_add(cv_d a, cv_d b) { return vaddq_f64(a, b); }
CV_INLINE cv_d cv_sub(cv_d a, cv_d b) { return vsubq_f64(a, b); }
CV_INLINE cv_d cv_mul(cv_d a, cv_d b) { return vmulq_f64(a, b); }
CV_INLINE cv_d cv_div(cv_d a, cv_d b) { return vdivq_f64(a, b); }
/* a*b + c, one rounding (vfmaq_f64(acc, x, y) = acc + x*y) */
CV_INLINE cv_d cv_fma(cv_d a, cv_d b, cv_d c) { return vfmaq_f64(c, a, b); }
/* v > acc ? v : acc; fmax/vmaxq would propagate a NaN in v */
CV_INLINE cv_d cv_max(cv_d acc, cv_d v) { return vbslq_f64(vcgtq_f64(v, acc), v, acc); }
CV_INLINE cv_b cv_lt(cv_d a, cv_d b) { return vcltq_f64(a, b); }
CV_INLINE cv_b cv_eq(cv_d a, cv_d b) { return vceqq_f64(a, b); }
CV_INLINE cv_b cv_gt(cv_d a, cv_d b) { return vcgtq_f64(a, b); }
CV_INLINE cv_b cv_isnan(cv_d a)
{
    /* a == a is false only for NaN (quiet compare: no exception for qNaN) */
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vceqq_f64(a, a))));
}
CV_INLINE cv_d cv_sel(cv_b m, cv_d a, cv_d b) { return vbslq_f64(m, a, b); }
CV_INLINE int cv_any(cv_b m) { return (vgetq_lane_u64(m, 0) | vgetq_lane_u64(m, 1)) != 0; }

CV_INLINE void cv_lanes(cv_d v, double *out) { vst1q_f64(out, v); }

CV_INLINE cv_d cv_ld(const void *p, ptrdiff_t s, int f32)
{
    if (f32) {
        const float *f = (const float *)p;
        if (s == 1)
            return vcvt_f64_f32(vld1_f32(f));
        float32x2_t t = vdup_n_f32(f[0]);
        t = vset_lane_f32(f[s], t, 1);
        return vcvt_f64_f32(t);
    }
    const double *d = (const double *)p;
    if (s == 1)
        return vld1q_f64(d);
    cv_d t = vdupq_n_f64(d[0]);
    return vsetq_lane_f64(d[s], t, 1);
}

/* the first n elements, other lanes = pad. The vocabulary says n < CV_W, but
 * kernels.inc (the tail of pass 1) also passes n == CV_W: handle n <= 2. */
CV_INLINE cv_d cv_ldn(const void *p, ptrdiff_t s, size_t n, int f32, double pad)
{
    if (n >= 2)
        return cv_ld(p, s, f32);
    cv_d t = vdupq_n_f64(pad);
    if (n)
        t = vsetq_lane_f64(f32 ? (double)*(const float *)p : *(const double *)p, t, 0);
    return t;
}

CV_INLINE void cv_stn(void *p, ptrdiff_t s, size_t n, cv_d v, int f32)
{
    double t[2];
    vst1q_f64(t, v);
    cv_scatter_n(p, s, t, n, f32);
}

CV_INLINE void cv_st(void *p, ptrdiff_t s, cv_d v, int f32)
{
    if (s != 1) {
        cv_stn(p, s, 2, v, f32);
        return;
    }
    if (f32)
        vst1_f32((float *)p, vcvt_f32_f64(v));
    else
        vst1q_f64((double *)p, v);
}

/* 2^k for k + 1023 in [1, 2046], as doubles, from 64-bit integer lanes */
CV_INLINE cv_d cv_pow2(int64x2_t kbiased)
{
    return vreinterpretq_f64_s64(vshlq_n_s64(kbiased, 52));
}

/* 2^k for kf = k + CSM_SHIFTER (the shifter trick), k in [-1022, 1023] */
CV_INLINE cv_d cv_pow2k(cv_d kf)
{
    return cv_pow2(vaddq_s64(vsubq_s64(vreinterpretq_s64_f64(kf),
                                       vreinterpretq_s64_f64(cv_set(CSM_SHIFTER))),
                             vdupq_n_s64(1023)));
}

#endif
