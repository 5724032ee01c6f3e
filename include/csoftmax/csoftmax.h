/*
 * csoftmax.h -- public C99 interface of the csoftmax kernels.
 *
 * Pure C99: no Python headers. Usable from any C program that compiles the
 * sources in csoftmax/_src/ (vendoring: call the csm_* functions below), or
 * from another Python extension through the function table that the Python
 * package exports as a capsule (csoftmax_capi.h: csm_import(), then
 * csm_API->softmax_f32(...) etc.; nothing to link).
 *
 * Data model
 * ----------
 * Every array is seen as x[outer][n][inner]: `n` is the reduced axis
 * ("row" = the n elements sharing one (outer, inner) index). Strides are in
 * ELEMENTS (not bytes) and may be zero or negative. For softmax and
 * log_softmax, y has the same [outer][n][inner] shape as x; for logsumexp y is
 * y[outer][inner] (its n-stride is ignored).
 *
 * y may alias x exactly (same base pointer and same strides: in place).
 * Any other overlap between x and y is undefined. Pointers must be aligned to
 * their element type. n == 0 is allowed: softmax/log_softmax write nothing,
 * logsumexp writes -inf.
 *
 * Results (one rule: each output is the limit of the function as the infinite
 * inputs tend to +-inf where that limit does not depend on how they get
 * there, otherwise NaN; a NaN poisons every output it can affect):
 *   row                     softmax               log_softmax          logsumexp
 *   any NaN                 all NaN               all NaN              NaN
 *   some -inf, not all      0 there               -inf there           ignores them
 *   all -inf, n >= 2        all NaN               all NaN              -inf
 *   one +inf                one-hot               0 there, -inf else   +inf
 *   two or more +inf        NaN there, 0 else     NaN there, -inf else +inf
 *   n == 1, not NaN         1                     0                    x
 * Accuracy (finite rows, normal outputs): softmax and log_softmax within
 * 4 ULP, logsumexp within 2 ULP; subnormal outputs within one subnormal
 * spacing (the kernels never flush to zero). The measured figures are in the
 * kernel source (csoftmax/_src/kernels.inc) and the README.
 */
#ifndef CSOFTMAX_H
#define CSOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library version (kept equal to csoftmax.__version__; a test checks it). */
#define CSM_VERSION_MAJOR 0
#define CSM_VERSION_MINOR 1
#define CSM_VERSION_PATCH 0
#define CSM_VERSION_STRING "0.1.0"

/* ABI of the csm_api function table: bumped on any incompatible change.
 * The table only ever grows at its end (struct_size tells what is there). */
#define CSM_ABI_VERSION 1

/* Status codes returned by every kernel entry point. */
#define CSM_OK 0
#define CSM_EINVAL (-1)  /* NULL pointer with a non-empty array, or a size overflow */
#define CSM_EISA (-2)    /* instruction set not compiled in, or not supported by this CPU */
#define CSM_ERANGE (-3)  /* a class index out of range (cross-entropy; nothing written) */

/* Instruction sets a kernel may be compiled for. */
typedef enum csm_isa {
    CSM_ISA_SCALAR = 0,
    CSM_ISA_AVX2 = 1,   /* AVX2 + FMA */
    CSM_ISA_AVX512 = 2, /* AVX-512F */
    CSM_ISA_NEON = 3,   /* AArch64 Advanced SIMD */
    CSM_ISA_COUNT = 4
} csm_isa;

/* Geometry of one call: x[outer][n][inner] and y (see the data model).
 *   outer  number of independent blocks (1 for a single row or column set);
 *   n      length of the reduced axis: each row has n elements (may be 0);
 *   inner  number of rows side by side in a block (1 for plain rows; > 1
 *          when reducing a non-last axis: rows are then columns of x);
 *   x_outer, x_n, x_inner  element strides of x between consecutive outer
 *          blocks, consecutive elements of a row, consecutive rows of a block;
 *   y_outer, y_n, y_inner  the same for y (logsumexp: y is y[outer][inner],
 *          y_n is ignored).
 * Element (o, i, j) of x is x[o*x_outer + i*x_n + j*x_inner]; an output of
 * softmax/log_softmax is y[o*y_outer + i*y_n + j*y_inner], of logsumexp
 * y[o*y_outer + j*y_inner]. When outer == 1 (inner == 1) the outer (inner)
 * strides are not used. Only add members through a new ABI version. */
