# csoftmax/__init__.pxd -- `cimport csoftmax`: the kernels from Cython, without the GIL.
#
# Usage (Cython >= 3.0; build with include_dirs=[csoftmax.get_include()], see the README):
#
#     cimport csoftmax
#     csoftmax.import_csoftmax()      # once, at module level: ImportError if
#                                     # csoftmax is missing or incompatible
#
#     def log_softmax_rows(const double[:, ::1] x, double[:, ::1] out):
#         cdef csoftmax.csm_layout L = csoftmax.rows(x.shape[0], x.shape[1])
#         cdef int rc
#         with nogil:
#             rc = csoftmax.log_softmax_f64(&x[0, 0], &out[0, 0], &L)
#         return rc                   # csoftmax.CSM_OK
#
# Nothing is linked: the functions below call through the function table
# (csm_api) that the installed csoftmax exports as the capsule
# csoftmax._core._C_API, i.e. the same dispatched kernels as
# csoftmax.softmax & co., with bitwise identical results. The C contract of
# every function (data model, strides, in place, special values, accuracy)
# is documented in csoftmax/csoftmax.h; csoftmax_capi.h documents the import.
#
# The table pointer (csm_API) is per extension module: each module that
# cimports csoftmax calls import_csoftmax() itself. Before a successful
# import, the kernel functions return CSM_ENOAPI and write nothing.

from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int64_t, uint32_t

