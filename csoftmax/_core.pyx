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
    ctypedef struct csm_operand:
        const void *p
        Py_ssize_t outer, n, inner
    ctypedef struct csm_options:
        double temperature
        csm_operand mask
    int csm_softmax_f32_ex(const float *x, float *y, const csm_layout *L,
                           const csm_options *opt, int threads)
    int csm_softmax_f64_ex(const double *x, double *y, const csm_layout *L,
                           const csm_options *opt, int threads)
    int csm_log_softmax_f32_ex(const float *x, float *y, const csm_layout *L,
                               const csm_options *opt, int threads)
    int csm_log_softmax_f64_ex(const double *x, double *y, const csm_layout *L,
                               const csm_options *opt, int threads)
    int csm_logsumexp_f32_ex(const float *x, float *y, const csm_layout *L,
                             const csm_options *opt, int threads)
    int csm_logsumexp_f64_ex(const double *x, double *y, const csm_layout *L,
                             const csm_options *opt, int threads)
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
# as well (feraiseexcept, feclearexcept, long double arithmetic): _run and
# every other general path save and restore the whole environment around it
# (_fp_enter / _fp_leave below, about 0.2 us); the C entry points do so for
# the kernels themselves (fpenv.h)
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


cdef inline void _fp_enter(fenv_t *saved) noexcept nogil:
    """Save the caller's whole FP environment in *saved (x87 and SSE on
    x86-64) and set the default one: round to nearest, and the kernels' IEEE
    defaults (csm_fp_enter: no FTZ/DAZ, exceptions masked). Pair every call
    with _fp_leave(saved) in a `finally:` (error paths included)."""
    fegetenv(saved)
    fesetround(FE_TONEAREST)
    csm_fp_enter()


cdef inline void _fp_leave(const fenv_t *saved) noexcept nogil:
    """Give the caller's environment back, exception flags included."""
    fesetenv(saved)


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
            raise TypeError(f"{name}: masked arrays are not supported (pass "
                            "x.data, where=~np.ma.getmaskarray(x) to drop masked entries)")
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


cdef object _native(object a, object dt):
    """a as an aligned array of dtype dt in native byte order: a itself when
    it is one, else a copy."""
    if (a.dtype is dt or a.dtype == dt) and a.flags.aligned and a.dtype.isnative:
        return a
    return np.array(a, dtype=dt, copy=True)


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


cdef int _kernel_ex(int op, bint f32, const char *x, char *y, const csm_layout *L,
                    const csm_options *opt, int nt) noexcept nogil:
    """One call of the kernels with options (where= mask, temperature)."""
    if f32:
        if op == OP_SOFTMAX:
            return csm_softmax_f32_ex(<const float *>x, <float *>y, L, opt, nt)
        if op == OP_LOG_SOFTMAX:
            return csm_log_softmax_f32_ex(<const float *>x, <float *>y, L, opt, nt)
        return csm_logsumexp_f32_ex(<const float *>x, <float *>y, L, opt, nt)
    if op == OP_SOFTMAX:
        return csm_softmax_f64_ex(<const double *>x, <double *>y, L, opt, nt)
    if op == OP_LOG_SOFTMAX:
        return csm_log_softmax_f64_ex(<const double *>x, <double *>y, L, opt, nt)
    return csm_logsumexp_f64_ex(<const double *>x, <double *>y, L, opt, nt)


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
    bint has_opt      # call the _ex kernels with opt
    bint masked       # opt.mask is operand 2 (its pointer advances with the batch)
    csm_options opt


cdef int _call_op(void *ctx, char **ptrs, const Plan *P, int nt) noexcept nogil:
    cdef _OpCtx *c = <_OpCtx *>ctx
    if not c.has_opt:
        return _kernel(c.op, c.f32, ptrs[0], ptrs[1], &P.L, nt)
    if c.masked:
        c.opt.mask.p = ptrs[2]
    return _kernel_ex(c.op, c.f32, ptrs[0], ptrs[1], &P.L, &c.opt, nt)


cdef object _compute_native(int op, object xa, list red, object y, str name, int nt,
                            object mask=None, double T=1.0):
    """xa: aligned native float32/float64 array, non-empty; y: the output
    array for it (logsumexp: the kept axes only), not overlapping xa unless
    identical to it. mask: None, or a bool array of xa's shape (any strides,
    broadcast views too) that shares no memory with y. T: the temperature.
    Writes y."""
    cdef Plan P
    cdef int rc
    cdef bint f32 = xa.dtype.itemsize == 4
    cdef bint planned
    if mask is None:
        planned = _plan(&P, xa, y, red, op)
    else:
        planned = _plan_ops(&P, xa.shape,
                            [xa.strides, _out_strides(y, red, op == OP_LOGSUMEXP), mask.strides],
                            [xa.itemsize, y.itemsize, 1], red)
    if not planned:
        # reduced axes that do not collapse (or odd strides): one copy with
        # the reduced axes last and contiguous, computed into a scratch output
        keep = [i for i in range(xa.ndim) if i not in red]
        perm = keep + red
        xc = np.ascontiguousarray(xa.transpose(perm))
        mc = None if mask is None else np.ascontiguousarray(mask.transpose(perm))
        rc_axes = list(range(len(keep), xa.ndim))
        if op == OP_LOGSUMEXP:
            yc = np.empty(xc.shape[:len(keep)], xa.dtype)
            _compute_native(op, xc, rc_axes, yc, name, nt, mc, T)
            y[...] = yc
        else:
            yc = np.empty_like(xc)
            _compute_native(op, xc, rc_axes, yc, name, nt, mc, T)
            y[...] = yc.transpose(np.argsort(perm))
        return y
    cdef char *ptrs[3]
    ptrs[0] = <char *>cnp.PyArray_DATA(xa)
    ptrs[1] = <char *>cnp.PyArray_DATA(y)
    cdef _OpCtx ctx
    ctx.op = op
    ctx.f32 = f32
    ctx.has_opt = mask is not None or T != 1.0
    ctx.masked = mask is not None
    ctx.opt.temperature = T
    ctx.opt.mask.p = NULL
    ctx.opt.mask.outer = ctx.opt.mask.n = ctx.opt.mask.inner = 0
    if ctx.masked:
        ptrs[2] = <char *>cnp.PyArray_DATA(mask)
        ctx.opt.mask.outer, ctx.opt.mask.n, ctx.opt.mask.inner = P.so[2], P.sn[2], P.si[2]
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
    _fp_enter(&fpenv)
    try:
        return _run_general(op, x, axis, out, keepdims, nt)
    finally:
        _fp_leave(&fpenv)


