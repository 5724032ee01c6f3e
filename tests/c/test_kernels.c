/*
 * test_kernels.c -- C99 test driver for the csoftmax C core (no Python).
 *
 * Build (any host; .ci/neon.sh does this natively and for aarch64 under qemu):
 *   cc -std=c99 -O2 -ffp-contract=off -Iinclude -Icsoftmax/_src \
 *      tests/c/test_kernels.c csoftmax/_src/{cpu,dispatch,precise,kern_scalar,
 *      kern_avx2,kern_avx512,kern_neon}.c -lm
 *
 * For every instruction set that csm_isa_supported() reports (csm_set_isa),
 * it checks, for softmax, log_softmax and logsumexp on float32 and float64:
 *   (a) accuracy against a long double oracle: rows of every length 1..67,
 *       1000 and 10007, normal random values at scales 1, 10, 100 (some rows
 *       with a repeated maximum), in the row layout (csm_rows) and in the
 *       column layout x[outer][n][inner] with inner = 5 and 19 (and 131,
 *       more than one strip of the column kernel, for n <= 8). Bounds:
 *       softmax and log_softmax 4 ULP, logsumexp 2 ULP for normal outputs;
 *       subnormal outputs within one subnormal spacing;
 *   (b) rows of one repeated value: softmax exactly 1/n (correctly rounded),
 *       log_softmax -log(n) and logsumexp c + log(n) within the bounds;
 *   (c) the special-value table of csoftmax.h (NaN rows, some -inf, all
 *       -inf, one +inf, two +inf, n == 1 with +-inf), rows and columns;
 *   (d) in place (y == x, same strides) equals out of place, bitwise;
 *   (e) the row layout, strided rows and the column layouts give bitwise
 *       identical results (and strided stores leave the gaps alone);
 *   (f) the README's worked example softmax([13, 31, 5]);
 *   (g) the caller's floating-point environment: no exception flag left
 *       by a call, the caller's flags kept, its rounding mode and its
 *       flush-to-zero bits (x86-64 FTZ/DAZ, aarch64 FZ) kept and not used;
 *   (h) rows whose other terms are all below 2^-1022 (rows and columns);
 *   (i) the _ex kernels (csm_options): a where= mask and a temperature,
 *       rows and columns, against the oracle of each row's kept entries
 *       (T = 1/4: x / T exact), rows == columns bitwise for T = 0.37, rows
 *       with no or one kept entry, a bad temperature refused;
 *   (j) training (issue 8): softmax_backward and log_softmax_backward
 *       against a long double oracle (rows 1..67 and 1000, f32 and f64,
 *       the bounds of train.inc), in place over dy bitwise, the same
 *       rows as columns (the strip kernel) bitwise, threads bitwise;
 *       cross_entropy with class targets (loss 2 ULP, gradient
 *       4 ULP of max(p, q) / count, mean), CSM_ERANGE writing nothing;
 *       with probability targets, each row alone == all rows in one call
 *       == the rows as columns (the strips), bitwise;
 *   (k) logsumexp with weights and signs, and the streaming state
 *       (check_weighted: 2 ULP against long double, cancelling sums,
 *       special values, chunks merged equal to one call).
 * Prints one line per ISA with the max ULP per op x dtype, then
 * "N passed, M failed" (check groups); exit status 0 only if none failed.
 * TEST_KERNELS_VERBOSE=1 in the environment also prints where each max is.
 *
 * The oracle: m = max, d_i = x_i - m as a long double TwoSum (dh + dl, so
 * exact on any long double), e_i = expl(dh) (1 + dl), T = sum of e_i over the
 * non-maximal entries (Neumaier), S = count + T, L = log1pl(count - 1 + T);
 * softmax = e/S, log_softmax = dh - L + dl, logsumexp = m + L. On aarch64
 * long double is IEEE quad; on x86 it is 80-bit (64-bit significand), where
 * m + L can cancel below the oracle's own accuracy: logsumexp errors are
 * measured net of the bound 4 (|m| + L) LDBL_EPSILON (negligible on quad).
 */
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csoftmax/csoftmax.h"

enum { SM, LSM, LSE, NOP };
static const char *const op_name[NOP] = {"softmax", "log_softmax", "logsumexp"};
static const double ulp_bound[NOP] = {4.0, 4.0, 2.0};

/* ---- check groups ---------------------------------------------------- */

enum { K_ACC_ROWS, K_ACC_COL5, K_ACC_COL19, K_ACC_COL131, K_CONST, K_SPECIAL, K_INPLACE,
       K_LAYOUT, NKIND };
static const char *const kind_name[NKIND] = {
    "accuracy, rows", "accuracy, columns inner=5", "accuracy, columns inner=19",
    "accuracy, columns inner=131", "constant rows", "special values", "in place",
    "layouts bitwise"};
#define GRP(kind, op, f32) ((kind) * 6 + (op) * 2 + (f32))
#define G_EXAMPLE (NKIND * 6)
#define G_API (NKIND * 6 + 1)
#define G_THREADS (NKIND * 6 + 2)
#define G_TRAIN (NKIND * 6 + 3)
#define NGROUP (NKIND * 6 + 4)

typedef struct {
    const char *name;
    double maxulp[NOP][2]; /* normal outputs, in ULP */
    double maxsub[NOP][2]; /* subnormal outputs, in subnormal spacings */
    char worst[NOP][2][160]; /* where maxulp was reached */
    long nfail[NGROUP], nchecked[NGROUP];
} stats;

static stats *S;
static long global_pass, global_fail;

static void group_name(int g, char *buf, size_t len)
{
    if (g == G_EXAMPLE)
        snprintf(buf, len, "worked example");
    else if (g == G_API)
        snprintf(buf, len, "api");
    else if (g == G_THREADS)
        snprintf(buf, len, "threads bitwise (csm_*_mt)");
    else if (g == G_TRAIN)
        snprintf(buf, len, "training (backward, cross-entropy)");
    else
        snprintf(buf, len, "%s %s %s", kind_name[g / 6], op_name[(g % 6) / 2],
                 g % 2 ? "f32" : "f64");
}

static void fail(int g, const char *fmt, ...)
{
    S->nfail[g]++;
    if (S->nfail[g] <= 4) {
        char gn[96];
        va_list ap;
        group_name(g, gn, sizeof gn);
        printf("FAIL [%s] %s: ", S->name, gn);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    } else if (S->nfail[g] == 5) {
        char gn[96];
        group_name(g, gn, sizeof gn);
        printf("FAIL [%s] %s: (further failures not shown)\n", S->name, gn);
    }
}

static void global_check(int ok, const char *what)
{
    if (ok) {
        global_pass++;
    } else {
        global_fail++;
        printf("FAIL %s\n", what);
    }
}

/* ---- PRNG (splitmix64), fixed seed ------------------------------------ */

static uint64_t rng_s = 0x243F6A8885A308D3ull;

