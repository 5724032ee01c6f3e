#!/usr/bin/env python3
"""Fuzz harness for csoftmax (issue 7), driven by atheris (libFuzzer).

Each input (a byte string) is decoded into one call setup: an array (dtype,
shape, values with special values at chosen places, a layout of slices with
positive, negative and zero strides, transposed axes, a misaligned buffer,
read-only), an axis (valid or not), keepdims, and an out (none, fresh, odd
layout, x itself, a view overlapping x, wrong shape, dtype or type,
read-only, self-overlapping), and a num_threads (None, 1, 2, 3, 5 or an
invalid one). The last two bytes choose num_threads and, rarely (a last byte
of 0xFF), one axis of 16385 to 100003 elements, so that calls are split
among threads (by rows, strips, or a long row's chunks). softmax,
log_softmax and logsumexp are all called on it, and each call is checked:

* the error contract: the error is predicted from the documented rules
  (dtype, then axis, then out), and the call must raise exactly that type
  with a message starting "<function>: ", or succeed when none is
  predicted; on error x and out's whole buffer are unchanged byte for byte;
* the result: the right type, shape and dtype, out itself when given,
  bitwise equal to the result on a C-contiguous copy of x without out and
  with num_threads=1 (layout and thread-count independence, in place and
  overlap included), no byte written
  outside out, x unchanged unless out overlaps it; and that result within
  the documented ULP bounds of csoftmax._reference (float16/32/64; inputs
  of up to 4096 elements: the large ones are checked bitwise only).

Usage, from the repository root with the extension built in place (or
installed):
    python tests/fuzz/fuzz_csoftmax.py --time 60 CORPUS_DIR [SEED_DIR...]
    python tests/fuzz/fuzz_csoftmax.py --replay FILE...      (no atheris)
Other arguments are passed to libFuzzer (-runs=N, -artifact_prefix=DIR/).
tests/test_fuzz_corpus.py replays tests/fuzz/regressions/* and seeded
random inputs under plain pytest; a crash found by the fuzzer is kept there.
"""

import os
import sys

# run as a script: the checkout's csoftmax (in-place build) comes first
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if __name__ == "__main__" and os.path.isdir(os.path.join(_ROOT, "csoftmax")):
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

import csoftmax  # noqa: E402
from csoftmax import _reference  # noqa: E402

AxisError = np.exceptions.AxisError
NAMES = ("softmax", "log_softmax", "logsumexp")
FUNCS = (csoftmax.softmax, csoftmax.log_softmax, csoftmax.logsumexp)
REFS = (_reference.softmax, _reference.log_softmax, _reference.logsumexp)
ULP = {"softmax": 4, "log_softmax": 4, "logsumexp": 2}     # float64; float32/16: 1
STATS = {"inputs": 0, "calls": 0, "ok": 0, "errors": 0, "big": 0}