cdef object _run_opt(int op, object x, object axis, object out, bint keepdims,
                     object num_threads, object where, object causal, object temperature):
    """A call with options (where=, causal=, temperature=): the general
    path, with the kernels that take a mask and a temperature."""
    cdef str name = _NAMES[op]
    cdef int nt = 0 if num_threads is None else _check_threads(num_threads, name)
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"{name}: causal must be True or False, got {causal!r}")
    cdef double T = _check_temperature(temperature, name)
    cdef fenv_t fpenv
    _fp_enter(&fpenv)
    try:
        return _run_general(op, x, axis, out, keepdims, nt, where, bool(causal), T)
    finally:
        _fp_leave(&fpenv)


cdef double _check_temperature(object t, str name) except -1.0:
    """The temperature as a double (None: 1)."""
    if t is None:
        return 1.0
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, float, np.integer,
                                                              np.floating)):
        raise TypeError(f"{name}: temperature must be a real number, got {type(t).__name__}")
    cdef double v
    try:
        v = float(t)
    except OverflowError:
        v = float("inf")
    if not (v >= 2.0 ** -1000 and v <= 2.0 ** 1000):
        raise ValueError(f"{name}: temperature must be a positive number in "
                         f"[2**-1000, 2**1000], got {t!r}")
    return v


cdef object _causal_mask(Py_ssize_t nq, Py_ssize_t nk):
    """The (nq, nk) lower-triangular mask (query i sees keys j <= i, as
    torch's is_causal) as a read-only view of nq + nk - 1 bytes: entry
    (i, j) is byte nq - 1 - i + j, and the first nq bytes are True."""
    if nq == 0 or nk == 0:
        return np.ones((nq, nk), np.bool_)
    buf = np.zeros(nq + nk - 1, np.bool_)
    buf[:nq] = True
    return np.lib.stride_tricks.as_strided(buf[nq - 1:], shape=(nq, nk), strides=(-1, 1),
                                           writeable=False)


cdef object _build_mask(object where, bint causal, object xa, list red, str name):
    """where= and causal= as one bool array of x's shape (a broadcast view:
    no copy unless both are given), or None."""
    mask = None
    shape = xa.shape
    if where is not None:
        w = np.asarray(where)
        if w.dtype != np.bool_:
            raise TypeError(f"{name}: where must be a boolean array, got dtype {w.dtype}")
        try:
            mask = np.broadcast_to(w, shape)
        except ValueError:
            raise ValueError(f"{name}: where has shape {w.shape}, which does not broadcast "
                             f"to x's shape {shape}") from None
    if causal:
        nd = xa.ndim
        if nd < 2:
            raise ValueError(f"{name}: causal=True needs x of at least 2 dimensions "
                             f"(..., queries, keys), got {nd}")
        if red != [nd - 1]:
            raise ValueError(f"{name}: causal=True reduces over the keys, the last axis "
                             "(axis=-1) only")
        c = _causal_mask(shape[nd - 2], shape[nd - 1])
        mask = np.broadcast_to(c, shape) if mask is None else np.logical_and(mask, c)
    return mask


cdef object _run_general(int op, object x, object axis, object out, bint keepdims, int nt,
                         object where=None, bint causal=False, double T=1.0):
    cdef str name = _NAMES[op]
    xa = _as_array(x, name)
    dt = _result_dtype(xa.dtype, name)
    cdef int nd = xa.ndim
    cdef list red = _normalize_axis(axis, nd, name)
    mask = _build_mask(where, causal, xa, red, name) if where is not None or causal else None
    cdef bint opts = mask is not None or T != 1.0
    if op == OP_LOGSUMEXP:
        rshape = tuple(1 if i in red else xa.shape[i] for i in range(nd) if keepdims or i not in red)
    else:
        rshape = xa.shape
    # ---- out: every check before anything is computed or written
    if out is not None:
        _check_out(out, dt, rshape, name, "out", xa.dtype)
    # ---- dtype policy
    if dt.itemsize > 8:                 # longdouble: NumPy reference path
        from csoftmax import _reference
        fn = (_reference.softmax, _reference.log_softmax, _reference.logsumexp)[op]
        xl = xa.astype(dt, copy=False)
        kw = {"where": mask, "temperature": T} if opts else {}
        res = fn(xl, axis, keepdims=keepdims, **kw) if op == OP_LOGSUMEXP else fn(xl, axis, **kw)
        return _finish(res, out)
    if dt.itemsize == 2:                # float16: computed in float32
        x32 = xa.astype(_f32)
        if opts:
            res = _run_general(op, x32, axis, None, keepdims, nt, mask, False, T)
        else:
            res = _run(op, x32, axis, None, keepdims, None if nt == 0 else nt)
        with np.errstate(over="ignore"):   # beyond float16's range: +-inf, silently
            res = np.asarray(res).astype(dt)
        return _finish(res, out)
    work = _native(xa, dt)
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
        if mask is not None and np.may_share_memory(mask, target):
            mask = mask.copy()           # the kernels read the mask while writing y
    # ---- compute
    if work.size == 0:
        if op == OP_LOGSUMEXP:
            y.fill(-np.inf)
    else:
        _compute_native(op, work, red, y, name, nt, mask, T)
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

