/*
 * stream.c -- merging and finishing the states of a streaming logsumexp
 * (issue 8, part 6; the states come from csm_logsumexp_state_*).
 *
 * A state is (m, S = hi + lo): m the maximum of the rows seen so far and S
 * the double-double sum of exp(x_i - m) (S >= 1 for finite m). Two states
 * merge into (M, S e^{m - M} + S2 e^{m2 - M}), M = max(m, m2), the
 * exponentials in double-double (m - M is exact as a double-double), so a
 * merge loses about 2^-100 S; finishing rounds m + log S once from
 * double-double. The result is as accurate as one call over the
 * concatenated rows (2 ULP; see csm_logsumexp_state_* for the rows where
 * m + log S may cancel).
 * Special states: m NaN (a NaN was seen: wins), m +inf (a +inf: wins over
 * everything but NaN), m -inf with S = 0 (nothing finite yet: neutral).
 */
#include <math.h>
#include "csoftmax/csoftmax.h"
#include "fpenv.h"
#include "precise.h"

static void two_sum(double a, double b, double *s, double *e)
{
    double t = a + b, bb = t - a;
    *e = (a - (t - bb)) + (b - bb);
    *s = t;
}

/* (h, l) * (eh, el), to about 2^-104 relative */
static void dd_mul(double h, double l, double eh, double el, double *rh, double *rl)
{
    double p = h * eh, e = fma(h, eh, -p);
    e += h * el + l * eh;
    double s = p + e;
    *rl = e - (s - p);
    *rh = s;
}

/* S e^{m - M} as a double-double (m <= M, both finite) */
static void scaled(double m, double M, double h, double l, double *rh, double *rl)
{
    if (m == M) {
        *rh = h;
        *rl = l;
        return;
    }
    double dh, dl, eh, el;
    two_sum(m, -M, &dh, &dl);
    if (dh < -745.0) { /* below 2^-1074 of S: nothing */
        *rh = *rl = 0.0;
        return;
    }
    csm_dd_exp(dh, dl, &eh, &el);
    dd_mul(h, l, eh, el, rh, rl);
}

void csm_lse_state_merge(double *m, double *hi, double *lo, const double *m2, const double *hi2,
                         const double *lo2, size_t count)
{
    csm_fpstate fp = csm_fp_enter();
    for (size_t k = 0; k < count; k++) {
        double a = m[k], b = m2[k];
        /* NaN wins, then +inf; -inf (nothing finite) is neutral */
        if (a != a || (b == b && (b == -HUGE_VAL || a == HUGE_VAL)))
            continue; /* state k stays */
        if (b != b || b == HUGE_VAL || a == -HUGE_VAL) {
            m[k] = b;
            hi[k] = hi2[k];
            lo[k] = lo2[k];
            continue;
        }
        double M = a > b ? a : b, h1, l1, h2, l2, s, e;
        scaled(a, M, hi[k], lo[k], &h1, &l1);
        scaled(b, M, hi2[k], lo2[k], &h2, &l2);
        two_sum(h1, h2, &s, &e);
        e += l1 + l2;
        m[k] = M;
        hi[k] = s + e;
        lo[k] = e - (hi[k] - s);
    }
    csm_fp_leave(fp);
}

void csm_lse_state_finish(const double *m, const double *hi, const double *lo, double *y,
                          size_t count)
{
    csm_fpstate fp = csm_fp_enter();
    for (size_t k = 0; k < count; k++) {
        double a = m[k];
        if (a != a || a == HUGE_VAL || a == -HUGE_VAL) {
            y[k] = a;
            continue;
        }
        double Lh, Ll, s, e;
        csm_dd_log(hi[k], lo[k], &Lh, &Ll);
        two_sum(Lh, a, &s, &e);
        y[k] = s + (e + Ll);
    }
    csm_fp_leave(fp);
}