class Source:
    """Deterministic reader of the fuzzer's bytes (zeros once exhausted)."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def byte(self):
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        return 0

    def int(self, n):
        if n <= 1:
            return 0
        v = self.byte() if n <= 256 else self.byte() | self.byte() << 8 | self.byte() << 16
        return v % n

    def flag(self):
        return self.byte() & 1

    def pick(self, seq):
        return seq[self.int(len(seq))]


GOOD = [np.dtype(np.float64)] * 5 + [np.dtype(np.float32)] * 5 + [
    np.dtype(">f8"), np.dtype(">f4"), np.dtype(np.float16), np.dtype(np.longdouble),
    np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32), np.dtype(np.int64),
    np.dtype(np.uint8), np.dtype(np.uint32), np.dtype(np.uint64), np.dtype(np.bool_),
    np.dtype(">i4")]
BAD = [np.dtype(np.complex64), np.dtype(np.complex128), np.dtype(object), np.dtype("U3"),
       np.dtype("S3"), np.dtype("M8[s]"), np.dtype("m8[s]"), np.dtype("V8"),
       np.dtype([("a", "f8"), ("b", "f4")])]
DIMS = [0, 1, 1, 2, 2, 3, 3, 4, 5, 7, 8, 9, 16, 17, 33, 130]
BIG_DIMS = [16385, 40000, 65537, 100003]     # past the thread grain (32768 elements)
THREADS = [None, 1, 2, 3, 5]
BAD_THREADS = [(0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError),
               ("2", TypeError), (np.int64(2), None)]      # the last one is valid


def thread_choice(b):
    """(num_threads, the exception it must raise or None) from one byte."""
    return (THREADS[b % len(THREADS)], None) if b < 250 else BAD_THREADS[b - 250]


def specials(dt):
    fi = np.finfo(dt)
    snan = np.array([0x7FF0000000000001], np.uint64).view(np.float64)[0]
    return [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, float(fi.max), -float(fi.max),
            float(fi.tiny), float(fi.smallest_subnormal), -float(fi.smallest_subnormal),
            snan, 1e-40, 88.7, -745.0, 709.7, -1e4, 1.0, -1.0, 1e30]


def build_values(src, shape, dt):
    """Values of the logical array (in dt; raw bit patterns too)."""
    size = int(np.prod(shape, dtype=np.int64))
    rng = np.random.default_rng(src.byte() | src.byte() << 8)
    kind = src.int(5)
    wdt = dt if dt.kind == "f" else np.dtype(np.float64)
    with np.errstate(all="ignore"):
        if kind == 0:
            v = rng.standard_normal(size) * src.pick([1.0, 10.0, 100.0, 1e3, 1e30, 1e300])
        elif kind == 1:
            v = rng.integers(-60, 60, size).astype(np.float64)
        elif kind == 2:
            v = np.full(size, src.pick([0.0, -np.log(max(size, 1)), 1e308, -3e38, 5.0]))
        elif kind == 3 and wdt.itemsize in (2, 4, 8):
            bits = rng.integers(0, 2**63, size, dtype=np.int64, endpoint=False).astype(np.uint64)
            bits ^= rng.integers(0, 2, size, dtype=np.uint64) << np.uint64(63)
            ui = {2: np.uint16, 4: np.uint32, 8: np.uint64}[wdt.itemsize]
            v = (bits >> np.uint64(64 - 8 * wdt.itemsize)).astype(ui).view(
                wdt.newbyteorder("=")).astype(np.float64)
        else:
            v = rng.uniform(-800, 50, size)
        for _ in range(src.int(9)):
            if size:
                v[src.int(size)] = src.pick(specials(np.float64))
        if dt.kind in "iub":
            info = np.iinfo(dt) if dt.kind != "b" else None
            v = np.nan_to_num(v, nan=0.0, posinf=1e30, neginf=-1e30)
            if info is not None:
                v = np.clip(v, max(info.min, -2**62), min(info.max, 2**62))
            return v.astype(dt).reshape(shape)
        if dt.kind == "f":
            return v.astype(dt).reshape(shape)
    if dt.kind == "O":
        return v.astype(object).reshape(shape)
    return np.zeros(shape, dt)


def build_x(src, shape, dt, values):
    """A view with x's values and a layout chosen by the bytes; also its
    backing buffer (a 1-D ndarray) when it has one of its own."""
    nd = len(shape)
    layout = src.int(6)
    if nd == 0 or layout == 0 or dt.kind in "OUSVMm":
        x = values.copy()
        return x, x
    if layout == 1:                              # steps (incl. negative), permuted axes
        steps = [src.pick([1, 1, 2, 3, -1, -2]) for _ in range(nd)]
        perm = list(range(nd))
        if src.flag():
            perm = perm[1:] + perm[:1]
        bshape = [shape[p] * abs(steps[p]) + 1 for p in perm]
        base = np.zeros(bshape, dt).transpose(np.argsort(perm))
        v = base[tuple(slice(None, None, s) for s in steps)]
        v = v[tuple(slice(0, n) for n in shape)]
        v[...] = values
        return v, None
    if layout == 2:                              # zero stride: broadcast along some axes
        small = values[tuple(slice(0, 1) if src.flag() else slice(None) for _ in range(nd))]
        return np.broadcast_to(small, shape), None
    if layout == 3:                              # misaligned (offset inside an element)
        n = values.size
        buf = np.zeros(n * dt.itemsize + dt.itemsize, np.uint8)
        off = 1 + src.int(max(dt.itemsize - 1, 1))
        v = np.frombuffer(buf.data, dt, n, off).reshape(shape)
        v[...] = values
        return v, None
    if layout == 4:                              # Fortran order
        return np.asfortranarray(values), None
    v = values.copy()                            # read-only
    v.flags.writeable = False
    return v, None


def build_axis(src, nd):
    kind = src.int(16)
    if kind <= 3:
        return "default"
    if kind == 4:
        return None
    if kind <= 8:
        return src.int(2 * nd + 2) - nd - 1 if nd else ()           # mostly valid
    if kind == 9:
        return tuple(src.int(2 * nd + 1) - nd for _ in range(src.int(nd + 2)))
    if kind == 10:
        return src.pick([2**31, -(2**40), 2**64, np.uint64(2**64 - 1)])
    if kind == 11:
        return src.pick([True, False, np.True_])
    if kind == 12:
        return src.pick([1.0, "0", [0], slice(None), (0, None), np.float32(0)])
    if kind == 13:
        return np.intp(src.int(nd + 1) - 1) if nd else ()
    if kind == 14:
        return ()
    return tuple(range(nd))


def expected_error(op, x, axis, out, keepdims, nt_exc=None):
    """(exception type, result dtype, result shape) by the documented rules;
    the type is None when the call must succeed. num_threads is checked
    first (nt_exc: the error it raises, if any)."""
    if nt_exc is not None:
        return nt_exc, None, None
    dt = x.dtype
    if isinstance(axis, str) and axis == "default":
        axis = -1
    if dt.kind not in "fiub":
        return TypeError, None, None
    rdt = np.dtype(np.float64) if dt.kind != "f" else dt.newbyteorder("=")
    nd = x.ndim
    if axis is None:
        red = list(range(nd))
    else:
        items = axis if isinstance(axis, tuple) else (axis,)
        red = []
        for a in items:
            if isinstance(a, (bool, np.bool_)):
                return TypeError, None, None
            try:
                ai = a.__index__()
            except (AttributeError, TypeError):
                return TypeError, None, None
            if ai < -nd or ai >= nd:
                return AxisError, None, None
            ai %= nd
            if ai in red:
                return ValueError, None, None
            red.append(ai)
    if op == 2:
        rshape = tuple(1 if i in red else x.shape[i] for i in range(nd)
                       if keepdims or i not in red)
    else:
        rshape = x.shape
    if out is not None:
        if not isinstance(out, np.ndarray):
            return TypeError, rdt, rshape
        if out.dtype != rdt:
            return TypeError, rdt, rshape
        if out.shape != rshape:
            return ValueError, rdt, rshape
        if not out.flags.writeable:
            return ValueError, rdt, rshape
        if out.size > 1 and self_overlapping(out):
            return ValueError, rdt, rshape
    return None, rdt, rshape


def self_overlapping(a):
    dims = sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1)
    extent = a.itemsize
    for s, n in dims:
        if s < extent:
            return True
        extent += s * (n - 1)
    return False


def build_out(src, op, x, rdt, rshape):
    """(out, its backing byte buffer or None, description)."""
    kind = src.int(12)
    if kind <= 2 or rdt is None:
        return None, None, "none"
    if kind == 3:                                # fresh, contiguous
        buf = np.full(max(int(np.prod(rshape)), 1) * rdt.itemsize + 16, 0xA5, np.uint8)
        o = np.frombuffer(buf.data, rdt, int(np.prod(rshape)), 8).reshape(rshape)
        return o, buf, "fresh"
    if kind == 4 and rshape:                     # strided, negative, misaligned
        step = src.pick([2, -1, -2, 3])
        n = int(np.prod(rshape))
        off = src.pick([0, 0, 1])
        buf = np.full((n * abs(step) + 2) * rdt.itemsize, 0xA5, np.uint8)
        flat = np.frombuffer(buf.data, rdt, n * abs(step) + 1, off)
        flat = flat[:n * abs(step)][::step] if step > 0 else flat[1:][::step][:n]
        return flat.reshape(rshape) if flat.size == n else None, buf, "strided"
    if kind == 5:                                # x itself
        return x, None, "x"
    if kind == 6:                                # wrong shape
        bad = tuple(rshape) + (1,) if src.flag() or not rshape else \
            tuple(rshape[:-1]) + (rshape[-1] + 1,)
        return np.full(bad, 7, rdt), None, "wrong shape"
    if kind == 7:                                # wrong dtype
        odt = src.pick([np.float32, np.float64, np.int64, np.dtype(">f8"), np.float16,
                        np.longdouble, np.complex128])
        return np.full(rshape, 7, odt), None, "dtype"
    if kind == 8:                                # read-only
        o = np.full(rshape, 7, rdt)
        o.flags.writeable = False
        return o, None, "read-only"
    if kind == 9 and rshape:                     # writeable zero stride
        base = np.full(4, 7, rdt)
        return as_strided(base, rshape, (0,) * len(rshape), writeable=True), None, "zero"
    if kind == 10:
        return src.pick([[0.0], 0.0, (1, 2), memoryview(b"12345678")]), None, "not ndarray"
    return "overlap", None, "overlap"


def overlapping_pair(src, x, rshape, rdt):
    """x' (x's values) and out sharing one buffer, shifted by a few
    elements (or reversed), as for numpy's test_mem_overlap."""
    n, m = x.size, int(np.prod(rshape))
    k = src.int(5)
    buf = np.full(n + m + 8, 0.0, rdt)
    xs = buf[k:k + n]
    xs[...] = np.ascontiguousarray(x, dtype=rdt).reshape(-1)
    start = src.int(n + 4)
    o = buf[start:start + m]
    if src.flag():
        o = o[::-1]
    if o.size != m:
        return None, None, None
    return xs.reshape(x.shape), o.reshape(rshape), buf