cdef extern from "csoftmax/csoftmax_capi.h":
    # versions of the headers this module is compiled against
    const char *CSM_VERSION_STRING
    int CSM_VERSION_MAJOR
    int CSM_VERSION_MINOR
    int CSM_VERSION_PATCH
    int CSM_ABI_VERSION
    const char *CSM_CAPSULE_NAME       # "csoftmax._core._C_API"

    # status codes of the kernels
    int CSM_OK                         # success
    int CSM_EINVAL                     # NULL layout, or NULL pointer with a non-empty array
    int CSM_EISA                       # (csm_set_isa only; not reachable from here)
    int CSM_ERANGE                     # cross_entropy: a class index out of range
    int CSM_ENOAPI                     # import_csoftmax() has not succeeded in this module

    ctypedef enum csm_isa:
        CSM_ISA_SCALAR
        CSM_ISA_AVX2
        CSM_ISA_AVX512
        CSM_ISA_NEON
        CSM_ISA_COUNT

    # x[outer][n][inner] and y, element strides (csoftmax.h documents each member)
    ctypedef struct csm_layout:
        size_t outer, n, inner
        ptrdiff_t x_outer, x_n, x_inner
        ptrdiff_t y_outer, y_n, y_inner

    ctypedef int (*csm_f32_fn)(const float *x, float *y, const csm_layout *L) noexcept nogil
    ctypedef int (*csm_f64_fn)(const double *x, double *y, const csm_layout *L) noexcept nogil
    ctypedef int (*csm_f32_mt_fn)(const float *x, float *y, const csm_layout *L,
                                  int threads) noexcept nogil
    ctypedef int (*csm_f64_mt_fn)(const double *x, double *y, const csm_layout *L,
                                  int threads) noexcept nogil

    # a further operand in the call's geometry (dy, weights, a mask: base
    # pointer and element strides, 0 where broadcast), and the options of the
    # _ex kernels: temperature, where= mask (csoftmax.h documents each member)
    ctypedef struct csm_operand:
        const void *p
        ptrdiff_t outer, n, inner
    ctypedef struct csm_options:
        double temperature
        csm_operand mask
    csm_options csm_no_options() noexcept nogil
    ctypedef int (*csm_f32_ex_fn)(const float *x, float *y, const csm_layout *L,
                                  const csm_options *opt, int threads) noexcept nogil
    ctypedef int (*csm_f64_ex_fn)(const double *x, double *y, const csm_layout *L,
                                  const csm_options *opt, int threads) noexcept nogil
    # training (issue 8): gradient kernels, dy a further operand
    ctypedef int (*csm_f32_grad_fn)(const float *x, const csm_operand *dy, float *dx,
                                    const csm_layout *L, int threads) noexcept nogil
    ctypedef int (*csm_f64_grad_fn)(const double *x, const csm_operand *dy, double *dx,
                                    const csm_layout *L, int threads) noexcept nogil
    # fused cross-entropy (issue 8): its arguments and reductions (csoftmax.h
    # documents each member)
    int CSM_REDUCE_NONE
    int CSM_REDUCE_MEAN
    int CSM_REDUCE_SUM
    ctypedef struct csm_ce_args:
        csm_operand target
        int probs
        int64_t ignore_index
        double label_smoothing
        int reduction
        void *grad
        ptrdiff_t grad_outer, grad_n, grad_inner
        const void *weight
        ptrdiff_t weight_n
    ctypedef int (*csm_f32_ce_fn)(const float *x, float *loss, const csm_layout *L,
                                  const csm_ce_args *a, double *total,
                                  int threads) noexcept nogil
    ctypedef int (*csm_f64_ce_fn)(const double *x, double *loss, const csm_layout *L,
                                  const csm_ce_args *a, double *total,
                                  int threads) noexcept nogil

    # the function table (append-only; only the members known to this header)
    ctypedef struct csm_api:
        uint32_t abi_version
        uint32_t struct_size
        csm_f32_fn softmax_f32
        csm_f64_fn softmax_f64
        csm_f32_fn log_softmax_f32
        csm_f64_fn log_softmax_f64
        csm_f32_fn logsumexp_f32
        csm_f64_fn logsumexp_f64
        csm_isa (*active_isa)() noexcept nogil
        const char *(*isa_name)(csm_isa isa) noexcept nogil
        csm_f32_mt_fn softmax_f32_mt
        csm_f64_mt_fn softmax_f64_mt
        csm_f32_mt_fn log_softmax_f32_mt
        csm_f64_mt_fn log_softmax_f64_mt
        csm_f32_mt_fn logsumexp_f32_mt
        csm_f64_mt_fn logsumexp_f64_mt
        int (*default_threads)() noexcept nogil
        csm_f32_ex_fn softmax_f32_ex
        csm_f64_ex_fn softmax_f64_ex
        csm_f32_ex_fn log_softmax_f32_ex
        csm_f64_ex_fn log_softmax_f64_ex
        csm_f32_ex_fn logsumexp_f32_ex
        csm_f64_ex_fn logsumexp_f64_ex
        # training (issue 8)
        csm_f32_grad_fn softmax_backward_f32
        csm_f64_grad_fn softmax_backward_f64
        csm_f32_grad_fn log_softmax_backward_f32
        csm_f64_grad_fn log_softmax_backward_f64
        csm_f32_ce_fn cross_entropy_f32
        csm_f64_ce_fn cross_entropy_f64
        # weights, signs and streaming (issue 8, parts 5 and 6; csoftmax.h)
        int (*logsumexp_weighted_f32)(const float *x, const csm_operand *b, float *y,
                                      float *sign, const csm_layout *L,
                                      int threads) noexcept nogil
        int (*logsumexp_weighted_f64)(const double *x, const csm_operand *b, double *y,
                                      double *sign, const csm_layout *L,
                                      int threads) noexcept nogil
        int (*logsumexp_state_f32)(const float *x, double *m, double *hi, double *lo,
                                   const csm_layout *L, int threads) noexcept nogil
        int (*logsumexp_state_f64)(const double *x, double *m, double *hi, double *lo,
                                   const csm_layout *L, int threads) noexcept nogil
        void (*lse_state_merge)(double *m, double *hi, double *lo, const double *m2,
                                const double *hi2, const double *lo2,
                                size_t count) noexcept nogil
        void (*lse_state_finish)(const double *m, const double *hi, const double *lo,
                                 double *y, size_t count) noexcept nogil

    # static inline in csoftmax.h: no table needed
    csm_layout csm_rows(size_t rows, size_t n) noexcept nogil
    csm_layout csm_rows_reduced(size_t rows, size_t n) noexcept nogil

    # this module's table: NULL until csm_import() succeeds
    const csm_api *csm_API
    # 0, or -1 with ImportError set (the Python exception propagates)
    int csm_import() except -1


cdef inline int import_csoftmax() except -1:
    """Fetch csoftmax's function table; call it once at module level.

    Raises ImportError when csoftmax cannot be imported, or when it was
    built with another ABI version, or with a smaller table than the
    headers this module is compiled against (the message says which).
    """
    return csm_import()


# ---- layouts (see csm_layout in csoftmax.h)

cdef inline csm_layout rows(size_t nrows, size_t n) noexcept nogil:
    """`nrows` C-contiguous rows of length `n`, x and y alike: softmax or
    log_softmax over the last axis of a C-contiguous (nrows, n) array."""
    return csm_rows(nrows, n)


cdef inline csm_layout rows_reduced(size_t nrows, size_t n) noexcept nogil:
    """The same rows for logsumexp: y is the contiguous vector of `nrows`
    results."""
    return csm_rows_reduced(nrows, n)


# ---- kernels: x input, y output, L layout (not NULL). Each returns CSM_OK,
# CSM_EINVAL (NULL pointer with a non-empty array, or NULL layout; nothing
# written) or CSM_ENOAPI (not imported; nothing written). y may be x with the
# same strides (in place). Callable with or without the GIL.

cdef inline int softmax_f32(const float *x, float *y, const csm_layout *L) noexcept nogil:
    """softmax of every row of x (float32) into y."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_f32(x, y, L)


cdef inline int softmax_f64(const double *x, double *y, const csm_layout *L) noexcept nogil:
    """softmax of every row of x (float64) into y."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_f64(x, y, L)


