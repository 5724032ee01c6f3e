# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
# cython: cdivision=True, freethreading_compatible=True
"""Thin layer between NumPy and the C kernels.

It validates the arguments, applies the dtype policy, views the array as
x[outer][n][inner] (plus plain outer "batch" loops for layouts that do not
collapse), checks or allocates ``out``, and calls one C kernel per batch
entry with the GIL released. Everything is checked before anything is
written to ``out``.
"""
import operator

import numpy as np
cimport numpy as cnp

from libc.stdint cimport uint32_t

cnp.import_array()

try:
    from numpy.exceptions import AxisError
except ImportError:  # numpy < 1.25
    from numpy import AxisError


cdef extern from "csoftmax/csoftmax.h" nogil:
    ctypedef struct csm_layout:
        size_t outer, n, inner
        Py_ssize_t x_outer, x_n, x_inner
        Py_ssize_t y_outer, y_n, y_inner
    ctypedef enum csm_isa:
        CSM_ISA_SCALAR
        CSM_ISA_COUNT
    int CSM_OK
    int CSM_ABI_VERSION
    const char *CSM_VERSION_STRING
    int csm_softmax_f32_mt(const float *x, float *y, const csm_layout *L, int threads)
    int csm_softmax_f64_mt(const double *x, double *y, const csm_layout *L, int threads)
    int csm_log_softmax_f32_mt(const float *x, float *y, const csm_layout *L, int threads)
    int csm_log_softmax_f64_mt(const double *x, double *y, const csm_layout *L, int threads)
    int csm_logsumexp_f32_mt(const float *x, float *y, const csm_layout *L, int threads)
    int csm_logsumexp_f64_mt(const double *x, double *y, const csm_layout *L, int threads)
    int csm_default_threads()
    int csm_set_default_threads(int n)
    long csm_openmp_version()
    int csm_isa_compiled(csm_isa isa)
    int csm_isa_supported(csm_isa isa)
    csm_isa csm_active_isa()
    int csm_set_isa(csm_isa isa)
    const char *csm_isa_name(csm_isa isa)
    csm_isa csm_init()

cdef extern from "kernels.h" nogil:
    void csm_exp_nonpos_f64(const double *x, double *y, size_t n)
    int csm_last_team()

# hardening (issue 7): the general path's NumPy work (casts, the float16 and
# longdouble paths) raises and clears FP flags too, on x86-64 in the x87 unit
# as well (feraiseexcept, feclearexcept, long double arithmetic): _run saves
# and restores the whole environment around it (about 0.2 us); the C entry
# points do so for the kernels themselves (fpenv.h)
cdef extern from "fpenv.h" nogil:
    ctypedef struct csm_fpstate:
        pass
    csm_fpstate csm_fp_enter()

cdef extern from "<fenv.h>" nogil:
    ctypedef struct fenv_t:
        pass
    int FE_TONEAREST
    int fegetenv(fenv_t *envp)
    int fesetenv(const fenv_t *envp)
    int fesetround(int mode)


csm_init()

C_VERSION = CSM_VERSION_STRING.decode()
ABI_VERSION = CSM_ABI_VERSION

DEF MAXDIM = 64   # NumPy allows 64 dimensions since 2.0

cdef enum:
    OP_SOFTMAX = 0
    OP_LOG_SOFTMAX = 1
    OP_LOGSUMEXP = 2

cdef tuple _NAMES = ("softmax", "log_softmax", "logsumexp")

cdef object _f32 = np.dtype(np.float32)
cdef object _f64 = np.dtype(np.float64)
cdef object _f16 = np.dtype(np.float16)
cdef object _ndarray = np.ndarray
cdef object _masked = np.ma.MaskedArray


# ---------------------------------------------------------------- ISA info

def isa_info():
    """Instruction sets of this build.

    Returns
    -------
    dict
        ``compiled``: list of the instruction sets built into the extension;
        ``supported``: those of them this CPU can run; ``active``: the one in
        use (the best supported, or ``CSOFTMAX_ISA`` when that names a
        supported one); ``openmp``: the OpenMP version the kernels were
        built with (such as 201511), or 0 when built without OpenMP (then
        every call runs on one thread).

    Examples
    --------
    >>> import csoftmax
    >>> csoftmax.isa_info()["active"] in csoftmax.isa_info()["supported"]
    True
    """
    compiled, supported = [], []
    cdef int i
    for i in range(<int>CSM_ISA_COUNT):
        if csm_isa_compiled(<csm_isa>i):
            compiled.append(csm_isa_name(<csm_isa>i).decode())
            if csm_isa_supported(<csm_isa>i):
                supported.append(csm_isa_name(<csm_isa>i).decode())
    return {"compiled": compiled, "supported": supported,
            "active": csm_isa_name(csm_active_isa()).decode(),
            "openmp": int(csm_openmp_version())}


# ---------------------------------------------------------------- threads

DEF MAX_THREADS = 1024   # beyond any machine this runs on; guards absurd requests


def set_num_threads(n):
    """Set the default number of threads of every call in this process.

    Parameters
    ----------
    n : int or None
        The most threads a call may use when it is not given
        ``num_threads=``; ``None`` restores the automatic default (OpenMP's:
        ``OMP_NUM_THREADS``, else the CPUs of the affinity mask, and limits
        set by ``threadpoolctl``).

    Notes
    -----
    Process-wide and safe to call from any thread. It does not touch
    OpenMP's own settings, so other OpenMP libraries are not affected. The
    results never depend on the number of threads (bitwise).

    Examples
    --------
    >>> import csoftmax
    >>> csoftmax.set_num_threads(1)
    >>> csoftmax.get_num_threads()
    1
    >>> csoftmax.set_num_threads(None)
    """
    csm_set_default_threads(0 if n is None else _check_threads(n, "set_num_threads"))


def get_num_threads():
    """The default number of threads of a call (see `set_num_threads`).

    Returns
    -------
    int
        The value given to `set_num_threads`, or else the automatic default
        for the calling thread (1 when built without OpenMP).

    Examples
    --------
    >>> import csoftmax
    >>> csoftmax.get_num_threads() >= 1
    True
    """
    return csm_default_threads()


def _last_team():
    """Threads of the largest team in the calling thread's last kernel call
    (test hook; not public API)."""
    return csm_last_team()


cdef int _check_threads(object n, str name) except -1:
    if type(n) is int and 0 < n < MAX_THREADS:     # the common case
        return n
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"{name}: num_threads must be a positive integer or None, got {n!r}")
    try:
        v = operator.index(n)
    except TypeError:
        raise TypeError(f"{name}: num_threads must be a positive integer or None, "
                        f"got {type(n).__name__}") from None
    if v < 1:
        raise ValueError(f"{name}: num_threads must be >= 1, got {v}")
    return v if v < MAX_THREADS else MAX_THREADS


