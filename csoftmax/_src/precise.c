/*
 * precise.c -- double-double logsumexp for ill-conditioned rows (precise.h).
 *
 * Double-double values are unevaluated sums hi + lo with |lo| <= ulp(hi)/2.
 * exp: k = round(a/ln2), t = a - k ln2 with ln2 in three parts, t /= 2^9,
 * Taylor series to degree 10 in double-double, nine squarings of expm1,
 * times 2^k. log1p: one Newton step on expm1 from the libm log1p (quadratic
 * convergence: 2^-53 -> below 2^-100, relative).
 */
#include <math.h>
#include "precise.h"

typedef struct { double hi, lo; } dd;

static dd two_sum(double a, double b)
{
    dd r;
    r.hi = a + b;
    double bb = r.hi - a;
    r.lo = (a - (r.hi - bb)) + (b - bb);
    return r;
}

static dd fast_two_sum(double a, double b) /* |a| >= |b| */
{
    dd r;
    r.hi = a + b;
    r.lo = b - (r.hi - a);
    return r;
}

static dd two_prod(double a, double b)
{
    dd r;
    r.hi = a * b;
    r.lo = fma(a, b, -r.hi);
    return r;
}

static dd dd_add(dd a, dd b)
{
    dd s = two_sum(a.hi, b.hi);
    dd t = two_sum(a.lo, b.lo);
    s.lo += t.hi;
    s = fast_two_sum(s.hi, s.lo);
    s.lo += t.lo;
    return fast_two_sum(s.hi, s.lo);
}

static dd dd_add_d(dd a, double b)
{
    dd s = two_sum(a.hi, b);
    s.lo += a.lo;
    return fast_two_sum(s.hi, s.lo);
}

static dd dd_mul(dd a, dd b)
{
    dd p = two_prod(a.hi, b.hi);
    p.lo += a.hi * b.lo + a.lo * b.hi;
    return fast_two_sum(p.hi, p.lo);
}

static dd dd_div_d(dd a, double b)
{
    double q1 = a.hi / b;
    dd p = two_prod(q1, b);               /* q1 * b exactly */
    double rem = ((a.hi - p.hi) - p.lo) + a.lo;
    double q2 = rem / b;
    return fast_two_sum(q1, q2);
}

/* ln2 = LN2_1 + LN2_2 + LN2_3 to about 160 bits; LN2_1 and LN2_2 have enough
 * trailing zero bits that k * LN2_1 and k * LN2_2 are exact for |k| < 2^11. */
#define LN2_1 0.693147180559890330187045037746429443359375
#define LN2_2 5.497923018708502421696649465070357021279e-14
#define LN2_3 (-1.3124698417785255e-27)

/* Shared core of exp and expm1: a = k ln2 + t with |t| <= ln2/2, returns
 * expm1(t) as a double-double (relative error below 2^-100) and k. */
static dd expm1_reduced(dd a, double *k_out)
{
    double k = nearbyint(a.hi * 1.4426950408889634);
    /* t = a - k ln2, exact in its first two steps */
    dd t = two_sum(a.hi - k * LN2_1, -k * LN2_2);
    t = dd_add_d(t, a.lo);
    t = dd_add_d(t, -k * LN2_3);
    t.hi = ldexp(t.hi, -9);
    t.lo = ldexp(t.lo, -9);
    /* expm1(t) = t (1 + t/2! + ... + t^9/10!), |t| <= 6.8e-4: error < 2^-110;
     * Horner with 1/i! as double-doubles (no division in the chain); the
     * terms from t^5 on are below 2^-59 t, so their sum R is taken in plain
     * double (its rounding: below 2^-101 relative), which halves the
     * double-double chain */
    static const double INV_FACT[11][2] = {
        {0.0, 0.0}, {1.0, 0.0}, {0.5, 0.0},
        {0.16666666666666666, 9.25185853854297e-18},
        {0.041666666666666664, 2.3129646346357427e-18},
        {0.008333333333333333, 1.1564823173178714e-19},
        {0.001388888888888889, -5.300543954373577e-20},
        {0.0001984126984126984, 1.7209558293420705e-22},
        {2.48015873015873e-05, 2.1511947866775882e-23},
        {2.7557319223985893e-06, -1.858393274046472e-22},
        {2.755731922398589e-07, 2.3767714622250297e-23}};
    double R = INV_FACT[10][0];
    for (int i = 9; i >= 5; i--)
        R = R * t.hi + INV_FACT[i][0];
    dd sum = {R, 0.0};
    for (int i = 4; i >= 1; i--)
        sum = dd_add(dd_mul(sum, t), (dd){INV_FACT[i][0], INV_FACT[i][1]});
    sum = dd_mul(sum, t);
    /* expm1(2u) = expm1(u) * (expm1(u) + 2), nine times */
    for (int i = 0; i < 9; i++)
        sum = dd_mul(sum, dd_add_d(sum, 2.0));
    *k_out = k;
    return sum;
}

