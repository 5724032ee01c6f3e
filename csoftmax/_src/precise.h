/*
 * precise.h -- double-double slow path shared by every instruction set.
 *
 * logsumexp(x) = m + log1p(T) cancels when m < 0 and |m + log1p(T)| is small
 * next to log1p(T): the rounding of T and of log1p then dominate the result.
 * Such rows (rare for logits, common for rows of log-probabilities) are
 * recomputed here in double-double arithmetic: each term and log1p(T) to
 * about 2^-104 relative, so the result is within 2 ULP + 2^-100 |m|
 * (tests/test_accuracy.py, log-probability rows).
 */
#ifndef CSM_PRECISE_H
#define CSM_PRECISE_H

#include <stddef.h>

/* The options of one row of the extended kernels (csm_*_ex, issue 8), as
 * the kernels and the slow paths here see them:
 *   mask      NULL, or the row's where= mask: entry i is kept where
 *             mask[i * ms] != 0 and is absent from the row where it is 0;
 *   tempered  nonzero: the row is x / T (temperature T > 0), else x;
 *   T, iT     T and its reciprocal 1/T (rounded);
 *   Th, Tl    T split in two halves of 26 bits (Veltkamp), for an exact
 *             product q * T where the target has no FMA. */
typedef struct csm_rowx {
    const unsigned char *mask;
    ptrdiff_t ms;
    int tempered;
    double T, iT, Th, Tl;
} csm_rowx;

/* logsumexp of one row x[0], x[s], ..., x[(n-1)s] (float or double storage,
 * f32 != 0 for float) with finite maximum m (of the kept entries, before
 * any temperature); X: the row's mask and temperature, or NULL for none. */
double csm_logsumexp_precise(const void *x, ptrdiff_t s, size_t n, int f32, double m,
                             const csm_rowx *X);

/* T = sum of exp(x_i - m) over the entries below the maximum m, times
 * 2^600, for float64 rows whose T is below 2^-1000 (issue 7, a fuzzer
 * finding): the kernels' terms are then below the normal range, rounded on
 * the subnormal grid (a few dozen spacings off in the sum); here each term
 * is a normal number exp(x_i - m) 2^600, summed in double-double. Then
 * log1p(T) = T to double precision: L = csm_tiny_sum_scaled(...) * 2^-600,
 * rounded once. With a temperature the terms are exp((x_i - m) / T). */
double csm_tiny_sum_scaled(const void *x, ptrdiff_t s, size_t n, int f32, double m,
                           const csm_rowx *X);

/* ---- weights and streaming (issue 8, parts 5 and 6) ---- */

/* S = sum b_i 2^-kb exp(x_i - m) in double-double (hi + lo, relative error
 * about 2^-100 K, K = sum |terms| / |S|) over the entries with b_i != 0
 * (b NULL: every b_i = 1); b has x's storage type, stride sb; x_i - m below
 * -746 adds nothing. m: the maximum of those x_i, finite. */
void csm_weighted_sum_precise(const void *x, ptrdiff_t sx, const void *b, ptrdiff_t sb, size_t n,
                              int f32, double m, int kb, double *hi, double *lo);

/* m + kb ln2 + log|S| for that S, rounded once from double-double; *sign:
 * the sign of S (1, -1; 0 and -inf when S is exactly 0). */
double csm_logsumexp_weighted_precise(const void *x, ptrdiff_t sx, const void *b, ptrdiff_t sb,
                                      size_t n, int f32, double m, int kb, double *sign);

/* exp(hi + lo) for hi in [-746, 709] as hi + lo (relative 2^-100) */
void csm_dd_exp(double hi, double lo, double *rh, double *rl);
/* log(hi + lo) for hi + lo > 0 (normal) as rh + rl (absolute about 2^-100
 * |result| + 2^-104) */
void csm_dd_log(double hi, double lo, double *rh, double *rl);

#endif