cdef inline int log_softmax_f32(const float *x, float *y, const csm_layout *L) noexcept nogil:
    """log_softmax of every row of x (float32) into y."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_f32(x, y, L)


cdef inline int log_softmax_f64(const double *x, double *y, const csm_layout *L) noexcept nogil:
    """log_softmax of every row of x (float64) into y."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_f64(x, y, L)


cdef inline int logsumexp_f32(const float *x, float *y, const csm_layout *L) noexcept nogil:
    """logsumexp of every row of x (float32) into y (one value per row)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_f32(x, y, L)


cdef inline int logsumexp_f64(const double *x, double *y, const csm_layout *L) noexcept nogil:
    """logsumexp of every row of x (float64) into y (one value per row)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_f64(x, y, L)


# ---- the same kernels with up to `threads` OpenMP threads inside the call
# (threads <= 0: default_threads()); bitwise the same results as the serial
# ones above for every thread count (see csm_softmax_f32_mt in csoftmax.h).

cdef inline int softmax_f32_mt(const float *x, float *y, const csm_layout *L,
                               int threads) noexcept nogil:
    """softmax_f32 with threads."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_f32_mt(x, y, L, threads)


cdef inline int softmax_f64_mt(const double *x, double *y, const csm_layout *L,
                               int threads) noexcept nogil:
    """softmax_f64 with threads."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_f64_mt(x, y, L, threads)


cdef inline int log_softmax_f32_mt(const float *x, float *y, const csm_layout *L,
                                   int threads) noexcept nogil:
    """log_softmax_f32 with threads."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_f32_mt(x, y, L, threads)


cdef inline int log_softmax_f64_mt(const double *x, double *y, const csm_layout *L,
                                   int threads) noexcept nogil:
    """log_softmax_f64 with threads."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_f64_mt(x, y, L, threads)


cdef inline int logsumexp_f32_mt(const float *x, float *y, const csm_layout *L,
                                 int threads) noexcept nogil:
    """logsumexp_f32 with threads."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_f32_mt(x, y, L, threads)


cdef inline int logsumexp_f64_mt(const double *x, double *y, const csm_layout *L,
                                 int threads) noexcept nogil:
    """logsumexp_f64 with threads."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_f64_mt(x, y, L, threads)


cdef inline int default_threads() noexcept nogil:
    """The _mt kernels' default thread count (csoftmax.get_num_threads()),
    or 1 if not imported."""
    if csm_API == NULL:
        return 1
    return csm_API.default_threads()


# ---- the same kernels with options (csm_options: a where= mask operand and a
# temperature; csm_no_options() changes nothing), threads as in the _mt ones

cdef inline int softmax_f32_ex(const float *x, float *y, const csm_layout *L,
                               const csm_options *opt, int threads) noexcept nogil:
    """softmax_f32 with options (csm_softmax_f32_ex in csoftmax.h)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_f32_ex(x, y, L, opt, threads)


cdef inline int softmax_f64_ex(const double *x, double *y, const csm_layout *L,
                               const csm_options *opt, int threads) noexcept nogil:
    """softmax_f64 with options (csm_softmax_f64_ex in csoftmax.h)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_f64_ex(x, y, L, opt, threads)


cdef inline int log_softmax_f32_ex(const float *x, float *y, const csm_layout *L,
                                   const csm_options *opt, int threads) noexcept nogil:
    """log_softmax_f32 with options (csm_log_softmax_f32_ex in csoftmax.h)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_f32_ex(x, y, L, opt, threads)


cdef inline int log_softmax_f64_ex(const double *x, double *y, const csm_layout *L,
                                   const csm_options *opt, int threads) noexcept nogil:
    """log_softmax_f64 with options (csm_log_softmax_f64_ex in csoftmax.h)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_f64_ex(x, y, L, opt, threads)


cdef inline int logsumexp_f32_ex(const float *x, float *y, const csm_layout *L,
                                 const csm_options *opt, int threads) noexcept nogil:
    """logsumexp_f32 with options (csm_logsumexp_f32_ex in csoftmax.h)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_f32_ex(x, y, L, opt, threads)


cdef inline int logsumexp_f64_ex(const double *x, double *y, const csm_layout *L,
                                 const csm_options *opt, int threads) noexcept nogil:
    """logsumexp_f64 with options (csm_logsumexp_f64_ex in csoftmax.h)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_f64_ex(x, y, L, opt, threads)


# ---- instruction set (the one the kernels above run on)

cdef inline const char *active_isa_name() noexcept nogil:
    """Name of the active instruction set ("scalar", "avx2", ...), or NULL
    if not imported."""
    if csm_API == NULL:
        return NULL
    return csm_API.isa_name(csm_API.active_isa())


