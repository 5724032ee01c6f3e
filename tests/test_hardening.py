"""Hardening (issue 7): what no caller can break.

* The caller's floating-point environment (exception flags, rounding mode,
  FTZ/DAZ) is the same after every call, error paths included, and results
  do not depend on it (the kernels and the general path compute in the IEEE
  default environment).
* Another thread writing into x during a call cannot crash the process (the
  result is then unspecified); resizing x during a call is refused by NumPy
  because the call holds a reference. What is not protected is in the README
  ("Hardening").
* No 32-bit index overflow: a reduction of more than 2**31 elements and
  element offsets beyond 2**31 (a zero-stride view and a read-only anonymous
  mapping of zero pages: no real memory), checked against exact answers.
* The rows of the bad-input matrix that test_bad_input.py does not have:
  huge axis values, inputs NumPy cannot convert, results too big to
  allocate, a zero-stride out of more than 2**31 elements.
"""

import ctypes
import ctypes.util
import gc
import math
import mmap
import os
import platform
import struct
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import csoftmax
from conftest import OPS, OP_IDS, assert_bitwise, ulp_diff
from test_bad_input import out_shape, raises_untouched, sentinel

AxisError = np.exceptions.AxisError

# --------------------------------------------------------------------------
# the floating-point environment, through the C library (ctypes)
# --------------------------------------------------------------------------

_LIBM = None
if sys.platform.startswith("linux"):
    _name = ctypes.util.find_library("m")
    if _name:
        _LIBM = ctypes.CDLL(_name)

_MACHINE = platform.machine().lower()
if _MACHINE in ("x86_64", "amd64"):
    FE = {"invalid": 0x01, "divbyzero": 0x04, "overflow": 0x08, "underflow": 0x10,
          "inexact": 0x20}
    ROUND = {"nearest": 0, "downward": 0x400, "upward": 0x800, "towardzero": 0xC00}
elif _MACHINE in ("aarch64", "arm64"):
    FE = {"invalid": 1, "divbyzero": 2, "overflow": 4, "underflow": 8, "inexact": 16}
    ROUND = {"nearest": 0, "upward": 0x400000, "downward": 0x800000, "towardzero": 0xC00000}
else:
    FE = ROUND = None
FE_ALL = sum(FE.values()) if FE else 0

needs_fenv = pytest.mark.skipif(_LIBM is None or FE is None,
                                reason="needs Linux libm on x86-64 or aarch64 (ctypes)")
X86_GLIBC = _LIBM is not None and FE is not None and _MACHINE in ("x86_64", "amd64")
MXCSR_FTZ, MXCSR_DAZ = 0x8000, 0x0040


def fe_test():
    return _LIBM.fetestexcept(FE_ALL)


def fe_clear():
    _LIBM.feclearexcept(FE_ALL)


def fe_raise_all():
    _LIBM.feraiseexcept(FE_ALL)


def x86_state():
    """(x87 control word, x87 status word, MXCSR) from glibc's fenv_t on
    x86-64: 28 bytes of x87 environment, then the MXCSR."""
    buf = ctypes.create_string_buffer(64)
    assert _LIBM.fegetenv(buf) == 0
    cw, sw = struct.unpack_from("<HxxH", buf, 0)
    (csr,) = struct.unpack_from("<I", buf, 28)
    return cw, sw, csr


def x86_set_mxcsr(csr):
    buf = ctypes.create_string_buffer(64)
    assert _LIBM.fegetenv(buf) == 0
    struct.pack_into("<I", buf, 28, csr)
    assert _LIBM.fesetenv(buf) == 0
    assert x86_state()[2] == csr


