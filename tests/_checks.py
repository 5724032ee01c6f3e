"""Generic test bodies shared by test_softmax.py, test_log_softmax.py and
test_logsumexp.py (each file runs them for its own function)."""

from __future__ import annotations

import numpy as np

import _oracle
from conftest import (LAYOUTS, assert_bitwise, assert_same_result, axes_for, contiguous, make_view,
                      reference, ulp_bound, ulp_diff)

SHAPES = [(), (0,), (7,), (3, 0), (0, 4), (5, 6), (3, 4, 5), (2, 3, 1, 4)]
SHAPE_IDS = ["x".join(map(str, s)) or "0d" for s in SHAPES]

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64, np.dtype(">i4"), np.dtype("<u2")]


def result_shape(op, shape, axis, keepdims=False):
    if not op.reduces:
        return tuple(shape)
    nd = len(shape)
    red = _norm(axis, nd)
    return tuple(1 if i in red else s for i, s in enumerate(shape) if keepdims or i not in red)


def _norm(axis, nd):
    if axis is None:
        return tuple(range(nd))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % nd for a in axes)


def check_result_type(got, op, shape, axis, dtype):
    """ndarray of the right shape and dtype, or a NumPy scalar when 0-d."""
    want_shape = result_shape(op, shape, axis)
    if want_shape == ():
        assert isinstance(got, np.generic) and not isinstance(got, np.ndarray), type(got)
    else:
        assert type(got) is np.ndarray, type(got)
    assert got.shape == want_shape, (got.shape, want_shape)
    assert got.dtype == np.dtype(dtype), got.dtype


def check_layouts(op, dtype, shape, layout):
    """Every axis spec on one view: matches the reference, bitwise equal to
    the result on a contiguous copy; x untouched."""
    x = make_view(layout, shape, dtype, seed=11 * len(shape) + sum(shape))
    before = x.copy()
    for axis in axes_for(x.ndim):
        msg = f"{op.name} {layout} {shape} axis={axis}"
        got = op.fn(x, axis=axis)
        check_result_type(got, op, shape, axis, dtype)
        assert_same_result(got, reference(op, x, axis), ulp_bound(op.name, dtype), err_msg=msg)
        assert_bitwise(got, op.fn(contiguous(x), axis=axis), err_msg=msg)
    assert_bitwise(x, before)


def check_lengths(op, dtype, scale, seed):
    """Rows of every length 1..67, along axis -1 (rows), axis 0 (columns) and
    on a strided negative view; 5 rows each."""
    rng = np.random.default_rng(seed)
    tol = ulp_bound(op.name, dtype)
    for n in range(1, 68):
        base = (rng.standard_normal((5, 2 * n)) * scale).astype(dtype)
        if n % 3 == 0:
            base[:, 1::2] = base[:, ::2]  # ties: repeated maxima
        x = base[:, :n]
        views = [(x, -1), (contiguous(x.T), 0), (x.T, 0), (base[::-1, ::-2], 1),
                 (contiguous(x[0]), -1)]
        for v, axis in views:
            msg = f"{op.name} n={n} scale={scale} axis={axis} strides={v.strides}"
            got = op.fn(v, axis=axis)
            assert_same_result(got, reference(op, v, axis), tol, err_msg=msg)
            assert_bitwise(got, op.fn(contiguous(v), axis=axis), err_msg=msg)


def check_many_dims(op):
    """Up to NumPy's 64 dimensions; axis tuples that do not collapse into one
    stride (the copy path) and ones that do."""
    rng = np.random.default_rng(64)
    x12 = rng.standard_normal((2,) * 12)
    x64 = rng.standard_normal((1,) * 30 + (3,) + (1,) * 31 + (2, 4))
    for x, axes in ((x12, [None, tuple(range(0, 12, 2)), (1, 4, 7, 10), (10, 11), 5, -1,
                           tuple(range(12))]),
                    (x64, [None, 63, (30, 63), (0, 30, 62), -2, (5, 6, 7)])):
        for axis in axes:
            got = op.fn(x, axis=axis)
            assert_same_result(got, reference(op, x, axis), ulp_bound(op.name, x.dtype),
                               err_msg=f"ndim={x.ndim} axis={axis}")
            v = x[(slice(None, None, -1),) * x.ndim]
            assert_bitwise(op.fn(v, axis=axis), op.fn(contiguous(v), axis=axis))