def snapshot(a):
    return None if a is None else bytes(np.ascontiguousarray(a).view(np.uint8).reshape(-1))


def same_values(got, want):
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    if got.dtype == np.longdouble and got.dtype.itemsize > 8:    # padding bytes
        return (np.array_equal(got, want, equal_nan=True)
                and np.array_equal(np.signbit(got), np.signbit(want)))
    return snapshot(got) == snapshot(want)


def ulps(a, b, dt):
    it = {2: np.int16, 4: np.int32, 8: np.int64}[dt.itemsize]
    ia = np.asarray(a, dt).view(it).astype(np.int64)
    ib = np.asarray(b, dt).view(it).astype(np.int64)
    top = np.int64(np.iinfo(it).min)
    ia = np.where(ia < 0, top - ia, ia)
    ib = np.where(ib < 0, top - ib, ib)
    return np.abs(ia - ib)


# the twin needs a real long double: valgrind, for one, computes x87 long
# double arithmetic in double (then only the other checks run)
LONGDOUBLE_OK = np.longdouble(1) + np.longdouble(2.0**-60) != np.longdouble(1) \
    or np.dtype(np.longdouble).itemsize == 8


def check_reference(op, xc, axis, keepdims, want):
    """want (the result on the contiguous copy xc) against the long double
    twin within the documented bounds."""
    rdt = np.asarray(want).dtype
    if rdt.itemsize > 8 or want is None or not LONGDOUBLE_OK:
        return
    xr = xc.astype(rdt) if xc.dtype.kind != "f" else xc.astype(xc.dtype.newbyteorder("="))
    if xr.dtype == np.float16:
        xr = xr.astype(np.float32)
    kw = {} if isinstance(axis, str) and axis == "default" else {"axis": axis}
    ref = REFS[op](xr, keepdims=keepdims, **kw) if op == 2 else REFS[op](xr, **kw)
    with np.errstate(all="ignore"):
        ref = np.asarray(ref).astype(rdt)
    got = np.asarray(want)
    gn, rn = np.isnan(got), np.isnan(ref)
    assert np.array_equal(gn, rn), f"{NAMES[op]}: NaN pattern {got} vs reference {ref}"
    fin = np.isfinite(ref)
    assert np.array_equal(got[~fin & ~rn], ref[~fin & ~rn]), f"{NAMES[op]}: inf differ"
    if not fin.any():
        return
    assert np.all(np.isfinite(got[fin])), f"{NAMES[op]}: non-finite {got} vs {ref}"
    bound = ULP[NAMES[op]] if rdt == np.float64 else 1
    d = ulps(got[fin], ref[fin], rdt)
    if op == 2:
        # the twin's own error where m + log1p(T) cancels (long double is
        # 80-bit on x86): 8 (|m| + |result|) eps_longdouble, m the row's max
        with np.errstate(all="ignore"):
            xm = np.where(np.isnan(xr), -np.inf, xr.astype(np.float64))
            m = np.max(xm, initial=-np.inf, keepdims=keepdims, axis=kw.get("axis", -1))
            slack = 8 * (np.abs(m[fin]) + np.abs(got[fin].astype(np.float64))) * float(
                np.finfo(np.longdouble).eps)
            err = np.abs(got[fin].astype(np.float64) - ref[fin].astype(np.float64))
        d = np.where(err <= slack, 0, d)
    assert d.max() <= bound, f"{NAMES[op]}: {d.max()} ULP > {bound}: {got} vs {ref}"