def _fp_cases():
    """(label, op, x, kwargs, expected exception or None): every path of the
    layer (fast, general, copies, float16/longdouble/int, in place, errors)
    with values that raise every flag inside the kernels."""
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((5, 37)) * 30
    rows[0, 3] = np.nan
    rows[1, :] = -np.inf
    rows[2, 7] = np.inf
    rows[3, :2] = [0.0, -740.0]                      # a subnormal softmax output
    rows[4, 5] = 5e-324                              # a subnormal input
    f32 = rows.astype(np.float32)
    big_int = np.array([[2**62 + 1, 3, -(2**61) - 7]], np.int64)     # inexact casts
    f16 = np.array([[65504.0, 65504.0, -1.0], [0.0, -20.0, -1e4]], np.float16)
    unaligned = np.frombuffer(np.zeros(8 * 37 + 1, np.uint8).data, np.float64, 37, 1)
    unaligned = unaligned.copy() if unaligned.flags.aligned else unaligned
    cases = []
    for op in OPS:
        cases += [
            ("fast f64", op, rows, {}, None),
            ("fast f32", op, f32, {}, None),
            ("columns", op, rows, {"axis": 0}, None),
            ("strided", op, rows[:, ::-3], {"axis": None}, None),
            ("tuple axis", op, rows.reshape(5, 37, 1), {"axis": (0, 1)}, None),
            ("big endian", op, rows.astype(">f8"), {}, None),
            ("unaligned", op, unaligned, {}, None),
            ("int64", op, big_int, {}, None),
            ("float16", op, f16, {}, None),
            ("longdouble", op, rows.astype(np.longdouble), {}, None),
            ("bad dtype", op, rows.astype(np.clongdouble), {}, TypeError),
            ("bad axis", op, rows, {"axis": 5}, AxisError),
            ("bad out", op, rows, {"out": np.empty((2, 2))}, ValueError),
        ]
        if not op.reduces:
            cases.append(("in place", op, rows, {"inplace": True}, None))
            cases.append(("overlap", op, rows, {"overlap": True}, None))
    return cases


def _call(op, x, kw):
    kw = dict(kw)
    if kw.pop("inplace", False):
        y = x.copy()
        return op.fn(y, out=y, **kw)
    if kw.pop("overlap", False):
        buf = np.concatenate([x.ravel(), x.ravel()[:1]])
        return op.fn(buf[1:].reshape(x.shape), out=buf[:-1].reshape(x.shape), **kw)
    return op.fn(x, **kw)


def _run_case(op, x, kw, exc):
    if exc is None:
        return _call(op, x, kw)
    with pytest.raises(exc):
        _call(op, x, kw)
    return None


@needs_fenv
def test_fp_probe_sees_numpy_flags():
    """The probe works: NumPy itself leaves flags behind (so the checks
    below can fail)."""
    x = np.array([-1000.0, 1000.0])
    fe_clear()
    with np.errstate(all="ignore"):
        np.exp(x)
    got = fe_test()
    fe_clear()
    assert got & FE["underflow"] and got & FE["overflow"], hex(got)


@needs_fenv
@pytest.mark.parametrize("case", range(len(_fp_cases())))
def test_fp_flags_left_as_they_were(case):
    label, op, x, kw, exc = _fp_cases()[case]
    state0 = x86_state() if X86_GLIBC else None
    try:
        fe_clear()
        if state0 is not None:
            x86_set_mxcsr(state0[2] & ~0x3F)     # the denormal flag too
        _run_case(op, x, kw, exc)
        raised = fe_test()
        state1 = x86_state() if X86_GLIBC else None
        fe_raise_all()
        _run_case(op, x, kw, exc)
        kept = fe_test()
    finally:
        fe_clear()
    assert raised == 0, f"{op.name} {label}: the call left flags {raised:#x}"
    assert kept == FE_ALL, f"{op.name} {label}: the call cleared flags ({kept:#x} left)"
    if state0 is not None:
        # all of MXCSR (the denormal flag too) and the x87 status word
        assert state1[2] == state0[2] & ~0x3F, (label, hex(state0[2]), hex(state1[2]))
        assert state1[1] & 0x3F == 0, (label, hex(state1[1]))


def _rounding_probe():
    """Three sums that tell the four rounding modes apart."""
    one, e60, e53 = np.float64(1.0), np.float64(2.0**-60), np.float64(2.0**-53)
    return (float(one + e60), float(-one - e60), float(one + (e53 + e60)))