/* exp(a) for -746 <= a <= 0, as a double-double. */
static dd dd_exp(dd a)
{
    double k;
    dd e = dd_add_d(expm1_reduced(a, &k), 1.0);
    e.hi = ldexp(e.hi, (int)k);
    e.lo = ldexp(e.lo, (int)k);
    return e;
}

/* expm1(a) for 0 <= a <= 700, as a double-double of full relative accuracy:
 * expm1(a) = (2^k - 1) + 2^k expm1(t). */
static dd dd_expm1(double a)
{
    double k;
    dd em = expm1_reduced((dd){a, 0.0}, &k);
    em.hi = ldexp(em.hi, (int)k);
    em.lo = ldexp(em.lo, (int)k);
    return k == 0.0 ? em : dd_add_d(em, ldexp(1.0, (int)k) - 1.0);
}

/* log1p(T) for T >= 0 as a double-double: one Newton step on
 * expm1(L) = T from the libm log1p, which keeps the relative accuracy of L
 * even when L is tiny (quadratic convergence: 2^-53 -> below 2^-100). */
static dd dd_log1p(dd T)
{
    double L0 = log1p(T.hi + T.lo);
    dd E = dd_expm1(L0);                       /* expm1(L0) */
    dd R = dd_add(E, (dd){-T.hi, -T.lo});      /* expm1(L0) - T, small */
    double corr = R.hi / (1.0 + E.hi);         /* dL = -R / exp(L0) */
    dd L = two_sum(L0, -corr);
    return fast_two_sum(L.hi, L.lo);
}

static double load(const void *x, ptrdiff_t off, int f32)
{
    return f32 ? (double)((const float *)x)[off] : ((const double *)x)[off];
}

/* x_i kept by the row's mask (every entry without one) */
static int kept(const csm_rowx *X, size_t i)
{
    return X == NULL || X->mask == NULL || X->mask[(ptrdiff_t)i * X->ms] != 0;
}

/* (x_i - m) / T as a double-double (x_i - m alone without a temperature):
 * the difference is exact, the quotient to about 2^-104 relative */
static dd shifted(const csm_rowx *X, double xi, double m)
{
    dd d = two_sum(xi, -m);
    return X != NULL && X->tempered && d.hi > -HUGE_VAL ? dd_div_d(d, X->T) : d;
}

/* m / T (m without a temperature) as a double-double */
static dd top(const csm_rowx *X, double m)
{
    dd v = {m, 0.0};
    return X != NULL && X->tempered ? dd_div_d(v, X->T) : v;
}

/* sum of exp((x_i - m) / T) 2^600 over the kept entries below the maximum
 * m, in double-double: scaled, terms that are subnormal (below 2^-1022) are
 * normal numbers here. The maxima, -inf and NaN (x_i > m only under
 * concurrent writes) are not terms; below -1100 a term is < 2^-1587:
 * nothing (but terms below -746, each under a subnormal spacing, are kept:
 * their sum may not be). */
static dd scaled_sum(const void *x, ptrdiff_t s, size_t n, int f32, double m, const csm_rowx *X)
{
    dd S = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        double xi = load(x, (ptrdiff_t)i * s, f32), k;
        if (!kept(X, i) || !(xi - m < 0.0))
            continue;
        dd d = shifted(X, xi, m);
        if (!(d.hi < 0.0 && d.hi >= -1100.0))
            continue;
        dd e = dd_add_d(expm1_reduced(d, &k), 1.0); /* exp = e 2^k */
        e.hi = ldexp(e.hi, (int)k + 600);           /* k >= -1587 */
        e.lo = ldexp(e.lo, (int)k + 600);
        S = dd_add(S, e);
    }
    return S;
}