typedef struct csm_layout {
    size_t outer, n, inner;
    ptrdiff_t x_outer, x_n, x_inner; /* element strides of x */
    ptrdiff_t y_outer, y_n, y_inner; /* element strides of y (y_n unused by logsumexp) */
} csm_layout;

/* A further operand of the extended kernels (gradients, cross-entropy,
 * masks, weights): its base pointer (element (0, 0, 0)) and its element
 * strides in the call's [outer][n][inner] geometry, 0 along the axes it is
 * broadcast over (a per-row operand has n == 0). Its element type is the
 * kernel's unless the kernel says otherwise. */
typedef struct csm_operand {
    const void *p;
    ptrdiff_t outer, n, inner;
} csm_operand;

/* Options of the extended kernels csm_*_ex (issue 8): a where= mask and a
 * temperature, fused into the kernels (no temporary array).
 *   temperature  T: the kernels compute op(x / T), the division carried to
 *                about 2^-100 relative, so a temperature costs no accuracy
 *                (the bounds above hold for x / T). 1.0: none. Must lie in
 *                [2^-1000, 2^1000] (else CSM_EINVAL: nothing written).
 *   mask         where= mask: mask.p NULL for none; else bytes (unsigned
 *                char, such as C99 _Bool or NumPy bool) in the call's
 *                geometry, strides in bytes (elements of one byte; 0 where
 *                broadcast; mask.n along the row). Entry (o, i, j) is kept
 *                where its byte is nonzero; an excluded entry is absent: the
 *                row is the row of its kept entries (the table above
 *                applies to them; k kept entries form a row of length k),
 *                and the excluded outputs are 0 (softmax) or -inf
 *                (log_softmax) whatever the rest of the row holds. A row
 *                with no kept entry is an empty row: softmax 0,
 *                log_softmax -inf, logsumexp -inf. The mask may alias
 *                nothing that the call writes. */
typedef struct csm_options {
    double temperature;
    csm_operand mask;
} csm_options;

/* Options that change nothing (temperature 1, no mask). */
static inline csm_options csm_no_options(void)
{
    csm_options o;
    o.temperature = 1.0;
    o.mask.p = NULL;
    o.mask.outer = o.mask.n = o.mask.inner = 0;
    return o;
}

/* Layout of `rows` contiguous rows of length `n`, x and y both C-contiguous:
 * softmax or log_softmax over the last axis of a (rows, n) array.
 *   rows  number of rows (outer); n  length of each row. */
static inline csm_layout csm_rows(size_t rows, size_t n)
{
    csm_layout L;
    L.outer = rows; L.n = n; L.inner = 1;
    L.x_outer = (ptrdiff_t)n; L.x_n = 1; L.x_inner = 1;
    L.y_outer = (ptrdiff_t)n; L.y_n = 1; L.y_inner = 1;
    return L;
}

/* The same rows for logsumexp: y is the contiguous vector of `rows` results.
 *   rows  number of rows (and of results); n  length of each row. */
static inline csm_layout csm_rows_reduced(size_t rows, size_t n)
{
    csm_layout L = csm_rows(rows, n);
    L.y_outer = 1; L.y_n = 0;
    return L;
}

/* Kernels, dispatched to the best instruction set at hand (csm_set_isa).
 *   x  input: the elements x[o*x_outer + i*x_n + j*x_inner] (see csm_layout);
 *      read only. May be NULL only if the array is empty.
 *   y  output: softmax / log_softmax write y[o*y_outer + i*y_n + j*y_inner]
 *      (x's shape), logsumexp writes y[o*y_outer + j*y_inner]; nothing else
 *      is touched. May be x itself with the same strides (in place).
 *   L  the layout of x and y (not NULL); only read.
 * Each returns CSM_OK, or CSM_EINVAL (nothing written) for a NULL layout,
 * or a NULL pointer with a non-empty array. Thread-safe; may be called
 * without the Python GIL; no allocation; no shared state is written; serial
 * (the _mt variants below use threads).
 * The caller's floating-point environment is the same after a call as before
 * it (rounding mode, exception flags, FTZ/DAZ), and the results do not depend
 * on it: a call computes in round-to-nearest without flushing subnormals
 * whatever the caller's modes, on every thread it uses (x86-64 and aarch64;
 * elsewhere through <fenv.h>, keeping a flush-to-zero mode), and the
 * exception flags it raises are dropped. */