static uint64_t rng_u64(void)
{
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unif(void) /* in (0, 1) */
{
    return ((double)(rng_u64() >> 11) + 0.5) * 0x1p-53;
}

static double rng_normal(void) /* Box-Muller */
{
    double u = rng_unif(), v = rng_unif();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- typed element access ---------------------------------------------- */

static double getv(const void *p, ptrdiff_t i, int f32)
{
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void setv(void *p, ptrdiff_t i, double v, int f32)
{
    if (f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static int same_bits(const void *a, ptrdiff_t ia, const void *b, ptrdiff_t ib, int f32)
{
    size_t es = f32 ? sizeof(float) : sizeof(double);
    return memcmp((const char *)a + ia * (ptrdiff_t)es, (const char *)b + ib * (ptrdiff_t)es, es) == 0;
}

/* element i of a typed buffer */
static void *advp(void *p, ptrdiff_t i, int f32)
{
    return (char *)p + i * (ptrdiff_t)(f32 ? sizeof(float) : sizeof(double));
}

static const void *cadvp(const void *p, ptrdiff_t i, int f32)
{
    return (const char *)p + i * (ptrdiff_t)(f32 ? sizeof(float) : sizeof(double));
}

static void *xalloc(size_t count, int f32)
{
    void *p = malloc((count ? count : 1) * (f32 ? sizeof(float) : sizeof(double)));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static int call(int op, int f32, const void *x, void *y, const csm_layout *L)
{
    int rc;
    switch (op * 2 + f32) {
    case 0: rc = csm_softmax_f64((const double *)x, (double *)y, L); break;
    case 1: rc = csm_softmax_f32((const float *)x, (float *)y, L); break;
    case 2: rc = csm_log_softmax_f64((const double *)x, (double *)y, L); break;
    case 3: rc = csm_log_softmax_f32((const float *)x, (float *)y, L); break;
    case 4: rc = csm_logsumexp_f64((const double *)x, (double *)y, L); break;
    default: rc = csm_logsumexp_f32((const float *)x, (float *)y, L); break;
    }
    S->nchecked[G_API]++;
    if (rc != CSM_OK)
        fail(G_API, "%s %s returned %d", op_name[op], f32 ? "f32" : "f64", rc);
    return rc;
}

/* ---- the oracle ---------------------------------------------------------- */

/* One row x[0..n-1] (values exactly representable in the dtype): the
 * special-value table of csoftmax.h, or the long double reference. */
static void oracle_row(const double *x, size_t n, long double *sm, long double *lsm,
                       long double *lse, long double *lse_slack)
{
    int has_nan = 0;
    size_t npinf = 0;
    double m = -HUGE_VAL;
    *lse_slack = 0.0L;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != x[i])
            has_nan = 1;
        else if (x[i] > m)
            m = x[i];
        npinf += x[i] == HUGE_VAL;
    }
    if (has_nan) {
        for (size_t i = 0; i < n; i++)
            sm[i] = lsm[i] = NAN;
        *lse = NAN;
        return;
    }
    if (n == 1) {
        sm[0] = 1.0L;
        lsm[0] = 0.0L;
        *lse = x[0];
        return;
    }
    if (m == -HUGE_VAL) {
        for (size_t i = 0; i < n; i++)
            sm[i] = lsm[i] = NAN;
        *lse = -HUGE_VAL;
        return;
    }
    if (m == HUGE_VAL) {
        for (size_t i = 0; i < n; i++) {
            if (x[i] == HUGE_VAL) {
                sm[i] = npinf == 1 ? 1.0L : (long double)NAN;
                lsm[i] = npinf == 1 ? 0.0L : (long double)NAN;
            } else {
                sm[i] = 0.0L;
                lsm[i] = -HUGE_VALL;
            }
        }
        *lse = HUGE_VAL;
        return;
    }
    /* finite maximum: sm[] holds e_i for now, lsm[] holds dl_i */
    long double T = 0.0L, Tc = 0.0L;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        long double a = x[i], b = -(long double)m;
        if (x[i] == -HUGE_VAL) {
            sm[i] = 0.0L;
            lsm[i] = 0.0L;
            continue;
        }
        long double dh = a + b, bb = dh - a;
        long double dl = (a - (dh - bb)) + (b - bb);
        long double e = expl(dh);
        e += e * dl;
        sm[i] = e;
        lsm[i] = dl;
        if (x[i] == m) {
            cnt++;
        } else { /* Neumaier */
            long double t = T + e;
            Tc += fabsl(T) >= fabsl(e) ? (T - t) + e : (e - t) + T;
            T = t;
        }
    }
    T += Tc;
    long double Tt = T + (long double)(cnt - 1);
    long double Lg = log1pl(Tt), Sum = 1.0L + Tt;
    for (size_t i = 0; i < n; i++) {
        if (x[i] == -HUGE_VAL) {
            sm[i] = 0.0L;
            lsm[i] = -HUGE_VALL;
            continue;
        }
        long double dh = (long double)x[i] - (long double)m; /* as above, rounded */
        long double dl = lsm[i];
        sm[i] = sm[i] / Sum;
        lsm[i] = (dh - Lg) + dl;
    }
    *lse = (long double)m + Lg;
    *lse_slack = 4.0L * LDBL_EPSILON * (fabsl((long double)m) + Lg);
}

/* got vs ref, in ULP of ref for normal refs (bound per op), else in
 * subnormal spacings (bound 1); NaN and inf must match exactly. */
static int check_val(int g, int op, int f32, double got, long double ref, long double slack,
                     const char *what, size_t n, size_t i)
{
    int bad = 0;
    double e = 0.0;
    S->nchecked[g]++;
    if (isnan(ref)) {
        bad = !isnan(got);
    } else if (isinf(ref)) {
        bad = got != (double)ref;
    } else if (!isfinite(got)) {
        bad = 1;
        e = HUGE_VAL;
    } else {
        long double diff = fabsl((long double)got - ref) - slack;
        long double minnorm = f32 ? 0x1p-126L : 0x1p-1022L, spacing = f32 ? 0x1p-149L : 0x1p-1074L;
        if (diff < 0)
            diff = 0;
        if (fabsl(ref) < minnorm) {
            e = (double)(diff / spacing);
            if (e > S->maxsub[op][f32])
                S->maxsub[op][f32] = e;
            bad = e > 1.0;
        } else {
            long double ulp = ldexpl(1.0L, ilogbl(ref) - (f32 ? 23 : 52));
            e = (double)(diff / ulp);
            if (e > S->maxulp[op][f32]) {
                S->maxulp[op][f32] = e;
                snprintf(S->worst[op][f32], sizeof S->worst[op][f32],
                         "%s n=%zu i=%zu: got %.17g, want %.21Lg", what, n, i, got, ref);
            }
            bad = e > ulp_bound[op];
        }
    }
    if (bad)
        fail(g, "%s n=%zu i=%zu: got %.17g, want %.21Lg (err %.3g)", what, n, i, got, ref, e);
    return bad;
}

/* ---- data sets ------------------------------------------------------------ */

typedef struct {
    int f32;
    size_t n, R;                 /* R rows of n */
    double *xd;                  /* R*n inputs as doubles */
    void *x;                     /* R*n typed */
    long double *sm, *lsm;       /* R*n */
    long double *lse, *lse_slack; /* R */
} dataset;

static void dataset_alloc(dataset *D, int f32, size_t n, size_t R)
{
    D->f32 = f32;
    D->n = n;
    D->R = R;
    D->xd = malloc(R * n * sizeof(double));
    D->x = xalloc(R * n, f32);
    D->sm = malloc(R * n * sizeof(long double));
    D->lsm = malloc(R * n * sizeof(long double));
    D->lse = malloc(R * sizeof(long double));
    D->lse_slack = malloc(R * sizeof(long double));
    if (!D->xd || !D->sm || !D->lsm || !D->lse || !D->lse_slack) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
}

static void dataset_free(dataset *D)
{
    free(D->xd);
    free(D->x);
    free(D->sm);
    free(D->lsm);
    free(D->lse);
    free(D->lse_slack);
}

/* stores xd (rounded to the dtype) into x and computes the oracle */
static void dataset_finish(dataset *D)
{
    for (size_t k = 0; k < D->R * D->n; k++) {
        setv(D->x, (ptrdiff_t)k, D->xd[k], D->f32);
        D->xd[k] = getv(D->x, (ptrdiff_t)k, D->f32);
    }
    for (size_t r = 0; r < D->R; r++)
        oracle_row(D->xd + r * D->n, D->n, D->sm + r * D->n, D->lsm + r * D->n, &D->lse[r],
                   &D->lse_slack[r]);
}

static long double ref_of(const dataset *D, int op, size_t r, size_t i)
{
    return op == SM ? D->sm[r * D->n + i] : op == LSM ? D->lsm[r * D->n + i] : D->lse[r];
}

/* ---- the checks on one data set (current ISA) -------------------------- */

/* y (layout L, R = outer * inner rows) against the oracle; row of (o, j) is
 * o * inner + j + row0 */
static void check_accuracy(int g, int op, const dataset *D, const void *y, const csm_layout *L,
                           const char *what)
{
    int f32 = D->f32;
    for (size_t o = 0; o < L->outer; o++)
        for (size_t j = 0; j < L->inner; j++) {
            size_t r = o * L->inner + j;
            if (op == LSE) {
                ptrdiff_t k = (ptrdiff_t)o * L->y_outer + (ptrdiff_t)j * L->y_inner;
                check_val(g, op, f32, getv(y, k, f32), D->lse[r], D->lse_slack[r], what, D->n, 0);
                continue;
            }
            for (size_t i = 0; i < D->n; i++) {
                ptrdiff_t k = (ptrdiff_t)o * L->y_outer + (ptrdiff_t)i * L->y_n +
                              (ptrdiff_t)j * L->y_inner;
                check_val(g, op, f32, getv(y, k, f32), ref_of(D, op, r, i), 0.0L, what, D->n, i);
            }
        }
}

/* y (layout L) bitwise against the row-layout result yrow (rows r = o*inner+j) */
static void check_same(int g, int op, const dataset *D, const void *y, const csm_layout *L,
                       const void *yrow, const char *what)
{
    int f32 = D->f32;
    S->nchecked[g]++;
    for (size_t o = 0; o < L->outer; o++)
        for (size_t j = 0; j < L->inner; j++) {
            size_t r = o * L->inner + j;
            size_t cnt = op == LSE ? 1 : D->n;
            for (size_t i = 0; i < cnt; i++) {
                ptrdiff_t k = (ptrdiff_t)o * L->y_outer + (ptrdiff_t)j * L->y_inner +
                              (op == LSE ? 0 : (ptrdiff_t)i * L->y_n);
                ptrdiff_t kr = op == LSE ? (ptrdiff_t)r : (ptrdiff_t)(r * D->n + i);
                if (!same_bits(y, k, yrow, kr, f32)) {
                    fail(g, "%s n=%zu row %zu i=%zu: %.17g vs rows %.17g", what, D->n, r, i,
                         getv(y, k, f32), getv(yrow, kr, f32));
                    return;
                }
            }
        }
}

/* layout of x[outer][n][inner], contiguous, y alike (logsumexp: y[outer][inner]) */
static csm_layout col_layout(size_t outer, size_t n, size_t inner, int op)
{
    csm_layout L;
    L.outer = outer;
    L.n = n;
    L.inner = inner;
    L.x_outer = (ptrdiff_t)(n * inner);
    L.x_n = (ptrdiff_t)inner;
    L.x_inner = 1;
    if (op == LSE) {
        L.y_outer = (ptrdiff_t)inner;
        L.y_n = 0;
        L.y_inner = 1;
    } else {
        L.y_outer = L.x_outer;
        L.y_n = L.x_n;
        L.y_inner = 1;
    }
    return L;
}

/* Runs every op on D in every layout: rows (checked against the oracle when
 * check_acc), rows in place, strided rows and columns (bitwise against rows;
 * columns also against the oracle when check_acc), columns in place. The
 * constant and special-value data sets pass check_acc = 0 and check their
 * values themselves. */
static void run_dataset(const dataset *D, int check_acc)
{
    int f32 = D->f32;
    size_t n = D->n, R = D->R;
    char what[64];
    for (int op = 0; op < NOP; op++) {
        size_t ny = op == LSE ? R : R * n;
        /* rows */
        void *yrow = xalloc(ny, f32);
        csm_layout L = op == LSE ? csm_rows_reduced(R, n) : csm_rows(R, n);
        call(op, f32, D->x, yrow, &L);
        if (check_acc)
            check_accuracy(GRP(K_ACC_ROWS, op, f32), op, D, yrow, &L, "rows");
        /* in place, rows */
        void *z = xalloc(R * n, f32);
        memcpy(z, D->x, R * n * (f32 ? sizeof(float) : sizeof(double)));
        csm_layout Lz = csm_rows(R, n); /* for logsumexp: writes z[r * n] */
        call(op, f32, z, z, &Lz);
        {
            int g = GRP(K_INPLACE, op, f32);
            S->nchecked[g]++;
            for (size_t r = 0; r < R; r++)
                for (size_t i = 0; i < (op == LSE ? 1 : n); i++) {
                    ptrdiff_t kz = (ptrdiff_t)(r * n + i), ky = op == LSE ? (ptrdiff_t)r : kz;
                    if (!same_bits(z, kz, yrow, ky, f32)) {
                        fail(g, "rows n=%zu row %zu i=%zu: %.17g vs %.17g", n, r, i,
                             getv(z, kz, f32), getv(yrow, ky, f32));
                        r = R;
                        break;
                    }
                }
        }
        free(z);
        /* strided rows: x at stride 2 (NaN between), y at stride 3 (gaps kept) */
        {
            void *xs = xalloc(2 * R * n, f32), *ys = xalloc(3 * ny, f32);
            for (size_t k = 0; k < 2 * R * n; k++)
                setv(xs, (ptrdiff_t)k, NAN, f32);
            for (size_t k = 0; k < 3 * ny; k++)
                setv(ys, (ptrdiff_t)k, 12345.0, f32);
            for (size_t k = 0; k < R * n; k++)
                setv(xs, (ptrdiff_t)(2 * k), D->xd[k], f32);
            csm_layout Ls = csm_rows(R, n);
            Ls.x_outer = (ptrdiff_t)(2 * n);
            Ls.x_n = 2;
            Ls.y_outer = op == LSE ? 3 : (ptrdiff_t)(3 * n);
            Ls.y_n = 3;
            call(op, f32, xs, ys, &Ls);
            int g = GRP(K_LAYOUT, op, f32);
            S->nchecked[g]++;
            for (size_t k = 0; k < 3 * ny; k++) {
                int ok = k % 3 ? getv(ys, (ptrdiff_t)k, f32) == 12345.0
                               : same_bits(ys, (ptrdiff_t)k, yrow, (ptrdiff_t)(k / 3), f32);
                if (!ok) {
                    fail(g, "strided rows n=%zu: element %zu of y differs", n, k);
                    break;
                }
            }
            free(xs);
            free(ys);
        }
        /* columns: inner = 5, 19 (one strip of the column kernel) and 131 (more
         * than one strip, for the data sets with enough rows) */
        for (int ci = 0; ci < 3; ci++) {
            static const size_t inners[3] = {5, 19, 131};
            static const int kinds[3] = {K_ACC_COL5, K_ACC_COL19, K_ACC_COL131};
            size_t I = inners[ci], O = ci == 0 ? 2 : R / I;
            if (O * I > R || O == 0)
                continue;
            void *xc = xalloc(O * n * I, f32), *yc = xalloc(O * n * I, f32);
            for (size_t o = 0; o < O; o++)
                for (size_t i = 0; i < n; i++)
                    for (size_t j = 0; j < I; j++)
                        setv(xc, (ptrdiff_t)((o * n + i) * I + j), D->xd[(o * I + j) * n + i], f32);
            csm_layout Lc = col_layout(O, n, I, op);
            call(op, f32, xc, yc, &Lc);
            snprintf(what, sizeof what, "columns inner=%zu", I);
            if (check_acc)
                check_accuracy(GRP(kinds[ci], op, f32), op, D, yc, &Lc, what);
            check_same(GRP(K_LAYOUT, op, f32), op, D, yc, &Lc, yrow, what);
            /* in place, columns: y strides = x strides */
            csm_layout Lz2 = col_layout(O, n, I, SM);
            call(op, f32, xc, xc, &Lz2);
            check_same(GRP(K_INPLACE, op, f32), op, D, xc, &Lz2, yrow, what);
            free(xc);
            free(yc);
        }
        free(yrow);
    }
}

/* ---- (a) random rows -------------------------------------------------------- */

static void build_random(dataset *D, int f32, size_t n, double scale)
{
    size_t R = n >= 5000 ? 19 : n <= 8 ? 262 : 38; /* 262 = 2 * 131 */
    dataset_alloc(D, f32, n, R);
    for (size_t r = 0; r < R; r++) {
        double *x = D->xd + r * n;
        for (size_t i = 0; i < n; i++)
            x[i] = scale * rng_normal();
        if (r % 4 == 1 && n >= 3) { /* a repeated maximum */
            size_t im = 0;
            for (size_t i = 1; i < n; i++)
                if (x[i] > x[im])
                    im = i;
            x[(r * 7) % n] = x[im];
            x[(r * 13 + 1) % n] = x[im];
        }
    }
    dataset_finish(D);
}

/* ---- (b) constant rows ------------------------------------------------------ */

static void run_constant(int f32, size_t n, double c)
{
    dataset D;
    dataset_alloc(&D, f32, n, 10);
    for (size_t k = 0; k < 10 * n; k++)
        D.xd[k] = c;
    dataset_finish(&D);
    c = D.xd[0];
    /* the layouts agree bitwise (groups of (d), (e)); the values: */
    run_dataset(&D, 0);
    for (int op = 0; op < NOP; op++) {
        int g = GRP(K_CONST, op, f32);
        void *y = xalloc(op == LSE ? 10 : 10 * n, f32);
        csm_layout L = csm_rows(10, n);
        if (op == LSE)
            L.y_outer = 1;
        call(op, f32, D.x, y, &L);
        long double logn = log1pl((long double)(n - 1));
        for (size_t k = 0; k < (op == LSE ? 10 : 10 * n); k++) {
            double got = getv(y, (ptrdiff_t)k, f32);
            if (op == SM) {
                double want = f32 ? (double)(1.0f / (float)n) : 1.0 / (double)n;
                S->nchecked[g]++;
                if (got != want)
                    fail(g, "n=%zu c=%.9g i=%zu: got %.17g, want 1/n = %.17g", n, c, k, got, want);
            } else if (op == LSM) {
                check_val(g, op, f32, got, -logn, 0.0L, "constant", n, k);
            } else {
                long double want = (long double)c + logn;
                check_val(g, op, f32, got, want, 4.0L * LDBL_EPSILON * (fabsl((long double)c) + logn),
                          "constant", n, k);
            }
        }
        free(y);
    }
    dataset_free(&D);
}

/* ---- (c) special values -------------------------------------------------------- */

/* One row with specials (row 2 of 10; the other rows finite), in the row
 * layout and in the column layout x[2][n][5] (column 2 of outer 0): the
 * table exactly, exact 0 / -inf at -inf inputs of finite-maximum rows, the
 * oracle bounds elsewhere; then run_dataset: in place and layouts bitwise
 * (the column kernel takes a strip with a special row one row at a time). */
static void run_special(int f32, const double *xin, size_t n, const char *desc)
{
    dataset D;
    dataset_alloc(&D, f32, n, 10);
    for (size_t r = 0; r < 10; r++)
        for (size_t i = 0; i < n; i++)
            D.xd[r * n + i] = r == 2 ? xin[i] : 3.0 * rng_normal();
    dataset_finish(&D);
    for (int op = 0; op < NOP; op++) {
        int g = GRP(K_SPECIAL, op, f32);
        for (int lay = 0; lay < 2; lay++) {
            void *y = xalloc(10 * n, f32);
            csm_layout L;
            void *xc = NULL;
            if (lay == 0) {
                L = csm_rows(10, n);
                if (op == LSE)
                    L.y_outer = 1;
                call(op, f32, D.x, y, &L);
            } else { /* x[2][n][5]: row r = o * 5 + j */
                xc = xalloc(10 * n, f32);
                for (size_t o = 0; o < 2; o++)
                    for (size_t i = 0; i < n; i++)
                        for (size_t j = 0; j < 5; j++)
                            setv(xc, (ptrdiff_t)((o * n + i) * 5 + j), D.xd[(o * 5 + j) * n + i], f32);
                L = col_layout(2, n, 5, op);
                call(op, f32, xc, y, &L);
            }
            char what[160];
            snprintf(what, sizeof what, "%s (%s)", desc, lay ? "column 2 of x[2][n][5]" : "row 2 of 10");
            for (size_t j = 0; j < 10; j++) {
                /* the table applies (exact outputs) when row j has a NaN, a
                 * non-finite maximum, or n == 1 */
                int table = n == 1;
                double m = -HUGE_VAL;
                for (size_t i = 0; i < n; i++) {
                    double v = D.xd[j * n + i];
                    table |= v != v;
                    m = v > m ? v : m;
                }
                table |= !isfinite(m);
                for (size_t i = 0; i < (op == LSE ? 1 : n); i++) {
                    ptrdiff_t k = op == LSE ? (ptrdiff_t)j
                                  : lay ? (ptrdiff_t)(((j / 5) * n + i) * 5 + j % 5)
                                        : (ptrdiff_t)(j * n + i);
                    double got = getv(y, k, f32);
                    long double ref = ref_of(&D, op, j, i);
                    if (table || (op != LSE && D.xd[j * n + i] == -HUGE_VAL)) {
                        S->nchecked[g]++;
                        if (isnan(ref) ? !isnan(got) : got != (double)ref)
                            fail(g, "%s row %zu i=%zu: got %.17g, want %.17Lg", what, j, i, got, ref);
                    } else {
                        check_val(g, op, f32, got, ref, op == LSE ? D.lse_slack[j] : 0.0L, what,
                                  n, i);
                    }
                }
            }
            free(y);
            free(xc);
        }
    }
    run_dataset(&D, 0); /* in place and layouts: bitwise, also through special rows */
    dataset_free(&D);
}

static void run_specials(int f32)
{
    static const size_t ns[] = {1, 2, 3, 4, 5, 8, 17, 33, 67};
    const double inf = HUGE_VAL;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        double *x = malloc(n * sizeof(double));
        char desc[96];
#define BASE() for (size_t i_ = 0; i_ < n; i_++) x[i_] = 3.0 * rng_normal()
        if (n == 1) {
            const double v1[] = {inf, -inf, 2.5, -1e30, NAN};
            for (int t = 0; t < 5; t++) {
                x[0] = v1[t];
                snprintf(desc, sizeof desc, "n=1 x=%g", v1[t]);
                run_special(f32, x, n, desc);
            }
            free(x);
            continue;
        }
        size_t ps[3] = {0, n / 2, n - 1};
        for (int t = 0; t < 3; t++) { /* one NaN */
            BASE();
            x[ps[t]] = NAN;
            snprintf(desc, sizeof desc, "n=%zu NaN at %zu", n, ps[t]);
            run_special(f32, x, n, desc);
        }
        BASE(); /* some -inf */
        for (size_t i = 0; i < n; i += 3)
            x[i] = -inf;
        x[n - 1] = n % 3 == 1 ? 0.5 : x[n - 1];
        snprintf(desc, sizeof desc, "n=%zu some -inf", n);
        run_special(f32, x, n, desc);
        BASE(); /* all -inf but one */
        for (size_t i = 0; i < n; i++)
            x[i] = i == n / 2 ? x[i] : -inf;
        snprintf(desc, sizeof desc, "n=%zu all -inf but one", n);
        run_special(f32, x, n, desc);
        for (size_t i = 0; i < n; i++) /* all -inf */
            x[i] = -inf;
        snprintf(desc, sizeof desc, "n=%zu all -inf", n);
        run_special(f32, x, n, desc);
        for (int t = 0; t < 3; t++) { /* one +inf */
            BASE();
            x[ps[t]] = inf;
            snprintf(desc, sizeof desc, "n=%zu +inf at %zu", n, ps[t]);
            run_special(f32, x, n, desc);
        }
        BASE(); /* one +inf, some -inf */
        for (size_t i = 1; i < n; i += 2)
            x[i] = -inf;
        x[0] = inf;
        snprintf(desc, sizeof desc, "n=%zu +inf and -inf", n);
        run_special(f32, x, n, desc);
        BASE(); /* two +inf */
        x[0] = inf;
        x[n - 1] = inf;
        if (n >= 3)
            x[1] = -inf;
        snprintf(desc, sizeof desc, "n=%zu two +inf", n);
        run_special(f32, x, n, desc);
        for (size_t i = 0; i < n; i++) /* all +inf */
            x[i] = inf;
        snprintf(desc, sizeof desc, "n=%zu all +inf", n);
        run_special(f32, x, n, desc);
        BASE(); /* NaN and +inf */
        x[n - 1] = NAN;
        x[0] = inf;
        snprintf(desc, sizeof desc, "n=%zu NaN and +inf", n);
        run_special(f32, x, n, desc);
        BASE(); /* NaN and -inf */
        x[0] = -inf;
        x[n / 2] = NAN;
        snprintf(desc, sizeof desc, "n=%zu NaN and -inf", n);
        run_special(f32, x, n, desc);
#undef BASE
        free(x);
    }
}

/* ---- (f) the worked example ------------------------------------------------ */

static void run_example(void)
{
    const double xd[3] = {13, 31, 5};
    long double sm[3], lsm[3], lse, slack;
    oracle_row(xd, 3, sm, lsm, &lse, &slack);
    csm_layout L = csm_rows(1, 3);
    double y[3] = {0, 0, 0};
    float xf[3] = {13, 31, 5}, yf[3] = {0, 0, 0};
    S->nchecked[G_EXAMPLE]++;
    if (csm_softmax_f64(xd, y, &L) != CSM_OK || csm_softmax_f32(xf, yf, &L) != CSM_OK)
        fail(G_EXAMPLE, "softmax([13, 31, 5]) did not return CSM_OK");
    for (int i = 0; i < 3; i++) {
        check_val(G_EXAMPLE, SM, 0, y[i], sm[i], 0.0L, "softmax([13, 31, 5]) f64", 3, (size_t)i);
        check_val(G_EXAMPLE, SM, 1, yf[i], sm[i], 0.0L, "softmax([13, 31, 5]) f32", 3, (size_t)i);
    }
    if (!(y[1] > y[0] && y[0] > y[2] && fabs(y[0] + y[1] + y[2] - 1.0) <= 0x1p-52))
        fail(G_EXAMPLE, "softmax([13, 31, 5]) = [%.17g, %.17g, %.17g]", y[0], y[1], y[2]);
}

/* The _mt kernels give the serial bits for 1..4 threads: a long row split
 * by chunks (maximum, -inf and an underflowing entry in different chunks),
 * many rows, and columns. Without OpenMP (the cross build) they are serial
 * and must still agree. */
static void run_threads(void)
{
    enum { NLONG = 3 * 65536 + 4097, ROWS = 96, COLS = 2048 };
    const size_t sizes[3] = {NLONG, (size_t)ROWS * COLS, (size_t)ROWS * COLS};
    for (int f32 = 0; f32 < 2; f32++)
        for (int shape = 0; shape < 3; shape++) {
            size_t total = sizes[shape];
            void *x = xalloc(total, f32), *want = xalloc(total, f32), *got = xalloc(total, f32);
            for (size_t i = 0; i < total; i++)
                setv(x, (ptrdiff_t)i, rng_normal() * 20.0, f32);
            csm_layout L;
            if (shape == 0) {
                setv(x, 70001, 300.0, f32);
                setv(x, 9000, -HUGE_VAL, f32);
                setv(x, NLONG - 2, -1e5, f32);
                L = csm_rows(1, NLONG);
            } else if (shape == 1) {
                L = csm_rows(ROWS, COLS);
            } else { /* softmax over axis 0 of a (ROWS, COLS) C array */
                L = csm_rows(1, ROWS);
                L.inner = COLS;
                L.x_n = L.y_n = COLS;
                L.x_outer = L.y_outer = 0;
            }
            for (int op = 0; op < NOP; op++) {
                csm_layout M = L;
                if (op == LSE) { /* one result per row or column */
                    M.y_n = 0;
                    M.y_outer = 1;
                    M.y_inner = 1;
                }
                size_t nres = op != LSE ? total : shape == 0 ? 1 : shape == 1 ? ROWS : COLS;
                call(op, f32, x, want, &M);
                for (int t = 1; t <= 4; t++) {
                    int rc;
                    switch (op * 2 + f32) {
                    case 0: rc = csm_softmax_f64_mt(x, got, &M, t); break;
                    case 1: rc = csm_softmax_f32_mt(x, got, &M, t); break;
                    case 2: rc = csm_log_softmax_f64_mt(x, got, &M, t); break;
                    case 3: rc = csm_log_softmax_f32_mt(x, got, &M, t); break;
                    case 4: rc = csm_logsumexp_f64_mt(x, got, &M, t); break;
                    default: rc = csm_logsumexp_f32_mt(x, got, &M, t); break;
                    }
                    S->nchecked[G_THREADS]++;
                    if (rc != CSM_OK)
                        fail(G_THREADS, "%s _mt(%d) returned %d", op_name[op], t, rc);
                    for (size_t i = 0; i < nres; i++)
                        if (!same_bits(got, (ptrdiff_t)i, want, (ptrdiff_t)i, f32)) {
                            fail(G_THREADS, "%s %s shape %d, %d threads: element %zu differs",
                                 op_name[op], f32 ? "f32" : "f64", shape, t, i);
                            break;
                        }
                }
            }
            free(x);
            free(want);
            free(got);
        }
    S->nchecked[G_THREADS]++;
    if (csm_default_threads() < 1)
        fail(G_THREADS, "csm_default_threads() = %d", csm_default_threads());
}

/* ---- (g) the floating-point environment ------------------------------------ */

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

/* ---- issue 8: weights, signs (csm_logsumexp_weighted_*) and the streaming
 * state (csm_logsumexp_state_*, csm_lse_state_merge / _finish) ---------- */

/* |got - ref| <= nulp ulp(ref) (as double), NaN/inf equal */
static int close_ulp(double got, long double ref, double nulp)
{
    if (isnan((double)ref) || isinf((double)ref))
        return isnan((double)ref) ? isnan(got) : got == (double)ref;
    double r = (double)ref, sp = nextafter(fabs(r), HUGE_VAL) - fabs(r);
    return fabsl((long double)got - ref) <= (long double)(nulp * sp);
}

static void check_weighted(const char *isa)
{
    char what[160];
    enum { N = 1000 };
    static double x[N], b[N], y[4], sg[4];
    static float xf[N], bf[N], yf[4], sgf[4];
    int ok = 1;
    /* positive weights, rows of 1..40 and 1000: 2 ULP against long double */
    for (size_t n = 1; n <= 41; n++) {
        size_t nn = n == 41 ? N : n;
        long double S = 0.0L;
        double m = -HUGE_VAL;
        for (size_t i = 0; i < nn; i++) {
            x[i] = 3.0 * rng_normal();
            b[i] = 0.05 + 2.0 * rng_unif();
            xf[i] = (float)x[i];
            bf[i] = (float)b[i];
            m = x[i] > m ? x[i] : m;
        }
        for (int f32 = 0; f32 < 2; f32++) {
            long double Sf = 0.0L;
            double mf = -HUGE_VAL;
            for (size_t i = 0; i < nn; i++)
                mf = (f32 ? (double)xf[i] : x[i]) > mf ? (f32 ? (double)xf[i] : x[i]) : mf;
            for (size_t i = 0; i < nn; i++)
                Sf += (long double)(f32 ? (double)bf[i] : b[i]) *
                      expl((long double)(f32 ? (double)xf[i] : x[i]) - mf);
            long double ref = (long double)mf + logl(Sf);
            csm_layout L = csm_rows_reduced(1, nn);
            csm_operand B = {f32 ? (const void *)bf : (const void *)b, 0, 1, 0};
            int rc = f32 ? csm_logsumexp_weighted_f32_mt(xf, &B, yf, sgf, &L, 1)
                         : csm_logsumexp_weighted_f64_mt(x, &B, y, sg, &L, 1);
            double got = f32 ? (double)yf[0] : y[0], sgn = f32 ? (double)sgf[0] : sg[0];
            double bound = f32 ? 2.0 * 0x1p-29 : 2.0; /* float32: 2 ULP of float */
            if (f32) {
                double r = (double)ref, sp = nextafterf((float)fabs(r), HUGE_VALF) -
                                             (float)fabs(r);
                ok &= rc == CSM_OK && sgn == 1.0 && fabs(got - r) <= 2.0 * sp;
            } else {
                ok &= rc == CSM_OK && sgn == 1.0 && close_ulp(got, ref, bound);
            }

        }
        (void)S;
        (void)m;
    }
    snprintf(what, sizeof what, "[%s] weighted logsumexp, positive weights: 2 ULP", isa);
    global_check(ok, what);
    /* cancelling sums: e^a - e^(a + r) = -e^a expm1(r), the double-double path */
    ok = 1;
    static const double as[] = {-3.0, 0.0, 7.5, 300.0};
    static const double rs[] = {1e-3, 1e-9, 1e-14};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++) {
            double xx[2] = {as[i], as[i] + rs[j]}, bb[2] = {1.0, -1.0};
            if (xx[1] == xx[0]) /* 300 + 1e-14 rounds to 300 */
                continue;
            long double r = (long double)xx[1] - (long double)xx[0];
            long double ref = (long double)xx[0] + logl(expm1l(r));
            csm_layout L = csm_rows_reduced(1, 2);
            csm_operand B = {bb, 0, 1, 0};
            int rc = csm_logsumexp_weighted_f64_mt(xx, &B, y, sg, &L, 1);
            ok &= rc == CSM_OK && sg[0] == -1.0 && close_ulp(y[0], ref, 4.0);
            rc = csm_logsumexp_weighted_f64_mt(xx, &B, y, NULL, &L, 1); /* no sign: NaN */
            ok &= rc == CSM_OK && isnan(y[0]);
        }
    snprintf(what, sizeof what, "[%s] weighted logsumexp, cancelling sums", isa);
    global_check(ok, what);
    /* special values */
    {
        static const double sx[][2] = {{1.0, 1.0}, {HUGE_VAL, HUGE_VAL}, {HUGE_VAL, 1.0},
                                       {NAN, 1.0}, {-HUGE_VAL, 1.0}, {-HUGE_VAL, -HUGE_VAL}};
        static const double sb[][2] = {{1.0, -1.0}, {-1.0, 1.0}, {-1.0, 1.0},
                                       {0.0, 1.0}, {HUGE_VAL, 1.0}, {1.0, 1.0}};
        static const double wv[] = {-HUGE_VAL, NAN, HUGE_VAL, 1.0, NAN, -HUGE_VAL};
        static const double ws[] = {0.0, NAN, -1.0, 1.0, NAN, 0.0};
        ok = 1;
        for (int i = 0; i < 6; i++) {
            csm_layout L = csm_rows_reduced(1, 2);
            csm_operand B = {sb[i], 0, 1, 0};
            int rc = csm_logsumexp_weighted_f64_mt(sx[i], &B, y, sg, &L, 1);
            ok &= rc == CSM_OK && (isnan(wv[i]) ? isnan(y[0]) : y[0] == wv[i]) &&
                  (isnan(ws[i]) ? isnan(sg[0]) : sg[0] == ws[i]);
        }
        csm_layout L0 = csm_rows_reduced(1, 0);
        ok &= csm_logsumexp_weighted_f64_mt(NULL, NULL, y, sg, &L0, 1) == CSM_OK &&
              y[0] == -HUGE_VAL && sg[0] == 0.0;
        ok &= csm_logsumexp_weighted_f64_mt(x, NULL, y, sg, NULL, 1) == CSM_EINVAL;
        snprintf(what, sizeof what, "[%s] weighted logsumexp, special values", isa);
        global_check(ok, what);
    }
    /* streaming: 4 chunks of a row of N, merged, against one call (2 ULP) */
    {
        double m1, h1, l1, m2, h2, l2, one, v;
        ok = 1;
        for (int t = 0; t < 3; t++) {
            for (size_t i = 0; i < N; i++)
                x[i] = t == 2 ? log((i + 1.0) / (N * (N + 1.0) / 2.0)) : 10.0 * rng_normal();
            size_t cut[5] = {0, 1, 1, 400, N};
            m1 = -HUGE_VAL, h1 = l1 = 0.0;
            for (int c = 0; c < 4; c++) {
                csm_layout L = csm_rows_reduced(1, cut[c + 1] - cut[c]);
                ok &= csm_logsumexp_state_f64_mt(x + cut[c], &m2, &h2, &l2, &L, 1) == CSM_OK;
                csm_lse_state_merge(&m1, &h1, &l1, &m2, &h2, &l2, 1);
            }
            csm_lse_state_finish(&m1, &h1, &l1, &v, 1);
            csm_layout L = csm_rows_reduced(1, N);
            ok &= csm_logsumexp_f64(x, &one, &L) == CSM_OK;
            ok &= t == 2 ? fabs(v - one) <= 1e-28 : close_ulp(v, (long double)one, 2.0);
        }
        snprintf(what, sizeof what, "[%s] streaming state: chunks merged == one call", isa);
        global_check(ok, what);
    }
}

static void check_fpenv(const char *isa)
{
    double x[3] = {0.0, -740.0, 5e-324}, y0[3], y1[3];
    csm_layout L = csm_rows(1, 3);
    char what[160];
    feclearexcept(FE_ALL_EXCEPT);
    int rc = csm_softmax_f64(x, y0, &L);
    int left = fetestexcept(FE_ALL_EXCEPT);
    snprintf(what, sizeof what, "[%s] fp environment: no flag left by a call (%#x)", isa, left);
    global_check(rc == CSM_OK && left == 0 && y0[1] > 0.0, what);
    feraiseexcept(FE_ALL_EXCEPT);
    csm_logsumexp_f64(x, y1, &L);
    left = fetestexcept(FE_ALL_EXCEPT);
    feclearexcept(FE_ALL_EXCEPT);
    snprintf(what, sizeof what, "[%s] fp environment: the caller's flags kept (%#x)", isa, left);
    global_check(left == FE_ALL_EXCEPT, what);
#ifdef FE_UPWARD
    fesetround(FE_UPWARD);
    csm_softmax_f64(x, y1, &L);
    int mode = fegetround();
    fesetround(FE_TONEAREST);
    snprintf(what, sizeof what, "[%s] fp environment: rounding mode kept and not used", isa);
    global_check(mode == FE_UPWARD && memcmp(y0, y1, sizeof y0) == 0, what);
#endif
    int ftz_kept = 1, ftz_tested = 0;
#if defined(__x86_64__)
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u); /* FTZ and DAZ */
    csm_softmax_f64(x, y1, &L);
    ftz_kept = (_mm_getcsr() & 0x8040u) == 0x8040u;
    _mm_setcsr(csr);
    ftz_tested = 1;
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
    unsigned long long fpcr, fz = 1ull << 24, now;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr | fz));
    csm_softmax_f64(x, y1, &L);
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(now));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
    ftz_kept = (now & fz) != 0;
    ftz_tested = 1;
