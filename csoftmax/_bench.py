"""Benchmark engine of ``python -m csoftmax bench`` (and of benchmarks/bench_ops.py).

What is compared
----------------
One *cell* is (op, dtype, shape, axis) with op in softmax / log_softmax /
logsumexp. In each cell these implementations run side by side (the table of
:func:`implementations`, the one definition shared with the pytest-benchmark
suite in ``benchmarks/``):

``csoftmax[ISA]``
    csoftmax once per instruction set this CPU supports (switched with the
    private ``csoftmax._core._set_isa`` before each timed block, the original
    restored afterwards). softmax / log_softmax write into a preallocated
    ``out=`` array; logsumexp allocates its (small) result.
``numpy-naive``
    ``e = np.exp(x - x.max(axis, keepdims=True)); e / e.sum(axis, keepdims=True)``
    and the analogous log_softmax / logsumexp formulas (allocating).
``numpy-best``
    The fastest pure-NumPy version found: ufuncs with ``out=`` into buffers
    preallocated outside the timing, no temporaries, processed in blocks of
    ``NP_BLOCK`` elements so that max, subtract, exp, sum and scale of one
    block stay in cache (rows longer than a block: a max pass, a chunked
    exp+sum pass and a scale pass). Division by the sum is a multiplication
    by its reciprocal.
``scipy``
    ``scipy.special.softmax / log_softmax / logsumexp(x, axis=axis)``.
``torch``
    ``torch.softmax / log_softmax / logsumexp(t, axis)`` on
    ``torch.from_numpy(x)`` (shared memory), ``torch.set_num_threads(1)``.
``onnxruntime``
    One-node ONNX models on the CPU execution provider with
    ``intra_op_num_threads = inter_op_num_threads = 1``: ``Softmax`` /
    ``LogSoftmax`` (opset 13, ``axis`` attribute) and ``ReduceLogSumExp``
    (opset 18, ``axes`` input, ``keepdims=0``); timed call ``sess.run``.
``jax``
    ``jax.jit`` of ``jax.nn.softmax / log_softmax / logsumexp`` with the axis
    bound, input already on the device (``jax.device_put``), timed call ends
    with ``block_until_ready()``; ``jax_enable_x64`` so float64 stays float64;
    XLA's CPU runtime pinned to one thread (``XLA_FLAGS``).

Peers that cannot be imported are skipped (a note goes to stderr and the JSON).
Each implementation's output is checked against a float64 NumPy reference on a
few reduction slices before it is timed (``max_err`` in the JSON; a mismatch
is reported on stderr and marked ``!`` in the table).

Machine-limit probes (same run, same round-robin as the cell)
-------------------------------------------------------------
``copy``
    ``np.copyto(dst, x)``: reads x and writes an array of the same size once,
    i.e. the memory traffic softmax / log_softmax cannot avoid.
``read``
    ``np.maximum.reduce(x, axis=None)``: one read of x (SIMD max, no store),
    the memory traffic logsumexp cannot avoid.
``exp``
    ``csoftmax._core._exp_nonpos`` (the active ISA's float64 kernel exp) over
    the same number of elements, as consecutive calls on one cache-resident
    float64 buffer of at most ``EXP_CHUNK`` elements with values in (-16, 0]:
    pure exp throughput without main-memory traffic. It is float64 for every
    dtype (the kernel exposes no float32 exp hook), so for float32 cells it is
    a generous (high) estimate of the exp cost.
``np.exp``
    ``np.exp(x)`` on the same array (cells of at most ``NP_EXP_MAX_SIZE``
    elements): one NumPy ufunc call, the per-call overhead yardstick.

The *limit* of a cell is max(memory probe, exp probe), with the memory probe
``copy`` for softmax / log_softmax and ``read`` for logsumexp: a lower bound
for any implementation that must move those bytes and compute that many exps
(assuming they overlap perfectly). ``vs limit`` = csoftmax time / limit
(1.0 = at the limit; issue #4 asks for <= 1.3). For small arrays every probe
is dominated by the cost of one Python-level call (the exp probe also
allocates its result), so there "limit" is a per-call overhead yardstick and
csoftmax can come out below 1.0; the (10,) target is the np.exp ratio.

Timing method
-------------
Each implementation (and probe) is called once to check its result (also the
warm-up: page faults, JIT compilation), then calibrated: the number of calls
per timed block is chosen so that one block takes >= ``target`` seconds (one
call if a call already takes that long). Then R rounds run; in each round
every implementation times one block, in round-robin order rotated by one
each round, so that slow phases of a shared machine hit them alike; the
garbage collector is off while timing. Reported: the median over the R rounds
of the per-call time. R is ``--repeat`` if given; otherwise up to 7 (3 with
``--quick``), reduced for large cells so that a cell's timed rounds take about
``CELL_BUDGET`` seconds, and never below 3.

``GB/s`` = (input bytes + output bytes) / median time. ``vs naive`` and
``vs best peer`` = the other's time / csoftmax's time (> 1: csoftmax faster),
where "csoftmax" is the instruction set active at start (the one users get)
and the best peer is the fastest non-csoftmax implementation in the cell.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import csoftmax

OPS = ("softmax", "log_softmax", "logsumexp")
DTYPES = ("float32", "float64")

# (shape, axis) cases of issue #4; the last one reduces along axis 0 of a C array
CASES = (
    ((10,), -1),
    ((1000,), -1),
    ((1, 1_000_000), -1),
    ((1, 16_000_000), -1),
    ((4096, 1024), -1),
    ((65536, 10), -1),
    ((131072, 512), -1),
    ((4096, 1024), 0),
)
QUICK_CASES = (
    ((10,), -1),
    ((1000,), -1),
    ((1, 1_000_000), -1),
    ((512, 1024), -1),
    ((8192, 10), -1),
    ((512, 1024), 0),
)

TARGET_SECONDS = 0.005        # minimum duration of one timed block
QUICK_TARGET_SECONDS = 0.002
DEFAULT_REPEAT = 7
QUICK_REPEAT = 3
MIN_REPEAT = 3
CELL_BUDGET = 2.0             # seconds of timed rounds per cell (default run)
NP_BLOCK = 1 << 16            # numpy-best block, in elements (measured: 2**15..2**17 best)
NP_SHORT_ROW = 32             # numpy-best: rows up to this long use column loops
EXP_CHUNK = 1 << 14           # exp probe buffer, in float64 elements (128 KiB)
NP_EXP_MAX_SIZE = 1000        # np.exp probe only on cells up to this size
CHECK_SLICES = 4              # reduction slices checked per implementation

SWEEP_LOG2_TOTAL = 22         # --plot: rows of 2**k, k = 1..20, 2**22 elements
SWEEP_K = tuple(range(1, 21))

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def pin_threads():
    """Ask every thread pool we may load to use one thread (before importing
    torch / jax / onnxruntime; existing settings are kept)."""
    for var in THREAD_ENV:
        os.environ.setdefault(var, "1")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " " + XLA_ONE_THREAD).strip()


# ---------------------------------------------------------------------------
# Buffers shared by the implementations of one input
# ---------------------------------------------------------------------------

_BUFFERS = {}


def shared_empty(shape, dtype, tag="out"):
    """A preallocated array reused by every implementation (and op) measured
    on inputs of this shape and dtype, so that a large output buffer is
    allocated and page-faulted once, not once per implementation. Distinct
    ``tag``s give arrays that can be used at the same time."""
    key = (tag, tuple(shape), np.dtype(dtype).str)
    buf = _BUFFERS.get(key)
    if buf is None:
        buf = _BUFFERS[key] = np.empty(shape, dtype)
    return buf


def clear_caches():
    """Drop the shared buffers and cached device copies (between inputs)."""
    _BUFFERS.clear()
    _JAX.pop("device", None)


# ---------------------------------------------------------------------------
# NumPy naive formulas (also the reference of the correctness check, in float64)
# ---------------------------------------------------------------------------

def numpy_softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max))."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def numpy_log_softmax(x, axis=-1):
    """(x - max) - log(sum(exp(x - max)))."""
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def numpy_logsumexp(x, axis=-1):
    """max + log(sum(exp(x - max)))."""
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


NUMPY_IMPLS = {
    "softmax": numpy_softmax,
    "log_softmax": numpy_log_softmax,
    "logsumexp": numpy_logsumexp,
}


# ---------------------------------------------------------------------------
# NumPy best: blocked, in place, preallocated
# ---------------------------------------------------------------------------

def _split(shape, axis):
    ax = axis % len(shape)
    outer = math.prod(shape[:ax])
    inner = math.prod(shape[ax + 1:])
    return outer, shape[ax], inner


def numpy_best_prepare(op, x, axis=-1, block=None):
    """Zero-argument callable computing ``op(x, axis)`` with NumPy ufuncs only,
    into buffers allocated here (returns the result array, the same object
    each call). x must be C-contiguous.

    Reduction slices of at most ``block`` elements: groups of slices that fill
    a block run max, subtract, exp, sum and scale while the block is in cache.
    Longer slices: a max pass over the slice, an exp + sum pass over chunks of
    about ``block`` elements (the exp result stored for softmax / log_softmax),
    and a scale (softmax) or shift (log_softmax) pass. Many short rows (last
    axis of length <= NP_SHORT_ROW): see _numpy_best_short_rows.
    """
    block = NP_BLOCK if block is None else int(block)
    x = np.asarray(x)
    if not x.flags.c_contiguous:
        raise ValueError("numpy-best needs a C-contiguous input")
    outer, n, inner = _split(x.shape, axis)
    x3 = x.reshape(outer, n, inner)
    red_shape = x.shape[:axis % x.ndim] + x.shape[axis % x.ndim + 1:]
    if op == "logsumexp":
        result = np.empty(red_shape, x.dtype)
        res3 = result.reshape(outer, 1, inner)
        out3 = None
    else:
        result = shared_empty(x.shape, x.dtype)
        out3 = result.reshape(outer, n, inner)
    max_, sub, exp, add_reduce = np.maximum.reduce, np.subtract, np.exp, np.add.reduce
    mul, log, add, recip = np.multiply, np.log, np.add, np.reciprocal

    if inner == 1 and 2 <= n <= NP_SHORT_ROW and outer >= 64:
        return _numpy_best_short_rows(op, x.reshape(outer, n), result, block)

    if n * inner <= block:
        rows = max(1, block // (n * inner))
        steps = []
        for i in range(0, outer, rows):
            j = min(outer, i + rows)
            xb = x3[i:j]
            m = np.empty((j - i, 1, inner), x.dtype)
            s = np.empty_like(m)
            if op == "logsumexp":
                steps.append((xb, np.empty_like(xb), m, s, res3[i:j]))
            elif op == "log_softmax":
                steps.append((xb, out3[i:j], m, s, np.empty_like(xb)))
            else:
                steps.append((xb, out3[i:j], m, s, None))

        if op == "softmax":
            def call():
                for xb, ob, m, s, _ in steps:
                    max_(xb, axis=1, keepdims=True, out=m)
                    sub(xb, m, out=ob)
                    exp(ob, out=ob)
                    add_reduce(ob, axis=1, keepdims=True, out=s)
                    recip(s, out=s)
                    mul(ob, s, out=ob)
                return result
        elif op == "log_softmax":
            def call():
                for xb, ob, m, s, tb in steps:
                    max_(xb, axis=1, keepdims=True, out=m)
                    sub(xb, m, out=ob)
                    exp(ob, out=tb)
                    add_reduce(tb, axis=1, keepdims=True, out=s)
                    log(s, out=s)
                    sub(ob, s, out=ob)
                return result
        else:
            def call():
                for xb, tb, m, s, rb in steps:
                    max_(xb, axis=1, keepdims=True, out=m)
                    sub(xb, m, out=tb)
                    exp(tb, out=tb)
                    add_reduce(tb, axis=1, keepdims=True, out=s)
                    log(s, out=s)
                    add(s, m, out=rb)
                return result
        return call

    # long reduction slices: 3 passes, the middle one chunked
    c = max(1, block // inner)
    slices = []
    for o in range(outer):
        xo = x3[o]
        oo = out3[o] if out3 is not None else None
        chunks = [(xo[i:i + c], oo[i:i + c] if oo is not None else None)
                  for i in range(0, n, c)]
        m = np.empty((1, inner), x.dtype)
        s = np.empty_like(m)
        tmp = np.empty_like(m)
        scratch = (np.empty((min(c, n), inner), x.dtype)
                   if op != "softmax" else None)
        rb = res3[o] if op == "logsumexp" else None
        slices.append((xo, oo, chunks, m, s, tmp, scratch, rb))

    def call():
        for xo, oo, chunks, m, s, tmp, scratch, rb in slices:
            max_(xo, axis=0, keepdims=True, out=m)
            s.fill(0)
            for xc, oc in chunks:
                if op == "softmax":
                    sub(xc, m, out=oc)
                    exp(oc, out=oc)
                    add_reduce(oc, axis=0, keepdims=True, out=tmp)
                else:
                    sc = scratch[:len(xc)]
                    if op == "log_softmax":
                        sub(xc, m, out=oc)
                        exp(oc, out=sc)
                    else:
                        sub(xc, m, out=sc)
                        exp(sc, out=sc)
                    add_reduce(sc, axis=0, keepdims=True, out=tmp)
                add(s, tmp, out=s)
            _np_finish(op, s, s, oo, m, rb)
        return result
    return call


def _np_finish(op, s, s_b, vals, m, rb):
    """Last step of numpy-best, from the row sums s of exp(x - m) (s_b: s
    shaped to broadcast against vals): softmax scales vals, log_softmax
    shifts them, logsumexp writes m + log(s) into rb."""
    if op == "softmax":
        np.reciprocal(s, out=s)
        np.multiply(vals, s_b, out=vals)
    elif op == "log_softmax":
        np.log(s, out=s)
        np.subtract(vals, s_b, out=vals)
    else:
        np.log(s, out=s)
        np.add(s, m, out=rb)


def _numpy_best_short_rows(op, x2, result, block):
    """Many short rows (length n <= NP_SHORT_ROW): reductions along a short
    last axis are slow in NumPy (one inner loop per row), so max and sum run
    as n elementwise ufunc calls over the columns of a block of rows."""
    outer, n = x2.shape
    rows = max(1, block // n)
    res2 = result.reshape(outer, n) if op != "logsumexp" else result.reshape(outer)
    maximum, sub, exp, add = np.maximum, np.subtract, np.exp, np.add
    copyto = np.copyto
    blocks = []
    for i in range(0, outer, rows):
        xb = x2[i:i + rows]
        r = len(xb)
        m = np.empty(r, x2.dtype)
        s = np.empty(r, x2.dtype)
        ob = res2[i:i + rows] if op != "logsumexp" else None
        tb = np.empty(xb.shape, xb.dtype) if op != "softmax" else ob  # exp values
        blocks.append((xb, ob, tb, m, s, m[:, None], s[:, None],
                       [xb[:, j] for j in range(n)], [tb[:, j] for j in range(n)],
                       res2[i:i + rows] if op == "logsumexp" else None))

    def call():
        for xb, ob, tb, m, s, m2, s2, xcols, tcols, rb in blocks:
            copyto(m, xcols[0])
            for c in xcols[1:]:
                maximum(m, c, out=m)
            if op == "log_softmax":
                sub(xb, m2, out=ob)
                exp(ob, out=tb)
            else:
                sub(xb, m2, out=tb)
                exp(tb, out=tb)
            copyto(s, tcols[0])
            for c in tcols[1:]:
                add(s, c, out=s)
            _np_finish(op, s, s2, tb if op == "softmax" else ob, m, rb)
        return result
    return call


# ---------------------------------------------------------------------------
# Implementation table
# ---------------------------------------------------------------------------

class Prepared:
    """One implementation ready to run on one input.

    call: zero-argument callable, the timed operation (returns its result).
    to_numpy: result of call() -> ndarray (for the correctness check).
    activate: zero-argument callable run before each timed block (outside the
    timing), or None.
    """

    __slots__ = ("call", "to_numpy", "activate")

    def __init__(self, call, to_numpy=np.asarray, activate=None):
        self.call = call
        self.to_numpy = to_numpy
        self.activate = activate

    def result(self):
        if self.activate is not None:
            self.activate()
        return self.to_numpy(self.call())


class Impl:
    """An implementation: name, kind ("csoftmax", "numpy" or "peer"), a lazy
    availability check and ``prepare(op, x, axis) -> Prepared``."""

    def __init__(self, name, kind, prepare, check=None, version=None):
        self.name = name
        self.kind = kind
        self._prepare = prepare
        self._check = check
        self._version = version
        self._reason = False  # not checked yet

    def unavailable(self):
        """None if usable, else the reason (the import error)."""
        if self._reason is False:
            try:
                self._reason = self._check() if self._check else None
            except Exception as exc:  # ImportError, or a broken install
                self._reason = "%s: %s" % (type(exc).__name__, exc)
        return self._reason

    def version(self):
        if self.unavailable() is not None:
            return None
        return self._version() if self._version else None

    def prepare(self, op, x, axis):
        reason = self.unavailable()
        if reason is not None:
            raise RuntimeError("%s is not available: %s" % (self.name, reason))
        return self._prepare(op, x, axis)

    def __repr__(self):
        return "Impl(%r)" % self.name


def _core():
    from csoftmax import _core
    return _core


def active_isa():
    return csoftmax.isa_info()["active"]


def _csoftmax_impl(isa):
    def prepare(op, x, axis):
        fn = getattr(csoftmax, op)
        set_isa = _core()._set_isa
        if op == "logsumexp":
            def call():
                return fn(x, axis, num_threads=1)
        else:
            out = shared_empty(x.shape, x.dtype)

            def call():
                return fn(x, axis, out=out, num_threads=1)
        return Prepared(call, activate=lambda: set_isa(isa))
    return Impl("csoftmax[%s]" % isa, "csoftmax", prepare,
                version=lambda: csoftmax.__version__)


def _naive_prepare(op, x, axis):
    fn = NUMPY_IMPLS[op]
    return Prepared(lambda: fn(x, axis))


def _best_prepare(op, x, axis):
    return Prepared(numpy_best_prepare(op, x, axis))


def _scipy_check():
    import scipy.special  # noqa: F401


def _scipy_prepare(op, x, axis):
    import scipy.special
    fn = getattr(scipy.special, op)
    return Prepared(lambda: fn(x, axis=axis))


def _scipy_version():
    import scipy
    return scipy.__version__


_TORCH = {}


def _torch():
    if "torch" not in _TORCH:
        pin_threads()
        import torch
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or inter-op work already started
            pass
        _TORCH["torch"] = torch
    return _TORCH["torch"]


def _torch_prepare(op, x, axis):
    torch = _torch()
    t = torch.from_numpy(x)
    fn = getattr(torch, op)
    return Prepared(lambda: fn(t, axis), to_numpy=lambda r: r.numpy())


def _torch_version():
    torch = _torch()
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:
        cap = "?"
    return "%s (%s, %d thread)" % (torch.__version__, cap, torch.get_num_threads())


_ORT_SESSIONS = {}


def _ort_check():
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401


def _ort_session(op, dtype, ndim, axis):
    key = (op, np.dtype(dtype).str, ndim, axis)
    sess = _ORT_SESSIONS.get(key)
    if sess is not None:
        return sess
    import onnxruntime as ort
    from onnx import TensorProto, helper
    et = {np.dtype(np.float32): TensorProto.FLOAT,
          np.dtype(np.float64): TensorProto.DOUBLE}[np.dtype(dtype)]
    X = helper.make_tensor_value_info("X", et, [None] * ndim)
    Y = helper.make_tensor_value_info("Y", et, None)
    if op == "logsumexp":
        axes = helper.make_tensor("axes", TensorProto.INT64, [1], [axis])
        node = helper.make_node("ReduceLogSumExp", ["X", "axes"], ["Y"], keepdims=0)
        graph = helper.make_graph([node], "lse", [X], [Y], initializer=[axes])
        opset = 18
    else:
        name = "Softmax" if op == "softmax" else "LogSoftmax"
        node = helper.make_node(name, ["X"], ["Y"], axis=axis)
        graph = helper.make_graph([node], op, [X], [Y])
        opset = 13
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    _ORT_SESSIONS[key] = sess
    return sess


def _ort_prepare(op, x, axis):
    sess = _ort_session(op, x.dtype, x.ndim, axis)
    run = sess.run
    feed = {"X": x}
    return Prepared(lambda: run(None, feed), to_numpy=lambda r: np.asarray(r[0]))


def _ort_version():
    import onnxruntime
    return onnxruntime.__version__


_JAX = {}


def _jax():
    if "jax" not in _JAX:
        pin_threads()
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_platforms", "cpu")
        _JAX["jax"] = jax
    return _JAX["jax"]


def _jax_prepare(op, x, axis):
    jax = _jax()
    key = (op, axis)
    f = _JAX.get(key)
    if f is None:
        import functools
        fn = getattr(jax.nn, op)
        f = _JAX[key] = jax.jit(functools.partial(fn, axis=axis))
    dev = _JAX.get("device")
    if dev is None or dev[0] is not x:
        dev = _JAX["device"] = (x, jax.device_put(x))
    xj = dev[1]
    f(xj).block_until_ready()  # compile for this shape and dtype
    return Prepared(lambda: f(xj).block_until_ready(), to_numpy=np.asarray)


def _jax_version():
    jax = _jax()
    import jaxlib
    return "%s (jaxlib %s)" % (jax.__version__, jaxlib.__version__)


def _torch_check():
    _torch()


def _jax_check():
    _jax()


PEER_NAMES = ("numpy-naive", "numpy-best", "scipy", "torch", "onnxruntime", "jax")


def implementations():
    """Every implementation, in table order: csoftmax per supported ISA, then
    the peers (available or not; see ``Impl.unavailable()``)."""
    info = csoftmax.isa_info()
    impls = [_csoftmax_impl(isa) for isa in info["supported"]]
    impls += [
        Impl("numpy-naive", "numpy", _naive_prepare, version=lambda: np.__version__),
        Impl("numpy-best", "numpy", _best_prepare, version=lambda: np.__version__),
        Impl("scipy", "peer", _scipy_prepare, _scipy_check, _scipy_version),
        Impl("torch", "peer", _torch_prepare, _torch_check, _torch_version),
        Impl("onnxruntime", "peer", _ort_prepare, _ort_check, _ort_version),
        Impl("jax", "peer", _jax_prepare, _jax_check, _jax_version),
    ]
    return impls


def select_implementations(names=None, impls=None, warn=None):
    """Implementations matching ``names`` ("csoftmax" = every ISA,
    "csoftmax[avx2]", "numpy-naive", ...; None = all) that are available.
    Unknown names raise ValueError; unavailable ones are reported to ``warn``.
    Returns (selected, skipped) with skipped = {name: reason}."""
    impls = implementations() if impls is None else impls
    by_name = {i.name: i for i in impls}
    if names is None:
        wanted = list(impls)
    else:
        wanted = []
        for raw in names:
            name = raw.strip().lower().replace("_", "-")
            if name == "csoftmax":
                found = [i for i in impls if i.kind == "csoftmax"]
            elif name in by_name:
                found = [by_name[name]]
            elif name.startswith("csoftmax["):
                raise ValueError("instruction set %r not supported here (supported: %s)"
                                 % (name, ", ".join(csoftmax.isa_info()["supported"])))
            else:
                raise ValueError("unknown implementation %r (choose from: csoftmax, %s)"
                                 % (raw, ", ".join(by_name)))
            wanted += [i for i in found if i not in wanted]
        wanted.sort(key=impls.index)
    selected, skipped = [], {}
    for impl in wanted:
        reason = impl.unavailable()
        if reason is None:
            selected.append(impl)
        else:
            skipped[impl.name] = reason
            if warn is not None:
                warn("%s not available, skipped (%s)" % (impl.name, reason))
    return selected, skipped


# ---------------------------------------------------------------------------
# Machine-limit probes
# ---------------------------------------------------------------------------

PROBE_NAMES = ("copy", "read", "exp", "np.exp")


def probe_names(op, size):
    """The probes of one cell (see the module docstring)."""
    names = ["read" if op == "logsumexp" else "copy", "exp"]
    if size <= NP_EXP_MAX_SIZE:
        names.append("np.exp")
    return names


def prepare_probe(name, x, isa=None):
    """Prepared probe ``name`` on input x (exp probe on instruction set
    ``isa``, default the one active now)."""
    if name == "copy":
        dst = shared_empty(x.shape, x.dtype)
        return Prepared(lambda: np.copyto(dst, x), to_numpy=lambda r: dst)
    if name == "read":
        red = np.maximum.reduce
        return Prepared(lambda: red(x, axis=None))
    if name == "np.exp":
        return Prepared(lambda: np.exp(x))
    if name == "exp":
        core = _core()
        isa = active_isa() if isa is None else isa
        size = x.size
        buf = -np.random.default_rng(1).uniform(0.0, 16.0, min(size, EXP_CHUNK))
        full, rem = divmod(size, len(buf))
        parts = [buf] * full + ([buf[:rem]] if rem else [])
        f = core._exp_nonpos
        if len(parts) == 1:
            p = parts[0]

            def call():
                return f(p)
        else:
            def call():
                for p in parts:
                    f(p)
        return Prepared(call, activate=lambda: core._set_isa(isa))
    raise ValueError("unknown probe %r" % name)


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

def _time_loop(fn, n):
    """Seconds taken by n calls of fn()."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def calibrate(fn, target=TARGET_SECONDS, first=None):
    """Number of calls of fn() that take at least ~target seconds.

    ``first``: the duration of a call already made (skips calibration when
    that alone is >= 4 * target)."""
    if first is not None and first >= 4 * target:
        return 1
    n = 1
    while True:
        t = _time_loop(fn, n)
        if t >= 0.2 * target or n >= 10**7:
            break
        n *= 10
    if t <= 0:
        return n
    if n == 1 and t >= target:
        return 1
    return max(1, math.ceil(n * target / t))


