/*
 * dispatch.c -- public entry points and the choice of instruction set.
 *
 * The active kernels live in one static table, set once by csm_init() (or
 * csm_set_isa() for tests and benchmarks) before any call and only read
 * afterwards. Until csm_init() runs, the scalar kernels are active.
 * Order of preference: avx512 > avx2 > scalar on x86-64; neon on aarch64.
 */
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "fpenv.h"
#include "kernels.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    csm_f32_ex_fn softmax_f32;
    csm_f64_ex_fn softmax_f64;
    csm_f32_ex_fn log_softmax_f32;
    csm_f64_ex_fn log_softmax_f64;
    csm_f32_ex_fn logsumexp_f32;
    csm_f64_ex_fn logsumexp_f64;
    void (*exp_nonpos_f64)(const double *, double *, size_t);
    /* training (issue 8) */
    csm_f32_grad_fn softmax_backward_f32;
    csm_f64_grad_fn softmax_backward_f64;
    csm_f32_grad_fn log_softmax_backward_f32;
    csm_f64_grad_fn log_softmax_backward_f64;
    csm_f32_ce_fn cross_entropy_f32;
    csm_f64_ce_fn cross_entropy_f64;
} kernel_set;

#define KERNEL_SET(isa)                                                                      \
    {                                                                                        \
        csm_softmax_f32_##isa, csm_softmax_f64_##isa, csm_log_softmax_f32_##isa,             \
            csm_log_softmax_f64_##isa, csm_logsumexp_f32_##isa, csm_logsumexp_f64_##isa,     \
            csm_exp_nonpos_f64_##isa, csm_softmax_backward_f32_##isa,                        \
            csm_softmax_backward_f64_##isa, csm_log_softmax_backward_f32_##isa,              \
            csm_log_softmax_backward_f64_##isa, csm_cross_entropy_f32_##isa,                 \
            csm_cross_entropy_f64_##isa                                                      \
    }

static const kernel_set scalar_set = KERNEL_SET(scalar);
#if CSM_HAVE_AVX2
static const kernel_set avx2_set = KERNEL_SET(avx2);
#endif
#if CSM_HAVE_AVX512
static const kernel_set avx512_set = KERNEL_SET(avx512);
#endif
#if CSM_HAVE_NEON
static const kernel_set neon_set = KERNEL_SET(neon);
#endif