def walk_order_differs(x, axis):
    """True when the reduced axes (length > 1), which the layer merges in
    order of decreasing |stride|, are not in increasing axis order."""
    nd = x.ndim
    if isinstance(axis, str) and axis == "default" or nd < 2:
        return False
    items = range(nd) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    try:
        red = sorted({int(a) % nd for a in items})
    except (TypeError, ValueError):
        return False
    red = [a for a in red if x.shape[a] > 1]
    by_stride = sorted(red, key=lambda a: -abs(x.strides[a]))
    return by_stride != red


def close_within_bounds(op, got, want, xc, axis, keepdims):
    """got and want, two results of the same row in different summation
    orders: the same NaN/inf pattern and within twice the bound (logsumexp:
    plus the double-double path's 2**-100 |m|)."""
    g, w = np.asarray(got), np.asarray(want)
    assert np.array_equal(np.isnan(g), np.isnan(w)), f"{NAMES[op]}: NaN differ {g} {w}"
    fin = np.isfinite(w)
    assert np.array_equal(g[~fin & ~np.isnan(w)], w[~fin & ~np.isnan(w)])
    if not fin.any():
        return
    bound = 2 * (ULP[NAMES[op]] if w.dtype == np.float64 else 1)
    d = ulps(g[fin], w[fin], w.dtype)
    if op == 2:
        with np.errstate(all="ignore"):
            xm = np.where(np.isnan(xc), -np.inf, xc.astype(np.float64))
            m = np.max(xm, initial=-np.inf, keepdims=keepdims,
                       axis=None if axis is None else axis)
            err = np.abs(g[fin].astype(np.float64) - w[fin].astype(np.float64))
            d = np.where(err <= 2.0**-99 * np.abs(m[fin]) + 2.0**-1060, 0, d)
    assert d.max() <= bound, f"{NAMES[op]}: {d.max()} ULP between memory and C order"