def softmax(x, axis=-1, *, out=None, num_threads=None, where=None, causal=False,
            temperature=None):
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
    where : array_like of bool, optional
        Entries to include, broadcast to the shape of ``x``. A False entry
        is left out as if absent: its output is 0, whatever the
        slice holds, and the special-value rules below apply to the
        included entries alone (k included entries form a slice of length
        k). A slice with no included entry is an empty slice: all 0.
    causal : bool, default False
        The causal mask of attention, without building it: for ``x`` of
        shape (..., queries, keys) reduced over the last axis only, query
        ``i`` includes keys ``j <= i`` (top-left aligned, as torch's
        ``is_causal=True``). With ``where``, both must include an entry.
    temperature : float, optional
        Compute the softmax of ``x / temperature``, the division fused into the
        kernel (no temporary array) and carried out to about 2**-100
        relative, so the accuracy bound below holds for ``x / temperature``.
        Must lie in [2**-1000, 2**1000].

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
    >>> csoftmax.softmax([1.0, 2.0, np.nan], where=[True, True, False])
    array([0.26894142, 0.73105858, 0.        ])
    >>> csoftmax.softmax(np.zeros((3, 3)), causal=True)
    array([[1.        , 0.        , 0.        ],
           [0.5       , 0.5       , 0.        ],
           [0.33333333, 0.33333333, 0.33333333]])
    >>> csoftmax.softmax([1.0, 2.0], temperature=0.5)     # softmax([2.0, 4.0])
    array([0.11920292, 0.88079708])
    """
    if where is None and causal is False and temperature is None:
        return _run(OP_SOFTMAX, x, axis, out, False, num_threads)
    return _run_opt(OP_SOFTMAX, x, axis, out, False, num_threads, where, causal, temperature)


def log_softmax(x, axis=-1, *, out=None, num_threads=None, where=None, causal=False,
                temperature=None):
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
    where : array_like of bool, optional
        Entries to include, broadcast to the shape of ``x``. A False entry
        is left out as if absent: its output is -inf, whatever the
        slice holds, and the special-value rules below apply to the
        included entries alone (k included entries form a slice of length
        k). A slice with no included entry is an empty slice: all -inf.
    causal : bool, default False
        The causal mask of attention, without building it: for ``x`` of
        shape (..., queries, keys) reduced over the last axis only, query
        ``i`` includes keys ``j <= i`` (top-left aligned, as torch's
        ``is_causal=True``). With ``where``, both must include an entry.
    temperature : float, optional
        Compute the log_softmax of ``x / temperature``, the division fused into the
        kernel (no temporary array) and carried out to about 2**-100
        relative, so the accuracy bound below holds for ``x / temperature``.
        Must lie in [2**-1000, 2**1000].

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
    >>> csoftmax.log_softmax([0.0, -40.0, 50.0], where=[True, True, False])
    array([-4.24835426e-18, -4.00000000e+01,            -inf])
    """
    if where is None and causal is False and temperature is None:
        return _run(OP_LOG_SOFTMAX, x, axis, out, False, num_threads)
    return _run_opt(OP_LOG_SOFTMAX, x, axis, out, False, num_threads, where, causal,
                    temperature)