static const char *const isa_names[CSM_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

/* the kernels of an ISA, or NULL if it is not compiled into this build */
static const kernel_set *set_for(csm_isa isa)
{
    switch (isa) {
    case CSM_ISA_SCALAR:
        return &scalar_set;
#if CSM_HAVE_AVX2
    case CSM_ISA_AVX2:
        return &avx2_set;
#endif
#if CSM_HAVE_AVX512
    case CSM_ISA_AVX512:
        return &avx512_set;
#endif
#if CSM_HAVE_NEON
    case CSM_ISA_NEON:
        return &neon_set;
#endif
    default:
        return NULL;
    }
}

static const kernel_set *active = &scalar_set;
static csm_isa active_isa = CSM_ISA_SCALAR;

const char *csm_isa_name(csm_isa isa)
{
    return (unsigned)isa < CSM_ISA_COUNT ? isa_names[isa] : NULL;
}

int csm_isa_compiled(csm_isa isa)
{
    return (unsigned)isa < CSM_ISA_COUNT && set_for(isa) != NULL;
}

int csm_isa_supported(csm_isa isa)
{
    return csm_isa_compiled(isa) && csm_cpu_has(isa);
}

csm_isa csm_active_isa(void)
{
    return active_isa;
}

int csm_set_isa(csm_isa isa)
{
    if (!csm_isa_compiled(isa) || !csm_isa_supported(isa))
        return CSM_EISA;
    active = set_for(isa);
    active_isa = isa;
    return CSM_OK;
}

csm_isa csm_init(void)
{
    csm_isa best = CSM_ISA_SCALAR;
    for (int i = CSM_ISA_COUNT - 1; i > 0; i--)
        if (csm_isa_compiled((csm_isa)i) && csm_isa_supported((csm_isa)i)) {
            best = (csm_isa)i;
            break;
        }
    const char *want = getenv("CSOFTMAX_ISA");
    if (want != NULL && *want != '\0')
        for (int i = 0; i < CSM_ISA_COUNT; i++)
            if (strcmp(want, isa_names[i]) == 0 && csm_isa_compiled((csm_isa)i) &&
                csm_isa_supported((csm_isa)i))
                best = (csm_isa)i;
    csm_set_isa(best);
    return active_isa;
}

/* NULL is only allowed for an empty array */
static int bad_args(const void *x, const void *y, const csm_layout *L)
{
    if (L == NULL)
        return 1;
    if (L->outer == 0 || L->inner == 0 || (L->n == 0 && y == NULL))
        return 0;
    return x == NULL ? L->n != 0 : y == NULL;
}

/* ---- threads ---- */

/* csm_set_default_threads(): 0 = automatic. Read and written atomically
 * where the compiler offers it (GCC, clang): callers may race. */
static int default_threads = 0;

#if defined(__GNUC__) || defined(__clang__)
#define LOAD_INT(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define SWAP_INT(p, v) __atomic_exchange_n((p), (v), __ATOMIC_RELAXED)
#define CSM_TLS __thread
#else
#define LOAD_INT(p) (*(p))
static int swap_int(int *p, int v)
{
    int old = *p;
    *p = v;
    return old;
}
#define SWAP_INT(p, v) swap_int((p), (v))
#define CSM_TLS
#endif

int csm_set_default_threads(int n)
{
    return SWAP_INT(&default_threads, n > 0 ? n : 0);
}

int csm_default_threads(void)
{
    int n = LOAD_INT(&default_threads);
    if (n > 0)
        return n;
#ifdef _OPENMP
    n = omp_get_max_threads();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

long csm_openmp_version(void)
{
#ifdef _OPENMP
    return (long)_OPENMP;
#else
    return 0;
#endif
}

static CSM_TLS int last_team = 0;

void csm_note_team(int team)
{
    last_team = team;
}

int csm_last_team(void)
{
    return last_team;
}

/* ---- entry points ---- */

/* the kernels run in the IEEE default environment; the caller's is given
 * back unchanged, exception flags included (fpenv.h) */
/* options the kernels accept: a temperature in [2^-1000, 2^1000] (NaN
 * fails the test) */
static int bad_options(const csm_options *opt)
{
    return opt != NULL && !(opt->temperature >= 0x1p-1000 && opt->temperature <= 0x1p1000);
}

#define ENTRY(name, T)                                                                       \
    int csm_##name(const T *x, T *y, const csm_layout *L)                                    \
    {                                                                                        \
        return csm_##name##_ex(x, y, L, NULL, 1);                                            \
    }                                                                                        \
    int csm_##name##_mt(const T *x, T *y, const csm_layout *L, int threads)                  \
    {                                                                                        \
        return csm_##name##_ex(x, y, L, NULL, threads);                                      \
    }                                                                                        \
    int csm_##name##_ex(const T *x, T *y, const csm_layout *L, const csm_options *opt,       \
                        int threads)                                                         \
    {                                                                                        \
        if (bad_args(x, y, L) || bad_options(opt))                                           \
            return CSM_EINVAL;                                                               \
        csm_fpstate fp = csm_fp_enter();                                                     \
        int rc = active->name(x, y, L, opt, threads);                                        \
        csm_fp_leave(fp);                                                                    \
        return rc;                                                                           \
    }

ENTRY(softmax_f32, float)
ENTRY(softmax_f64, double)
ENTRY(log_softmax_f32, float)
ENTRY(log_softmax_f64, double)
ENTRY(logsumexp_f32, float)
ENTRY(logsumexp_f64, double)

/* ---- training entry points (issue 8) ---- */

/* NULL is only allowed for an empty array: x, dy and dx */
static int bad_grad_args(const void *x, const csm_operand *dy, const void *dx,
                         const csm_layout *L)
{
    if (L == NULL || dy == NULL)
        return 1;
    if (L->outer == 0 || L->inner == 0 || L->n == 0)
        return 0;
    return x == NULL || dy->p == NULL || dx == NULL;
}

#define GRAD_ENTRY(name, T)                                                                  \
    int csm_##name##_mt(const T *x, const csm_operand *dy, T *dx, const csm_layout *L,       \
                        int threads)                                                         \
    {                                                                                        \
        if (bad_grad_args(x, dy, dx, L))                                                     \
            return CSM_EINVAL;                                                               \
        csm_fpstate fp = csm_fp_enter();                                                     \
        int rc = active->name(x, dy, dx, L, threads);                                        \
        csm_fp_leave(fp);                                                                    \
        return rc;                                                                           \
    }                                                                                        \
    int csm_##name(const T *x, const csm_operand *dy, T *dx, const csm_layout *L)            \
    {                                                                                        \
        return csm_##name##_mt(x, dy, dx, L, 1);                                             \
    }