def _set_isa(name):
    """Switch the active instruction set (tests and benchmarks only; not
    thread-safe: no call may be running). ValueError if not available."""
    cdef int i
    for i in range(<int>CSM_ISA_COUNT):
        if csm_isa_name(<csm_isa>i).decode() == name:
            if csm_set_isa(<csm_isa>i) == CSM_OK:
                return
            break
    raise ValueError(f"instruction set {name!r} is not available here "
                     f"(supported: {isa_info()['supported']})")


def _exp_nonpos(x):
    """exp of a float64 array of values <= 0 by the active target's kernel
    exp (test hook for its accuracy; not public API)."""
    xa = np.ascontiguousarray(x, dtype=_f64)
    y = np.empty_like(xa)
    cdef const double *xp = <const double *>cnp.PyArray_DATA(xa)
    cdef double *yp = <double *>cnp.PyArray_DATA(y)
    cdef size_t n = xa.size
    with nogil:
        csm_exp_nonpos_f64(xp, yp, n)
    return y


# ---------------------------------------------------------------- helpers

cdef object _as_array(object x, str name):
    if isinstance(x, _ndarray):
        if isinstance(x, _masked):
            raise TypeError(f"{name}: masked arrays are not supported "
                            "(pass x.filled(-np.inf) to drop masked entries)")
        return x
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as e:   # issue 7: a ragged list names the function
        kind = TypeError if isinstance(e, TypeError) else ValueError
        raise kind(f"{name}: x cannot be converted to an array: {e}") from e


cdef object _result_dtype(object dt, str name):
    """dtype of the result for input dtype dt (TypeError if unsupported)."""
    cdef str kind = dt.kind
    if kind == "f":
        return dt.newbyteorder("=") if not dt.isnative else dt
    if kind == "b" or kind == "i" or kind == "u":
        return _f64
    raise TypeError(f"{name}: unsupported dtype {dt} (expected a real floating, "
                    "integer or bool dtype)")


cdef list _normalize_axis(object axis, int ndim, str name):
    """Sorted list of the reduced axes."""
    cdef list axes
    if axis is None:
        return list(range(ndim))
    if isinstance(axis, tuple):
        items = axis
    else:
        items = (axis,)
    axes = []
    for a in items:
        if isinstance(a, (bool, np.bool_)):
            raise TypeError(f"{name}: axis must be an integer, a tuple of integers or "
                            f"None, got {a!r}")
        try:
            ai = operator.index(a)
        except TypeError:
            raise TypeError(f"{name}: axis must be an integer, a tuple of integers or "
                            f"None, got {type(a).__name__}") from None
        if ai < -ndim or ai >= ndim:
            raise AxisError(ai, ndim, name)
        if ai < 0:
            ai += ndim
        if ai in axes:
            raise ValueError(f"{name}: duplicate value in 'axis': {axis!r}")
        axes.append(ai)
    axes.sort()
    return axes


cdef bint _self_overlapping(object a):
    """True unless the strides prove that no two elements of `a` share
    memory: broadcast views, and the rare as_strided patterns that interleave
    without overlapping (refused too: the check is sufficient, not exact)."""
    if a.size == 0:
        return False
    dims = sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1)
    cdef Py_ssize_t extent = a.itemsize
    for s, n in dims:
        if s < extent:
            return True
        extent += s * (n - 1)
    return False


# ---------------------------------------------------------------- layout

DEF MAXOP = 6     # operands of one call: x, y and the extras of issue 8


cdef struct Plan:
    csm_layout L                   # operands 0 (x) and 1 (y), as the kernels take them
    int nops
    Py_ssize_t so[MAXOP]           # per operand: element strides along outer, n, inner
    Py_ssize_t sn[MAXOP]
    Py_ssize_t si[MAXOP]
    int nbatch
    Py_ssize_t bshape[MAXDIM]
    Py_ssize_t bs[MAXOP][MAXDIM]   # per operand: batch strides in bytes


cdef bint _plan_ops(Plan *P, object shape, list strides, list itemsizes,
                    list red) except -1:
    """Describe operands of one geometry `shape` (x's) as batch x
    [outer][n][inner]. strides[k]: operand k's byte strides along every axis
    of `shape` (0 along broadcast axes, and along the reduced axes for an
    output that has none); itemsizes[k]: its element size. Axes merge only
    where they merge for every operand; operand 0 (x) decides which axes
    are outer and inner. False when the reduced axes do not collapse to one
    stride, or a stride is not a whole number of elements."""
    cdef int nd = len(shape), nops = len(strides), i, j, k, nr = 0, nk = 0, ng = 0
    cdef Py_ssize_t sh[MAXDIM]
    cdef Py_ssize_t st[MAXOP][MAXDIM]
    cdef Py_ssize_t gsh[MAXDIM]
    cdef Py_ssize_t gst[MAXOP][MAXDIM]
    cdef int R[MAXDIM]
    cdef int K[MAXDIM]
    cdef bint ok
    if nops > MAXOP:
        raise ValueError("internal: too many operands")
    P.nops = nops
    for k in range(nops):
        isz = itemsizes[k]
        for i in range(nd):
            s = strides[k][i]
            if s % isz:
                return False
            st[k][i] = s // isz
    for i in range(nd):
        sh[i] = shape[i]
        if sh[i] > 1:
            if i in red:
                R[nr] = i
                nr += 1
            else:
                K[nk] = i
                nk += 1
    # sort both lists by |x stride|, largest first (insertion sort; tiny)
    _sort_axes(R, nr, st[0])
    _sort_axes(K, nk, st[0])
    # the reduced axes must merge into one
    cdef Py_ssize_t n = 1
    for k in range(nops):
        P.sn[k] = 0
    for j in range(nr):
        i = R[j]
        if j > 0:
            for k in range(nops):
                if st[k][R[j - 1]] != st[k][i] * sh[i]:
                    return False
        n *= sh[i]
        for k in range(nops):
            P.sn[k] = st[k][i]
    # the kept axes merge into groups; the last group has the smallest stride
    for j in range(nk):
        i = K[j]
        ok = ng > 0
        if ok:
            for k in range(nops):
                if gst[k][ng - 1] != st[k][i] * sh[i]:
                    ok = False
                    break
        if ok:
            gsh[ng - 1] *= sh[i]
            for k in range(nops):
                gst[k][ng - 1] = st[k][i]
        else:
            gsh[ng] = sh[i]
            for k in range(nops):
                gst[k][ng] = st[k][i]
            ng += 1
    P.L.n = n
    P.L.inner = 1
    for k in range(nops):
        P.si[k] = 0
        P.so[k] = 0
    if ng > 0 and (n == 1 or _abs(gst[0][ng - 1]) < _abs(P.sn[0])):
        ng -= 1
        P.L.inner = gsh[ng]
        for k in range(nops):
            P.si[k] = gst[k][ng]
    P.L.outer = 1
    if ng > 0:
        ng -= 1
        P.L.outer = gsh[ng]
        for k in range(nops):
            P.so[k] = gst[k][ng]
    P.nbatch = ng
    for j in range(ng):
        P.bshape[j] = gsh[j]
        for k in range(nops):
            P.bs[k][j] = gst[k][j] * <Py_ssize_t>itemsizes[k]
    P.L.x_outer, P.L.x_n, P.L.x_inner = P.so[0], P.sn[0], P.si[0]
    if nops > 1:
        P.L.y_outer, P.L.y_n, P.L.y_inner = P.so[1], P.sn[1], P.si[1]
    return True