def measure(entries, repeat=None, target=TARGET_SECONDS, budget=None,
            min_repeat=MIN_REPEAT, first=None):
    """Per-call times of ``entries`` ({name: Prepared}), round-robin.

    repeat: number of rounds, or the most rounds when ``budget`` (seconds of
    timed rounds) is given. first: {name: duration of one call already made}.
    Returns (loops, times, rounds).
    """
    first = first or {}
    names = list(entries)
    loops = {}
    for name in names:
        p = entries[name]
        if p.activate is not None:
            p.activate()
        loops[name] = calibrate(p.call, target, first.get(name))
    rounds = DEFAULT_REPEAT if repeat is None else repeat
    if budget is not None:
        est = 0.0
        for name in names:  # one round: a block of >= target, or one (slow) call
            est += max(target, first.get(name, target)) if loops[name] == 1 else target
        rounds = max(min_repeat, min(rounds, int(budget // max(est, 1e-9))))
    times = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                p = entries[name]
                if p.activate is not None:
                    p.activate()
                n = loops[name]
                times[name].append(_time_loop(p.call, n) / n)
    finally:
        if gc_was_enabled:
            gc.enable()
    return loops, times, rounds


# ---------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------

def make_input(shape, dtype, seed=0):
    """Seeded input: 4 * standard normal, rounded to dtype, C-contiguous."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float64 if dtype == "float64" else np.float32)
    x *= 4
    return x


def _check_index(shape, axis):
    """Index of a few whole reduction slices (the first CHECK_SLICES along
    every other axis)."""
    ax = axis % len(shape)
    return tuple(slice(None) if i == ax else slice(0, CHECK_SLICES)
                 for i in range(len(shape)))


def reference(op, x, axis):
    """float64 NumPy result on the checked slices (indexed like the output)."""
    idx = _check_index(x.shape, axis)
    with np.errstate(all="ignore"):
        return NUMPY_IMPLS[op](x[idx].astype(np.float64), axis)


def result_error(op, got, ref, shape, axis):
    """max |got - ref| / max(1, |ref|) over the checked slices."""
    idx = _check_index(shape, axis)
    if op == "logsumexp":
        ax = axis % len(shape)
        idx = idx[:ax] + idx[ax + 1:]
    g = np.asarray(got)[idx].astype(np.float64)
    if g.shape != ref.shape:
        return float("inf")
    with np.errstate(all="ignore"):
        err = np.abs(g - ref) / np.maximum(1.0, np.abs(ref))
    if not np.all(np.isfinite(err)):
        return float("inf")
    return float(err.max()) if err.size else 0.0


ERR_TOL = {"float32": 1e-4, "float64": 1e-9}  # catches adapter bugs (wrong axis...)


def cell_nbytes(op, shape, dtype, axis):
    itemsize = np.dtype(dtype).itemsize
    size = math.prod(shape)
    if op == "logsumexp":
        out = size // shape[axis % len(shape)] if size else 0
    else:
        out = size
    return size * itemsize, out * itemsize


def run_cell(op, dtype, shape, axis, impls, *, repeat=None, target=TARGET_SECONDS,
             budget=None, probes=True, csoftmax_ref=None, log=None, x=None):
    """Measure one cell; returns its JSON record. x: the input, if already
    made by make_input(shape, dtype)."""
    if x is None:
        clear_caches()
        x = make_input(shape, dtype)
    isa0 = active_isa()
    ref = reference(op, x, axis)
    entries, first, errors, failed = {}, {}, {}, {}
    try:
        for impl in impls:
            try:
                p = impl.prepare(op, x, axis)
                t0 = time.perf_counter()
                got = p.result()
                first[impl.name] = time.perf_counter() - t0
            except Exception as exc:  # a peer that cannot do this cell
                failed[impl.name] = "%s: %s" % (type(exc).__name__, exc)
                if log:
                    log("  %s failed: %s" % (impl.name, failed[impl.name]))
                continue
            err = result_error(op, got, ref, shape, axis)
            errors[impl.name] = err
            if not err <= ERR_TOL[dtype] and log:
                log("  WARNING: %s result differs from the float64 reference "
                    "(max err %.3g)" % (impl.name, err))
            del got
            entries[impl.name] = p
        probe_list = probe_names(op, x.size) if probes else []
        for name in probe_list:
            p = prepare_probe(name, x, isa0)
            t0 = time.perf_counter()
            p.result()
            first["probe:" + name] = time.perf_counter() - t0
            entries["probe:" + name] = p
        loops, times, rounds = measure(entries, repeat, target, budget, first=first)
    finally:
        _core()._set_isa(isa0)
    med = {k: statistics.median(v) for k, v in times.items()}
    nin, nout = cell_nbytes(op, shape, dtype, axis)
    rec = {
        "op": op, "dtype": dtype, "shape": list(shape), "axis": axis,
        "size": int(x.size), "in_nbytes": nin, "out_nbytes": nout,
        "rounds": rounds,
        "impls": {}, "probes": {}, "failed": failed,
    }
    for name in entries:
        d = {"loops": loops[name], "times_s": times[name], "median_s": med[name],
             "min_s": min(times[name])}
        if name.startswith("probe:"):
            rec["probes"][name[6:]] = d
        else:
            d["gbps"] = (nin + nout) / med[name] / 1e9 if med[name] > 0 else None
            d["max_err"] = errors[name]
            d["check_ok"] = bool(errors[name] <= ERR_TOL[dtype])
            rec["impls"][name] = d
    summarize_cell(rec, csoftmax_ref or "csoftmax[%s]" % isa0)
    return rec


def summarize_cell(rec, csoftmax_ref):
    """Add the ratios of one cell record (see the module docstring)."""
    impls = rec["impls"]
    med = {k: v["median_s"] for k, v in impls.items()}
    cs = [k for k in impls if k.startswith("csoftmax[")]
    ref = csoftmax_ref if csoftmax_ref in med else (cs[0] if cs else None)
    peers = {k: v for k, v in med.items() if not k.startswith("csoftmax[")}
    best = min(peers, key=peers.get) if peers else None
    probes = {k: v["median_s"] for k, v in rec["probes"].items()}
    mem_kind = "read" if rec["op"] == "logsumexp" else "copy"
    limit_parts = {k: probes[k] for k in (mem_kind, "exp") if k in probes}
    limit_kind = max(limit_parts, key=limit_parts.get) if limit_parts else None
    limit = limit_parts.get(limit_kind) if limit_kind else None
    c = med.get(ref) if ref else None
    rec["csoftmax"] = ref
    rec["best_peer"] = best
    rec["limit_s"] = limit
    rec["limit_kind"] = limit_kind

    def ratio(a, b):
        return a / b if (a is not None and b) else None

    rec["speedup_vs_naive"] = ratio(med.get("numpy-naive"), c)
    rec["speedup_vs_best_peer"] = ratio(peers.get(best) if best else None, c)
    rec["vs_limit"] = ratio(c, limit)
    rec["vs_np_exp"] = ratio(c, probes.get("np.exp"))
    rec["speedups_by_isa"] = {
        k: {"vs_naive": ratio(med.get("numpy-naive"), med[k]),
            "vs_best_peer": ratio(peers.get(best) if best else None, med[k]),
            "vs_limit": ratio(med[k], limit)}
        for k in cs}
    return rec


def run_matrix(ops, dtypes, cases, impls, *, repeat=None, target=TARGET_SECONDS,
               budget=CELL_BUDGET, progress=None, log=None):
    """Every (op, dtype, case) cell. Cells run grouped by input (the ops of
    one dtype and shape share it and its buffers); records come back in
    (op, dtype, case) order."""
    cells = [(op, dt, shape, axis) for dt in dtypes for shape, axis in cases
             for op in ops]
    records = []
    ref = "csoftmax[%s]" % active_isa()
    t_start = time.perf_counter()
    x, x_key = None, None
    try:
        for i, (op, dt, shape, axis) in enumerate(cells, 1):
            if progress:
                progress("[%d/%d] %s %s %s axis=%d ..." % (i, len(cells), op, dt,
                                                           fmt_shape(shape), axis), end="")
            t0 = time.perf_counter()
            if x_key != (dt, shape):
                x = None
                clear_caches()
                x, x_key = make_input(shape, dt), (dt, shape)
            rec = run_cell(op, dt, shape, axis, impls, repeat=repeat, target=target,
                           budget=budget, csoftmax_ref=ref, log=log, x=x)
            records.append(rec)
            if progress:
                progress(" %d rounds, %.1f s" % (rec["rounds"], time.perf_counter() - t0))
    finally:
        clear_caches()
    if progress:
        progress("matrix done in %.1f s" % (time.perf_counter() - t_start))
    order = {(op, dt, tuple(c[0]), c[1]): (i, j, k) for i, op in enumerate(ops)
             for j, dt in enumerate(dtypes) for k, c in enumerate(cases)}
    records.sort(key=lambda r: order[(r["op"], r["dtype"], tuple(r["shape"]), r["axis"])])
    return records


def sweep_cases(log2_total=SWEEP_LOG2_TOTAL, ks=SWEEP_K):
    return [((2 ** (log2_total - k), 2 ** k), -1) for k in ks]


def run_sweep(impls, *, repeat=MIN_REPEAT, target=TARGET_SECONDS, progress=None, log=None,
              cases=None):
    """float32 softmax along axis -1, rows of 2**k, ~2**22 elements in all
    (``cases``: other (shape, axis) pairs)."""
    cases = sweep_cases() if cases is None else cases
    records = []
    ref = "csoftmax[%s]" % active_isa()
    t_start = time.perf_counter()
    for i, (shape, axis) in enumerate(cases, 1):
        if progress:
            progress("[sweep %d/%d] softmax float32 %s ..." % (i, len(cases), fmt_shape(shape)),
                     end="")
        t0 = time.perf_counter()
        rec = run_cell("softmax", "float32", shape, axis, impls, repeat=repeat,
                       target=target, csoftmax_ref=ref, log=log)
        clear_caches()
        records.append(rec)
        if progress:
            progress(" %.1f s" % (time.perf_counter() - t0))
    if progress:
        progress("sweep done in %.1f s" % (time.perf_counter() - t_start))
    return records


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def cpu_model():
    """CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags(wanted=("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw",
                      "avx512vl", "asimd", "sve")):
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("flags", "Features"):
                    have = set(value.split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


_DISTS = {"scipy": "scipy", "torch": "torch", "onnxruntime": "onnxruntime", "jax": "jax"}


def metadata(impls, skipped, argv):
    """Run metadata. impls: the implementations measured (their versions come
    from the imported module; other peers' from their installed metadata,
    without importing them)."""
    from importlib import metadata as importlib_metadata
    versions = {"csoftmax": csoftmax.__version__, "csoftmax_c": _core().C_VERSION,
                "numpy": np.__version__, "python": platform.python_version()}
    measured = {i.name: i for i in impls}
    for name, dist in _DISTS.items():
        if name in measured:
            versions[name] = measured[name].version()
        else:
            try:
                versions[name] = importlib_metadata.version(dist) + " (not measured)"
            except importlib_metadata.PackageNotFoundError:
                versions[name] = None
    for extra in ("onnx", "jaxlib", "matplotlib"):
        try:
            versions[extra] = importlib_metadata.version(extra)
        except importlib_metadata.PackageNotFoundError:
            versions[extra] = None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "command_line": [sys.executable, "-m", "csoftmax", "bench"] + list(argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "versions": versions,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "loadavg_start": load,
        "isa_info": csoftmax.isa_info(),
        "implementations": [i.name for i in impls],
        "skipped": skipped,
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV + ("XLA_FLAGS",)},
    }


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def fmt_ms(seconds):
    """Milliseconds with 3 significant digits (no exponent)."""
    if seconds is None:
        return "-"
    v = seconds * 1e3
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    if v >= 1:
        return "%.2f" % v
    return "%#.3g" % v


def fmt_speedup(ratio):
    if ratio is None:
        return "-"
    if ratio >= 10:
        return "%.0fx" % ratio
    if ratio >= 1:
        return "%.1fx" % ratio
    return "%.2fx" % ratio


def fmt_gbps(v):
    if v is None:
        return "-"
    return "%.0f" % v if v >= 100 else "%#.3g" % v


def fmt_shape(shape):
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def render(header, rows, markdown=False, left=1):
    """Aligned plain-text (or Markdown) table; the first ``left`` columns are
    left-aligned, the others right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    if markdown:
        out = ["| " + " | ".join(header) + " |",
               "|" + "|".join(":---" if i < left else "---:"
                              for i in range(len(header))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])]
                     + [line(r) for r in rows])


def _columns(records):
    names = []
    for r in records:
        for k in r["impls"]:
            if k not in names:
                names.append(k)
    order = {n: i for i, n in enumerate(i.name for i in implementations())}
    return sorted(names, key=lambda n: order.get(n, len(order)))


def format_table(records, markdown=False):
    """ms per implementation, then the csoftmax columns (see module docstring)."""
    names = _columns(records)
    header = ["op", "dtype", "shape", "axis"] + list(names)
    header += ["GB/s", "vs naive", "vs best peer", "best peer", "limit", "vs limit"]
    rows = []
    for r in records:
        cells = []
        for n in names:
            d = r["impls"].get(n)
            cell = fmt_ms(d["median_s"]) if d else "-"
            if d and not d["check_ok"]:
                cell += "!"
            cells.append(cell)
        c = r["impls"].get(r["csoftmax"]) if r["csoftmax"] else None
        rows.append([r["op"], r["dtype"], fmt_shape(r["shape"]), str(r["axis"])] + cells + [
            fmt_gbps(c["gbps"]) if c else "-",
            fmt_speedup(r["speedup_vs_naive"]),
            fmt_speedup(r["speedup_vs_best_peer"]),
            r["best_peer"] or "-",
            ("%s %s" % (fmt_ms(r["limit_s"]), r["limit_kind"])) if r["limit_s"] else "-",
            ("%.2f" % r["vs_limit"]) if r["vs_limit"] else "-",
        ])
    return render(header, rows, markdown, left=4)


def format_probes(records, markdown=False):
    """The probe medians of every (dtype, shape, axis), from the cells."""
    seen = {}
    for r in records:
        key = (r["dtype"], tuple(r["shape"]), r["axis"])
        d = seen.setdefault(key, {})
        for k, v in r["probes"].items():
            d.setdefault(k, []).append(v["median_s"])
    header = ["dtype", "shape", "axis", "copy ms", "read ms", "exp ms", "np.exp ms",
              "copy GB/s", "exp Gelem/s"]
    rows = []
    for (dt, shape, axis), d in seen.items():
        def med(k):
            return statistics.median(d[k]) if k in d else None
        size = math.prod(shape)
        nb = 2 * size * np.dtype(dt).itemsize
        rows.append([dt, fmt_shape(shape), str(axis), fmt_ms(med("copy")), fmt_ms(med("read")),
                     fmt_ms(med("exp")), fmt_ms(med("np.exp")),
                     fmt_gbps(nb / med("copy") / 1e9) if med("copy") else "-",
                     ("%.2f" % (size / med("exp") / 1e9)) if med("exp") else "-"])
    return render(header, rows, markdown, left=3)


def _mark(ok):
    return "-" if ok is None else ("met" if ok else "NOT met")


def target_rows(records):
    """Issue #4 targets per cell: (row, flags) with flags = list of bools."""
    rows = []
    for r in records:
        peer = r["speedup_vs_best_peer"]
        naive = r["speedup_vs_naive"]
        lim = r["vs_limit"]
        npx = r["vs_np_exp"]
        big = r["size"] >= 1000
        t_peer = None if peer is None else peer >= 1.0
        t_naive = (naive >= 5.0) if (big and naive is not None) else None
        t_lim = None if lim is None else lim <= 1.3
        t_exp = (npx <= 2.0) if (npx is not None and r["size"] <= 10) else None
        rows.append(([r["op"], r["dtype"], fmt_shape(r["shape"]), str(r["axis"]),
                      r["best_peer"] or "-", fmt_speedup(peer), _mark(t_peer),
                      fmt_speedup(naive) if big else "-", _mark(t_naive),
                      ("%.2f" % lim) if lim else "-", _mark(t_lim),
                      ("%.2f" % npx) if t_exp is not None else "-", _mark(t_exp)],
                     [t for t in (t_peer, t_naive, t_lim, t_exp) if t is not None]))
    return rows


def format_targets(records, markdown=False):
    rows = target_rows(records)
    header = ["op", "dtype", "shape", "axis", "best peer", "peer/cs", ">=1",
              "naive/cs", ">=5", "cs/limit", "<=1.3", "cs/np.exp", "<=2"]
    met = sum(sum(f) for _, f in rows)
    total = sum(len(f) for _, f in rows)
    return render(header, [r for r, _ in rows], markdown, left=5) + \
        "\n%d of %d target checks met" % (met, total)


# ---------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------

def plot_sweep(records, path, meta):
    """Throughput (GB/s of input + output) vs row length, one line per
    implementation, plus the copy probe."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib (pip install 'csoftmax[bench]' "
                           "or pip install matplotlib): %s" % exc) from exc
    names = _columns(records)
    fig, ax = plt.subplots(figsize=(10, 6))
    xs = [r["shape"][-1] for r in records]
    for n in names:
        ys = [r["impls"][n]["gbps"] if n in r["impls"] else float("nan") for r in records]
        style = "-" if n.startswith("csoftmax") else "--"
        ax.plot(xs, ys, style, marker="o", markersize=3, label=n,
                linewidth=2.2 if n == records[0]["csoftmax"] else 1.3)
    copy = [((r["in_nbytes"] + r["out_nbytes"]) / r["probes"]["copy"]["median_s"] / 1e9)
            if "copy" in r["probes"] else float("nan") for r in records]
    ax.plot(xs, copy, ":", color="black", label="copy probe (np.copyto)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("row length (elements); rows x length = %d elements"
                  % (records[0]["size"] if records else 0))
    ax.set_ylabel("GB/s (input + output bytes) / median time")
    ax.set_title("softmax float32, axis=-1, 1 thread - %s, csoftmax %s (active %s)"
                 % (meta.get("cpu", "?"), csoftmax.__version__,
                    meta.get("isa_info", {}).get("active", "?")), fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def parse_case(text):
    """'4096x1024' (axis -1), '4096x1024@0', '10' -> (shape, axis)."""
    body, _, ax = text.partition("@")
    parts = [p for p in body.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
        axis = int(ax) if ax else -1
    except ValueError:
        raise argparse.ArgumentTypeError("bad shape %r (e.g. 1000, 4096x1024, 4096x1024@0)"
                                         % text)
    if not shape or any(s <= 0 for s in shape) or not -len(shape) <= axis < len(shape):
        raise argparse.ArgumentTypeError("bad shape %r" % text)
    return shape, axis


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not an integer: %r" % text)
    if v < 1:
        raise argparse.ArgumentTypeError("must be >= 1: %r" % text)
    return v


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m csoftmax bench",
        description="Benchmark csoftmax (each supported ISA) against NumPy, scipy.special, "
                    "torch, onnxruntime and jax (1 thread each, when installed), with "
                    "machine-limit probes. Table to stdout, progress to stderr.",
        epilog="Default matrix: shapes %s; axis 0 for '@0'. Implementations: csoftmax "
               "(all ISAs) or csoftmax[ISA], %s. Method: see the docstring of "
               "csoftmax._bench." % (" ".join(_case_text(c) for c in CASES),
                                     ", ".join(PEER_NAMES)))
    p.add_argument("--quick", action="store_true",
                   help="smaller shapes, fewer repeats, every implementation (~30 s)")
    p.add_argument("--ops", nargs="+", choices=OPS, default=None)
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=None)
    p.add_argument("--shapes", nargs="+", type=parse_case, default=None, metavar="SHAPE",
                   help="e.g. 10 1000 4096x1024 4096x1024@0 (@N: reduce along axis N)")
    p.add_argument("--impls", nargs="+", default=None, metavar="NAME",
                   help="implementations to run (default: all available)")
    p.add_argument("--repeat", type=_positive_int, default=None, metavar="N",
                   help="timed rounds per cell (default: up to %d within a time budget, "
                        "%d with --quick)" % (DEFAULT_REPEAT, QUICK_REPEAT))
    p.add_argument("--json", metavar="FILE", default=None,
                   help="write metadata and every raw timing to FILE")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="also run the row-length sweep (float32 softmax) and plot "
                        "throughput vs row length (needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables")
    p.add_argument("--list", action="store_true",
                   help="list the implementations and whether they are available")
    return p


def _case_text(case):
    shape, axis = case
    return "x".join(map(str, shape)) + ("" if axis == -1 else "@%d" % axis)


def _stderr(msg, end="\n"):
    sys.stderr.write(msg + end)
    sys.stderr.flush()


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    pin_threads()
    impls_all = implementations()

    if args.list:
        for impl in impls_all:
            reason = impl.unavailable()
            print("%-18s %s" % (impl.name, "available, %s" % impl.version()
                                if reason is None else "not available (%s)" % reason))
        return 0

    if args.plot:  # fail before the long run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            _stderr("error: --plot needs matplotlib (pip install matplotlib)")
            return 2
    try:
        impls, skipped = select_implementations(args.impls, impls_all, warn=_stderr)
    except ValueError as exc:
        _stderr("error: %s" % exc)
        return 2
    if not impls:
        _stderr("error: no implementation available")
        return 2

    cases = args.shapes or (QUICK_CASES if args.quick else CASES)
    ops = args.ops or OPS
    dtypes = args.dtypes or DTYPES
    target = QUICK_TARGET_SECONDS if args.quick else TARGET_SECONDS
    if args.repeat is not None:
        repeat, budget = args.repeat, None
    elif args.quick:
        repeat, budget = QUICK_REPEAT, None
    else:
        repeat, budget = DEFAULT_REPEAT, CELL_BUDGET

    meta = metadata(impls, skipped, argv)
    meta["settings"] = {"repeat": repeat, "min_repeat": MIN_REPEAT,
                        "cell_budget_s": budget, "target_s_per_block": target,
                        "numpy_best_block": NP_BLOCK, "exp_probe_chunk": EXP_CHUNK,
                        "quick": args.quick}
    _stderr("implementations: %s" % ", ".join(i.name for i in impls))
    t_start = time.perf_counter()
    records = run_matrix(ops, dtypes, cases, impls, repeat=repeat, target=target,
                         budget=budget, progress=_stderr, log=_stderr)
    sweep = []
    if args.plot:
        sweep = run_sweep(impls, repeat=args.repeat or MIN_REPEAT, target=target,
                          progress=_stderr, log=_stderr)
    meta["elapsed_s"] = time.perf_counter() - t_start
    try:
        meta["loadavg_end"] = os.getloadavg()
    except OSError:
        pass

    print_report(records, meta, args.markdown)
    if args.plot:
        plot_sweep(sweep, args.plot, meta)
        print("\nwrote %s" % args.plot)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"metadata": meta, "results": records, "sweep": sweep}, f, indent=1)
            f.write("\n")
        print("wrote %s" % args.json)
    return 0


def print_report(records, meta, markdown=False):
    v = meta["versions"]
    info = meta["isa_info"]
    lines = [
        "command: %s" % " ".join(["python", "-m", "csoftmax"] + meta["command_line"][3:]),
        "cpu: %s (%s cores; flags %s); %s" % (meta["cpu"], meta["cpu_count"],
                                               " ".join(meta["cpu_flags"]), meta["platform"]),
        "csoftmax %s: ISA active %s, supported %s, compiled %s"
        % (v["csoftmax"], info["active"], ",".join(info["supported"]),
           ",".join(info["compiled"])),
        "versions: " + ", ".join("%s %s" % (k, v[k]) for k in v
                                 if k != "csoftmax" and v[k] is not None),
        "not available: " + (", ".join(meta["skipped"]) or "none"),
        "timing: median of the per-call time over rounds (round-robin, 1 thread); "
        "run took %.0f s" % meta.get("elapsed_s", 0),
    ]
    if markdown:
        print("\n".join("- " + line for line in lines))
    else:
        print("\n".join(lines))
    print()
    print(format_table(records, markdown))
    print()
    print("Times: median ms per call. "
          "GB/s = (input + output bytes) / csoftmax time; vs naive / vs best peer = "
          "their time / csoftmax[%s] time; limit = max(memory probe, exp probe); "
          "vs limit = csoftmax time / limit; '!' = result differs from a float64 NumPy "
          "reference by more than %g (float32) / %g (float64), scaled by max(1, |value|) "
          "(an inaccurate or wrong result; max_err in the JSON)."
          % (info["active"], ERR_TOL["float32"], ERR_TOL["float64"]))
    print()
    print("Machine-limit probes (medians over the cells of each shape):")
    print()
    print(format_probes(records, markdown))
    print()
    print("Issue #4 targets:")
    print()
    print(format_targets(records, markdown))
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