GRAD_ENTRY(softmax_backward_f32, float)
GRAD_ENTRY(softmax_backward_f64, double)
GRAD_ENTRY(log_softmax_backward_f32, float)
GRAD_ENTRY(log_softmax_backward_f64, double)

static int bad_ce_args(const void *x, const void *loss, const csm_layout *L,
                       const csm_ce_args *a)
{
    if (L == NULL || a == NULL)
        return 1;
    if (a->reduction != CSM_REDUCE_NONE && a->reduction != CSM_REDUCE_MEAN &&
        a->reduction != CSM_REDUCE_SUM)
        return 1;
    if (!(a->label_smoothing >= 0.0 && a->label_smoothing <= 1.0))
        return 1;
    if (L->outer == 0 || L->inner == 0)
        return 0;
    return loss == NULL || a->target.p == NULL || (L->n > 0 && x == NULL);
}

#define CE_ENTRY(name, T)                                                                    \
    int csm_##name##_mt(const T *x, T *loss, const csm_layout *L, const csm_ce_args *a,      \
                        double *total, int threads)                                          \
    {                                                                                        \
        if (bad_ce_args(x, loss, L, a))                                                      \
            return CSM_EINVAL;                                                               \
        csm_fpstate fp = csm_fp_enter();                                                     \
        int rc = active->name(x, loss, L, a, total, threads);                                \
        csm_fp_leave(fp);                                                                    \
        return rc;                                                                           \
    }                                                                                        \
    int csm_##name(const T *x, T *loss, const csm_layout *L, const csm_ce_args *a,           \
                   double *total)                                                            \
    {                                                                                        \
        return csm_##name##_mt(x, loss, L, a, total, 1);                                     \
    }

CE_ENTRY(cross_entropy_f32, float)
CE_ENTRY(cross_entropy_f64, double)

void csm_exp_nonpos_f64(const double *x, double *y, size_t n)
{
    csm_fpstate fp = csm_fp_enter();
    active->exp_nonpos_f64(x, y, n);
    csm_fp_leave(fp);
}

/* ---- weights, signs and streaming state (weighted.inc; issue 8) ---- */

typedef struct {
    int (*w32)(const float *, const csm_operand *, float *, float *, const csm_layout *, int);
    int (*w64)(const double *, const csm_operand *, double *, double *, const csm_layout *, int);
    int (*s32)(const float *, double *, double *, double *, const csm_layout *, int);
    int (*s64)(const double *, double *, double *, double *, const csm_layout *, int);
} weighted_set;

#define WEIGHTED_SET(isa)                                                                    \
    {                                                                                        \
        csm_logsumexp_weighted_f32_##isa, csm_logsumexp_weighted_f64_##isa,                  \
            csm_logsumexp_state_f32_##isa, csm_logsumexp_state_f64_##isa                     \
    }