#endif
    if (ftz_tested) {
        snprintf(what, sizeof what, "[%s] fp environment: flush-to-zero kept and not used", isa);
        global_check(ftz_kept && memcmp(y0, y1, sizeof y0) == 0, what);
    }
}

/* (g2) the threads of a _mt call: OpenMP's pool threads keep their own
 * MXCSR, so a call must set the IEEE defaults on each of them. The pool's
 * threads are given FTZ+DAZ and rounding upward; a long row whose every
 * chunk has subnormal softmax outputs must still give the serial bits, and
 * the pool's threads get their modes back. */
#if defined(_OPENMP) && defined(__x86_64__)
#include <omp.h>
static void check_fpenv_threads(const char *isa)
{
    enum { N = 4 * 65536 + 123, T = 4 };
    double *x = malloc(N * sizeof *x), *want = malloc(N * sizeof *x), *got = malloc(N * sizeof *x);
    for (size_t i = 0; i < N; i++)
        x[i] = i % 7 == 3 ? -700.0 - (double)(i % 11) : rng_normal() * 3.0;
    csm_layout L = csm_rows(1, N);
    csm_softmax_f64(x, want, &L);
    const unsigned int odd = 0x8040u | 0x4000u; /* FTZ, DAZ, round up */
    int kept = 1, ran = 0;
#pragma omp parallel num_threads(T)
    _mm_setcsr(_mm_getcsr() | odd);
    int rc = csm_softmax_f64_mt(x, got, &L, T);
#pragma omp parallel num_threads(T) reduction(&& : kept) reduction(+ : ran)
    {
        kept = (_mm_getcsr() & 0xE040u) == odd;
        ran = 1;
        _mm_setcsr(_mm_getcsr() & ~0xE040u);
    }
    size_t tiny = 0;
    for (size_t i = 0; i < N; i++)
        tiny += want[i] > 0.0 && want[i] < 0x1p-1022;
    char what[200];
    snprintf(what, sizeof what,
             "[%s] fp environment of %d pool threads: serial bits (%zu subnormal outputs), modes kept",
             isa, ran, tiny);
    global_check(rc == CSM_OK && kept && tiny > 1000 && memcmp(want, got, N * sizeof *x) == 0,
                 what);
    free(x);
    free(want);
    free(got);
}
#endif