int csm_softmax_f32(const float *x, float *y, const csm_layout *L);
int csm_softmax_f64(const double *x, double *y, const csm_layout *L);
int csm_log_softmax_f32(const float *x, float *y, const csm_layout *L);
int csm_log_softmax_f64(const double *x, double *y, const csm_layout *L);
int csm_logsumexp_f32(const float *x, float *y, const csm_layout *L);
int csm_logsumexp_f64(const double *x, double *y, const csm_layout *L);

/* The same kernels with threads inside the call (OpenMP, a num_threads
 * clause: the caller's OpenMP settings are never changed). threads: the
 * most threads to use; <= 0 means csm_default_threads(). Fewer run when the
 * work is small: at least 32768 elements per thread. Rows are split among
 * the threads, or, when there are few rows, the chunks of each row, whose
 * sums are then added in a fixed order: the results are bitwise identical to
 * the serial kernels' for every thread count. Column layouts (inner > 1)
 * are split by strips of 128 columns. Without OpenMP in the build: serial. */
int csm_softmax_f32_mt(const float *x, float *y, const csm_layout *L, int threads);
int csm_softmax_f64_mt(const double *x, double *y, const csm_layout *L, int threads);
int csm_log_softmax_f32_mt(const float *x, float *y, const csm_layout *L, int threads);
int csm_log_softmax_f64_mt(const double *x, double *y, const csm_layout *L, int threads);
int csm_logsumexp_f32_mt(const float *x, float *y, const csm_layout *L, int threads);
int csm_logsumexp_f64_mt(const double *x, double *y, const csm_layout *L, int threads);

/* The same kernels with options (csm_options: mask, temperature), threads
 * as in the _mt variants. opt NULL: none (the _mt kernels). Returns CSM_OK,
 * or CSM_EINVAL (nothing written) for the cases above or a temperature
 * outside [2^-1000, 2^1000] or NaN. */
int csm_softmax_f32_ex(const float *x, float *y, const csm_layout *L, const csm_options *opt,
                       int threads);
int csm_softmax_f64_ex(const double *x, double *y, const csm_layout *L, const csm_options *opt,
                       int threads);
int csm_log_softmax_f32_ex(const float *x, float *y, const csm_layout *L,
                           const csm_options *opt, int threads);
int csm_log_softmax_f64_ex(const double *x, double *y, const csm_layout *L,
                           const csm_options *opt, int threads);
int csm_logsumexp_f32_ex(const float *x, float *y, const csm_layout *L, const csm_options *opt,
                         int threads);
int csm_logsumexp_f64_ex(const double *x, double *y, const csm_layout *L,
                         const csm_options *opt, int threads);

/* Gradients (issue 8), per row of the reduced axis:
 *   softmax_backward      dx = y * (dy - sum(dy * y))    (y = softmax(x))
 *   log_softmax_backward  dx = dy - exp(logp) * sum(dy)  (logp = log_softmax(x))
 *   x   y or logp, at L's x strides; read only;
 *   dy  the incoming gradient, same [outer][n][inner] shape, its own
 *       element strides (dy->p of the kernel's type); read only;
 *   dx  the result, at L's y strides. dx may be dy->p itself with dy's
 *       strides (in place); any other overlap is undefined.
 * The sums are carried in double-double: float64 softmax_backward within
 * 2u|dx| + |y| 2^-100 sum|dy y| of the exact result for the given inputs,
 * log_softmax_backward within 2u|dx| + 2u exp(logp)|s|; float32 within half
 * an ULP (plus 2^-33 exp(logp)|s|). Special values: the formulas in IEEE
 * arithmetic (a NaN in a row gives a NaN row). Returns CSM_OK, or
 * CSM_EINVAL (nothing written) for a NULL layout or operand, or a NULL
 * pointer with a non-empty array. threads as in the _mt kernels (rows are
 * split among the threads; bitwise equal for every count); the plain
 * functions run serially. */
