# cython: language_level=3, boundscheck=False, wraparound=False
"""A Cython extension calling csoftmax's kernels without the GIL
(README "Use from C / Cython", recipe 2; built and tested by tests/test_capi.py).

Each function returns the kernel's status (csoftmax.CSM_OK on success);
the cross-entropy ones return (status, total).
"""
cimport cython
from cython cimport floating
from libc.stdint cimport int64_t

cimport csoftmax

csoftmax.import_csoftmax()      # ImportError if csoftmax is missing or incompatible


def log_softmax(const floating[:, ::1] x, floating[:, ::1] out):
    """log_softmax of each row of x into out (same shape and dtype)."""
    cdef csoftmax.csm_layout L = csoftmax.rows(x.shape[0], x.shape[1])
    cdef int rc
    with nogil:
        if floating is float:
            rc = csoftmax.log_softmax_f32(&x[0, 0], &out[0, 0], &L)
        else:
            rc = csoftmax.log_softmax_f64(&x[0, 0], &out[0, 0], &L)
    return rc


def logsumexp(const floating[:, ::1] x, floating[::1] out):
    """logsumexp of each row of x into out (one value per row)."""
    cdef csoftmax.csm_layout L = csoftmax.rows_reduced(x.shape[0], x.shape[1])
    cdef int rc
    with nogil:
        if floating is float:
            rc = csoftmax.logsumexp_f32(&x[0, 0], &out[0], &L)
        else:
            rc = csoftmax.logsumexp_f64(&x[0, 0], &out[0], &L)
    return rc


def softmax_columns(const floating[:, ::1] x, floating[:, ::1] out):
    """softmax over axis 0 of x (each column sums to 1), through a
    hand-made layout: one block of x.shape[1] columns of length x.shape[0]."""
    cdef csoftmax.csm_layout L
    L.outer = 1
    L.n = x.shape[0]
    L.inner = x.shape[1]
    L.x_outer = L.y_outer = 0
    L.x_n = L.y_n = x.shape[1]
    L.x_inner = L.y_inner = 1
    cdef int rc
    with nogil:
        if floating is float:
            rc = csoftmax.softmax_f32(&x[0, 0], &out[0, 0], &L)
        else:
            rc = csoftmax.softmax_f64(&x[0, 0], &out[0, 0], &L)
    return rc


cdef csoftmax.csm_ce_args _ce_args(int reduction, double label_smoothing,
                                   floating[:, ::1] grad) noexcept:
    """The arguments of a cross-entropy over C-contiguous rows (the target
    is set by the caller)."""
    cdef csoftmax.csm_ce_args a
    a.probs = 0
    a.ignore_index = -100
    a.label_smoothing = label_smoothing
    a.reduction = reduction
    a.grad = &grad[0, 0]
    a.grad_outer = grad.shape[1]
    a.grad_n = 1
    a.grad_inner = 0
    a.weight = NULL                     # no class weights (the member added last)
    a.weight_n = 0
    return a


cdef int _ce(const floating[:, ::1] x, floating[::1] loss, const csoftmax.csm_ce_args *a,
             double *total) noexcept nogil:
    """The cross-entropy kernel of x's type over the rows of x."""
    cdef csoftmax.csm_layout L = csoftmax.rows_reduced(x.shape[0], x.shape[1])
    if floating is float:
        return csoftmax.cross_entropy_f32(&x[0, 0], &loss[0], &L, a, total, 0)
    return csoftmax.cross_entropy_f64(&x[0, 0], &loss[0], &L, a, total, 0)


def cross_entropy(const floating[:, ::1] x, const int64_t[::1] target, floating[::1] loss,
                  floating[:, ::1] grad, int reduction, double label_smoothing,
                  int64_t ignore_index, const floating[:] weight=None):
    """Cross-entropy of each row of logits x against class indices target
    (one per row): the losses into loss, the gradient of the reduced loss
    (reduction: csoftmax.CSM_REDUCE_*) into grad (x's shape); weight: None
    or the class weights (any stride). Returns (status, total): total the
    mean or sum of the losses."""
    cdef csoftmax.csm_ce_args a = _ce_args(reduction, label_smoothing, grad)
    if weight is not None:
        a.weight = &weight[0]
        a.weight_n = weight.strides[0] // sizeof(floating)
    a.target.p = &target[0]
    a.target.outer = 1                  # one index per row
    a.target.n = 0
    a.target.inner = 0
    a.ignore_index = ignore_index
    cdef double total = 0.0
    cdef int rc
    with nogil:
        rc = _ce(x, loss, &a, &total)
    return rc, total


