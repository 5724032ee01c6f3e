/*
 * vec_avx2.h -- the cv_* vocabulary (see vec_scalar.h) on AVX2 + FMA:
 * four doubles per vector. float32 data is widened on load (vcvtps2pd) and
 * narrowed on store, so the arithmetic, and the accuracy, are the float64
 * ones. The exp (kernels.inc) gets FMA through cv_fma.
 */
#ifndef CSM_VEC_AVX2_H
#define CSM_VEC_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "exp_coeffs.h"
#include "vec_lanes.h"

#define CV_ISA avx2
#define CV_HAS_FMA 1 /* cv_fma rounds once */
#define CV_W 4

#define CV_INLINE static inline __attribute__((always_inline))

typedef __m256d cv_d;
typedef __m256d cv_b;

CV_INLINE cv_d cv_set(double v) { return _mm256_set1_pd(v); }
CV_INLINE cv_d cv_add(cv_d a, cv_d b) { return _mm256_add_pd(a, b); }
CV_INLINE cv_d cv_sub(cv_d a, cv_d b) { return _mm256_sub_pd(a, b); }
CV_INLINE cv_d cv_mul(cv_d a, cv_d b) { return _mm256_mul_pd(a, b); }
CV_INLINE cv_d cv_div(cv_d a, cv_d b) { return _mm256_div_pd(a, b); }
CV_INLINE cv_d cv_fma(cv_d a, cv_d b, cv_d c) { return _mm256_fmadd_pd(a, b, c); }
/* maxpd returns its second operand when either is NaN */
CV_INLINE cv_d cv_max(cv_d acc, cv_d v) { return _mm256_max_pd(v, acc); }
CV_INLINE cv_b cv_lt(cv_d a, cv_d b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
CV_INLINE cv_b cv_eq(cv_d a, cv_d b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
CV_INLINE cv_b cv_gt(cv_d a, cv_d b) { return _mm256_cmp_pd(a, b, _CMP_GT_OQ); }
CV_INLINE cv_b cv_isnan(cv_d a) { return _mm256_cmp_pd(a, a, _CMP_UNORD_Q); }
CV_INLINE cv_d cv_sel(cv_b m, cv_d a, cv_d b) { return _mm256_blendv_pd(b, a, m); }
CV_INLINE int cv_any(cv_b m) { return _mm256_movemask_pd(m) != 0; }

CV_INLINE void cv_lanes(cv_d v, double *out) { _mm256_storeu_pd(out, v); }

CV_INLINE cv_d cv_ld(const void *p, ptrdiff_t s, int f32)
{
    if (f32) {
        const float *f = (const float *)p;
        if (s == 1)
            return _mm256_cvtps_pd(_mm_loadu_ps(f));
        return _mm256_cvtps_pd(_mm_set_ps(f[3 * s], f[2 * s], f[s], f[0]));
    }
    const double *d = (const double *)p;
    if (s == 1)
        return _mm256_loadu_pd(d);
    return _mm256_set_pd(d[3 * s], d[2 * s], d[s], d[0]);
}

CV_INLINE cv_d cv_ldn(const void *p, ptrdiff_t s, size_t n, int f32, double pad)
{
    double t[4] = {pad, pad, pad, pad};
    cv_gather_n(t, p, s, n, f32);
    return _mm256_loadu_pd(t);
}

CV_INLINE void cv_stn(void *p, ptrdiff_t s, size_t n, cv_d v, int f32)
{
    double t[4];
    _mm256_storeu_pd(t, v);
    cv_scatter_n(p, s, t, n, f32);
}

CV_INLINE void cv_st(void *p, ptrdiff_t s, cv_d v, int f32)
{
    if (s != 1) {
        cv_stn(p, s, 4, v, f32);
        return;
    }
    if (f32)
        _mm_storeu_ps((float *)p, _mm256_cvtpd_ps(v));
    else
        _mm256_storeu_pd((double *)p, v);
}

/* lanes whose mask byte p[l * s] is nonzero, l < w (kernels.inc's cv_keep) */
#define CV_HAS_KEEP 1
CV_INLINE cv_b cv_keep(const unsigned char *p, ptrdiff_t s, size_t w)
{
    unsigned char b[4] = {0, 0, 0, 0};
    if (s == 1 && w == 4)
        memcpy(b, p, 4);
    else
        for (size_t l = 0; l < w; l++)
            b[l] = p[(ptrdiff_t)l * s];
    int32_t v;
    memcpy(&v, b, 4);
    __m256i q = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(v));
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(q, _mm256_setzero_si256()));
}

/* 2^k for k + 1023 in [1, 2046], as doubles, from 64-bit integer lanes */
CV_INLINE cv_d cv_pow2(__m256i kbiased)
{
    return _mm256_castsi256_pd(_mm256_slli_epi64(kbiased, 52));
}

/* 2^k for kf = k + CSM_SHIFTER, k in [-1022, 1023] */
CV_INLINE cv_d cv_pow2k(cv_d kf)
{
    return cv_pow2(_mm256_add_epi64(_mm256_sub_epi64(_mm256_castpd_si256(kf),
                                                _mm256_castpd_si256(cv_set(CSM_SHIFTER))),
                                 _mm256_set1_epi64x(1023)));
}

#endif