/* (h) rows whose other terms are all below 2^-1022 (a fuzzer finding of
 * issue 7: the sum of subnormal terms was up to 405 ULP off): the maximum's
 * log_softmax -T and the logsumexp T, in a row and in a column strip */
static void check_tiny_terms(const char *isa)
{
    enum { K = 895, W = 3 };
    static double x[K + 1], y[K + 1], cx[(K + 1) * W], cy[(K + 1) * W];
    x[0] = 0.0;
    for (int i = 1; i <= K; i++)
        x[i] = -716.0;
    for (int i = 0; i <= K; i++)
        for (int j = 0; j < W; j++)
            cx[i * W + j] = x[i];
    long double T = (long double)K * expl(-716.0L);   /* log1p(T) = T to far below 1 ULP */
    double want = (double)T;
    csm_layout L = csm_rows(1, K + 1), Lr = csm_rows_reduced(1, K + 1);
    double lse = 0.0, clse[W];
    csm_log_softmax_f64(x, y, &L);
    csm_logsumexp_f64(x, &lse, &Lr);
    csm_layout C = {1, K + 1, W, 0, W, 1, 0, W, 1};   /* columns: x[n][inner] */
    csm_log_softmax_f64(cx, cy, &C);
    C.y_n = 0;
    csm_logsumexp_f64(cx, clse, &C);
    double spacing = 0x1p-1074;
    int ok = fabs(-y[0] - want) <= 2 * spacing && fabs(lse - want) <= 2 * spacing;
    for (int j = 0; j < W; j++)
        ok &= cy[j] == y[0] && clse[j] == lse;
    char what[160];
    snprintf(what, sizeof what, "[%s] terms below 2^-1022: log_softmax %.17g logsumexp %.17g want %.17g",
             isa, -y[0], lse, want);
    global_check(ok, what);
    /* logsumexp = m + T cancelling below 2^-1000 (the fuzzer's second
     * finding): m + exp(-704) is a subnormal; T^2 and m^2 are far below it */
    double z[2] = {-1.80586275e-306, -704.0}, zl = 0.0;
    Lr = csm_rows_reduced(1, 2);
    csm_logsumexp_f64(z, &zl, &Lr);
    double zwant = (double)((long double)z[0] + expl(-704.0L));
    snprintf(what, sizeof what, "[%s] cancelling below 2^-1000: logsumexp %.17g want %.17g", isa,
             zl, zwant);
    global_check(fabs(zl - zwant) <= spacing && zwant != 0.0 && fabs(zwant) < 0x1p-1022, what);
}