cdef tuple _out_strides(object ya, list red, bint reduced):
    """Byte strides of the output ya along every axis of x's geometry: ya's
    own, or for a reduced output (the kept axes only) 0 along the reduced ones."""
    if not reduced:
        return ya.strides
    cdef list st = []
    cdef int k = 0
    ys = ya.strides
    for i in range(ya.ndim + len(red)):
        if i in red:
            st.append(0)
        else:
            st.append(ys[k])
            k += 1
    return tuple(st)


cdef bint _plan(Plan *P, object xa, object ya, list red, int op) except -1:
    """x and its output y (x's shape for softmax and log_softmax, the kept
    axes only for logsumexp) as batch x [outer][n][inner] (see _plan_ops)."""
    return _plan_ops(P, xa.shape, [xa.strides, _out_strides(ya, red, op == OP_LOGSUMEXP)],
                     [xa.itemsize, ya.itemsize], red)


cdef inline Py_ssize_t _abs(Py_ssize_t v) noexcept nogil:
    return -v if v < 0 else v


cdef void _sort_axes(int *ax, int n, Py_ssize_t *xs) noexcept:
    cdef int i, j, t
    for i in range(1, n):
        t = ax[i]
        j = i - 1
        while j >= 0 and _abs(xs[ax[j]]) < _abs(xs[t]):
            ax[j + 1] = ax[j]
            j -= 1
        ax[j + 1] = t


cdef int _kernel(int op, bint f32, const char *x, char *y, const csm_layout *L,
                 int nt) noexcept nogil:
    """One kernel call with up to nt threads (0: the library default)."""
    if f32:
        if op == OP_SOFTMAX:
            return csm_softmax_f32_mt(<const float *>x, <float *>y, L, nt)
        if op == OP_LOG_SOFTMAX:
            return csm_log_softmax_f32_mt(<const float *>x, <float *>y, L, nt)
        return csm_logsumexp_f32_mt(<const float *>x, <float *>y, L, nt)
    if op == OP_SOFTMAX:
        return csm_softmax_f64_mt(<const double *>x, <double *>y, L, nt)
    if op == OP_LOG_SOFTMAX:
        return csm_log_softmax_f64_mt(<const double *>x, <double *>y, L, nt)
    return csm_logsumexp_f64_mt(<const double *>x, <double *>y, L, nt)


# One kernel call over one batch entry: ptrs[k] points at operand k's
# element (0, 0, 0) of the entry, P describes the geometry and the strides.
ctypedef int (*_call_fn)(void *ctx, char **ptrs, const Plan *P, int nt) noexcept nogil


cdef int _execute_ops(_call_fn fn, void *ctx, char **ptrs, Plan *P, int nt) noexcept nogil:
    """Runs fn over every batch entry (odometer over the batch dims),
    advancing every operand's pointer; stops at the first error code."""
    cdef Py_ssize_t idx[MAXDIM]
    cdef int k, q, rc
    for k in range(P.nbatch):
        idx[k] = 0
    while True:
        rc = fn(ctx, ptrs, P, nt)
        if rc != CSM_OK:
            return rc
        k = P.nbatch - 1
        while k >= 0:
            idx[k] += 1
            for q in range(P.nops):
                ptrs[q] += P.bs[q][k]
            if idx[k] < P.bshape[k]:
                break
            for q in range(P.nops):
                ptrs[q] -= P.bs[q][k] * P.bshape[k]
            idx[k] = 0
            k -= 1
        if k < 0:
            return CSM_OK


cdef struct _OpCtx:
    int op
    bint f32


cdef int _call_op(void *ctx, char **ptrs, const Plan *P, int nt) noexcept nogil:
    cdef _OpCtx *c = <_OpCtx *>ctx
    return _kernel(c.op, c.f32, ptrs[0], ptrs[1], &P.L, nt)


cdef object _compute_native(int op, object xa, list red, object y, str name, int nt):
    """xa: aligned native float32/float64 array, non-empty; y: the output
    array for it (logsumexp: the kept axes only), not overlapping xa unless
    identical to it. Writes y."""
    cdef Plan P
    cdef int rc
    cdef bint f32 = xa.dtype.itemsize == 4
    if not _plan(&P, xa, y, red, op):
        # reduced axes that do not collapse (or odd strides): one copy with
        # the reduced axes last and contiguous, computed into a scratch output
        keep = [i for i in range(xa.ndim) if i not in red]
        perm = keep + red
        xc = np.ascontiguousarray(xa.transpose(perm))
        if op == OP_LOGSUMEXP:
            yc = np.empty(xc.shape[:len(keep)], xa.dtype)
            _compute_native(op, xc, list(range(len(keep), xa.ndim)), yc, name, nt)
            y[...] = yc
        else:
            yc = np.empty_like(xc)
            _compute_native(op, xc, list(range(len(keep), xa.ndim)), yc, name, nt)
            y[...] = yc.transpose(np.argsort(perm))
        return y
    cdef char *ptrs[2]
    ptrs[0] = <char *>cnp.PyArray_DATA(xa)
    ptrs[1] = <char *>cnp.PyArray_DATA(y)
    cdef _OpCtx ctx
    ctx.op = op
    ctx.f32 = f32
    with nogil:
        rc = _execute_ops(_call_op, &ctx, ptrs, &P, nt)
    if rc != CSM_OK:
        raise RuntimeError(f"{name}: internal error {rc} from the C kernel")
    return y


cdef object _alloc_lse(object xa, list red, object dt):
    """Output for the kept axes of xa, laid out in xa's memory order."""
    keep = [i for i in range(xa.ndim) if i not in red]
    strides = xa.strides
    order = sorted(range(len(keep)), key=lambda j: -abs(strides[keep[j]]))
    shape = xa.shape
    y = np.empty([shape[keep[j]] for j in order], dt)
    return y.transpose(np.argsort(order)) if order != sorted(order) else y


cdef inline bint _plain(cnp.ndarray a, int typenum) noexcept:
    """a is a native, aligned, C-contiguous array of typenum."""
    return (cnp.PyArray_TYPE(a) == typenum and cnp.PyArray_ISNOTSWAPPED(a)
            and cnp.PyArray_ISALIGNED(a) and cnp.PyArray_IS_C_CONTIGUOUS(a))