def check_long_rows(op, dtype, n):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((2, n)) * 10).astype(dtype)
    got = op.fn(x)
    assert_same_result(got, reference(op, x, -1), ulp_bound(op.name, dtype), err_msg=f"n={n}")
    # the same rows as columns, and reversed
    got_t = op.fn(x.T, axis=0)
    assert_same_result(got_t, reference(op, x.T, 0), ulp_bound(op.name, dtype))
    assert_bitwise(got_t, op.fn(contiguous(x.T), axis=0))
    got_r = op.fn(x[:, ::-1])
    assert_bitwise(got_r, op.fn(contiguous(x[:, ::-1])))
    if op.name == "softmax":
        s = got.astype(np.float64).sum(axis=-1)
        assert np.all(np.abs(s - 1) <= n * np.finfo(dtype).eps), s


# --------------------------------------------------------------------------
# out= and in place
# --------------------------------------------------------------------------

OUT_LAYOUTS = ["C", "F", "sliced", "negative", "unaligned", "field", "permuted"]


def _sentinel_like_layout(layout, shape, dtype):
    o = LAYOUTS[layout](np.zeros(shape), dtype)
    o[...] = 12345.0
    return o


def check_out_layouts(op, dtype, out_layout):
    """out= in any writeable layout: returns out itself, same bytes as the
    result without out."""
    x = make_view("C", (3, 4, 5), dtype, seed=5)
    for axis in axes_for(3):
        want = op.fn(x, axis=axis)
        for keepdims in ((False, True) if op.reduces else (False,)):
            kw = {"keepdims": keepdims} if op.reduces else {}
            shape = result_shape(op, x.shape, axis, keepdims)
            out = _sentinel_like_layout(out_layout, shape, dtype)
            r = op.fn(x, axis=axis, out=out, **kw)
            assert r is out
            assert_bitwise(out.reshape(np.shape(want)), want,
                           err_msg=f"{op.name} out={out_layout} axis={axis}")


def check_inplace(op, dtype, layout):
    """softmax/log_softmax(x, out=x) equals the out-of-place result bitwise."""
    for axis in axes_for(3):
        x = make_view(layout, (4, 3, 6), dtype, seed=9)
        want = op.fn(x.copy(), axis=axis)
        r = op.fn(x, axis=axis, out=x)
        assert r is x
        assert_bitwise(x, want, err_msg=f"{op.name} in place {layout} axis={axis}")


def _overlap_cases(op, dtype):
    """(x, out, axis) where out partially overlaps x (or is x for lse)."""
    rng = np.random.default_rng(77)

    def fresh(shape):
        return (rng.standard_normal(shape) * 4).astype(dtype)

    cases = []
    if not op.reduces:
        a = fresh(40)
        cases.append((a[:-1], a[1:], -1))
        a = fresh(40)
        cases.append((a[1:], a[:-1], -1))
        a = fresh(33)
        cases.append((a, a[::-1], -1))
        for axis in (0, 1, None, (0, 1)):
            a = fresh((9, 9))
            cases.append((a, a.T, axis))
            a = fresh((9, 9))
            cases.append((a.T, a, axis))
            a = fresh((6, 8))
            cases.append((a[:, :-1], a[:, 1:], axis))
            a = fresh((6, 8))
            cases.append((a[1:], a[:-1], axis))
            a = fresh((7, 7))
            cases.append((a, a[::-1, ::-1], axis))
    else:
        a = fresh((6, 7))
        cases.append((a, a[:, 2], 1))          # out is a column of x
        a = fresh((6, 7))
        cases.append((a, a[2], 0))             # out is a row of x
        a = fresh((6, 6))
        cases.append((a, a[3], 1))             # out is a row of x
        a = fresh((7, 7))
        cases.append((a, a[:, 0], 1))
        a = fresh((7, 7))
        cases.append((a, a[::-1, 0], 1))
        a = fresh((7, 7))
        cases.append((a, a.reshape(-1)[::8], 0))   # the diagonal of x
        a = fresh((5, 5, 5))
        cases.append((a, a[:, 0, :], (1,)))
        a = fresh((5, 5, 5))
        cases.append((a, a[0, :, :].T, 0))
        a = fresh((5, 6))
        cases.append((a, a[2:3, 4:5], (0, 1)))  # keepdims-shaped out
    return cases