def call(op, x, axis, keepdims, out, nt=None):
    kw = {} if nt is None else {"num_threads": nt}
    if not (isinstance(axis, str) and axis == "default"):
        kw["axis"] = axis
    if op == 2 and keepdims:
        kw["keepdims"] = True
    if out is not None:
        kw["out"] = out
    return FUNCS[op](x, **kw)


def check_one(src, op, x0, axis, keepdims, threads=(None, None)):
    name = NAMES[op]
    if op == 2 and x0.dtype.kind == "c" and x0.dtype.itemsize <= 16:
        return   # logsumexp takes complex64/128 as scipy does (issue 8): test_logsumexp_b.py
    nt, nt_exc = threads
    exc, rdt, rshape = expected_error(op, x0, axis, None, keepdims)
    x = x0
    out, obuf, okind = build_out(src, op, x, rdt, rshape)
    if isinstance(out, str):                     # "overlap"
        if exc is None and x.size and x.dtype.kind in "fiub" and rdt.itemsize <= 8 \
                and x.dtype == rdt:
            x, out, _ = overlapping_pair(src, x0, rshape, rdt)
        else:
            out = None
        if out is None:
            x, okind = x0, "none"
    exc, rdt, rshape = expected_error(op, x, axis, out, keepdims, nt_exc)
    xc = np.array(x, copy=True, order="C")
    x_before = snapshot(x) if x.dtype.kind != "O" else None
    out_before = snapshot(obuf if obuf is not None else out) \
        if isinstance(out, np.ndarray) else None
    shares = isinstance(out, np.ndarray) and np.shares_memory(x, out)
    STATS["calls"] += 1
    try:
        res = call(op, x, axis, keepdims, out, nt)
    except (TypeError, ValueError, MemoryError) as e:
        STATS["errors"] += 1
        assert exc is not None, f"{name}: unexpected {type(e).__name__}: {e} " \
            f"(x {x.dtype} {x.shape} {x.strides}, axis {axis!r}, out {okind})"
        assert isinstance(e, exc), f"{name}: {type(e).__name__} ({e}), expected {exc.__name__}"
        assert str(e).startswith(f"{name}: "), f"message does not name the function: {e}"
        if x_before is not None:
            assert snapshot(x) == x_before, f"{name}: x changed by a failed call"
        if out_before is not None:
            now = snapshot(obuf if obuf is not None else out)
            assert now == out_before, f"{name}: out written by a failed call ({e})"
        return
    STATS["ok"] += 1
    assert exc is None, f"{name}: no error, expected {exc.__name__} (x {x.dtype} {x.shape}, " \
        f"axis {axis!r}, out {okind}, num_threads {nt!r})"
    if out is not None:
        assert res is out, f"{name}: did not return out"
    r = np.asarray(res)
    assert r.dtype == rdt and r.shape == rshape, (name, r.dtype, rdt, r.shape, rshape)
    if out is None and rshape == ():
        assert isinstance(res, np.generic), f"{name}: 0-d result is {type(res)}"
    if not shares and x_before is not None:
        assert snapshot(x) == x_before, f"{name}: x changed"
    want = call(op, xc, axis, keepdims, None, 1)
    if walk_order_differs(x, axis) and r.dtype.itemsize <= 8 and rdt.kind == "f":
        # several reduced axes walked in memory order, not in C order (a
        # Fortran array, permuted axes: documented): the sums are taken in
        # another order, so within the bounds of each other, not bitwise
        close_within_bounds(op, r, want, xc, axis, keepdims)
    else:
        assert same_values(r, want), f"{name}: not bitwise equal to the contiguous result " \
            f"(x {x.dtype} {x.shape} {x.strides}, axis {axis!r}, out {okind}, " \
            f"num_threads {nt!r})\n{r}\n{want}"
    if obuf is not None:                         # nothing written beside out
        mask = np.zeros(obuf.size, bool)
        start = out.__array_interface__["data"][0] - obuf.__array_interface__["data"][0]
        as_strided(mask[start:], out.shape + (out.itemsize,), out.strides + (1,))[...] = True
        assert np.all(obuf[~mask] == 0xA5), f"{name}: bytes written outside out"
    if xc.size <= 4096:   # large inputs: the twin would take 80% of the time; their
        check_reference(op, xc, axis, keepdims, want)   # check is bitwise, against 1 thread