/* (i) options: a mask (bytes, in the call's geometry) and a temperature */
static int call_ex(int op, int f32, const void *x, void *y, const csm_layout *L,
                   const csm_options *o)
{
    switch (op * 2 + f32) {
    case 0: return csm_softmax_f64_ex((const double *)x, (double *)y, L, o, 1);
    case 1: return csm_softmax_f32_ex((const float *)x, (float *)y, L, o, 1);
    case 2: return csm_log_softmax_f64_ex((const double *)x, (double *)y, L, o, 1);
    case 3: return csm_log_softmax_f32_ex((const float *)x, (float *)y, L, o, 1);
    case 4: return csm_logsumexp_f64_ex((const double *)x, (double *)y, L, o, 1);
    default: return csm_logsumexp_f32_ex((const float *)x, (float *)y, L, o, 1);
    }
}

/* |got - ref| less the oracle's own slack, in ULP of ref (normal) or in
 * subnormal spacings; NaN and inf must match */
static double ulps(double got, long double ref, long double slack, int f32)
{
    if (isnan(ref) || isinf(ref))
        return (isnan(ref) ? isnan(got) : got == (double)ref) ? 0.0 : HUGE_VAL;
    int p = f32 ? 24 : 53, emin = f32 ? -126 : -1022;
    int e = ref == 0 ? emin : ilogbl(ref);
    long double sp = ldexpl(1.0L, (e < emin ? emin : e) - (p - 1));
    long double d = fabsl((long double)got - ref) - slack;
    return d > 0 ? (double)(d / sp) : 0.0;
}