@needs_fenv
@pytest.mark.parametrize("mode", ["upward", "downward", "towardzero"])
def test_rounding_mode_kept_and_not_used(mode):
    cases = [c for c in _fp_cases() if c[4] is None]
    want = [_run_case(op, x, kw, None) for _, op, x, kw, _ in cases]
    probe = _rounding_probe()
    assert _LIBM.fegetround() == ROUND["nearest"]
    assert _LIBM.fesetround(ROUND[mode]) == 0
    try:
        probe_mode = _rounding_probe()
        got, modes = [], []
        for _, op, x, kw, _ in cases:
            got.append(_run_case(op, x, kw, None))
            modes.append(_LIBM.fegetround())
    finally:
        _LIBM.fesetround(ROUND["nearest"])
    assert probe_mode != probe, "the rounding mode did not take effect"
    for (label, op, *_), g, w, m in zip(cases, got, want, modes):
        assert m == ROUND[mode], f"{op.name} {label}: rounding mode changed to {m:#x}"
        assert_bitwise(g, w, err_msg=f"{op.name} {label} under {mode}")


@pytest.mark.skipif(not X86_GLIBC, reason="MXCSR through glibc's fenv_t: x86-64 Linux only")
def test_ftz_daz_set_by_caller_kept_and_not_used():
    cw, sw, csr0 = x86_state()
    assert cw & 0x3F == 0x3F and csr0 & 0x1F80 == 0x1F80, (hex(cw), hex(csr0))  # layout check
    sub = np.array([0.0, -740.0])                  # exp(-740): a subnormal output
    tiny = np.array([5e-324])                      # a subnormal input
    cases = [(op, x) for op in OPS for x in (sub, np.array([0.0, -100.0], np.float32), tiny,
                                             np.array([5e-324, 0.0, -5e-324]),
                                             np.array([[0.0, -740.0]] * 3).T)]
    want = [op.fn(x) for op, x in cases]
    assert csoftmax.softmax(sub)[1] > 0 and csoftmax.logsumexp(tiny) == 5e-324
    x86_set_mxcsr(csr0 | MXCSR_FTZ | MXCSR_DAZ)
    try:
        flushed = float(np.float64(5e-324) * np.float64(1.0)) == 0.0   # the probe: DAZ is on
        got, csrs = [], []
        for op, x in cases:
            got.append(op.fn(x))
            csrs.append(x86_state()[2])
    finally:
        x86_set_mxcsr(csr0)
    assert flushed
    for (op, x), g, w, c in zip(cases, got, want, csrs):
        assert c & (MXCSR_FTZ | MXCSR_DAZ) == MXCSR_FTZ | MXCSR_DAZ, (op.name, hex(c))
        assert_bitwise(g, w, err_msg=f"{op.name} {x} under FTZ/DAZ")


# --------------------------------------------------------------------------
# other threads
# --------------------------------------------------------------------------