int csm_softmax_backward_f32(const float *y, const csm_operand *dy, float *dx,
                             const csm_layout *L);
int csm_softmax_backward_f64(const double *y, const csm_operand *dy, double *dx,
                             const csm_layout *L);
int csm_log_softmax_backward_f32(const float *logp, const csm_operand *dy, float *dx,
                                 const csm_layout *L);
int csm_log_softmax_backward_f64(const double *logp, const csm_operand *dy, double *dx,
                                 const csm_layout *L);
int csm_softmax_backward_f32_mt(const float *y, const csm_operand *dy, float *dx,
                                const csm_layout *L, int threads);
int csm_softmax_backward_f64_mt(const double *y, const csm_operand *dy, double *dx,
                                const csm_layout *L, int threads);
int csm_log_softmax_backward_f32_mt(const float *logp, const csm_operand *dy, float *dx,
                                    const csm_layout *L, int threads);
int csm_log_softmax_backward_f64_mt(const double *logp, const csm_operand *dy, double *dx,
                                    const csm_layout *L, int threads);

/* Fused cross-entropy (issue 8), torch.nn.functional.cross_entropy's
 * semantics, per row of C = L->n logits x[o][.][j] (the class axis is the
 * reduced axis of the data model):
 *   loss_row = sum_c q_c (logsumexp(x) - x_c), q the target distribution:
 *     class index t:  q = (1 - eps) onehot(t) + eps / C
 *     probabilities:  q = (1 - eps) p + eps / C
 *   grad = (softmax(x) * sum(q) - q) / scale (the gradient of the reduced
 *   loss: scale = the number of counted rows for CSM_REDUCE_MEAN, else 1).
 * Members of csm_ce_args:
 *   target     class indices: int64_t, one per row at (o, j): element
 *              target.p[o*target.outer + j*target.inner] (target.n unused);
 *              probabilities (probs != 0): the kernel's float type, x's
 *              shape, strides target.outer/n/inner;
 *   probs      0: class indices; 1: probabilities;
 *   ignore_index  a class index whose rows are skipped: loss 0, grad 0, not
 *              counted (class indices only);
 *   label_smoothing  eps in [0, 1];
 *   reduction  CSM_REDUCE_NONE, _MEAN (over counted rows: the rows not
 *              ignored; every row for probabilities) or _SUM: how *total
 *              and the gradient's scale are formed;
 *   grad, grad_outer, grad_n, grad_inner  NULL, or the gradient (kernel's
 *              type, x's shape) and its element strides, written in the same
 *              pass. It may not overlap x, the target or the loss;
 *   weight, weight_n  NULL (no class weights), or torch's `weight`: C class
 *              weights w_c = weight[c * weight_n] of the kernel's type
 *              (any values: not checked, as torch). Then, as torch,
 *                class index t:  q = ((1 - eps) onehot(t) + eps / C) * w,
 *                                CSM_REDUCE_MEAN divides by the sum of w_t
 *                                over the counted rows (NaN loss and
 *                                gradient rows when that sum is 0);
 *                probabilities:  q = ((1 - eps) p + eps / C) * w, MEAN
 *                                still over the number of rows;
 *              accuracy with weights (finite rows, u the type's unit
 *              roundoff): loss within 4u sum |q_c| (lse - x_c), gradient
 *              within 8u max(softmax |sum(q)|, |q|) / |scale|.
 * loss: the per-row losses at loss[o*L->y_outer + j*L->y_inner] (always
 * written); total: NULL, or receives the mean (NaN when no row counts) or
 * the sum of the per-row losses as written (double-double sum in row
 * order). Returns CSM_OK; CSM_ERANGE when a class index is neither in
 * [0, C) nor ignore_index (checked first: nothing written); CSM_EINVAL for
 * NULL arguments (an empty call needs none but L and a), an unknown
 * reduction or a label_smoothing outside [0, 1]. Accuracy (finite rows):
 * the loss within 2 ULP of the exact value for the given inputs (class
 * targets; probability targets: 2 ULP of sum |q_c| (lse - x_c)), the
 * gradient within 4 ULP of max(softmax, |q|) / scale. Special values: the
 * formulas in IEEE arithmetic with logsumexp's and softmax's special rows
 * (a NaN logit makes its row's loss and gradient NaN). Threads: rows split
 * among the threads, bitwise equal for every count. */