static void check_options(const char *isa)
{
    enum { R = 9, N = 61 };
    static double xs[R * N], xt[R * N], kx[N];
    static unsigned char mk[R * N], mt[R * N];
    static long double sm[N], lsm[N];
    char what[200];
    for (int f32 = 0; f32 < 2; f32++) {
        for (int i = 0; i < R * N; i++) {
            double v = 10.0 * rng_normal();
            xs[i] = f32 ? (double)(float)v : v;
            mk[i] = rng_unif() < 0.6;
        }
        memset(mk, 0, N);                 /* row 0: no entry kept */
        memset(mk + N, 0, N);
        mk[N + 17] = 1;                   /* row 1: one, whatever its value */
        xs[N + 17] = -HUGE_VAL;
        memset(mk + 2 * N, 1, N);         /* row 2: all */
        xs[3 * N + 5] = NAN;              /* row 3: a NaN, excluded */
        mk[3 * N + 5] = 0;
        for (int r = 0; r < R; r++)
            for (int i = 0; i < N; i++) {
                xt[i * R + r] = xs[r * N + i];
                mt[i * R + r] = mk[r * N + i];
            }
        void *x = xalloc(R * N, f32), *y = xalloc(R * N, f32), *c = xalloc(R * N, f32),
             *y2 = xalloc(R * N, f32);
        for (int i = 0; i < R * N; i++) {
            setv(x, i, xs[i], f32);
            setv(c, i, xt[i], f32);
        }
        csm_layout Lr = csm_rows(R, N), Lc = {1, N, R, 0, R, 1, 0, R, 1};
        csm_options o = csm_no_options();
        for (int t = 0; t < 2; t++) {
            o.temperature = t ? 0.37 : 0.25;
            for (int op = 0; op < NOP; op++) {
                csm_layout A = Lr, B = Lc;
                if (op == LSE) {
                    A = csm_rows_reduced(R, N);
                    B.y_n = 0;
                }
                o.mask.p = mk;
                o.mask.outer = N, o.mask.n = 1, o.mask.inner = 0;
                int rc = call_ex(op, f32, x, y, &A, &o);
                o.mask.p = mt;
                o.mask.outer = 0, o.mask.n = R, o.mask.inner = 1;
                rc |= call_ex(op, f32, c, y2, &B, &o);
                double worst = 0.0;
                int same = 1;
                for (int r = 0; r < R; r++) {
                    size_t k = 0;
                    for (int i = 0; i < N; i++)
                        if (mk[r * N + i])
                            kx[k++] = xs[r * N + i] / o.temperature;
                    long double lse = -HUGE_VALL, slack = 0.0L;
                    if (k > 0)
                        oracle_row(kx, k, sm, lsm, &lse, &slack);
                    if (op == LSE) {
                        double g = getv(y, r, f32);
                        same &= same_bits(y, r, y2, r, f32);
                        if (t == 0)
                            worst = fmax(worst, ulps(g, lse, slack, f32));
                        continue;
                    }
                    for (int i = 0, j = 0; i < N; i++) {
                        double g = getv(y, r * N + i, f32);
                        same &= same_bits(y, r * N + i, y2, i * R + r, f32);
                        if (!mk[r * N + i]) {
                            worst = fmax(worst, g == (op == SM ? 0.0 : -HUGE_VAL) ? 0.0 : HUGE_VAL);
                            continue;
                        }
                        if (t == 0)
                            worst = fmax(worst, ulps(g, op == SM ? sm[j] : lsm[j], 0.0L, f32));
                        j++;
                    }
                }
                snprintf(what, sizeof what, "[%s] options %s %s T=%g: rc %d, rows == columns %d, "
                         "max %.3f ULP", isa, op_name[op], f32 ? "f32" : "f64", o.temperature,
                         rc, same, worst);
                global_check(rc == CSM_OK && same && worst <= ulp_bound[op], what);
            }
        }
        /* refused: a temperature out of range or NaN; nothing written */
        for (int i = 0; i < R * N; i++)
            setv(y, i, 7.0, f32);
        int refused = 1;
        const double bad[4] = {0.0, -1.0, NAN, 0x1p1001};
        for (int b = 0; b < 4; b++) {
            o.temperature = bad[b];
            refused &= call_ex(SM, f32, x, y, &Lr, &o) == CSM_EINVAL;
        }
        for (int i = 0; i < R * N; i++)
            refused &= getv(y, i, f32) == 7.0;
        snprintf(what, sizeof what, "[%s] options %s: bad temperature refused", isa,
                 f32 ? "f32" : "f64");
        global_check(refused, what);
        free(x), free(y), free(c), free(y2);
    }
}

/* ---- (j) training kernels (issue 8) ------------------------------------- */

/* |got - ref| <= bound, or both NaN */
static void train_check(int ok, const char *what, size_t n, size_t i, double got, double ref)
{
    S->nchecked[G_TRAIN]++;
    if (!ok)
        fail(G_TRAIN, "%s n=%zu i=%zu: got %.17g want %.17g", what, n, i, got, ref);
}

/* cross_entropy with probability targets (label smoothing 0.1, the
 * gradient, reduction none) over the R rows of x (R x nn): each row by its
 * own call (the row kernel), all rows in one call (many short rows: the
 * strips for nn <= 16) and the rows laid out as columns (the strips): the
 * same bits */