cdef object _fast(int op, object x, object axis, object out, bint keepdims, int nt):
    """The common call in C only: a plain float32/float64 ndarray reduced
    along its last axis, out absent, x itself, or a plain array of the
    result's shape that does not overlap x. None when it does not apply
    (then _run's general path handles the call, errors included)."""
    if type(x) is not _ndarray or type(axis) is not int or keepdims:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef int nd = cnp.PyArray_NDIM(xa), typenum = cnp.PyArray_TYPE(xa), k
    if nd == 0 or (axis != -1 and axis != nd - 1) or cnp.PyArray_SIZE(xa) == 0:
        return None
    if (typenum != cnp.NPY_FLOAT and typenum != cnp.NPY_DOUBLE) or not _plain(xa, typenum):
        return None
    cdef cnp.npy_intp *dims = cnp.PyArray_DIMS(xa)
    cdef int ynd = nd - 1 if op == OP_LOGSUMEXP else nd
    cdef cnp.ndarray ya
    cdef char *xp = <char *>cnp.PyArray_DATA(xa)
    cdef char *yp
    if out is None:
        ya = cnp.PyArray_EMPTY(ynd, dims, typenum, 0)
    else:
        if type(out) is not _ndarray:
            return None
        ya = <cnp.ndarray>out
        if cnp.PyArray_NDIM(ya) != ynd or not _plain(ya, typenum) \
                or not cnp.PyArray_ISWRITEABLE(ya):
            return None
        for k in range(ynd):
            if cnp.PyArray_DIMS(ya)[k] != dims[k]:
                return None
        yp = <char *>cnp.PyArray_DATA(ya)
        if not (yp == xp and op != OP_LOGSUMEXP) and \
                yp < xp + cnp.PyArray_NBYTES(xa) and xp < yp + cnp.PyArray_NBYTES(ya):
            return None                  # overlapping, not identical
    yp = <char *>cnp.PyArray_DATA(ya)
    cdef csm_layout L
    L.n = <size_t>dims[nd - 1]
    L.outer = <size_t>(cnp.PyArray_SIZE(xa) // dims[nd - 1])
    L.inner = 1
    L.x_outer = L.y_outer = <Py_ssize_t>L.n
    L.x_n = L.y_n = 1
    L.x_inner = L.y_inner = 0
    if op == OP_LOGSUMEXP:
        L.y_outer = 1
    cdef bint f32 = typenum == cnp.NPY_FLOAT
    cdef int rc
    with nogil:
        rc = _kernel(op, f32, xp, yp, &L, nt)
    if rc != CSM_OK:
        raise RuntimeError(f"{_NAMES[op]}: internal error {rc} from the C kernel")
    if out is not None:
        return out
    if ynd == 0:   # a NumPy scalar, as from the general path (PyArray_Return would steal ya)
        return cnp.PyArray_ToScalar(cnp.PyArray_DATA(ya), ya)
    return ya


cdef object _run(int op, object x, object axis, object out, bint keepdims, object num_threads):
    cdef int nt = 0 if num_threads is None else _check_threads(num_threads, _NAMES[op])
    res = _fast(op, x, axis, out, keepdims, nt)
    if res is not None:
        return res
    # hardening (issue 7): the general path runs in the default FP
    # environment (NumPy's casts round to nearest, no FTZ/DAZ) and gives the
    # caller's back, exception flags included
    cdef fenv_t fpenv
    fegetenv(&fpenv)
    fesetround(FE_TONEAREST)
    csm_fp_enter()
    try:
        return _run_general(op, x, axis, out, keepdims, nt)
    finally:
        fesetenv(&fpenv)


cdef object _run_general(int op, object x, object axis, object out, bint keepdims, int nt):
    cdef str name = _NAMES[op]
    xa = _as_array(x, name)
    dt = _result_dtype(xa.dtype, name)
    cdef int nd = xa.ndim
    cdef list red = _normalize_axis(axis, nd, name)
    if op == OP_LOGSUMEXP:
        rshape = tuple(1 if i in red else xa.shape[i] for i in range(nd) if keepdims or i not in red)
    else:
        rshape = xa.shape
    # ---- out: every check before anything is computed or written
    if out is not None:
        if not isinstance(out, _ndarray):
            raise TypeError(f"{name}: out must be a numpy.ndarray, got {type(out).__name__}")
        if out.dtype != dt:
            raise TypeError(f"{name}: out has dtype {out.dtype}, expected {dt} "
                            f"(the result dtype for input dtype {xa.dtype})")
        if out.shape != rshape:
            raise ValueError(f"{name}: out has shape {out.shape}, expected {rshape}")
        if not out.flags.writeable:
            raise ValueError(f"{name}: out is read-only")
        if _self_overlapping(out):
            raise ValueError(f"{name}: out has overlapping elements (a broadcast view), or "
                             "strides that interleave its elements; pass a plain array")
    # ---- dtype policy
    if dt.itemsize > 8:                 # longdouble: NumPy reference path
        from csoftmax import _reference
        fn = (_reference.softmax, _reference.log_softmax, _reference.logsumexp)[op]
        xl = xa.astype(dt, copy=False)
        res = fn(xl, axis, keepdims=keepdims) if op == OP_LOGSUMEXP else fn(xl, axis)
        return _finish(res, out)
    if dt.itemsize == 2:                # float16: computed in float32
        x32 = xa.astype(_f32)
        res = _run(op, x32, axis, None, keepdims, None if nt == 0 else nt)
        with np.errstate(over="ignore"):   # beyond float16's range: +-inf, silently
            res = np.asarray(res).astype(dt)
        return _finish(res, out)
    work = xa
    if not (work.dtype is dt or work.dtype == dt) or not work.flags.aligned \
            or not work.dtype.isnative:
        work = np.array(work, dtype=dt, copy=True)
    # ---- output
    if out is None:
        y = _alloc_lse(work, red, dt) if op == OP_LOGSUMEXP else np.empty_like(work)
    else:
        # logsumexp with keepdims: write through a view without the 1-axes
        target = out.squeeze(axis=tuple(red)) if op == OP_LOGSUMEXP and keepdims else out
        y = target
        if not target.flags.aligned:
            y = None
        elif np.may_share_memory(work, target):
            if op == OP_LOGSUMEXP:
                y = None                 # compute aside, then copy the small result
            elif not (cnp.PyArray_DATA(work) == cnp.PyArray_DATA(target)
                      and work.strides == target.strides):
                work = work.copy()       # partial overlap: as if x were copied first
        if y is None:
            y = _alloc_lse(work, red, dt) if op == OP_LOGSUMEXP else np.empty_like(work)
    # ---- compute
    if work.size == 0:
        if op == OP_LOGSUMEXP:
            y.fill(-np.inf)
    else:
        _compute_native(op, work, red, y, name, nt)
    if out is None:
        if op == OP_LOGSUMEXP and keepdims:
            y = y.reshape(rshape)
        return y[()] if y.ndim == 0 else y
    if y is not target:
        target[...] = y
    return out


cdef object _finish(object res, object out):
    """A result computed aside (longdouble, float16): returned, or copied into out."""
    if out is None:
        res = np.asarray(res)
        return res[()] if res.ndim == 0 else res
    out[...] = res
    return out


# ---------------------------------------------------------------- public

def softmax(x, axis=-1, *, out=None, num_threads=None):
    """Softmax along `axis`: exp(x - max) / sum(exp(x - max)).

    Parameters
    ----------
    x : array_like
        Input. Any shape (0-d included) and memory layout (C, Fortran,
        sliced, negative or zero strides, unaligned).
    axis : int, tuple of ints or None, default -1
        Axis or axes of each slice that sums to 1 (a tuple reduces over the
        axes jointly; None: over all elements). Negative values count from
        the end. For 0-d input only None or () is valid.
    out : ndarray, optional
        Where to write the result: exactly the result's shape and dtype,
        writeable. ``out`` may be ``x`` itself (computed in place, with no
        allocation); any other overlap with ``x`` gives the same result as if
        ``x`` had been copied first. On error, ``out`` is left unchanged.
    num_threads : int or None, default None
        The most threads this call may use (None: `get_num_threads`). Calls
        smaller than about 32768 elements per thread use fewer; the result is
        bitwise the same for every thread count.

    Returns
    -------
    ndarray
        ``out`` if given. A 0-d result is returned as a NumPy scalar.

    Notes
    -----
    dtype rules: float32 and float64 are computed natively (in double
    arithmetic) and returned in the input dtype; float16 is computed in
    float32 and returned as float16; integer and bool input is computed and
    returned as float64; longdouble is computed by a slower NumPy path in
    longdouble. Other dtypes (complex, object, str, datetime) raise
    TypeError. Non-native byte order is accepted (the result is native).

    Special values, per slice: a NaN makes the whole slice NaN; -inf entries
    give 0 (all -inf: NaN); a single +inf gives a one-hot vector, several
    +inf give NaN at the +inf entries and 0 elsewhere; a slice of length 1
    gives 1 unless it is NaN. No warning is ever emitted.

    Accuracy: within 4 ULP of the exact result (measured: see README).

    Examples
    --------
    >>> import numpy as np, csoftmax
    >>> csoftmax.softmax([13.0, 31.0, 5.0])
    array([1.52299795e-08, 9.99999985e-01, 5.10908895e-12])
    >>> x = np.array([[1.0, 1.0], [0.0, np.inf]])
    >>> csoftmax.softmax(x, out=x)      # in place
    array([[0.5, 0.5],
           [0. , 1. ]])
    >>> float(csoftmax.softmax([[1.0, 2.0], [3.0, 4.0]], axis=None).sum())
    1.0
    """
    return _run(OP_SOFTMAX, x, axis, out, False, num_threads)


def log_softmax(x, axis=-1, *, out=None, num_threads=None):
    """Log of the softmax along `axis`: x - logsumexp(x, axis, keepdims=True).

    Parameters
    ----------
    x : array_like
        Input, any shape and memory layout (see `softmax`).
    axis : int, tuple of ints or None, default -1
        Axis or axes of each slice (see `softmax`).
    out : ndarray, optional
        Exactly the result's shape and dtype, writeable; may be ``x``
        itself (in place). Unchanged on error.
    num_threads : int or None, default None
        The most threads this call may use (see `softmax`).

    Returns
    -------
    ndarray
        ``out`` if given. A 0-d result is returned as a NumPy scalar.

    Notes
    -----
    dtype rules as in `softmax`. The entries near 0 (at the slice maximum)
    are computed as -log1p(sum of the other terms), so they keep full
    relative accuracy where ``x - logsumexp`` cancels to 0 in other
    libraries. Special values, per slice: NaN -> all NaN; -inf entries give
    -inf (all -inf: NaN); a single +inf gives 0 there and -inf elsewhere;
    several +inf give NaN there and -inf elsewhere; length 1 gives 0.

    Accuracy: within 4 ULP of the exact result (measured: see README).

    Examples
    --------
    >>> import csoftmax
    >>> csoftmax.log_softmax([0.0, -40.0])
    array([-4.24835426e-18, -4.00000000e+01])
    """
    return _run(OP_LOG_SOFTMAX, x, axis, out, False, num_threads)


def logsumexp(x, axis=-1, *, keepdims=False, out=None, num_threads=None, b=None,
              return_sign=False):
    """log(sum(exp(x))) along `axis`, without overflow.

    Parameters
    ----------
    x : array_like
        Input, any shape and memory layout (see `softmax`).
    axis : int, tuple of ints or None, default -1
        Axis or axes to reduce (a tuple reduces jointly; None: all).
        Note: scipy.special.logsumexp defaults to axis=None.
    keepdims : bool, default False
        Keep the reduced axes as axes of length 1.
    out : ndarray, optional
        Exactly the result's shape and dtype, writeable; may overlap ``x``.
        Unchanged on error.
    num_threads : int or None, default None
        The most threads this call may use (see `softmax`).
    b : array_like, optional
        Weights, broadcastable to ``x``'s shape (scipy.special.logsumexp's
        ``b``): the result is log(|sum(b * exp(x))|). Negative weights are
        allowed; entries with ``b == 0`` are absent whatever ``x`` holds
        there. The result dtype is ``np.result_type(x, b)`` (integers:
        float64).
    return_sign : bool, default False
        Also return the sign of the sum (1, -1, 0 for a sum that is exactly
        0 or empty, NaN with a NaN result). Without it, a negative sum gives
        NaN (as scipy). With it, ``out`` is None or a pair of arrays
        (value, sign).

    Returns
    -------
    ndarray or scalar, or (value, sign)
        ``out`` if given; a NumPy scalar for a 0-d result.

    Notes
    -----
    Complex input (or complex ``b``) is computed by a NumPy path as scipy
    does (m + log(sum(b exp(x - m))), m the largest real part; with
    ``return_sign`` the value is real and the sign a complex number of
    modulus 1). The weighted and complex paths are described in the README
    ("logsumexp: weights, signs, complex, streaming").

    dtype rules as in `softmax`. Special values, per slice: NaN -> NaN;
    any +inf -> +inf; -inf entries are ignored (all -inf -> -inf); an empty
    slice gives -inf. Computed as max + log1p(sum of the other terms), and in
    double-double arithmetic where that sum cancels, so results near 0 keep
    full relative accuracy.

    Accuracy: within 2 ULP of the exact result (measured: see README).

    Examples
    --------
    >>> import csoftmax
    >>> float(csoftmax.logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    >>> csoftmax.logsumexp([[1.0, 2.0], [3.0, 4.0]], axis=0)
    array([3.12692801, 4.12692801])
    >>> val, sgn = csoftmax.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> float(val), float(sgn)
    (1.5413248546129181, -1.0)
    """
    if b is None and not return_sign:
        if type(x) is not _ndarray:
            x = _as_array(x, "logsumexp")
        if x.dtype.kind != "c":
            return _run(OP_LOGSUMEXP, x, axis, out, keepdims, num_threads)
    return _lse_ext(x, axis, keepdims, out, num_threads, b, return_sign)


# ---- C-API capsule (issue 6) ----
# The csm_api function table of csoftmax.h, for other C and Cython extensions:
# csm_import() (csoftmax_capi.h) and csoftmax.import_csoftmax() (__init__.pxd)
# fetch it with PyCapsule_Import. Its members are the public entry points
# csm_softmax_f32 ... csm_logsumexp_f64, which dispatch to the instruction
# set chosen by csm_init() above: the same kernels as the functions above.
from cpython.pycapsule cimport PyCapsule_New

cdef extern from "csoftmax/csoftmax_capi.h":
    const char *CSM_CAPSULE_NAME        # "csoftmax._core._C_API"
    ctypedef struct csm_api:
        pass
    const csm_api *csm_get_api() nogil

_C_API = PyCapsule_New(<void *>csm_get_api(), CSM_CAPSULE_NAME, NULL)
# ---- end of the C-API capsule ----


# ---- logsumexp: weights, signs, complex (issue 8, part 5); streaming (part 6) ----

cdef extern from "csoftmax/csoftmax.h" nogil:
    ctypedef struct csm_operand:
        const void *p
        Py_ssize_t outer, n, inner
    int csm_logsumexp_weighted_f32_mt(const float *x, const csm_operand *b, float *y,
                                      float *sign, const csm_layout *L, int threads)
    int csm_logsumexp_weighted_f64_mt(const double *x, const csm_operand *b, double *y,
                                      double *sign, const csm_layout *L, int threads)
    int csm_logsumexp_state_f32_mt(const float *x, double *m, double *hi, double *lo,
                                   const csm_layout *L, int threads)
    int csm_logsumexp_state_f64_mt(const double *x, double *m, double *hi, double *lo,
                                   const csm_layout *L, int threads)
    void csm_lse_state_merge(double *m, double *hi, double *lo, const double *m2,
                             const double *hi2, const double *lo2, size_t count)
    void csm_lse_state_finish(const double *m, const double *hi, const double *lo, double *y,
                              size_t count)


cdef struct _WCtx:
    bint f32
    bint want_sign


cdef int _call_weighted(void *ctx, char **ptrs, const Plan *P, int nt) noexcept nogil:
    """operands: 0 x, 1 y, 2 b, 3 sign (y's layout)"""
    cdef _WCtx *c = <_WCtx *>ctx
    cdef csm_operand bop
    bop.p = ptrs[2]
    bop.outer = P.so[2]
    bop.n = P.sn[2]
    bop.inner = P.si[2]
    if c.f32:
        return csm_logsumexp_weighted_f32_mt(<const float *>ptrs[0], &bop, <float *>ptrs[1],
                                             <float *>ptrs[3] if c.want_sign else NULL,
                                             &P.L, nt)
    return csm_logsumexp_weighted_f64_mt(<const double *>ptrs[0], &bop, <double *>ptrs[1],
                                         <double *>ptrs[3] if c.want_sign else NULL, &P.L, nt)


cdef _weighted_native(object xa, object ba, list red, object y, object sg, int nt):
    """xa, ba (ba broadcast to xa's shape): aligned native float32/float64 of
    one dtype, non-empty; y, sg: outputs of the kept axes with one layout
    (sg None: no sign). Writes y (and sg)."""
    cdef Plan P
    cdef int rc
    ys = _out_strides(y, red, True)
    if not _plan_ops(&P, xa.shape, [xa.strides, ys, ba.strides, ys],
                     [xa.itemsize] * 4, red):
        keep = [i for i in range(xa.ndim) if i not in red]
        perm = keep + red
        xc = np.ascontiguousarray(xa.transpose(perm))
        bc = np.ascontiguousarray(ba.transpose(perm))
        yc = np.empty(xc.shape[:len(keep)], xa.dtype)
        sc = None if sg is None else np.empty_like(yc)
        _weighted_native(xc, bc, list(range(len(keep), xa.ndim)), yc, sc, nt)
        y[...] = yc
        if sg is not None:
            sg[...] = sc
        return
    cdef char *ptrs[4]
    ptrs[0] = <char *>cnp.PyArray_DATA(xa)
    ptrs[1] = <char *>cnp.PyArray_DATA(y)
    ptrs[2] = <char *>cnp.PyArray_DATA(ba)
    ptrs[3] = <char *>cnp.PyArray_DATA(y if sg is None else sg)
    cdef _WCtx ctx
    ctx.f32 = xa.dtype.itemsize == 4
    ctx.want_sign = sg is not None
    with nogil:
        rc = _execute_ops(_call_weighted, &ctx, ptrs, &P, nt)
    if rc != CSM_OK:
        raise RuntimeError(f"logsumexp: internal error {rc} from the C kernel")


cdef object _check_out(object out, object dt, tuple rshape, str what):
    if not isinstance(out, _ndarray):
        raise TypeError(f"logsumexp: {what} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dt:
        raise TypeError(f"logsumexp: {what} has dtype {out.dtype}, expected {dt}")
    if out.shape != rshape:
        raise ValueError(f"logsumexp: {what} has shape {out.shape}, expected {rshape}")
    if not out.flags.writeable:
        raise ValueError(f"logsumexp: {what} is read-only")
    if _self_overlapping(out):
        raise ValueError(f"logsumexp: {what} has overlapping elements (a broadcast view), or "
                         "strides that interleave its elements; pass a plain array")
    return out


cdef object _lse_complex(object xa, object ba, list red, bint keepdims, bint return_sign):
    """scipy's formula in NumPy for complex x or b: m + log(sum(b exp(x - m))),
    m the largest finite real part of the kept entries (b != 0)."""
    ct = np.result_type(xa.dtype, ba.dtype, np.complex64)
    if ct.itemsize > 16:
        raise TypeError(f"logsumexp: unsupported dtype {ct} (complex: complex64 and "
                        "complex128)")
    w = np.broadcast_to(ba, xa.shape).astype(np.complex128)
    z = xa.astype(np.complex128)
    ax = tuple(red)
    with np.errstate(all="ignore"):
        kept = w != 0
        re = np.where(kept, z.real, -np.inf)
        m = np.max(re, axis=ax, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m), m, 0.0)
        t = np.where(kept, w * np.exp(z - m), 0.0)
        s = np.sum(t, axis=ax, keepdims=True)
        if return_sign:
            a = np.abs(s)
            val = np.log(a) + m
            sgn = np.where(a == 0, 0.0, s / np.where(a == 0, 1.0, a))
        else:
            val = np.log(s) + m
    rdt = ct
    if return_sign:
        val = val.real.astype(np.finfo(rdt).dtype)
        sgn = sgn.astype(rdt)
    else:
        val = val.astype(rdt)
    if not keepdims:
        val = val.reshape([n for i, n in enumerate(val.shape) if i not in red])
        if return_sign:
            sgn = sgn.reshape(val.shape)
    if return_sign:
        return val, sgn
    return val


cdef object _lse_ext(object x, object axis, bint keepdims, object out, object num_threads,
                     object b, bint return_sign):
    """logsumexp with b= or return_sign= (or complex x): see logsumexp."""
    cdef int nt = 0 if num_threads is None else _check_threads(num_threads, "logsumexp")
    cdef fenv_t fpenv
    fegetenv(&fpenv)
    fesetround(FE_TONEAREST)
    csm_fp_enter()
    try:
        return _lse_ext_general(x, axis, keepdims, out, nt, b, return_sign)
    finally:
        fesetenv(&fpenv)


cdef object _lse_ext_general(object x, object axis, bint keepdims, object out, int nt,
                             object b, bint return_sign):
    cdef str name = "logsumexp"
    xa = _as_array(x, name)
    if b is None:
        ba = np.ones((), dtype=np.int8)
        bw = None
    else:
        if isinstance(b, _masked):
            raise TypeError("logsumexp: b must not be a masked array")
        try:
            ba = np.asarray(b)
        except (TypeError, ValueError) as e:
            raise TypeError(f"logsumexp: b cannot be converted to an array: {e}") from e
        if ba.dtype.kind not in "fiubc":
            raise TypeError(f"logsumexp: b has unsupported dtype {ba.dtype} (expected a real "
                            "or complex floating, integer or bool dtype)")
        # a Python scalar b takes x's dtype (NumPy's weak promotion, as scipy)
        bw = b if isinstance(b, (bool, int, float, complex)) else ba.dtype
    if xa.dtype.kind not in "fiubc":
        _result_dtype(xa.dtype, name)   # raises the usual TypeError
    cdef int nd = xa.ndim
    cdef list red = _normalize_axis(axis, nd, name)
    try:
        bshape = np.broadcast_shapes(ba.shape, xa.shape)
    except ValueError:
        bshape = None
    if bshape != xa.shape:
        raise ValueError(f"logsumexp: b has shape {ba.shape}, which does not broadcast to "
                         f"x's shape {xa.shape}")
    rshape = tuple(1 if i in red else xa.shape[i] for i in range(nd) if keepdims or i not in red)
    cplx = xa.dtype.kind == "c" or ba.dtype.kind == "c"
    if cplx:
        ct = np.result_type(xa.dtype, ba.dtype, np.complex64)
        if ct.itemsize > 16:
            raise TypeError(f"logsumexp: unsupported dtype {ct} (complex: complex64 and "
                            "complex128)")
        if out is not None:
            raise TypeError("logsumexp: out= is not supported for complex input")
        res = _lse_complex(xa, ba, red, keepdims, return_sign)
        if return_sign:
            v, s = res
            return (v[()] if v.ndim == 0 else v), (s[()] if s.ndim == 0 else s)
        return res[()] if res.ndim == 0 else res
    xdt = _result_dtype(xa.dtype, name)
    dt = xdt if bw is None else np.result_type(xdt, bw)
    dt = _result_dtype(np.dtype(dt), name)
    if dt.itemsize > 8:
        raise TypeError(f"logsumexp: b= and return_sign= support float16, float32, float64 "
                        f"and integer input, not {dt} (use the plain call, or float64)")
    # ---- out: every check before anything is computed or written
    out_v = out_s = None
    if out is not None:
        if return_sign:
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError("logsumexp: with return_sign=True, out must be a tuple "
                                "(value, sign) of arrays")
            out_v = _check_out(out[0], dt, rshape, "out[0]")
            out_s = _check_out(out[1], dt, rshape, "out[1]")
            if np.may_share_memory(out_v, out_s):
                raise ValueError("logsumexp: out[0] and out[1] overlap")
        else:
            out_v = _check_out(out, dt, rshape, "out")
    if dt.itemsize == 2:                # float16: computed in float32
        wdt = _f32
    else:
        wdt = dt
    work = xa
    if not (work.dtype == wdt) or not work.flags.aligned or not work.dtype.isnative:
        work = np.array(work, dtype=wdt, copy=True)
    bwk = np.broadcast_to(np.asarray(ba, dtype=wdt), xa.shape)
    if not bwk.flags.aligned:
        bwk = np.broadcast_to(np.array(ba, dtype=wdt, copy=True), xa.shape)
    y = _alloc_lse(work, red, wdt)
    sg = _alloc_lse(work, red, wdt) if return_sign else None
    if work.size == 0:
        y.fill(-np.inf)
        if sg is not None:
            sg.fill(0.0)
    else:
        _weighted_native(work, bwk, red, y, sg, nt)
    if wdt is not dt:
        with np.errstate(over="ignore"):
            y = y.astype(dt)
            if sg is not None:
                sg = sg.astype(dt)
    if keepdims:
        y = y.reshape(rshape)
        if sg is not None:
            sg = sg.reshape(rshape)
    if out is not None:
        out_v[...] = y
        if return_sign:
            out_s[...] = sg
        return out
    y = y[()] if y.ndim == 0 else y
    if return_sign:
        return y, (sg[()] if sg.ndim == 0 else sg)
    return y


cdef object _state_of(object xa, bint f32, int nt):
    """(m, hi, lo) float64 arrays of xa's rows: xa a C-contiguous (rows, n)
    float32/float64 array."""
    cdef Py_ssize_t rows = xa.shape[0], n = xa.shape[1]
    m = np.empty(rows, np.float64)
    hi = np.empty(rows, np.float64)
    lo = np.empty(rows, np.float64)
    cdef csm_layout L
    L.outer = <size_t>rows
    L.n = <size_t>n
    L.inner = 1
    L.x_outer = n
    L.x_n = 1
    L.x_inner = 1
    L.y_outer = 1
    L.y_n = 0
    L.y_inner = 1
    cdef const char *xp = <const char *>cnp.PyArray_DATA(xa)
    cdef double *mp = <double *>cnp.PyArray_DATA(m)
    cdef double *hp = <double *>cnp.PyArray_DATA(hi)
    cdef double *lp = <double *>cnp.PyArray_DATA(lo)
    cdef int rc
    if rows == 0:
        return m, hi, lo
    with nogil:
        if f32:
            rc = csm_logsumexp_state_f32_mt(<const float *>xp, mp, hp, lp, &L, nt)
        else:
            rc = csm_logsumexp_state_f64_mt(<const double *>xp, mp, hp, lp, &L, nt)
    if rc != CSM_OK:
        raise RuntimeError(f"LogSumExp.update: internal error {rc} from the C kernel")
    return m, hi, lo


cdef void _merge_into(object a, object b) noexcept:
    """state a <- a merged with b: tuples (m, hi, lo) of contiguous float64
    arrays of one size"""
    cdef double *m = <double *>cnp.PyArray_DATA(a[0])
    cdef double *hi = <double *>cnp.PyArray_DATA(a[1])
    cdef double *lo = <double *>cnp.PyArray_DATA(a[2])
    cdef const double *m2 = <const double *>cnp.PyArray_DATA(b[0])
    cdef const double *hi2 = <const double *>cnp.PyArray_DATA(b[1])
    cdef const double *lo2 = <const double *>cnp.PyArray_DATA(b[2])
    cdef size_t count = <size_t>a[0].size
    with nogil:
        csm_lse_state_merge(m, hi, lo, m2, hi2, lo2, count)


class LogSumExp:
    """Streaming logsumexp: the logsumexp of the concatenation of chunks
    along `axis`, fed one chunk at a time.

    Parameters
    ----------
    axis : int, tuple of ints or None, default -1
        The axis (axes) that the chunks are concatenated along and reduced
        over, as in `logsumexp` (None: all axes). The other axes must have
        the same length in every chunk.
    num_threads : int or None, default None
        The most threads one `update` may use (see `softmax`).

    Attributes
    ----------
    value : ndarray or scalar
        logsumexp over every chunk seen so far, in the chunks' dtype (the
        kept axes' shape; a NumPy scalar when that is 0-d).
    dtype : numpy.dtype or None
        The result dtype (None before the first chunk).

    Notes
    -----
    The state per output element is the maximum m so far and the sum S of
    exp(x - m) in double-double: `update` adds a chunk's (m, S) (computed in
    C, one pass, as `logsumexp` does), `merge` adds another stream's (the
    exponential rescaling in double-double), and `value` rounds m + log(S)
    once. So the result is as accurate as one `logsumexp` call over the
    concatenated chunks (2 ULP), for any chunking and merge order, up to
    about 2^-100 relative, and bitwise independent of the thread count.
    Special values as in `logsumexp`: a NaN anywhere gives NaN, a +inf
    +inf, only -inf entries (or only empty chunks) -inf. dtypes: float32
    and float64 natively, float16 computed in float32, integers and bool as
    float64; every chunk must give the same result dtype.

    Examples
    --------
    >>> import numpy as np, csoftmax
    >>> s = csoftmax.LogSumExp()
    >>> _ = s.update(np.array([[0.0, 1.0], [2.0, 3.0]])).update(np.array([[2.0], [-1.0]]))
    >>> s.value
    array([2.40760596, 3.32656264])
    >>> np.allclose(s.value, csoftmax.logsumexp([[0.0, 1.0, 2.0], [2.0, 3.0, -1.0]]))
    True
    """

    def __init__(self, axis=-1, *, num_threads=None):
        if axis is not None and not isinstance(axis, tuple):
            if isinstance(axis, (bool, np.bool_)):
                raise TypeError(f"LogSumExp: axis must be an integer, a tuple of integers or "
                                f"None, got {axis!r}")
            try:
                operator.index(axis)
            except TypeError:
                raise TypeError(f"LogSumExp: axis must be an integer, a tuple of integers "
                                f"or None, got {type(axis).__name__}") from None
        self._axis = axis
        self._nt = 0 if num_threads is None else _check_threads(num_threads, "LogSumExp")
        self._state = None     # (m, hi, lo): contiguous float64, one entry per output
        self._dtype = None     # result dtype
        self._ndim = None      # ndim of the chunks
        self._kshape = None    # shape of the kept axes

    @property
    def dtype(self):
        return self._dtype

    def _check_like(self, dt, ndim, kshape, str what):
        if self._dtype is None:
            return
        if dt != self._dtype:
            raise TypeError(f"LogSumExp.{what}: result dtype {dt} differs from {self._dtype} "
                            "of the earlier chunks (cast the chunks to one dtype)")
        if ndim != self._ndim or kshape != self._kshape:
            raise ValueError(f"LogSumExp.{what}: the kept axes have shape {kshape} "
                             f"(ndim {ndim}), expected {self._kshape} (ndim {self._ndim})")

    def update(self, chunk):
        """Add a chunk (array_like): its entries join the reduction.

        Returns
        -------
        LogSumExp
            self (calls chain).
        """
        cdef str name = "LogSumExp.update"
        xa = _as_array(chunk, name)
        dt = _result_dtype(xa.dtype, name)
        if dt.itemsize > 8:
            raise TypeError(f"{name}: unsupported dtype {dt} (float16, float32, float64, "
                            "integers, bool)")
        red = _normalize_axis(self._axis, xa.ndim, name)
        keep = [i for i in range(xa.ndim) if i not in red]
        kshape = tuple(xa.shape[i] for i in keep)
        self._check_like(dt, xa.ndim, kshape, "update")
        wdt = _f32 if dt.itemsize == 2 else dt
        cdef fenv_t fpenv
        fegetenv(&fpenv)
        fesetround(FE_TONEAREST)
        csm_fp_enter()
        try:
            rows = 1
            for v in kshape:
                rows *= v
            n = 1
            for i in red:
                n *= xa.shape[i]
            xc = np.ascontiguousarray(xa.transpose(keep + red), dtype=wdt).reshape(rows, n)
            st = _state_of(xc, wdt.itemsize == 4, self._nt)
            if self._state is None:
                self._state = st
                self._dtype, self._ndim, self._kshape = dt, xa.ndim, kshape
            else:
                _merge_into(self._state, st)
        finally:
            fesetenv(&fpenv)
        return self

    def merge(self, other):
        """Add another stream's chunks (a LogSumExp over the same kept axes and
        dtype; other is unchanged). Returns self."""
        if not isinstance(other, LogSumExp):
            raise TypeError(f"LogSumExp.merge: expected a LogSumExp, got "
                            f"{type(other).__name__}")
        if other._state is None:
            return self
        self._check_like(other._dtype, other._ndim, other._kshape, "merge")
        if self._state is None:
            self._state = tuple(a.copy() for a in other._state)
            self._dtype, self._ndim, self._kshape = other._dtype, other._ndim, other._kshape
            return self
        if other is self:
            other_state = tuple(a.copy() for a in other._state)
        else:
            other_state = other._state
        _merge_into(self._state, other_state)
        return self

    @property
    def value(self):
        if self._state is None:
            raise ValueError("LogSumExp.value: no chunk yet (the shape and dtype are "
                             "unknown)")
        m, hi, lo = self._state
        y = np.empty(m.size, np.float64)
        cdef const double *mp = <const double *>cnp.PyArray_DATA(m)
        cdef const double *hp = <const double *>cnp.PyArray_DATA(hi)
        cdef const double *lp = <const double *>cnp.PyArray_DATA(lo)
        cdef double *yp = <double *>cnp.PyArray_DATA(y)
        cdef size_t count = <size_t>m.size
        with nogil:
            csm_lse_state_finish(mp, hp, lp, yp, count)
        with np.errstate(over="ignore"):
            r = y.astype(self._dtype).reshape(self._kshape)
        return r[()] if r.ndim == 0 else r