#define CSM_REDUCE_NONE 0
#define CSM_REDUCE_MEAN 1
#define CSM_REDUCE_SUM 2
typedef struct csm_ce_args {
    csm_operand target;
    int probs;
    int64_t ignore_index;
    double label_smoothing;
    int reduction;
    void *grad;
    ptrdiff_t grad_outer, grad_n, grad_inner;
    const void *weight; /* (appended: zero-initialised callers get none) */
    ptrdiff_t weight_n;
} csm_ce_args;

int csm_cross_entropy_f32(const float *x, float *loss, const csm_layout *L,
                          const csm_ce_args *a, double *total);
int csm_cross_entropy_f64(const double *x, double *loss, const csm_layout *L,
                          const csm_ce_args *a, double *total);
int csm_cross_entropy_f32_mt(const float *x, float *loss, const csm_layout *L,
                             const csm_ce_args *a, double *total, int threads);
int csm_cross_entropy_f64_mt(const double *x, double *loss, const csm_layout *L,
                             const csm_ce_args *a, double *total, int threads);
/* logsumexp with weights (scipy.special.logsumexp's b= and return_sign=;
 * issue 8, part 5): y = log|sum_i b_i exp(x_i)| per row, and its sign.
 *   x     input, the layout L (as for csm_logsumexp_*);
 *   b     the weights: an operand of x's element type in x's geometry
 *         (strides 0 where broadcast), or NULL for b_i = 1. Entries with
 *         b_i == 0 are absent (whatever x_i holds);
 *   y     output, y[outer][inner] as for logsumexp (L's y strides);
 *   sign  NULL, or the signs, at y's offsets: 1, -1, or 0 for a sum that is
 *         exactly 0 (y = -inf) or empty, NaN with y NaN. Without sign a
 *         negative sum gives y = NaN (scipy's rule).
 * Special values: a NaN in a kept x_i or in any b_i -> NaN; infinite terms
 * b_i e^{x_i} all of one sign -> +inf with that sign, of both signs (or
 * |b_i| = inf with x_i = -inf) -> NaN; no kept finite term -> -inf, sign 0.
 * Accuracy: |error| <= 2 ulp(y) + 2 u K, u the unit roundoff of the type,
 * K = sum |b_i e^{x_i}| / |sum b_i e^{x_i}| (1 for positive weights: 2 ULP);
 * rows with K > 2^8, or whose result cancels, are redone in double-double.
 * Rows are split among up to `threads` threads (<= 0: the default), with
 * the same bits for every count. Returns CSM_OK or CSM_EINVAL (NULL L, or a
 * NULL pointer with a non-empty array; nothing written). */
int csm_logsumexp_weighted_f32_mt(const float *x, const csm_operand *b, float *y, float *sign,
                                  const csm_layout *L, int threads);
int csm_logsumexp_weighted_f64_mt(const double *x, const csm_operand *b, double *y,
                                  double *sign, const csm_layout *L, int threads);

/* The state of a streaming logsumexp (issue 8, part 6) for each row of x:
 * m = its maximum and S = hi + lo = sum exp(x_i - m) in double-double
 * (S >= 1), written at y's offsets of L into the three double arrays.
 * Special rows: any NaN -> m = NaN; a +inf -> m = +inf; all -inf or empty
 * -> m = -inf, S = 0 (hi = lo = 0 for these). Rows with m in [-128, 0)
 * (where m + log S may cancel) sum double-double terms. Combine states with
 * csm_lse_state_merge and turn them into logsumexp with
 * csm_lse_state_finish. Returns as csm_logsumexp_weighted_*. */
int csm_logsumexp_state_f32_mt(const float *x, double *m, double *hi, double *lo,
                               const csm_layout *L, int threads);
int csm_logsumexp_state_f64_mt(const double *x, double *m, double *hi, double *lo,
                               const csm_layout *L, int threads);
