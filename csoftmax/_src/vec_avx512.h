/*
 * vec_avx512.h -- the cv_* vocabulary (see vec_scalar.h) on AVX-512F:
 * eight doubles per vector, mask registers for comparisons and tails.
 * float32 data is widened on load and narrowed on store (float64
 * arithmetic). Only AVX-512F instructions are used.
 */
#ifndef CSM_VEC_AVX512_H
#define CSM_VEC_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "exp_coeffs.h"
#include "vec_lanes.h"

#define CV_ISA avx512
#define CV_HAS_FMA 1 /* cv_fma rounds once */
#define CV_W 8

#define CV_INLINE static inline __attribute__((always_inline))

typedef __m512d cv_d;
typedef __mmask8 cv_b;

CV_INLINE cv_d cv_set(double v) { return _mm512_set1_pd(v); }
CV_INLINE cv_d cv_add(cv_d a, cv_d b) { return _mm512_add_pd(a, b); }
CV_INLINE cv_d cv_sub(cv_d a, cv_d b) { return _mm512_sub_pd(a, b); }
CV_INLINE cv_d cv_mul(cv_d a, cv_d b) { return _mm512_mul_pd(a, b); }
CV_INLINE cv_d cv_div(cv_d a, cv_d b) { return _mm512_div_pd(a, b); }
CV_INLINE cv_d cv_fma(cv_d a, cv_d b, cv_d c) { return _mm512_fmadd_pd(a, b, c); }
/* vmaxpd returns its second operand when either is NaN */
CV_INLINE cv_d cv_max(cv_d acc, cv_d v) { return _mm512_max_pd(v, acc); }
CV_INLINE cv_b cv_lt(cv_d a, cv_d b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
CV_INLINE cv_b cv_eq(cv_d a, cv_d b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
CV_INLINE cv_b cv_gt(cv_d a, cv_d b) { return _mm512_cmp_pd_mask(a, b, _CMP_GT_OQ); }
CV_INLINE cv_b cv_isnan(cv_d a) { return _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q); }
CV_INLINE cv_d cv_sel(cv_b m, cv_d a, cv_d b) { return _mm512_mask_blend_pd(m, b, a); }
CV_INLINE int cv_any(cv_b m) { return m != 0; }

CV_INLINE void cv_lanes(cv_d v, double *out) { _mm512_storeu_pd(out, v); }

CV_INLINE cv_d cv_ld(const void *p, ptrdiff_t s, int f32)
{
    if (s == 1)
        return f32 ? _mm512_cvtps_pd(_mm256_loadu_ps((const float *)p)) : _mm512_loadu_pd(p);
    __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                     _mm256_set1_epi32((int)s));
    int small = s > -(1 << 27) && s < (1 << 27); /* l * s fits in 32 bits */
    if (f32 && small)
        return _mm512_cvtps_pd(_mm512_castps512_ps256(
            _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFF, _mm512_castsi256_si512(idx), p, 4)));
    if (!f32 && small)
        return _mm512_i32gather_pd(idx, p, 8);
    double t[8];
    cv_gather_n(t, p, s, 8, f32);
    return _mm512_loadu_pd(t);
}

/* the first n <= 8 elements; other lanes = pad (masked loads do not touch them) */
CV_INLINE cv_d cv_ldn(const void *p, ptrdiff_t s, size_t n, int f32, double pad)
{
    __mmask8 m = (__mmask8)((1u << n) - 1u);
    if (s == 1 && !f32)
        return _mm512_mask_loadu_pd(_mm512_set1_pd(pad), m, p);
    if (s == 1) {
        __m512 f = _mm512_maskz_loadu_ps((__mmask16)m, p);
        return _mm512_mask_mov_pd(_mm512_set1_pd(pad), m,
                                  _mm512_cvtps_pd(_mm512_castps512_ps256(f)));
    }
    double t[8] = {pad, pad, pad, pad, pad, pad, pad, pad};
    cv_gather_n(t, p, s, n, f32);
    return _mm512_loadu_pd(t);
}

CV_INLINE void cv_stn(void *p, ptrdiff_t s, size_t n, cv_d v, int f32)
{
    __mmask8 m = (__mmask8)((1u << n) - 1u);
    if (s == 1 && !f32) {
        _mm512_mask_storeu_pd(p, m, v);
        return;
    }
    if (s == 1) {
        __m512 f = _mm512_castps256_ps512(_mm512_cvtpd_ps(v));
        _mm512_mask_storeu_ps(p, (__mmask16)m, f);
        return;
    }
    double t[8];
    _mm512_storeu_pd(t, v);
    cv_scatter_n(p, s, t, n, f32);
}

CV_INLINE void cv_st(void *p, ptrdiff_t s, cv_d v, int f32)
{
    if (s != 1) {
        cv_stn(p, s, 8, v, f32);
        return;
    }
    if (f32)
        _mm256_storeu_ps((float *)p, _mm512_cvtpd_ps(v));
    else
        _mm512_storeu_pd((double *)p, v);
}

CV_INLINE cv_d cv_pow2(__m512i kbiased)
{
    return _mm512_castsi512_pd(_mm512_slli_epi64(kbiased, 52));
}

/* lanes whose mask byte p[l * s] is nonzero, l < w (kernels.inc's cv_keep) */
#define CV_HAS_KEEP 1
CV_INLINE cv_b cv_keep(const unsigned char *p, ptrdiff_t s, size_t w)
{
    unsigned char b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (s == 1 && w == 8)
        memcpy(b, p, 8);
    else
        for (size_t l = 0; l < w; l++)
            b[l] = p[(ptrdiff_t)l * s];
    long long v;
    memcpy(&v, b, 8);
    __m512i q = _mm512_cvtepu8_epi64(_mm_cvtsi64_si128(v));
    return _mm512_test_epi64_mask(q, q);
}

/* 2^k for kf = k + CSM_SHIFTER, k in [-1022, 1023] */
CV_INLINE cv_d cv_pow2k(cv_d kf)
{
    return cv_pow2(_mm512_add_epi64(_mm512_sub_epi64(_mm512_castpd_si512(kf),
                                                _mm512_castpd_si512(cv_set(CSM_SHIFTER))),
                                 _mm512_set1_epi64(1023)));
}

#endif