def check_partial_overlap(op, dtype):
    n = 0
    for x, out, axis in _overlap_cases(op, dtype):
        assert np.shares_memory(x, out)
        keepdims = op.reduces and out.ndim == x.ndim
        kw = {"keepdims": keepdims} if op.reduces else {}
        want = op.fn(x.copy(), axis=axis, **kw)
        r = op.fn(x, axis=axis, out=out, **kw)
        assert r is out
        assert_bitwise(out, want, err_msg=f"{op.name} overlap x{x.strides} out{out.strides} "
                                          f"axis={axis}")
        n += 1
    assert n >= 5


# --------------------------------------------------------------------------
# dtype policy
# --------------------------------------------------------------------------

def check_int_dtypes(op):
    rng = np.random.default_rng(3)
    for dt in INT_DTYPES + [np.bool_]:
        dt = np.dtype(dt)
        if dt.kind == "b":
            x = rng.standard_normal((4, 9)) > 0
        else:
            lo = 0 if dt.kind == "u" else -50
            x = rng.integers(lo, 50, (4, 9)).astype(dt)
        for axis in (-1, 0, None):
            got = op.fn(x, axis=axis)
            assert np.asarray(got).dtype == np.float64, dt
            assert_bitwise(got, op.fn(x.astype(np.float64), axis=axis), err_msg=str(dt))
    # extreme integers: exactly representable as floats of that magnitude
    for dt in (np.int64, np.uint64):
        info = np.iinfo(dt)
        x = np.array([info.min, info.max, 0], dt)
        assert_bitwise(op.fn(x), op.fn(x.astype(np.float64)))
    # out aliasing the bytes of an int64 / big-endian x: as if x were copied
    for x in (np.arange(-3, 9).reshape(3, 4), np.arange(12.0).reshape(3, 4).astype(">f8")):
        want = op.fn(x.copy(), axis=0)
        out = x.view(np.float64)[0] if op.reduces else x.view(np.float64)
        assert op.fn(x, axis=0, out=out) is out
        assert_bitwise(out, want)
    # Python lists of ints / bools
    assert_bitwise(op.fn([1, 2, 3]), op.fn(np.array([1.0, 2.0, 3.0])))
    assert_bitwise(op.fn([True, False]), op.fn(np.array([1.0, 0.0])))


def check_float16(op):
    """float16: computed in float32, within 1 float16 ULP of the float64
    result rounded to float16."""
    rng = np.random.default_rng(16)
    for scale in (1, 4, 30):
        x = (rng.standard_normal((40, 13)) * scale).astype(np.float16)
        for axis in (-1, 0, (0, 1)):
            got = op.fn(x, axis=axis)
            assert np.asarray(got).dtype == np.float16
            want = np.asarray(op.fn(x.astype(np.float64), axis=axis)).astype(np.float16)
            assert_same_result(got, want, 1, err_msg=f"f16 scale={scale} axis={axis}")
        # and within 1 float16 ULP of the exact (mpmath) result
        hi, lo = _oracle.exact_rows(x, op.name)
        assert _oracle.ulp_error(op.fn(x), hi, lo, np.float16).max() <= 1
    # special values survive the float32 round trip
    x = np.array([[np.inf, 0, 1], [np.nan, 0, 0], [-np.inf, -np.inf, -np.inf]], np.float16)
    got = op.fn(x)
    want = np.asarray(op.fn(x.astype(np.float32))).astype(np.float16)
    assert_same_result(got, want, 0)
    # big-endian float16 gives native float16
    got = op.fn(x.astype(">f2"))
    assert np.asarray(got).dtype == np.dtype("=f2")