/* state k (k < count; contiguous arrays) <- the state of the union of the
 * rows of states k and k2: m = max, S = S e^{m - M} + S2 e^{m2 - M} in
 * double-double (NaN wins, then +inf). Exact up to about 2^-100 S. */
void csm_lse_state_merge(double *m, double *hi, double *lo, const double *m2, const double *hi2,
                         const double *lo2, size_t count);
/* y[k] = m + log S rounded once from double-double (NaN, +inf, -inf for
 * the special states). */
void csm_lse_state_finish(const double *m, const double *hi, const double *lo, double *y,
                          size_t count);

/* The default thread count of the _mt kernels: the value last given to
 * csm_set_default_threads() if any, else OpenMP's omp_get_max_threads() in
 * the calling thread (which follows OMP_NUM_THREADS, the CPU affinity mask
 * and threadpoolctl's limits); 1 without OpenMP. */
int csm_default_threads(void);
/* Sets the default for the process (n <= 0: back to automatic); returns the
 * previous setting (0: automatic). Safe to call from any thread. */
int csm_set_default_threads(int n);
/* The OpenMP version the library was built with (_OPENMP, e.g. 201511), or
 * 0 when it was built without OpenMP (then every kernel runs serially). */
long csm_openmp_version(void);

/* Instruction sets: 1 if `isa` is compiled into this build / also supported
 * by this CPU and OS, else 0 (also for a value outside csm_isa). */
int csm_isa_compiled(csm_isa isa);
int csm_isa_supported(csm_isa isa);
/* The one in use, chosen at first use (or by csm_init): the best supported. */
csm_isa csm_active_isa(void);
/* Makes `isa` the active instruction set of every kernel: CSM_OK, or
 * CSM_EISA (nothing changed) if it is not compiled or not supported.
 * Not thread-safe: call before any kernel runs (tests, benchmarks). */
int csm_set_isa(csm_isa isa);
/* Lower-case name of `isa` ("scalar", "avx2", ...; a static string), or
 * NULL for a value outside csm_isa. */
const char *csm_isa_name(csm_isa isa);
/* Picks the best supported instruction set, honouring the environment
 * variable CSOFTMAX_ISA=<name> when it names a supported one. Returns the
 * active ISA. Called by the Python module at import; idempotent. */
csm_isa csm_init(void);

/* Function table exported to other extensions (see csoftmax_capi.h).
 * abi_version and struct_size come first and never move; new members are
 * only ever appended (an incompatible change bumps CSM_ABI_VERSION).
 *   abi_version  CSM_ABI_VERSION the library was built with;
 *   struct_size  sizeof(csm_api) of the library: members that end beyond it
 *                are absent (a caller built against a newer header);
 *   softmax_f32 ... logsumexp_f64  the public entry points csm_softmax_f32
 *                ... csm_logsumexp_f64 above (dispatched: the active
 *                instruction set, the same as the Python functions use);
 *   active_isa, isa_name  csm_active_isa and csm_isa_name;
 *   softmax_f32_mt ... logsumexp_f64_mt  csm_softmax_f32_mt ...
 *                csm_logsumexp_f64_mt (threads inside the call);
 *   default_threads  csm_default_threads;
 *   softmax_f32_ex ... logsumexp_f64_ex  csm_softmax_f32_ex ...
 *                csm_logsumexp_f64_ex (masks, temperature; issue 8);
 *   softmax_backward_f32 ... log_softmax_backward_f64  the _mt gradient
 *                kernels csm_softmax_backward_f32_mt ... (issue 8);
 *   cross_entropy_f32, cross_entropy_f64  csm_cross_entropy_f32_mt and
 *                csm_cross_entropy_f64_mt (issue 8).
 *   logsumexp_weighted_f32 ... lse_state_finish  csm_logsumexp_weighted_f32_mt
 *                ... csm_lse_state_finish (weights, signs, streaming; issue 8).
 * csm_f32_fn / csm_f64_fn: the kernel signature, (x, y, L) as above;
 * csm_f32_mt_fn / csm_f64_mt_fn: (x, y, L, threads) as in csm_*_mt;
 * csm_f32_ex_fn / csm_f64_ex_fn: (x, y, L, opt, threads) as in csm_*_ex. */
