# cython: language_level=3, boundscheck=False, wraparound=False
"""A Cython extension calling csoftmax's kernels without the GIL
(README "Use from C / Cython", recipe 2; built and tested by tests/test_capi.py).

Each function returns the kernel's status (csoftmax.CSM_OK on success).
"""
from cython cimport floating

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