def cross_entropy_probs(const floating[:, ::1] x, const floating[:, ::1] p,
                        floating[::1] loss, floating[:, ::1] grad, int reduction,
                        double label_smoothing, const floating[:] weight=None):
    """cross_entropy with a probability target p (x's shape)."""
    cdef csoftmax.csm_ce_args a = _ce_args(reduction, label_smoothing, grad)
    if weight is not None:
        a.weight = &weight[0]
        a.weight_n = weight.strides[0] // sizeof(floating)
    a.target.p = &p[0, 0]
    a.target.outer = p.shape[1]
    a.target.n = 1
    a.target.inner = 0
    a.probs = 1
    cdef double total = 0.0
    cdef int rc
    with nogil:
        rc = _ce(x, loss, &a, &total)
    return rc, total


def logsumexp_weighted(const floating[:, ::1] x, const floating[:, ::1] b, floating[::1] out,
                       floating[::1] sign):
    """log|sum b exp(x)| of each row into out, its sign into sign."""
    cdef csoftmax.csm_layout L = csoftmax.rows_reduced(x.shape[0], x.shape[1])
    cdef csoftmax.csm_operand bop
    bop.p = &b[0, 0]
    bop.outer = b.shape[1]
    bop.n = 1
    bop.inner = 0
    cdef int rc
    with nogil:
        if floating is float:
            rc = csoftmax.logsumexp_weighted_f32(&x[0, 0], &bop, &out[0], &sign[0], &L, 0)
        else:
            rc = csoftmax.logsumexp_weighted_f64(&x[0, 0], &bop, &out[0], &sign[0], &L, 0)
    return rc


cdef int _state(const floating[:, ::1] x, double[::1] m, double[::1] hi,
                double[::1] lo) noexcept nogil:
    cdef csoftmax.csm_layout L = csoftmax.rows_reduced(x.shape[0], x.shape[1])
    if floating is float:
        return csoftmax.logsumexp_state_f32(&x[0, 0], &m[0], &hi[0], &lo[0], &L, 0)
    return csoftmax.logsumexp_state_f64(&x[0, 0], &m[0], &hi[0], &lo[0], &L, 0)


def logsumexp_two_chunks(const floating[:, ::1] a, const floating[:, ::1] b,
                         double[::1] out):
    """Streaming logsumexp of the rows of [a b] (a and b: the same number of
    rows): the state of each chunk, merged, finished into out (float64).
    Returns the first status that is not CSM_OK, else CSM_OK."""
    cdef Py_ssize_t rows = a.shape[0]
    cdef double[:, ::1] s = cython.view.array(shape=(6, max(rows, 1)), itemsize=sizeof(double),
                                              format="d")   # m, hi, lo of a, then of b
    cdef int rc
    with nogil:
        rc = _state(a, s[0], s[1], s[2])
        if rc == csoftmax.CSM_OK:
            rc = _state(b, s[3], s[4], s[5])
        if rc == csoftmax.CSM_OK:
            rc = csoftmax.lse_state_merge(&s[0, 0], &s[1, 0], &s[2, 0], &s[3, 0], &s[4, 0],
                                          &s[5, 0], rows)
        if rc == csoftmax.CSM_OK:
            rc = csoftmax.lse_state_finish(&s[0, 0], &s[1, 0], &s[2, 0], &out[0], rows)
    return rc


def active_isa():
    """The instruction set the kernels run on."""
    return csoftmax.active_isa_name().decode()


def _status_without_table():
    """(test helper) What a kernel returns before a successful import:
    the table pointer is set to NULL for the call, then restored."""
    cdef const csoftmax.csm_api *saved = csoftmax.csm_API
    cdef double x = 0.0, y = 7.0
    cdef csoftmax.csm_layout L = csoftmax.rows(1, 1)
    csoftmax.csm_API = NULL
    try:
        return csoftmax.softmax_f64(&x, &y, &L), y
    finally:
        csoftmax.csm_API = saved