static void ce_probs_layouts(int f32, const void *x, size_t R, size_t nn)
{
    void *q = xalloc(R * nn, f32), *xt = xalloc(R * nn, f32), *qt = xalloc(R * nn, f32);
    void *g1 = xalloc(R * nn, f32), *g2 = xalloc(R * nn, f32), *g3 = xalloc(R * nn, f32);
    void *l1 = xalloc(R, f32), *l2 = xalloc(R, f32), *l3 = xalloc(R, f32);
    for (size_t r = 0; r < R; r++)
        for (size_t i = 0; i < nn; i++) {
            double qv = (double)((r * 7 + i * 3) % 5) / (double)(2 * nn); /* not summing to 1 */
            setv(q, (ptrdiff_t)(r * nn + i), qv, f32);
            setv(qt, (ptrdiff_t)(i * R + r), qv, f32);
            setv(xt, (ptrdiff_t)(i * R + r), getv(x, (ptrdiff_t)(r * nn + i), f32), f32);
        }
    csm_ce_args A;
    memset(&A, 0, sizeof A);
    A.probs = 1;
    A.label_smoothing = 0.1;
    A.reduction = CSM_REDUCE_NONE;
    A.grad_n = 1;
    double total;
#define CE_CALL(xp, lp, L) \
    (f32 ? csm_cross_entropy_f32((const float *)(xp), (float *)(lp), L, &A, &total) \
         : csm_cross_entropy_f64((const double *)(xp), (double *)(lp), L, &A, &total))
    int rc = CSM_OK;
    for (size_t r = 0; r < R; r++) { /* one row a call */
        csm_layout L1 = csm_rows_reduced(1, nn);
        A.target = (csm_operand){cadvp(q, (ptrdiff_t)(r * nn), f32), (ptrdiff_t)nn, 1, 0};
        A.grad = advp(g1, (ptrdiff_t)(r * nn), f32);
        A.grad_outer = (ptrdiff_t)nn;
        rc |= CE_CALL(cadvp(x, (ptrdiff_t)(r * nn), f32), advp(l1, (ptrdiff_t)r, f32), &L1);
    }
    csm_layout LR = csm_rows_reduced(R, nn); /* all rows */
    A.target = (csm_operand){q, (ptrdiff_t)nn, 1, 0};
    A.grad = g2;
    rc |= CE_CALL(x, l2, &LR);
    csm_layout LC = {1, nn, R, 0, (ptrdiff_t)R, 1, 0, 0, 1}; /* columns */
    A.target = (csm_operand){qt, 0, (ptrdiff_t)R, 1};
    A.grad = g3;
    A.grad_outer = 0;
    A.grad_n = (ptrdiff_t)R;
    A.grad_inner = 1;
    rc |= CE_CALL(xt, l3, &LC);
#undef CE_CALL
    train_check(rc == CSM_OK, "cross_entropy probabilities status", nn, 0, rc, 0);
    for (size_t r = 0; r < R; r++) {
        train_check(same_bits(l2, (ptrdiff_t)r, l1, (ptrdiff_t)r, f32) &&
                        same_bits(l3, (ptrdiff_t)r, l1, (ptrdiff_t)r, f32),
                    "cross_entropy probabilities loss, layouts", nn, r,
                    getv(l3, (ptrdiff_t)r, f32), getv(l1, (ptrdiff_t)r, f32));
        for (size_t i = 0; i < nn; i++)
            train_check(same_bits(g2, (ptrdiff_t)(r * nn + i), g1, (ptrdiff_t)(r * nn + i), f32) &&
                            same_bits(g3, (ptrdiff_t)(i * R + r), g1, (ptrdiff_t)(r * nn + i), f32),
                        "cross_entropy probabilities grad, layouts", nn, i,
                        getv(g3, (ptrdiff_t)(i * R + r), f32), getv(g1, (ptrdiff_t)(r * nn + i), f32));
    }
    void *bufs[] = {q, xt, qt, g1, g2, g3, l1, l2, l3};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        free(bufs[k]);
}

static void check_training(void)
{
    const long double u = 0x1p-53L;
    for (int f32 = 0; f32 < 2; f32++)
        for (size_t n = 1; n <= 68; n++) {
            size_t nn = n <= 67 ? n : 1000, R = 3;
            double *x = malloc(R * nn * sizeof(double)), *dy = malloc(R * nn * sizeof(double));
            void *yb = xalloc(R * nn, f32), *lb = xalloc(R * nn, f32), *db = xalloc(R * nn, f32);
            void *ob = xalloc(R * nn, f32), *o2 = xalloc(R * nn, f32);
            for (size_t i = 0; i < R * nn; i++) {
                x[i] = 3.0 * rng_normal();
                dy[i] = rng_normal();
                setv(db, (ptrdiff_t)i, dy[i], f32);
            }
            csm_layout L = csm_rows(R, nn);
            /* y = softmax(x), logp = log_softmax(x) as stored */
            for (size_t i = 0; i < R * nn; i++)
                setv(ob, (ptrdiff_t)i, x[i], f32);
            call(SM, f32, ob, yb, &L);
            call(LSM, f32, ob, lb, &L);
            csm_operand D = {db, (ptrdiff_t)nn, 1, 1};
            for (int op = 0; op < 2; op++) {
                void *in = op == 0 ? yb : lb;
                int rc = f32 ? (op == 0 ? csm_softmax_backward_f32 : csm_log_softmax_backward_f32)(
                                   (const float *)in, &D, (float *)ob, &L)
                             : (op == 0 ? csm_softmax_backward_f64 : csm_log_softmax_backward_f64)(
                                   (const double *)in, &D, (double *)ob, &L);
                train_check(rc == CSM_OK, "backward status", nn, 0, rc, 0);
                for (size_t r = 0; r < R; r++) {
                    long double s = 0.0L, sab = 0.0L;
                    for (size_t i = 0; i < nn; i++) {
                        long double a = getv(in, (ptrdiff_t)(r * nn + i), f32);
                        long double d = getv(db, (ptrdiff_t)(r * nn + i), f32);
                        s += op == 0 ? a * d : d;
                        sab += op == 0 ? fabsl(a * d) : fabsl(d);
                    }
                    for (size_t i = 0; i < nn; i++) {
                        long double a = getv(in, (ptrdiff_t)(r * nn + i), f32);
                        long double d = getv(db, (ptrdiff_t)(r * nn + i), f32);
                        long double e = op == 0 ? fabsl(a) : expl(a);
                        long double ref = op == 0 ? a * (d - s) : d - e * s;
                        double got = getv(ob, (ptrdiff_t)(r * nn + i), f32);
                        /* the oracle's own error: (n + 2) LDBL_EPSILON sum|terms| e */
                        long double slack = (nn + 2) * LDBL_EPSILON * sab * e * 2;
                        long double bound;
                        if (f32)
                            bound = 0.5L * nextafterf((float)fabsl(ref), INFINITY) -
                                    0.5L * (float)fabsl(ref) + 0x1p-50L * fabsl(ref) +
                                    (op == 1 ? 0x1p-33L * e * fabsl(s) : 0.0L) + slack;
                        else
                            bound = 2 * u * fabsl(ref) + (op == 1 ? 2 * u * e * fabsl(s) : 0.0L) +
                                    slack;
                        train_check(fabsl(got - ref) <= bound + 1e-300L,
                                    op == 0 ? "softmax_backward" : "log_softmax_backward", nn, i,
                                    got, (double)ref);
                    }
                }
                /* in place over dy: the same bits */
                memcpy(o2, db, R * nn * (f32 ? 4 : 8));
                csm_operand D2 = {o2, (ptrdiff_t)nn, 1, 1};
                if (f32)
                    (op == 0 ? csm_softmax_backward_f32 : csm_log_softmax_backward_f32)(
                        (const float *)in, &D2, (float *)o2, &L);
                else
                    (op == 0 ? csm_softmax_backward_f64 : csm_log_softmax_backward_f64)(
                        (const double *)in, &D2, (double *)o2, &L);
                for (size_t i = 0; i < R * nn; i++)
                    train_check(same_bits(o2, (ptrdiff_t)i, ob, (ptrdiff_t)i, f32),
                                "backward in place", nn, i, getv(o2, (ptrdiff_t)i, f32),
                                getv(ob, (ptrdiff_t)i, f32));
                /* the same rows as columns (the strip kernel): the same bits */
                {
                    void *it = xalloc(R * nn, f32), *dt = xalloc(R * nn, f32);
                    void *ot = xalloc(R * nn, f32);
                    for (size_t r = 0; r < R; r++)
                        for (size_t i = 0; i < nn; i++) {
                            setv(it, (ptrdiff_t)(i * R + r), getv(in, (ptrdiff_t)(r * nn + i), f32), f32);
                            setv(dt, (ptrdiff_t)(i * R + r), getv(db, (ptrdiff_t)(r * nn + i), f32), f32);
                        }
                    csm_layout LT = {1, nn, R, 0, (ptrdiff_t)R, 1, 0, (ptrdiff_t)R, 1};
                    csm_operand DT = {dt, 0, (ptrdiff_t)R, 1};
                    if (f32)
                        (op == 0 ? csm_softmax_backward_f32 : csm_log_softmax_backward_f32)(
                            (const float *)it, &DT, (float *)ot, &LT);
                    else
                        (op == 0 ? csm_softmax_backward_f64 : csm_log_softmax_backward_f64)(
                            (const double *)it, &DT, (double *)ot, &LT);
                    for (size_t r = 0; r < R; r++)
                        for (size_t i = 0; i < nn; i++)
                            train_check(same_bits(ot, (ptrdiff_t)(i * R + r), ob,
                                                  (ptrdiff_t)(r * nn + i), f32),
                                        "backward columns", nn, i,
                                        getv(ot, (ptrdiff_t)(i * R + r), f32),
                                        getv(ob, (ptrdiff_t)(r * nn + i), f32));
                    free(it);
                    free(dt);
                    free(ot);
                }
            }
            /* cross-entropy, class targets, reduction mean, with the gradient */
            for (size_t i = 0; i < R * nn; i++)
                setv(ob, (ptrdiff_t)i, x[i], f32);
            int64_t tg[3] = {0, (int64_t)(nn - 1), -100};
            void *loss = xalloc(R, f32);
            csm_ce_args A;
            memset(&A, 0, sizeof A);
            A.target.p = tg;
            A.target.outer = 1;
            A.ignore_index = -100;
            A.reduction = CSM_REDUCE_MEAN;
            A.grad = o2;
            A.grad_outer = (ptrdiff_t)nn;
            A.grad_n = 1;
            csm_layout LL = csm_rows_reduced(R, nn);
            double total = 0.0;
            int rc = f32 ? csm_cross_entropy_f32((const float *)ob, (float *)loss, &LL, &A, &total)
                         : csm_cross_entropy_f64((const double *)ob, (double *)loss, &LL, &A, &total);
            train_check(rc == CSM_OK, "cross_entropy status", nn, 0, rc, 0);
            long double lsum = 0.0L;
            for (size_t r = 0; r < R; r++) {
                const void *xr = f32 ? (const void *)((const float *)ob + r * nn)
                                     : (const void *)((const double *)ob + r * nn);
                long double m = -INFINITY, S_ = 0.0L;
                for (size_t i = 0; i < nn; i++)
                    m = fmaxl(m, getv(xr, (ptrdiff_t)i, f32));
                for (size_t i = 0; i < nn; i++)
                    S_ += expl(getv(xr, (ptrdiff_t)i, f32) - m);
                long double lse = m + logl(S_);
                double got = getv(loss, (ptrdiff_t)r, f32);
                if (r == 2) {
                    train_check(got == 0.0, "cross_entropy ignored loss", nn, r, got, 0.0);
                    for (size_t i = 0; i < nn; i++)
                        train_check(getv(o2, (ptrdiff_t)(r * nn + i), f32) == 0.0,
                                    "cross_entropy ignored grad", nn, i,
                                    getv(o2, (ptrdiff_t)(r * nn + i), f32), 0.0);
                    continue;
                }
                long double ref = lse - getv(xr, (ptrdiff_t)tg[r], f32);
                lsum += (long double)got;
                long double ub = f32 ? 0x1p-24L : u;
                train_check(fabsl(got - ref) <= 4 * ub * fabsl(ref) + 8 * LDBL_EPSILON * fabsl(lse) +
                                                     1e-300L,
                            "cross_entropy loss", nn, r, got, (double)ref);
                for (size_t i = 0; i < nn; i++) {
                    long double pr = expl(getv(xr, (ptrdiff_t)i, f32) - lse);
                    long double q = (int64_t)i == tg[r] ? 1.0L : 0.0L;
                    long double gref = (pr - q) / 2.0L;
                    double g = getv(o2, (ptrdiff_t)(r * nn + i), f32);
                    train_check(fabsl(g - gref) <= 8 * ub * fmaxl(pr, q) / 2.0L +
                                                       8 * LDBL_EPSILON * (fabsl(lse) + 1) + 1e-300L,
                                "cross_entropy grad", nn, i, g, (double)gref);
                }
            }
            train_check(fabsl(total - lsum / 2.0L) <= 2 * (f32 ? 0x1p-24L : u) * fabsl(lsum) / 2,
                        "cross_entropy mean", nn, 0, total, (double)(lsum / 2.0L));
            /* an out-of-range class: CSM_ERANGE, nothing written */
            tg[1] = (int64_t)nn;
            setv(loss, 0, 12345.0, f32);
            rc = f32 ? csm_cross_entropy_f32((const float *)ob, (float *)loss, &LL, &A, &total)
                     : csm_cross_entropy_f64((const double *)ob, (double *)loss, &LL, &A, &total);
            train_check(rc == CSM_ERANGE && getv(loss, 0, f32) == 12345.0,
                        "cross_entropy CSM_ERANGE", nn, 0, rc, CSM_ERANGE);
            ce_probs_layouts(f32, ob, R, nn);
            free(loss);
            free(x);
            free(dy);
            free(yb);
            free(lb);
            free(db);
            free(ob);
            free(o2);
        }
    /* threads: bitwise equal to one thread */
    for (int f32 = 0; f32 < 2; f32++) {
        size_t R = 64, nn = 3000;
        void *a = xalloc(R * nn, f32), *d = xalloc(R * nn, f32), *o1 = xalloc(R * nn, f32),
             *o3 = xalloc(R * nn, f32);
        for (size_t i = 0; i < R * nn; i++) {
            setv(a, (ptrdiff_t)i, -fabs(rng_normal()), f32);
            setv(d, (ptrdiff_t)i, rng_normal(), f32);
        }
        csm_layout L = csm_rows(R, nn);
        csm_operand D = {d, (ptrdiff_t)nn, 1, 1};
        for (int op = 0; op < 2; op++) {
            for (int t = 1; t <= 3; t += 2) {
                void *o = t == 1 ? o1 : o3;
                if (f32)
                    (op == 0 ? csm_softmax_backward_f32_mt : csm_log_softmax_backward_f32_mt)(
                        (const float *)a, &D, (float *)o, &L, t);
                else
                    (op == 0 ? csm_softmax_backward_f64_mt : csm_log_softmax_backward_f64_mt)(
                        (const double *)a, &D, (double *)o, &L, t);
            }
            int same = memcmp(o1, o3, R * nn * (f32 ? 4 : 8)) == 0;
            train_check(same, "backward threads bitwise", nn, 0, same, 1);
        }
        free(a);
        free(d);
        free(o1);
        free(o3);
    }
}