static const weighted_set w_scalar = WEIGHTED_SET(scalar);
#if CSM_HAVE_AVX2
static const weighted_set w_avx2 = WEIGHTED_SET(avx2);
#endif
#if CSM_HAVE_AVX512
static const weighted_set w_avx512 = WEIGHTED_SET(avx512);
#endif
#if CSM_HAVE_NEON
static const weighted_set w_neon = WEIGHTED_SET(neon);
#endif

/* the weighted kernels of the active ISA */
static const weighted_set *w_active(void)
{
    switch (active_isa) {
#if CSM_HAVE_AVX2
    case CSM_ISA_AVX2:
        return &w_avx2;
#endif
#if CSM_HAVE_AVX512
    case CSM_ISA_AVX512:
        return &w_avx512;
#endif
#if CSM_HAVE_NEON
    case CSM_ISA_NEON:
        return &w_neon;
#endif
    default:
        return &w_scalar;
    }
}

#define WENTRY(dt, T, fn)                                                                    \
    int csm_logsumexp_weighted_##dt##_mt(const T *x, const csm_operand *b, T *y, T *sign,    \
                                         const csm_layout *L, int threads)                   \
    {                                                                                        \
        if (bad_args(x, y, L) || (b != NULL && b->p == NULL && L->n && L->outer && L->inner)) \
            return CSM_EINVAL;                                                               \
        if (L->outer == 0 || L->inner == 0)                                                  \
            return CSM_OK;                                                                   \
        csm_fpstate fp = csm_fp_enter();                                                     \
        int rc = w_active()->fn(x, b, y, sign, L, threads);                                  \
        csm_fp_leave(fp);                                                                    \
        return rc;                                                                           \
    }
WENTRY(f32, float, w32)
WENTRY(f64, double, w64)
#undef WENTRY

#define SENTRY(dt, T, fn)                                                                    \
    int csm_logsumexp_state_##dt##_mt(const T *x, double *m, double *hi, double *lo,         \
                                      const csm_layout *L, int threads)                      \
    {                                                                                        \
        if (bad_args(x, m, L) || (L->outer && L->inner && (hi == NULL || lo == NULL)))       \
            return CSM_EINVAL;                                                               \
        if (L->outer == 0 || L->inner == 0)                                                  \
            return CSM_OK;                                                                   \
        csm_fpstate fp = csm_fp_enter();                                                     \
        int rc = w_active()->fn(x, m, hi, lo, L, threads);                                   \
        csm_fp_leave(fp);                                                                    \
        return rc;                                                                           \
    }
SENTRY(f32, float, s32)
SENTRY(f64, double, s64)
#undef SENTRY

static const csm_api api = {
    CSM_ABI_VERSION,
    (uint32_t)sizeof(csm_api),
    csm_softmax_f32,
    csm_softmax_f64,
    csm_log_softmax_f32,
    csm_log_softmax_f64,
    csm_logsumexp_f32,
    csm_logsumexp_f64,
    csm_active_isa,
    csm_isa_name,
    csm_softmax_f32_mt,
    csm_softmax_f64_mt,
    csm_log_softmax_f32_mt,
    csm_log_softmax_f64_mt,
    csm_logsumexp_f32_mt,
    csm_logsumexp_f64_mt,
    csm_default_threads,
    csm_softmax_f32_ex,
    csm_softmax_f64_ex,
    csm_log_softmax_f32_ex,
    csm_log_softmax_f64_ex,
    csm_logsumexp_f32_ex,
    csm_logsumexp_f64_ex,
    csm_softmax_backward_f32_mt,
    csm_softmax_backward_f64_mt,
    csm_log_softmax_backward_f32_mt,
    csm_log_softmax_backward_f64_mt,
    csm_cross_entropy_f32_mt,
    csm_cross_entropy_f64_mt,
    csm_logsumexp_weighted_f32_mt,
    csm_logsumexp_weighted_f64_mt,
    csm_logsumexp_state_f32_mt,
    csm_logsumexp_state_f64_mt,
    csm_lse_state_merge,
    csm_lse_state_finish,
};

const csm_api *csm_get_api(void)
{
    return &api;
}
