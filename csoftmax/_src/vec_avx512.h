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
#include "exp_coeffs.h"

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
    for (int l = 0; l < 8; l++)
        t[l] = f32 ? (double)((const float *)p)[l * s] : ((const double *)p)[l * s];
    return _mm512_loadu_pd(t);
}

/* the first n < 8 elements; other lanes = pad (masked loads do not touch them) */
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
    for (size_t l = 0; l < n; l++)
        t[l] = f32 ? (double)((const float *)p)[(ptrdiff_t)l * s] : ((const double *)p)[(ptrdiff_t)l * s];
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
    for (size_t l = 0; l < n; l++) {
        if (f32)
            ((float *)p)[(ptrdiff_t)l * s] = (float)t[l];
        else
            ((double *)p)[(ptrdiff_t)l * s] = t[l];
    }
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

/* 2^k for kf = k + CSM_SHIFTER, k in [-1022, 1023] */
CV_INLINE cv_d cv_pow2k(cv_d kf)
{
    return cv_pow2(_mm512_add_epi64(_mm512_sub_epi64(_mm512_castpd_si512(kf),
                                                _mm512_castpd_si512(cv_set(CSM_SHIFTER))),
                                 _mm512_set1_epi64(1023)));
}

/* exp(d + r), d <= 0; *es = exp(d + r) * 2^600 (see vec_scalar.h) */
CV_INLINE cv_d cv_exp(cv_d d, cv_d r, cv_d *es)
{
    cv_b under = cv_lt(d, cv_set(CSM_EXP_MIN));
    d = cv_sel(under, cv_set(CSM_EXP_MIN), d);
    r = cv_sel(under, cv_set(0.0), r);
    cv_d kf = _mm512_fmadd_pd(d, cv_set(CSM_LOG2E), cv_set(CSM_SHIFTER));
    __m512i k = _mm512_sub_epi64(_mm512_castpd_si512(kf), _mm512_castpd_si512(cv_set(CSM_SHIFTER)));
    kf = cv_sub(kf, cv_set(CSM_SHIFTER));
    cv_d th = _mm512_fnmadd_pd(kf, cv_set(CSM_LN2_HI), d);
    cv_d tl = _mm512_fnmadd_pd(kf, cv_set(CSM_LN2_LO), r);
    cv_d t = cv_add(th, tl);
    cv_d c = cv_add(cv_sub(th, t), tl);
    cv_d q = cv_set(CSM_Q10);
    q = cv_fma(q, t, cv_set(CSM_Q9));
    q = cv_fma(q, t, cv_set(CSM_Q8));
    q = cv_fma(q, t, cv_set(CSM_Q7));
    q = cv_fma(q, t, cv_set(CSM_Q6));
    q = cv_fma(q, t, cv_set(CSM_Q5));
    q = cv_fma(q, t, cv_set(CSM_Q4));
    q = cv_fma(q, t, cv_set(CSM_Q3));
    q = cv_fma(q, t, cv_set(CSM_Q2));
    q = cv_fma(q, t, cv_set(CSM_Q1));
    q = cv_fma(q, t, cv_set(CSM_Q0));
    cv_d one = cv_set(1.0);
    cv_d hi = cv_add(one, t);
    cv_d lo = cv_sub(t, cv_sub(hi, one));
    cv_d small = cv_fma(cv_mul(t, t), q, cv_fma(c, t, c));
    cv_d p = cv_add(hi, cv_add(lo, small));
    /* 2^k in two normal factors: k2 = -600 where k < -1000 */
    __m512i bias = _mm512_set1_epi64(1023);
    __m512i k2 = _mm512_maskz_mov_epi64(_mm512_cmplt_epi64_mask(k, _mm512_set1_epi64(-1000)),
                                        _mm512_set1_epi64(-600));
    cv_d s1 = cv_pow2(_mm512_add_epi64(_mm512_sub_epi64(k, k2), bias));
    cv_d s2 = cv_pow2(_mm512_add_epi64(k2, bias));
    if (es)
        *es = cv_mul(p, cv_pow2(_mm512_add_epi64(k, _mm512_set1_epi64(600 + 1023))));
    return cv_mul(cv_mul(p, s1), s2);
}

#endif