def _writer(x, base, values, stop, seed, counter):
    """Until stop is set: writes a random special or ordinary value into one
    element of x, or into a whole row (NumPy releases the GIL for that),
    and puts the previous one back, so that x keeps changing but stays
    mostly as it was (rows then change between the kernel's passes)."""
    rng = np.random.default_rng(seed)
    flat, fbase = x.reshape(-1), base.reshape(-1)
    prev, n = None, 0
    while not stop.is_set():
        v = values[rng.integers(len(values))]
        if rng.integers(4):
            i = rng.integers(flat.size)
            flat[i] = v
            cur = (flat, fbase, i)
        else:
            i = rng.integers(x.shape[0])
            x[i] = v
            cur = (x, base, i)
        if prev is not None:
            a, b, j = prev
            a[j] = b[j]
        prev = cur
        n += 1
    counter.append(n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_input_mutated_by_another_thread(dtype):
    """No crash, no write outside out, out of the right shape and dtype: the
    values are unspecified while x changes. Afterwards the same calls on a
    quiet x are correct (no state was corrupted)."""
    fi = np.finfo(dtype)
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, fi.max, -fi.max, fi.smallest_subnormal,
                       1.0, -740.0, 80.0, 1e30 if dtype == np.float32 else 1e300], dtype)
    n = 1031
    lse_zero = -np.log(np.float64(n))          # logsumexp of the row ~ 0: the precise path
    long = 3 * 65536 + 5        # 2 long rows: the threads split each row by chunks
    cases = [  # (shape, view, axis, fill, num_threads)
        ((48, n), lambda a: a, -1, "normal", 1),
        ((48, n), lambda a: a, 0, "normal", 1),
        ((48, n), lambda a: a[:, ::-3], -1, "normal", 1),
        ((4096, 7), lambda a: a, -1, "normal", 1),
        ((48, n), lambda a: a, -1, "cancel", 1),
        ((n, 48), lambda a: a, 0, "cancel", 1),
        ((2, long), lambda a: a, -1, "normal", 2),
        ((4096, 64), lambda a: a, -1, "normal", 2),
        ((4096, 64), lambda a: a, 0, "normal", 2),
    ]
    rng = np.random.default_rng(11)
    writes = []
    for shape, view, axis, fill, nt in cases:
        base = rng.standard_normal(shape).astype(dtype) * 5 if fill == "normal" \
            else np.full(shape, lse_zero, dtype)
        want = [op.fn(view(base.copy()), axis=axis) for op in OPS]
        x = base.copy()
        v = view(x)
        stop = threading.Event()
        t = threading.Thread(target=_writer, args=(x, base, values, stop, 5, writes))
        t.start()
        try:
            # "cancel": logsumexp takes the double-double path (precise.c),
            # which reads the row again after the max: many rounds of it
            for op in (OPS * 8 if fill == "normal" else [OPS[2]] * 80):
                r = np.asarray(op.fn(v, axis=axis, num_threads=nt))
                assert r.shape == out_shape(op, v.shape, axis) and r.dtype == dtype
                if not op.reduces:
                    out = np.full(v.shape, 7.0, dtype)
                    assert op.fn(v, axis=axis, out=out, num_threads=nt) is out
                    y = v.copy()
                    assert op.fn(y, axis=axis, out=y, num_threads=nt) is y
        finally:
            stop.set()
            t.join()
        x[...] = base
        for op, w in zip(OPS, want):
            assert_bitwise(op.fn(v, axis=axis), w, err_msg=f"{op.name} {shape} {axis} {fill}")
    assert sum(writes) > 100, writes       # the writer did run during the calls


def test_resize_refused_while_a_call_runs():
    """x.resize() with NumPy's default refcheck=True is refused during a
    call, because the call holds a reference to x; once the call is over the
    same resize succeeds (refcheck=False is the caller opting out of this
    protection: not tested, it frees the buffer under the kernel)."""
    n = 2**23
    x = np.zeros(n)
    box = [x]
    inside = threading.Event()
    result = {}

    def worker():
        y = box.pop()
        inside.set()
        result["r"] = csoftmax.logsumexp(y)      # ~10-100 ms of GIL-free work
        del y

    t = threading.Thread(target=worker)
    t.start()
    inside.wait()
    refused = 0
    while t.is_alive():
        try:
            x.resize(10)
        except ValueError as e:
            assert "referenced" in str(e)
            refused += 1
        else:
            break                    # only possible once the worker dropped its reference
    t.join()
    assert refused > 0
    want = np.log(np.float64(n))
    assert int(ulp_diff(result["r"], want, np.float64)) <= 2, result["r"]
    gc.collect()
    if x.size != 10:
        x.resize(10)                 # no call holds x now: allowed
    assert x.shape == (10,)


# --------------------------------------------------------------------------
# large sizes: no 32-bit index overflow
# --------------------------------------------------------------------------

needs_64bit = pytest.mark.skipif(sys.maxsize < 2**40, reason="needs a 64-bit address space")
MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0)