# ---- training (issue 8): gradients, threads as in the _mt functions

cdef inline int softmax_backward_f32(const float *y, const csm_operand *dy, float *dx,
                                     const csm_layout *L, int threads) noexcept nogil:
    """dx = y * (dy - sum(dy * y)) per row (csm_softmax_backward_f32_mt)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_backward_f32(y, dy, dx, L, threads)


cdef inline int softmax_backward_f64(const double *y, const csm_operand *dy, double *dx,
                                     const csm_layout *L, int threads) noexcept nogil:
    """softmax_backward_f32 for float64."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.softmax_backward_f64(y, dy, dx, L, threads)


cdef inline int log_softmax_backward_f32(const float *logp, const csm_operand *dy, float *dx,
                                         const csm_layout *L, int threads) noexcept nogil:
    """dx = dy - exp(logp) * sum(dy) per row (csm_log_softmax_backward_f32_mt)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_backward_f32(logp, dy, dx, L, threads)


cdef inline int log_softmax_backward_f64(const double *logp, const csm_operand *dy,
                                         double *dx, const csm_layout *L,
                                         int threads) noexcept nogil:
    """log_softmax_backward_f32 for float64."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.log_softmax_backward_f64(logp, dy, dx, L, threads)


# ---- fused cross-entropy (issue 8; csm_ce_args in csoftmax.h), threads as in
# the _mt functions

cdef inline int cross_entropy_f32(const float *x, float *loss, const csm_layout *L,
                                  const csm_ce_args *a, double *total,
                                  int threads) noexcept nogil:
    """Fused cross-entropy of every row of logits x (float32): the per-row
    losses into loss (L's y strides), the gradient into a.grad if not NULL,
    the mean or sum into *total if not NULL (csm_cross_entropy_f32_mt).
    CSM_ERANGE: a class index out of range (nothing written)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.cross_entropy_f32(x, loss, L, a, total, threads)


cdef inline int cross_entropy_f64(const double *x, double *loss, const csm_layout *L,
                                  const csm_ce_args *a, double *total,
                                  int threads) noexcept nogil:
    """cross_entropy_f32 for float64 (a.grad and probability targets: float64)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.cross_entropy_f64(x, loss, L, a, total, threads)


# ---- weights, signs and streaming (issue 8, parts 5 and 6), threads as in
# the _mt functions

cdef inline int logsumexp_weighted_f32(const float *x, const csm_operand *b, float *y,
                                       float *sign, const csm_layout *L,
                                       int threads) noexcept nogil:
    """y = log|sum b exp(x)| per row (float32), the signs into sign if not
    NULL; b NULL: all weights 1 (csm_logsumexp_weighted_f32_mt)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_weighted_f32(x, b, y, sign, L, threads)


cdef inline int logsumexp_weighted_f64(const double *x, const csm_operand *b, double *y,
                                       double *sign, const csm_layout *L,
                                       int threads) noexcept nogil:
    """logsumexp_weighted_f32 for float64."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_weighted_f64(x, b, y, sign, L, threads)


cdef inline int logsumexp_state_f32(const float *x, double *m, double *hi, double *lo,
                                    const csm_layout *L, int threads) noexcept nogil:
    """The streaming state of every row of x (float32): its maximum into m
    and sum exp(x - m) = hi + lo, at L's y offsets (csm_logsumexp_state_f32_mt)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_state_f32(x, m, hi, lo, L, threads)


cdef inline int logsumexp_state_f64(const double *x, double *m, double *hi, double *lo,
                                    const csm_layout *L, int threads) noexcept nogil:
    """logsumexp_state_f32 for float64 x."""
    if csm_API == NULL:
        return CSM_ENOAPI
    return csm_API.logsumexp_state_f64(x, m, hi, lo, L, threads)


cdef inline int lse_state_merge(double *m, double *hi, double *lo, const double *m2,
                                const double *hi2, const double *lo2,
                                size_t count) noexcept nogil:
    """States 0..count-1 (contiguous) <- their union with states (m2, hi2,
    lo2) (csm_lse_state_merge). Returns CSM_OK, or CSM_ENOAPI (not
    imported; nothing written)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    csm_API.lse_state_merge(m, hi, lo, m2, hi2, lo2, count)
    return CSM_OK


cdef inline int lse_state_finish(const double *m, const double *hi, const double *lo,
                                 double *y, size_t count) noexcept nogil:
    """y[k] = m[k] + log(hi[k] + lo[k]), the logsumexp of each state
    (csm_lse_state_finish). Returns CSM_OK, or CSM_ENOAPI (not imported;
    nothing written)."""
    if csm_API == NULL:
        return CSM_ENOAPI
    csm_API.lse_state_finish(m, hi, lo, y, count)
    return CSM_OK