def run_one(data):
    """The property check for one input (raises AssertionError on a bug)."""
    STATS["inputs"] += 1
    src = Source(data)
    tail = bytes(data[-2:]).rjust(2, b"\0")
    threads = thread_choice(tail[0])
    dt = src.pick(GOOD) if src.int(8) else src.pick(BAD)
    nd = src.int(5)
    shape = [src.pick(DIMS) for _ in range(nd)]
    big = -1
    if tail[1] == 0xFF and nd:                   # rare: large enough for threads
        nd = min(nd, 2)                          # (strided bases stay small)
        shape = shape[:nd]
        big = tail[0] % nd
        shape[big] = BIG_DIMS[tail[0] % len(BIG_DIMS)]
        STATS["big"] += 1
    cap = 4096 if big < 0 else 1 << 18
    while int(np.prod(shape, dtype=np.int64)) > cap:
        other = [i for i in range(nd) if i != big]
        shape[max(other, key=lambda i: shape[i])] //= 2
    shape = tuple(shape)
    values = build_values(src, shape, dt)
    x, _ = build_x(src, shape, dt, values)
    axis = build_axis(src, nd)
    keepdims = bool(src.flag())
    for op in (0, 1, 2):
        check_one(src, op, x, axis, keepdims, threads)


def _replay(paths):
    """Runs every file (directories: every file in them); stops at the
    first failure, naming the file."""
    files = []
    for p in paths:
        files += sorted(os.path.join(p, f) for f in os.listdir(p)) if os.path.isdir(p) else [p]
    for f in files:
        with open(f, "rb") as fh:
            data = fh.read()
        try:
            run_one(data)
        except BaseException:
            print(f"FAILED on {f}", flush=True)
            raise
    print(f"replayed {len(files)} inputs ({STATS['calls']} calls: {STATS['ok']} results, "
          f"{STATS['errors']} errors as expected; {STATS['big']} inputs large enough for "
          f"threads): ok")


def main(argv):
    if argv[1:2] == ["--replay"]:
        _replay(argv[2:])
        return
    import atheris

    args = [argv[0]]
    it = iter(argv[1:])
    for a in it:
        if a == "--time":
            args.append(f"-max_total_time={int(next(it))}")
        else:
            args.append(a)
    if not any(a.startswith("-timeout=") for a in args):
        args.append("-timeout=60")
    g = globals()
    for k, v in list(g.items()):          # coverage feedback from the harness's branches
        if callable(v) and getattr(v, "__module__", None) == __name__ and \
                type(v).__name__ == "function" and k not in ("main", "_replay"):
            g[k] = atheris.instrument_func(v)
    print(f"fuzz_csoftmax: csoftmax {csoftmax.__version__} from {os.path.dirname(csoftmax.__file__)}"
          f", isa {csoftmax.isa_info()['active']}", flush=True)
    atheris.Setup(args, lambda data: g["run_one"](data))
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