def _zero_pages(nbytes, writeable=False):
    """An anonymous private mapping: reads of untouched pages map the shared
    zero page (no memory is used); writes cost one page each."""
    if not sys.platform.startswith("linux"):
        pytest.skip("anonymous mappings of zero pages: Linux only")
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writeable else 0)
    try:
        return mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE,
                         prot=prot)
    except (OSError, ValueError, OverflowError) as e:
        pytest.skip(f"cannot map {nbytes} bytes: {e}")


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# R * C > 2**31 float32 elements (8 GiB of address space); element offsets
# up to (R - 1) * C >= 2**31 along axis 0, so byte offsets beyond 2**33
R, C = 2**14 + 1, 2**17 + 1


@pytest.fixture(scope="module")
def huge_zeros():
    m = _zero_pages(R * C * 4)
    a = np.frombuffer(m, np.float32, count=R * C).reshape(R, C)
    assert not a.flags.writeable and a.size > 2**31 and (R - 1) * C >= 2**31
    yield a
    del a
    gc.collect()
    try:
        m.close()
    except BufferError:
        pass


def _f32_ulps(got, exact):
    return int(np.max(ulp_diff(np.asarray(got), np.float32(exact), np.float32)))


@needs_64bit
@pytest.mark.slow
def test_reduction_of_more_than_2_31_elements_zero_stride():
    """logsumexp of 2**31 + 5 ones through a zero-stride view: log(N) + 1,
    with no copy of the input (at most a few kB traced)."""
    mpmath = pytest.importorskip("mpmath")
    N = 2**31 + 5
    x = np.broadcast_to(np.float64(1.0), (N,))
    tracemalloc.start()
    try:
        got = csoftmax.logsumexp(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    want = float(mpmath.log(N) + 1)
    assert int(ulp_diff(got, want, np.float64)) <= 2, (got, want)
    assert peak < 2**20, f"the input was copied? {peak} bytes traced"


@needs_64bit
@pytest.mark.slow
def test_offsets_beyond_2_31_elements(huge_zeros):
    """Columns (strips, n-stride C) and rows (outer stride C) of an 8 GiB
    zero mapping: offsets (R - 1) * C >= 2**31 elements; exact answers. Also
    softmax and log_softmax into an out whose offsets are as large (written
    pages only: about 64 MiB)."""
    a = huge_zeros
    rss0 = _rss_mib()
    for width in (5, 130):                                # short rows; > one strip
        v = a[:, :width]
        assert _f32_ulps(csoftmax.logsumexp(v, axis=0), math.log(R)) <= 1
        assert _f32_ulps(csoftmax.logsumexp(v, axis=1), math.log(width)) <= 1
        assert _f32_ulps(csoftmax.logsumexp(v[::-1], axis=0), math.log(R)) <= 1
    assert _f32_ulps(csoftmax.logsumexp(a[:, :40], axis=1), math.log(40)) <= 1
    assert _rss_mib() - rss0 < 64, "reading zero pages used memory"
    m = _zero_pages(R * C * 4, writeable=True)
    try:
        big = np.frombuffer(m, np.float32, count=R * C).reshape(R, C)
        out = big[:, 7:7 + 40]
        r = csoftmax.softmax(a[:, :40], axis=0, out=out)
        assert r is out and np.all(out == np.float32(1 / R))     # exactly 1/R, rounded once
        assert np.all(big[:, 47] == 0) and np.all(big[:, 6] == 0)   # nothing beside it
        csoftmax.log_softmax(a[:, :40], axis=1, out=out)
        assert _f32_ulps(out, -math.log(40)) <= 1
        csoftmax.log_softmax(a[::-1, 3:43], axis=0, out=out[::-1])
        assert _f32_ulps(out, -math.log(R)) <= 1
        del big, out, r
    finally:
        gc.collect()
        m.close()


@needs_64bit
@pytest.mark.slow
def test_unit_stride_reduction_of_more_than_2_31_elements(huge_zeros):
    """axis=None over the whole mapping: one row of R * C > 2**31 elements
    at stride 1 (an int index would wrap at 2**31)."""
    got = csoftmax.logsumexp(huge_zeros, axis=None)
    assert _f32_ulps(got, math.log(R * C)) <= 1, got


@needs_64bit
@pytest.mark.skipif(os.environ.get("CSOFTMAX_BIGMEM") != "1",
                    reason="needs 8.6 GB of real memory: set CSOFTMAX_BIGMEM=1")
def test_softmax_row_of_more_than_2_31_elements_real_memory():
    """softmax and log_softmax of one row of N > 2**31 zeros (read from zero
    pages) into a real float32 out of 8.6 GB: every entry 1/N (rounded
    once), then -log(N)."""
    N = 2**31 + 17
    m = _zero_pages(N * 4)
    x = np.frombuffer(m, np.float32, count=N)
    out = np.empty(N, np.float32)
    assert csoftmax.softmax(x, out=out) is out
    assert out.min() == out.max() == np.float32(1 / N)       # no N-sized temporaries
    csoftmax.log_softmax(x, out=out)
    assert out.min() == out.max()
    assert _f32_ulps(out[:1], -math.log(N)) <= 1
    del x, out
    gc.collect()
    m.close()


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_zero_stride_out_of_more_than_2_31_elements_refused(op):
    """A writeable zero-stride out of 2**31 + 5 elements: refused before any
    work or allocation; its one real element untouched."""
    N = 2**31 + 5
    x = np.broadcast_to(np.float32(1.0), (N,))
    base = np.full(1, 7.0, np.float32)
    shape = out_shape(op, (N,))
    out = as_strided(base, shape, (0,) * len(shape), writeable=True)
    if op.reduces:       # logsumexp of a 1-D input: out is 0-d, build a 2-D case
        x = np.broadcast_to(np.float32(1.0), (N, 2))
        out = as_strided(base, (N,), (0,), writeable=True)
    with pytest.raises(ValueError, match=rf"^{op.name}: out has overlapping elements"):
        op.fn(x, out=out)
    assert base[0] == 7.0


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_result_too_big_to_allocate(op):
    """A broadcast input whose result would be terabytes: MemoryError from
    the allocation, nothing else; with a wrong out, the out error first."""
    x = np.broadcast_to(np.float64(0.0), (2**40, 2))
    with pytest.raises(MemoryError):
        op.fn(x, axis=1)
    bad = sentinel((3,), np.float64)
    before = bad.tobytes()
    with pytest.raises(ValueError, match=rf"^{op.name}: out has shape \(3,\), expected"):
        op.fn(x, axis=1, out=bad)
    assert bad.tobytes() == before


# --------------------------------------------------------------------------
# the remaining rows of the bad-input matrix
# --------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_huge_axis_values(op):
    x = np.arange(6.0).reshape(2, 3)
    out = sentinel(out_shape(op, x.shape), np.float64)
    for axis in (2**31, -(2**31) - 1, 2**63, 2**100, -(2**100), np.uint64(2**64 - 1),
                 np.int64(-(2**63)), (0, 2**64)):
        bad = axis[1] if isinstance(axis, tuple) else axis
        raises_untouched(op, AxisError, rf"axis {int(bad)} is out of bounds for array of "
                         "dimension 2", x, out=out, axis=axis)


class _ArrayRaises:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("the caller's own error")


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_inputs_numpy_cannot_convert(op):
    out = sentinel((2,), np.float64)
    raises_untouched(op, ValueError, r"x cannot be converted to an array: .*inhomogeneous",
                     [[1.0, 2.0], [3.0]], out=out)
    raises_untouched(op, ValueError, "x cannot be converted to an array",
                     [1.0, [2.0, 3.0]])
    before = out.tobytes()
    with pytest.raises(RuntimeError, match="the caller's own error"):   # propagated as is
        op.fn(_ArrayRaises(), out=out)
    assert out.tobytes() == before