/* ---- main ------------------------------------------------------------------ */

int main(void)
{
    static const double scales[3] = {1.0, 10.0, 100.0};
    stats st[CSM_ISA_COUNT];
    int isas[CSM_ISA_COUNT], nisa = 0;

    int verbose = getenv("TEST_KERNELS_VERBOSE") != NULL; /* where each max ULP is */
    csm_isa best = csm_init();
    global_check(csm_isa_supported(best), "csm_init() chose a supported ISA");
    global_check(csm_isa_supported(CSM_ISA_SCALAR), "scalar is supported");
#if defined(__aarch64__)
    global_check(csm_isa_supported(CSM_ISA_NEON) && best == CSM_ISA_NEON,
                 "aarch64: neon is supported and chosen by csm_init()");
#endif
    for (int i = 0; i < CSM_ISA_COUNT; i++)
        if (csm_isa_supported((csm_isa)i))
            isas[nisa++] = i;
    memset(st, 0, sizeof st);
    for (int k = 0; k < nisa; k++)
        st[k].name = csm_isa_name((csm_isa)isas[k]);

#define FOR_ISA(body)                                                                        \
    for (int k_ = 0; k_ < nisa; k_++) {                                                      \
        S = &st[k_];                                                                         \
        S->nchecked[G_API]++;                                                                \
        if (csm_set_isa((csm_isa)isas[k_]) != CSM_OK || (int)csm_active_isa() != isas[k_] || \
            S->name == NULL)                                                                 \
            fail(G_API, "csm_set_isa(%d) failed", isas[k_]);                                 \
        body;                                                                                \
    }

    /* (a), (d), (e): random rows; data and oracle once, every ISA on them */
    for (int f32 = 0; f32 < 2; f32++)
        for (int sc = 0; sc < 3; sc++)
            for (size_t n = 1; n <= 69; n++) {
                size_t nn = n <= 67 ? n : n == 68 ? 1000 : 10007;
                dataset D;
                build_random(&D, f32, nn, scales[sc]);
                FOR_ISA(run_dataset(&D, 1));
                dataset_free(&D);
            }
    /* (b) constant rows */
    {
        static const double cs[] = {0.0, 1.5, -300.25, 1e300, -1e308, 4.9406564584124654e-324,
                                    3e38, -3e38, 1e-40};
        for (int f32 = 0; f32 < 2; f32++)
            for (size_t a = 0; a < sizeof cs / sizeof cs[0]; a++) {
                if (f32 ? fabs(cs[a]) > 3.4e38 || (cs[a] != 0 && fabs(cs[a]) < 1e-45)
                        : a >= 6)
                    continue;
                for (size_t n = 1; n <= 69; n++) {
                    size_t nn = n <= 67 ? n : n == 68 ? 1000 : 10007;
                    FOR_ISA(run_constant(f32, nn, cs[a]));
                }
            }
    }
    /* (c) special values; the random draws are the same for every ISA */
    {
        uint64_t seed = rng_s;
        FOR_ISA((rng_s = seed, run_specials(0), run_specials(1)));
    }
    /* (f) */
    FOR_ISA(run_example());
    FOR_ISA(run_threads());
    /* (g), (h) */
    FOR_ISA(check_fpenv(S->name));
#if defined(_OPENMP) && defined(__x86_64__)
    FOR_ISA(check_fpenv_threads(S->name));
#endif
    FOR_ISA(check_tiny_terms(S->name));
    {
        uint64_t seed = rng_s;
        FOR_ISA((rng_s = seed, check_options(S->name)));
    }
    FOR_ISA(check_training());
    FOR_ISA(check_weighted(S->name));

    long npass = global_pass, nfail = global_fail;
    for (int k = 0; k < nisa; k++) {
        stats *s = &st[k];
        long p = 0, f = 0;
        for (int g = 0; g < NGROUP; g++) {
            if (s->nfail[g] == 0 && s->nchecked[g] > 0) {
                p++;
            } else {
                f++;
                if (s->nchecked[g] == 0) {
                    char gn[96];
                    group_name(g, gn, sizeof gn);
                    printf("FAIL [%s] %s: no check ran\n", s->name, gn);
                }
            }
        }
        printf("%-7s max ulp: softmax f32 %.3f f64 %.3f | log_softmax f32 %.3f f64 %.3f | "
               "logsumexp f32 %.3f f64 %.3f | subnormal spacings %.2f/%.2f | groups %ld ok, %ld bad\n",
               s->name, s->maxulp[SM][1], s->maxulp[SM][0], s->maxulp[LSM][1], s->maxulp[LSM][0],
               s->maxulp[LSE][1], s->maxulp[LSE][0],
               fmax(fmax(s->maxsub[SM][1], s->maxsub[LSM][1]), s->maxsub[LSE][1]),
               fmax(fmax(s->maxsub[SM][0], s->maxsub[LSM][0]), s->maxsub[LSE][0]), p, f);
        if (verbose)
            for (int op = 0; op < NOP; op++)
                for (int f32 = 1; f32 >= 0; f32--)
                    printf("        worst %s %s: %s\n", op_name[op], f32 ? "f32" : "f64",
                           s->worst[op][f32]);
        npass += p;
        nfail += f;
    }
    printf("%ld passed, %ld failed\n", npass, nfail);
    return nfail == 0 ? 0 : 1;
}