def check_longdouble(op):
    """longdouble goes through the long double reference (bitwise), and is
    close to the float64 result."""
    rng = np.random.default_rng(128)
    x = (rng.standard_normal((6, 11)) * 5).astype(np.longdouble)
    for axis in (-1, 0, None, (0, 1)):
        got = op.fn(x, axis=axis)
        assert np.asarray(got).dtype == np.longdouble
        want = np.asarray(op.ref(x, axis=axis))
        assert_bitwise(got, want)
        f64 = np.asarray(op.fn(x.astype(np.float64), axis=axis))
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), f64, rtol=4e-16,
                                   atol=1e-300)
    if op.reduces:
        assert isinstance(op.fn(x, axis=None), np.longdouble)
    # special values via the long double path follow the same table
    s = np.array([[np.inf, 1.0], [np.nan, 1.0], [-np.inf, -np.inf]], np.longdouble)
    assert_same_result(np.asarray(op.fn(s)).astype(np.float64),
                       np.asarray(op.fn(s.astype(np.float64))), 0)


def check_exact_repeated_rows(op, dtype, values):
    """Rows of one repeated value: softmax exactly 1/n (correctly rounded),
    log_softmax -log(n) and logsumexp v + log(n) within 1 ULP (mpmath)."""
    from fractions import Fraction

    import mpmath

    dt = np.dtype(dtype)
    for n in list(range(1, 68)) + [1000, 3, 7, 10 ** 5]:
        for v in values:
            x = np.full((2, n), v, dt)
            got = np.asarray(op.fn(x))
            assert got.dtype == dt
            assert np.all(got == got.flat[0]), (n, v)
            g = got.flat[0]
            if op.name == "softmax":
                want = _nearest_fraction(Fraction(1, n), dt)
                assert g == want, (n, v, g, want)
            else:
                with _oracle.workdps(60):
                    exact = -mpmath.log(n) if op.name == "log_softmax" else \
                        mpmath.mpf(float(v)) + mpmath.log(n)
                    want = _nearest_mpf(exact, dt)
                assert int(ulp_diff(g, want, dt)) <= 1, (op.name, n, v, g, want)
                if n == 1:
                    assert g == (0 if op.name == "log_softmax" else dt.type(v))


def _nearest_fraction(q, dt):
    v = dt.type(float(q))
    best = v
    for d in (np.inf, -np.inf):
        c = np.nextafter(v, dt.type(d))
        if abs(_frac(c) - q) < abs(_frac(best) - q):
            best = c
    return best


def _frac(v):
    from fractions import Fraction
    return Fraction(float(v))


def _nearest_mpf(m, dt):
    import mpmath
    v = dt.type(float(m))
    best, bd = v, abs(mpmath.mpf(float(v)) - m)
    for d in (np.inf, -np.inf):
        c = np.nextafter(v, dt.type(d))
        cd = abs(mpmath.mpf(float(c)) - m)
        if cd < bd:
            best, bd = c, cd
    return best


def check_array_likes(op):
    """Non-array inputs go through np.asarray."""
    got = op.fn([[1.0, 2.0], [3.0, 0.5]])
    assert_bitwise(got, op.fn(np.array([[1.0, 2.0], [3.0, 0.5]])))
    got = op.fn((1.0, 2.0))
    assert_bitwise(got, op.fn(np.array([1.0, 2.0])))
    got = op.fn(2.5, axis=None)
    assert isinstance(got, np.float64)
    got = op.fn(np.float32(2.5), axis=())
    assert isinstance(got, np.float32)
    # buffer-protocol objects and __array__ objects
    base = np.array([0.5, -1.0, 2.0], np.float32)
    assert_bitwise(op.fn(memoryview(base)), op.fn(base))

    class ArrayLike:
        def __array__(self, dtype=None, copy=None):
            return base.astype(np.float64)

    assert_bitwise(op.fn(ArrayLike()), op.fn(base.astype(np.float64)))