def logsumexp(x, axis=-1, *, keepdims=False, out=None, num_threads=None, b=None,
              return_sign=False, where=None, causal=False, temperature=None):
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
    where : array_like of bool, optional
        Entries to include, broadcast to the shape of ``x``. A False entry
        is left out of the sum as if absent, whatever it holds, and the special-value rules below apply to the
        included entries alone (k included entries form a slice of length
        k). A slice with no included entry is an empty slice: -inf.
    causal : bool, default False
        The causal mask of attention, without building it: for ``x`` of
        shape (..., queries, keys) reduced over the last axis only, query
        ``i`` includes keys ``j <= i`` (top-left aligned, as torch's
        ``is_causal=True``). With ``where``, both must include an entry.
    temperature : float, optional
        Compute the logsumexp of ``x / temperature``, the division fused into the
        kernel (no temporary array) and carried out to about 2**-100
        relative, so the accuracy bound below holds for ``x / temperature``.
        Must lie in [2**-1000, 2**1000].

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
    >>> csoftmax.logsumexp([[1.0, 2.0], [3.0, 4.0]], where=[[True, False], [False, False]])
    array([  1., -inf])
    >>> float(csoftmax.logsumexp([1.0, 3.0], temperature=2.0))   # logsumexp([0.5, 1.5])
    1.8132616875182228
    >>> val, sgn = csoftmax.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> float(val), float(sgn)
    (1.5413248546129181, -1.0)
    """
    cdef bint opts = where is not None or causal is not False or temperature is not None
    if b is None and not return_sign:
        if type(x) is not _ndarray:
            x = _as_array(x, "logsumexp")
        if x.dtype.kind != "c":
            if not opts:
                return _run(OP_LOGSUMEXP, x, axis, out, keepdims, num_threads)
            return _run_opt(OP_LOGSUMEXP, x, axis, out, keepdims, num_threads, where, causal,
                            temperature)
    if opts:
        # with weights, signs or complex input: a mask is folded into the
        # weights (b = 0 drops an entry: the same rule); no fused temperature
        if temperature is not None:
            raise ValueError("logsumexp: temperature= does not combine with b=, return_sign= "
                             "or complex input (pass x / temperature)")
        if not isinstance(causal, (bool, np.bool_)):
            raise TypeError(f"logsumexp: causal must be True or False, got {causal!r}")
        xa = _as_array(x, "logsumexp")
        mask = _build_mask(where, bool(causal), xa, _normalize_axis(axis, xa.ndim, "logsumexp"),
                           "logsumexp")
        if mask is not None and b is None:
            b = mask
        elif mask is not None:
            bb = np.asarray(b)
            try:
                b = np.where(mask, bb, bb.dtype.type(0))
            except ValueError:
                raise ValueError(f"logsumexp: b has shape {bb.shape}, which does not "
                                 f"broadcast to x's shape {xa.shape}") from None
        x = xa
    return _lse_ext(x, axis, keepdims, out, num_threads, b, return_sign)


# ---------------------------------------------------------------- training (issue 8)
# Gradients (softmax_backward, log_softmax_backward) and the fused
# cross-entropy: the kernels of csoftmax/_src/train.inc.

cdef extern from "csoftmax/csoftmax.h" nogil:
    int csm_softmax_backward_f32_mt(const float *x, const csm_operand *dy, float *dx,
                                    const csm_layout *L, int threads)
    int csm_softmax_backward_f64_mt(const double *x, const csm_operand *dy, double *dx,
                                    const csm_layout *L, int threads)
    int csm_log_softmax_backward_f32_mt(const float *x, const csm_operand *dy, float *dx,
                                        const csm_layout *L, int threads)
    int csm_log_softmax_backward_f64_mt(const double *x, const csm_operand *dy, double *dx,
                                        const csm_layout *L, int threads)


cdef struct _GradCtx:
    int op
    bint f32


cdef int _call_grad(void *ctx, char **ptrs, const Plan *P, int nt) noexcept nogil:
    """operands: 0 x (y or logp), 1 dx, 2 dy"""
    cdef _GradCtx *c = <_GradCtx *>ctx
    cdef csm_operand d
    d.p = ptrs[2]
    d.outer, d.n, d.inner = P.so[2], P.sn[2], P.si[2]
    if c.f32:
        if c.op == OP_SOFTMAX:
            return csm_softmax_backward_f32_mt(<const float *>ptrs[0], &d, <float *>ptrs[1],
                                               &P.L, nt)
        return csm_log_softmax_backward_f32_mt(<const float *>ptrs[0], &d, <float *>ptrs[1],
                                               &P.L, nt)
    if c.op == OP_SOFTMAX:
        return csm_softmax_backward_f64_mt(<const double *>ptrs[0], &d, <double *>ptrs[1],
                                           &P.L, nt)
    return csm_log_softmax_backward_f64_mt(<const double *>ptrs[0], &d, <double *>ptrs[1],
                                           &P.L, nt)


cdef object _grad_native(int op, object xa, object da, list red, object y, str name, int nt):
    """xa, da: aligned native arrays of y's dtype (float32/float64) and
    shape, non-empty; y: the output, not overlapping xa, overlapping da only
    if identical to it. Writes y."""
    cdef Plan P
    cdef int rc
    if not _plan_ops(&P, xa.shape, [xa.strides, y.strides, da.strides],
                     [xa.itemsize, y.itemsize, da.itemsize], red):
        # reduced axes that do not collapse: the reduced axes last, contiguous
        keep = [i for i in range(xa.ndim) if i not in red]
        perm = keep + red
        xc = np.ascontiguousarray(xa.transpose(perm))
        dc = np.ascontiguousarray(da.transpose(perm))
        yc = np.empty_like(xc)
        _grad_native(op, xc, dc, list(range(len(keep), xa.ndim)), yc, name, nt)
        y[...] = yc.transpose(np.argsort(perm))
        return y
    cdef char *ptrs[3]
    ptrs[0] = <char *>cnp.PyArray_DATA(xa)
    ptrs[1] = <char *>cnp.PyArray_DATA(y)
    ptrs[2] = <char *>cnp.PyArray_DATA(da)
    cdef _GradCtx ctx
    ctx.op = op
    ctx.f32 = xa.dtype.itemsize == 4
    with nogil:
        rc = _execute_ops(_call_grad, &ctx, ptrs, &P, nt)
    if rc != CSM_OK:
        raise RuntimeError(f"{name}: internal error {rc} from the C kernel")
    return y


cdef object _check_out(object out, object dt, tuple shape, str name, str what="out",
                       object src_dtype=None):
    """Every check of a given `out` (named `what` in the messages) of the
    result's dtype and shape. src_dtype: the input's dtype, named in the
    dtype error as the one `dt` is the result dtype of (None: not named)."""
    if not isinstance(out, _ndarray):
        raise TypeError(f"{name}: {what} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dt:
        if src_dtype is not None:
            raise TypeError(f"{name}: {what} has dtype {out.dtype}, expected {dt} "
                            f"(the result dtype for input dtype {src_dtype})")
        raise TypeError(f"{name}: {what} has dtype {out.dtype}, expected {dt}")
    if out.shape != shape:
        raise ValueError(f"{name}: {what} has shape {out.shape}, expected {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name}: {what} is read-only")
    if _self_overlapping(out):
        raise ValueError(f"{name}: {what} has overlapping elements (a broadcast view), or "
                         "strides that interleave its elements; pass a plain array")
    return out


cdef bint _same_view(object a, object b):
    """a and b are the same elements: same data pointer, strides, dtype, shape."""
    return (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b) and a.strides == b.strides
            and a.dtype == b.dtype and a.shape == b.shape)


cdef object _run_grad(int op, object x, object dy, object axis, object out, object num_threads):
    cdef str name = "softmax_backward" if op == OP_SOFTMAX else "log_softmax_backward"
    cdef str xname = "y" if op == OP_SOFTMAX else "logp"
    cdef int nt = 0 if num_threads is None else _check_threads(num_threads, name)
    xa = _as_array(x, f"{name}: {xname}")
    da = _as_array(dy, f"{name}: dy")
    dt = np.result_type(_result_dtype(xa.dtype, f"{name}: {xname}"),
                        _result_dtype(da.dtype, f"{name}: dy"))
    if xa.shape != da.shape:
        raise ValueError(f"{name}: {xname} has shape {xa.shape} and dy {da.shape}; they must "
                         "be equal (no broadcasting)")
    cdef list red = _normalize_axis(axis, xa.ndim, name)
    if out is not None:
        _check_out(out, dt, xa.shape, name)
        if out.size and np.may_share_memory(out, xa):
            raise ValueError(f"{name}: out overlaps {xname} (only out=dy is allowed)")
        if out.size and np.may_share_memory(out, da) and not _same_view(out, da):
            raise ValueError(f"{name}: out overlaps dy without being dy itself")
    cdef fenv_t fpenv
    _fp_enter(&fpenv)
    try:
        if dt.itemsize > 8:                 # longdouble: the NumPy twin
            from csoftmax import _reference
            fn = _reference.softmax_backward if op == OP_SOFTMAX else \
                _reference.log_softmax_backward
            return _finish(fn(xa.astype(dt), da.astype(dt), axis), out)
        if dt.itemsize == 2:                # float16: computed in float32
            res = _run_grad(op, xa.astype(_f32), da.astype(_f32), axis, None,
                            None if nt == 0 else nt)
            with np.errstate(over="ignore"):
                res = res.astype(dt)
            return _finish(res, out)
        work_x, work_d = _native(xa, dt), _native(da, dt)
        y = out
        if y is None or not y.flags.aligned or (y.size and np.may_share_memory(y, work_d)
                                                  and not _same_view(y, work_d)):
            y = np.empty_like(work_x)
        if work_x.size:
            _grad_native(op, work_x, work_d, red, y, name, nt)
        if out is None:
            return y[()] if y.ndim == 0 else y
        if y is not out:
            out[...] = y
        return out
    finally:
        _fp_leave(&fpenv)


def softmax_backward(y, dy, axis=-1, *, out=None, num_threads=None):
    """Gradient of softmax: ``dx = y * (dy - sum(dy * y, axis))``.

    Given ``y = softmax(x, axis)`` and the gradient ``dy`` of a loss with
    respect to ``y``, returns the gradient with respect to ``x``, in one
    fused pass per slice (the sum carried in double-double).

    Parameters
    ----------
    y : array_like
        The softmax output, any shape and memory layout.
    dy : array_like
        The incoming gradient, exactly y's shape (no broadcasting).
    axis : int, tuple of ints or None, default -1
        The axis (axes) softmax was taken along (see `softmax`).
    out : ndarray, optional
        Exactly the result's shape and dtype, writeable. It may be ``dy``
        itself (in place); any other overlap with ``y`` or ``dy`` raises
        ValueError. Unchanged on error.
    num_threads : int or None, default None
        The most threads this call may use; the result does not depend on it.

    Returns
    -------
    ndarray
        dx, of the common float dtype of y and dy (the dtype rules of
        `softmax`: integers -> float64, float16 computed in float32,
        longdouble through NumPy).

    Notes
    -----
    Accuracy: float64 within ``2u|dx| + |y| 2**-100 sum|dy*y|`` of the exact
    result for the given inputs (u = 2**-53; at most 2 ULP); float32 within
    half an ULP. Special values follow the formula in IEEE arithmetic: a NaN
    in a slice of y or dy makes the whole slice NaN; an infinite ``dy*y``
    makes the sum infinite (NaN where inf - inf or 0 * inf occurs).

    Examples
    --------
    >>> import numpy as np, csoftmax
    >>> y = csoftmax.softmax(np.array([1.0, 2.0, 3.0]))
    >>> csoftmax.softmax_backward(y, np.array([0.0, 0.0, 1.0]))
    array([-0.05989202, -0.1628034 ,  0.22269543])
    """
    return _run_grad(OP_SOFTMAX, y, dy, axis, out, num_threads)


def log_softmax_backward(logp, dy, axis=-1, *, out=None, num_threads=None):
    """Gradient of log_softmax: ``dx = dy - exp(logp) * sum(dy, axis)``.

    Given ``logp = log_softmax(x, axis)`` and the gradient ``dy`` of a loss
    with respect to ``logp``, returns the gradient with respect to ``x``.

    Parameters
    ----------
    logp : array_like
        The log_softmax output, any shape and memory layout.
    dy : array_like
        The incoming gradient, exactly logp's shape (no broadcasting).
    axis : int, tuple of ints or None, default -1
        The axis (axes) log_softmax was taken along (see `softmax`).
    out : ndarray, optional
        Exactly the result's shape and dtype, writeable. It may be ``dy``
        itself (in place); any other overlap with ``logp`` or ``dy`` raises
        ValueError. Unchanged on error.
    num_threads : int or None, default None
        The most threads this call may use; the result does not depend on it.

    Returns
    -------
    ndarray
        dx, of the common float dtype of logp and dy (see `softmax_backward`).

    Notes
    -----
    Accuracy: float64 within ``2u|dx| + 2u exp(logp)|sum(dy)|`` of the exact
    result (u = 2**-53); float32 within half an ULP plus
    ``2**-33 exp(logp)|sum(dy)|``. Special values: the formula in IEEE
    arithmetic (a NaN in a slice of dy gives a NaN slice; ``logp = -inf``
    gives ``dx = dy`` there while the sum is finite).

    Examples
    --------
    >>> import numpy as np, csoftmax
    >>> logp = csoftmax.log_softmax(np.array([1.0, 2.0, 3.0]))
    >>> csoftmax.log_softmax_backward(logp, np.array([0.0, 0.0, -1.0]))
    array([ 0.09003057,  0.24472847, -0.33475904])
    """
    return _run_grad(OP_LOG_SOFTMAX, logp, dy, axis, out, num_threads)


cdef extern from "csoftmax/csoftmax.h" nogil:
    int CSM_ERANGE
    int CSM_REDUCE_NONE
    int CSM_REDUCE_MEAN
    int CSM_REDUCE_SUM
    ctypedef struct csm_ce_args:
        csm_operand target
        int probs
        long long ignore_index
        double label_smoothing
        int reduction
        void *grad
        Py_ssize_t grad_outer, grad_n, grad_inner
        const void *weight
        Py_ssize_t weight_n
    int csm_cross_entropy_f32_mt(const float *x, float *loss, const csm_layout *L,
                                 const csm_ce_args *a, double *total, int threads)
    int csm_cross_entropy_f64_mt(const double *x, double *loss, const csm_layout *L,
                                 const csm_ce_args *a, double *total, int threads)


cdef dict _REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


cdef object _ce_native(object xa, object ta, bint probs, int ax, object loss, object grad,
                       int reduction, double eps, long long ignore_index, int nt,
                       object wa=None):
    """One C call. xa: aligned native float32/float64, non-empty rows; ta:
    int64 class targets (x's shape without ax) or probabilities (x's shape,
    x's dtype); loss: x's shape without ax; grad: None or x's shape; wa:
    None or the class weights (1-D, aligned native, x's dtype).
    Returns the C total (sum or mean)."""
    cdef Plan P
    cdef int rc
    cdef list red = [ax]
    nd = xa.ndim
    lst = tuple(0 if i == ax else loss.strides[i - (i > ax)] for i in range(nd))
    tst = ta.strides if probs else tuple(0 if i == ax else ta.strides[i - (i > ax)]
                                          for i in range(nd))
    strides = [xa.strides, lst, tst]
    isz = [xa.itemsize, loss.itemsize, ta.itemsize]
    if grad is not None:
        strides.append(grad.strides)
        isz.append(grad.itemsize)
    if not _plan_ops(&P, xa.shape, strides, isz, red) or P.nbatch > 0:
        # not one [outer][n][inner] call: the class axis last, contiguous
        xc = np.ascontiguousarray(np.moveaxis(xa, ax, -1))
        tc = np.ascontiguousarray(np.moveaxis(ta, ax, -1) if probs else ta)
        lc = np.empty(xc.shape[:nd - 1], xa.dtype)
        gc = None if grad is None else np.empty_like(xc)
        tot = _ce_native(xc, tc, probs, nd - 1, lc, gc, reduction, eps, ignore_index, nt, wa)
        loss[...] = lc
        if grad is not None:
            grad[...] = np.moveaxis(gc, -1, ax)
        return tot
    cdef csm_ce_args A
    A.target.p = <const void *>cnp.PyArray_DATA(ta)
    A.target.outer, A.target.n, A.target.inner = P.so[2], P.sn[2], P.si[2]
    A.probs = probs
    A.ignore_index = ignore_index
    A.label_smoothing = eps
    A.reduction = reduction
    A.grad = NULL
    A.grad_outer = A.grad_n = A.grad_inner = 0
    A.weight = NULL
    A.weight_n = 0
    if wa is not None:
        A.weight = <const void *>cnp.PyArray_DATA(wa)
        A.weight_n = wa.strides[0] // wa.itemsize
    if grad is not None:
        A.grad = <void *>cnp.PyArray_DATA(grad)
        A.grad_outer, A.grad_n, A.grad_inner = P.so[3], P.sn[3], P.si[3]
    cdef char *xp = <char *>cnp.PyArray_DATA(xa)
    cdef char *lp = <char *>cnp.PyArray_DATA(loss)
    cdef double total = 0.0
    cdef bint f32 = xa.itemsize == 4
    with nogil:
        if f32:
            rc = csm_cross_entropy_f32_mt(<const float *>xp, <float *>lp, &P.L, &A, &total, nt)
        else:
            rc = csm_cross_entropy_f64_mt(<const double *>xp, <double *>lp, &P.L, &A, &total,
                                          nt)
    if rc == CSM_ERANGE:
        raise ValueError("cross_entropy: a target class index is out of range")
    if rc != CSM_OK:
        raise RuntimeError(f"cross_entropy: internal error {rc} from the C kernel")
    return total


def cross_entropy(logits, target, axis=-1, *, weight=None, reduction="mean",
                  label_smoothing=0.0, ignore_index=-100, return_grad=False, out=None,
                  num_threads=None):
    """Cross-entropy of softmax(logits) against a target, fused in one kernel.

    ``loss = sum_c q_c * (logsumexp(logits) - logits_c)`` per slice along
    `axis` (the class axis), q the target distribution, with the semantics
    of ``torch.nn.functional.cross_entropy`` (class weights, reductions,
    label smoothing, ignore_index); the gradient of the returned loss with
    respect to the logits is written in the same pass when asked.

    Parameters
    ----------
    logits : array_like
        Unnormalized scores, any shape with at least one axis; the classes
        lie along `axis`.
    target : array_like
        Class indices: any integer dtype, logits' shape without `axis`
        (values in [0, C) or `ignore_index`). Or class probabilities: a
        float dtype, exactly logits' shape.
    axis : int, default -1
        The class axis. torch's is 1 for inputs of 2 or more dimensions:
        pass ``axis=1`` for torch's (N, C, d1, ...) layout.
    weight : array_like or None, default None
        torch's class weights: C real numbers (1-D, C = logits.shape[axis],
        cast to the computation dtype; values are not checked, as torch).
        q is multiplied by them class by class: class index t:
        ``q = ((1 - label_smoothing) * onehot(t) + label_smoothing / C) *
        weight``, probabilities likewise. With class indices "mean" divides
        by the sum of ``weight[t]`` over the slices not ignored (a zero sum
        gives NaN, and NaN gradients for those slices, as torch).
    reduction : {"mean", "sum", "none"}, default "mean"
        "none": the loss per slice (logits' shape without `axis`); "sum":
        their sum; "mean": their sum over the number of slices whose target
        is not ignore_index (class indices; with `weight`: the sum of their
        weights), or over all slices (probabilities). A mean over no slice
        is NaN.
    label_smoothing : float in [0, 1], default 0.0
        q = (1 - label_smoothing) * target + label_smoothing / C.
    ignore_index : int, default -100
        Class-index slices with this target contribute 0 loss and 0
        gradient, and are not counted by "mean". Not used with probabilities.
    return_grad : bool, default False
        Also return the gradient of the returned loss with respect to
        logits (logits' shape): ``(softmax * sum(q) - q) / count`` for
        "mean" (``count`` as above: the divisor), without the division otherwise
        ("none": the gradient of the sum of the per-slice losses).
    out : ndarray, optional
        For reduction="none" only: the per-slice loss array (exactly its
        shape and dtype, writeable, not overlapping the inputs).
    num_threads : int or None, default None
        The most threads this call may use; the result does not depend on it.

    Returns
    -------
    loss : ndarray or scalar
        A NumPy scalar for "mean" and "sum"; an array for "none".
    grad : ndarray
        Only with return_grad=True: ``(loss, grad)``.

    Notes
    -----
    dtypes: the logits' float dtype (float32 and float64 natively, float16
    computed in float32, longdouble through a NumPy twin; integer logits
    -> float64); probability targets are cast to it.

    Accuracy (finite logits): per-slice loss within 2 ULP of the exact value
    for the given inputs (class indices); the gradient within 4 ULP of
    ``max(softmax, q) / count``; the mean or sum from a double-double sum of
    the per-slice losses. With `weight` (tests/test_cross_entropy.py, u the
    dtype's unit roundoff): loss within 4u * sum |q_c| (lse - x_c) (measured
    2.4u), the gradient within 8u of ``max(softmax * |sum(q)|, |q|) / |count|``
    (measured 5.0u float64, 1.8u float32). Special values: the formulas in IEEE arithmetic
    with logsumexp's and softmax's special values (a NaN logit makes its
    slice's loss and gradient NaN; a -inf logit at the target gives +inf).

    Differences from torch: the class axis is a
    parameter (default -1, torch: 1); `weight` of any real dtype (torch:
    logits' dtype); out-of-range class indices raise
    ValueError before anything is computed; a mean over no slice gives NaN
    (as torch) with a zero gradient; results are the accurate values
    (torch's float32 loss may differ by a few ULP).

    Examples
    --------
    >>> import numpy as np, csoftmax
    >>> logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    >>> float(csoftmax.cross_entropy(logits, np.array([0, 1])))
    0.3068820565987253
    >>> loss, grad = csoftmax.cross_entropy(logits, np.array([0, -100]), return_grad=True)
    >>> grad
    array([[-0.34099886,  0.24243297,  0.09856589],
           [ 0.        ,  0.        ,  0.        ]])
    """
    cdef str name = "cross_entropy"
    cdef int nt = 0 if num_threads is None else _check_threads(num_threads, name)
    xa = _as_array(logits, f"{name}: logits")
    dt = _result_dtype(xa.dtype, f"{name}: logits")
    if xa.ndim == 0:
        raise ValueError(f"{name}: logits must have at least one axis (the classes)")
    if isinstance(axis, tuple) or axis is None:
        raise TypeError(f"{name}: axis must be one integer (the class axis), got {axis!r}")
    cdef int ax = _normalize_axis(axis, xa.ndim, name)[0]
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if isinstance(label_smoothing, (bool, np.bool_)) or \
            not isinstance(label_smoothing, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: label_smoothing must be a float in [0, 1], "
                        f"got {type(label_smoothing).__name__}")
    cdef double eps = float(label_smoothing)
    if not (0.0 <= eps <= 1.0):
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if isinstance(ignore_index, (bool, np.bool_)):
        raise TypeError(f"{name}: ignore_index must be an integer, got {ignore_index!r}")
    try:
        ii = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"{name}: ignore_index must be an integer, "
                        f"got {type(ignore_index).__name__}") from None
    if not (-2**63 <= ii < 2**63):
        raise ValueError(f"{name}: ignore_index {ii} is outside the int64 range")
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"{name}: return_grad must be a bool, got {type(return_grad).__name__}")
    ta = _as_array(target, f"{name}: target")
    rshape = xa.shape[:ax] + xa.shape[ax + 1:]
    cdef bint probs
    kind = ta.dtype.kind
    if kind == "i" or kind == "u":
        probs = False
        if ta.shape != rshape:
            raise ValueError(f"{name}: class-index target has shape {ta.shape}, expected "
                             f"{rshape} (logits' shape {xa.shape} without axis {ax})")
        C = xa.shape[ax]
        if ta.size:
            bad = (ta != ii) & ((ta < 0) | (ta >= C))
            if bad.any():
                where = np.unravel_index(int(np.argmax(bad)), ta.shape)
                raise ValueError(f"{name}: target {int(ta[where])} at index {tuple(map(int, where))} "
                                 f"is out of range for {C} classes (and is not "
                                 f"ignore_index={ii})")
    elif kind == "f":
        probs = True
        if ta.shape != xa.shape:
            raise ValueError(f"{name}: probability target has shape {ta.shape}, expected "
                             f"logits' shape {xa.shape}")
    else:
        raise TypeError(f"{name}: target must be class indices (an integer dtype) or "
                        f"probabilities (a float dtype), got dtype {ta.dtype}")
    wa = None
    if weight is not None:
        wa = _as_array(weight, f"{name}: weight")
        if wa.dtype.kind not in "iuf":
            raise TypeError(f"{name}: weight must be real numbers (an integer or float dtype), "
                            f"got dtype {wa.dtype}")
        if wa.shape != (xa.shape[ax],):
            raise ValueError(f"{name}: weight has shape {wa.shape}, expected ({xa.shape[ax]},) "
                             f"(one weight per class: logits.shape[{ax}])")
    cdef int red_code = _REDUCTIONS[reduction]
    if out is not None:
        if red_code != 0:
            raise ValueError(f"{name}: out is only for reduction='none'")
        _check_out(out, dt, rshape, name)
        if out.size and (np.may_share_memory(out, xa) or np.may_share_memory(out, ta)):
            raise ValueError(f"{name}: out overlaps logits or target")
        if out.size and wa is not None and np.may_share_memory(out, wa):
            raise ValueError(f"{name}: out overlaps weight")
    cdef fenv_t fpenv
    _fp_enter(&fpenv)
    try:
        if dt.itemsize > 8 or dt.itemsize == 2:
            if dt.itemsize > 8:                 # longdouble: the NumPy twin
                from csoftmax import _reference
                loss, grad = _reference.cross_entropy(
                    xa.astype(dt), ta.astype(dt) if probs else ta, ax, reduction, eps, ii,
                    weight=None if wa is None else wa.astype(dt))
            else:                               # float16: computed in float32
                loss, grad = cross_entropy(xa.astype(_f32), ta.astype(_f32) if probs else ta,
                                           ax, weight=None if wa is None else wa.astype(_f32),
                                           reduction=reduction, label_smoothing=eps,
                                           ignore_index=ii, return_grad=True,
                                           num_threads=None if nt == 0 else nt)
                with np.errstate(over="ignore"):
                    loss = np.asarray(loss).astype(dt)
                    grad = grad.astype(dt)
            loss = _finish(loss, out)
            return (loss, grad) if return_grad else loss
        work = _native(xa, dt)
        if probs:
            tw = _native(ta, dt)
        else:
            tw = ta.astype(np.int64)            # checked above: in range or ignore_index
        loss = out if out is not None and out.flags.aligned else np.empty(rshape, dt)
        grad = np.empty_like(work) if return_grad else None
        total = 0.0
        if loss.size:
            total = _ce_native(work, tw, probs, ax, loss, grad, red_code, eps, ii, nt,
                               None if wa is None else _native(wa, dt))
        elif red_code == 1:
            total = np.nan
        if out is not None and loss is not out:
            out[...] = loss
            loss = out
        if red_code != 0:
            loss = dt.type(total)
        elif out is None and loss.ndim == 0:
            loss = loss[()]
        return (loss, grad) if return_grad else loss
    finally:
        _fp_leave(&fpenv)


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
    _fp_enter(&fpenv)
    try:
        return _lse_ext_general(x, axis, keepdims, out, nt, b, return_sign)
    finally:
        _fp_leave(&fpenv)


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
            out_v = _check_out(out[0], dt, rshape, "logsumexp", "out[0]")
            out_s = _check_out(out[1], dt, rshape, "logsumexp", "out[1]")
            if np.may_share_memory(out_v, out_s):
                raise ValueError("logsumexp: out[0] and out[1] overlap")
        else:
            out_v = _check_out(out, dt, rshape, "logsumexp")
    if dt.itemsize == 2:                # float16: computed in float32
        wdt = _f32
    else:
        wdt = dt
    work = _native(xa, wdt)
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
        _fp_enter(&fpenv)
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
            _fp_leave(&fpenv)
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