typedef int (*csm_f32_fn)(const float *, float *, const csm_layout *);
typedef int (*csm_f64_fn)(const double *, double *, const csm_layout *);
typedef int (*csm_f32_mt_fn)(const float *, float *, const csm_layout *, int);
typedef int (*csm_f64_mt_fn)(const double *, double *, const csm_layout *, int);
typedef int (*csm_f32_ex_fn)(const float *, float *, const csm_layout *, const csm_options *, int);
typedef int (*csm_f64_ex_fn)(const double *, double *, const csm_layout *, const csm_options *,
                             int);
/* csm_f32_grad_fn / csm_f64_grad_fn: (x, dy, dx, L, threads) as in
 * csm_softmax_backward_f32_mt */
typedef int (*csm_f32_grad_fn)(const float *, const csm_operand *, float *, const csm_layout *,
                               int);
typedef int (*csm_f64_grad_fn)(const double *, const csm_operand *, double *,
                               const csm_layout *, int);
/* csm_f32_ce_fn / csm_f64_ce_fn: (x, loss, L, a, total, threads) as in
 * csm_cross_entropy_f32_mt */
typedef int (*csm_f32_ce_fn)(const float *, float *, const csm_layout *, const csm_ce_args *,
                             double *, int);
typedef int (*csm_f64_ce_fn)(const double *, double *, const csm_layout *, const csm_ce_args *,
                             double *, int);
typedef struct csm_api {
    uint32_t abi_version; /* CSM_ABI_VERSION of the library */
    uint32_t struct_size; /* sizeof(csm_api) of the library */
    csm_f32_fn softmax_f32;
    csm_f64_fn softmax_f64;
    csm_f32_fn log_softmax_f32;
    csm_f64_fn log_softmax_f64;
    csm_f32_fn logsumexp_f32;
    csm_f64_fn logsumexp_f64;
    csm_isa (*active_isa)(void);
    const char *(*isa_name)(csm_isa);
    /* threads inside the call (csm_*_mt) */
    csm_f32_mt_fn softmax_f32_mt;
    csm_f64_mt_fn softmax_f64_mt;
    csm_f32_mt_fn log_softmax_f32_mt;
    csm_f64_mt_fn log_softmax_f64_mt;
    csm_f32_mt_fn logsumexp_f32_mt;
    csm_f64_mt_fn logsumexp_f64_mt;
    int (*default_threads)(void);
    /* options: masks and temperature (csm_*_ex) */
    csm_f32_ex_fn softmax_f32_ex;
    csm_f64_ex_fn softmax_f64_ex;
    csm_f32_ex_fn log_softmax_f32_ex;
    csm_f64_ex_fn log_softmax_f64_ex;
    csm_f32_ex_fn logsumexp_f32_ex;
    csm_f64_ex_fn logsumexp_f64_ex;
    /* training (issue 8): gradients */
    csm_f32_grad_fn softmax_backward_f32;
    csm_f64_grad_fn softmax_backward_f64;
    csm_f32_grad_fn log_softmax_backward_f32;
    csm_f64_grad_fn log_softmax_backward_f64;
    csm_f32_ce_fn cross_entropy_f32;
    csm_f64_ce_fn cross_entropy_f64;
    /* weights, signs and streaming (issue 8, parts 5 and 6) */
    int (*logsumexp_weighted_f32)(const float *, const csm_operand *, float *, float *,
                                  const csm_layout *, int);
    int (*logsumexp_weighted_f64)(const double *, const csm_operand *, double *, double *,
                                  const csm_layout *, int);
    int (*logsumexp_state_f32)(const float *, double *, double *, double *, const csm_layout *,
                               int);
    int (*logsumexp_state_f64)(const double *, double *, double *, double *, const csm_layout *,
                               int);
    void (*lse_state_merge)(double *, double *, double *, const double *, const double *,
                            const double *, size_t);
    void (*lse_state_finish)(const double *, const double *, const double *, double *, size_t);
} csm_api;

/* The library's table (filled with the public entry points above): static,
 * never NULL, valid for the life of the program. */
const csm_api *csm_get_api(void);

#ifdef __cplusplus
}
#endif
#endif /* CSOFTMAX_H */