double csm_logsumexp_precise(const void *x, ptrdiff_t s, size_t n, int f32, double m,
                             const csm_rowx *X)
{
    dd T = {0.0, 0.0};
    double count = 0.0;  /* entries equal to the maximum */
    for (size_t i = 0; i < n; i++) {
        double xi = load(x, (ptrdiff_t)i * s, f32);
        if (!kept(X, i))
            continue;
        if (xi == m) { count += 1.0; continue; }
        /* -inf, huge negative: exp is 0. x_i > m (or a NaN) only when another
         * thread wrote into x since m was taken (the result is then
         * unspecified): skipped, so that dd_exp's (int)k stays in range */
        if (!(xi - m <= 0.0))
            continue;
        dd d = shifted(X, xi, m);
        if (!(d.hi >= -746.0 && d.hi <= 0.0))
            continue;
        T = dd_add(T, dd_exp(d));
    }
    if (count == 0.0)                          /* likewise: keeps T >= 0 */
        count = 1.0;
    dd mt = top(X, m);
    if (count == 1.0 && T.hi < 0x1p-1000) {
        /* logsumexp = m + T (log1p(T) = T - T^2/2, T^2 below 2^-2000)
         * cancelling, so m is as tiny: the terms and the low parts of T are
         * subnormal, rounded on the 2^-1074 grid (dozens of spacings off, a
         * fuzzer finding of issue 7). Redone scaled by 2^600 and rounded to
         * the subnormal grid once, at the end. */
        dd v = dd_add(scaled_sum(x, s, n, f32, m, X),
                      (dd){ldexp(mt.hi, 600), ldexp(mt.lo, 600)}); /* exact scaling */
        return ldexp(v.hi, -600);
    }
    T = dd_add_d(T, count - 1.0);
    dd L = dd_log1p(T);
    dd v = dd_add(L, mt);
    return v.hi;
}

double csm_tiny_sum_scaled(const void *x, ptrdiff_t s, size_t n, int f32, double m,
                           const csm_rowx *X)
{
    return scaled_sum(x, s, n, f32, m, X).hi;
}

/* ---- weights and streaming (issue 8, parts 5 and 6) ---- */

void csm_dd_exp(double hi, double lo, double *rh, double *rl)
{
    double k;
    dd e = dd_add_d(expm1_reduced((dd){hi, lo}, &k), 1.0);
    /* 2^k in two steps: k may lie beyond the exponent range of one ldexp
     * argument's normal result only at the ends of [-746, 709] */
    int k1 = (int)k / 2, k2 = (int)k - k1;
    *rh = ldexp(ldexp(e.hi, k1), k2);
    *rl = ldexp(ldexp(e.lo, k1), k2);
}

void csm_dd_log(double hi, double lo, double *rh, double *rl)
{
    dd r;
    if (hi >= 0.5 && hi <= 2.0) {
        /* log1p(T), T = (hi - 1) + lo: hi - 1 is exact here (Sterbenz) */
        dd T = two_sum(hi - 1.0, lo);
        if (T.hi >= 0.0) {
            r = dd_log1p(T);
            *rh = r.hi;
            *rl = r.lo;
            return;
        }
    }
    /* one Newton step on exp: L = L0 + (S - e^L0) / e^L0 */
    double L0 = log(hi), eh, el;
    csm_dd_exp(L0, 0.0, &eh, &el);
    dd R = dd_add((dd){hi, lo}, (dd){-eh, -el});
    r = two_sum(L0, R.hi / eh);
    *rh = r.hi;
    *rl = r.lo;
}

void csm_weighted_sum_precise(const void *x, ptrdiff_t sx, const void *b, ptrdiff_t sb, size_t n,
                              int f32, double m, int kb, double *hi, double *lo)
{
    dd S = {0.0, 0.0};
    for (size_t i = 0; i < n; i++) {
        double bi = b == NULL ? 1.0 : load(b, (ptrdiff_t)i * sb, f32);
        if (bi == 0.0)
            continue;
        double xi = load(x, (ptrdiff_t)i * sx, f32);
        if (!(xi - m <= 0.0) || xi - m < -746.0) /* -inf, huge negative: nothing */
            continue;
        dd e = dd_exp(two_sum(xi, -m));
        bi = ldexp(bi, -kb); /* exact unless b_i lies 2^1074 below the largest */
        dd t = two_prod(bi, e.hi);
        t.lo += bi * e.lo;
        S = dd_add(S, t);
    }
    *hi = S.hi;
    *lo = S.lo;
}

double csm_logsumexp_weighted_precise(const void *x, ptrdiff_t sx, const void *b, ptrdiff_t sb,
                                      size_t n, int f32, double m, int kb, double *sign)
{
    double h, l;
    csm_weighted_sum_precise(x, sx, b, sb, n, f32, m, kb, &h, &l);
    if (h == 0.0) {
        *sign = 0.0;
        return -HUGE_VAL;
    }
    *sign = h > 0.0 ? 1.0 : -1.0;
    if (h < 0.0)
        h = -h, l = -l;
    dd L;
    csm_dd_log(h, l, &L.hi, &L.lo);
    /* m + kb ln2 + L */
    dd v = dd_add(L, (dd){m, 0.0});
    if (kb != 0) {
        double k = (double)kb;
        v = dd_add(v, two_sum(k * LN2_1, k * LN2_2));
        v = dd_add_d(v, k * LN2_3);
    }
    return v.hi;
}
