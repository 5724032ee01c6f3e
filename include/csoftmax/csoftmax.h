/*
 * csoftmax.h -- public C99 interface of the csoftmax kernels.
 *
 * Pure C99: no Python headers. Usable from any C program that compiles the
 * sources in csoftmax/_src/ (vendoring), or through the function table that
 * the Python extension exports as a capsule (csoftmax_capi.h).
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

/* Instruction sets a kernel may be compiled for. */
typedef enum csm_isa {
    CSM_ISA_SCALAR = 0,
    CSM_ISA_AVX2 = 1,   /* AVX2 + FMA */
    CSM_ISA_AVX512 = 2, /* AVX-512F */
    CSM_ISA_NEON = 3,   /* AArch64 Advanced SIMD */
    CSM_ISA_COUNT = 4
} csm_isa;

/* Geometry of one call: x[outer][n][inner] and y (see the data model). */
typedef struct csm_layout {
    size_t outer, n, inner;
    ptrdiff_t x_outer, x_n, x_inner; /* element strides of x */
    ptrdiff_t y_outer, y_n, y_inner; /* element strides of y (y_n unused by logsumexp) */
} csm_layout;

/* Layout of `rows` contiguous rows of length n, x and y both C-contiguous:
 * softmax or log_softmax over the last axis of a (rows, n) array. */
static inline csm_layout csm_rows(size_t rows, size_t n)
{
    csm_layout L;
    L.outer = rows; L.n = n; L.inner = 1;
    L.x_outer = (ptrdiff_t)n; L.x_n = 1; L.x_inner = 1;
    L.y_outer = (ptrdiff_t)n; L.y_n = 1; L.y_inner = 1;
    return L;
}

/* The same rows for logsumexp: y is the contiguous vector of `rows` results. */
static inline csm_layout csm_rows_reduced(size_t rows, size_t n)
{
    csm_layout L = csm_rows(rows, n);
    L.y_outer = 1; L.y_n = 0;
    return L;
}

/* Kernels, dispatched to the best instruction set at hand (csm_set_isa).
 * Each returns CSM_OK, or CSM_EINVAL (nothing written) for a NULL pointer
 * with a non-empty array. Thread-safe; no allocation; no global state is
 * written. The caller's floating-point environment is the same after a call
 * as before it (rounding mode, exception flags, FTZ/DAZ): a call computes in
 * round-to-nearest without flushing subnormals whatever the caller's modes
 * (x86-64 and aarch64; elsewhere through <fenv.h>, keeping a flush-to-zero
 * mode), and the exception flags it raises are dropped. */
int csm_softmax_f32(const float *x, float *y, const csm_layout *L);
int csm_softmax_f64(const double *x, double *y, const csm_layout *L);
int csm_log_softmax_f32(const float *x, float *y, const csm_layout *L);
int csm_log_softmax_f64(const double *x, double *y, const csm_layout *L);
int csm_logsumexp_f32(const float *x, float *y, const csm_layout *L);
int csm_logsumexp_f64(const double *x, double *y, const csm_layout *L);

/* Instruction sets: compiled into this build / supported by this CPU. */
int csm_isa_compiled(csm_isa isa);
int csm_isa_supported(csm_isa isa);
/* The one in use, chosen at first use (or by csm_init): the best supported. */
csm_isa csm_active_isa(void);
/* Chooses the instruction set; CSM_EISA if not compiled or not supported.
 * Not thread-safe: call before any kernel runs (tests, benchmarks). */
int csm_set_isa(csm_isa isa);
/* Lower-case name of an instruction set ("scalar", "avx2", ...), or NULL. */
const char *csm_isa_name(csm_isa isa);
/* Picks the best supported instruction set, honouring the environment
 * variable CSOFTMAX_ISA=<name> when it names a supported one. Returns the
 * active ISA. Called by the Python module at import; idempotent. */
csm_isa csm_init(void);

/* Function table exported to other extensions (see csoftmax_capi.h).
 * abi_version and struct_size come first and never move; new members are
 * only ever appended. */
typedef int (*csm_f32_fn)(const float *, float *, const csm_layout *);
typedef int (*csm_f64_fn)(const double *, double *, const csm_layout *);
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
} csm_api;

/* The library's table (filled with the public entry points above). */
const csm_api *csm_get_api(void);

#ifdef __cplusplus
}
#endif
#endif /* CSOFTMAX_H */
