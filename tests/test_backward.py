"""softmax_backward and log_softmax_backward (issue 8, part 1).

Oracle: mpmath at 60 digits on the given inputs (the inputs taken as exact),
so the measured error is the kernels' own. Bounds (derived in
csoftmax/_src/train.inc; u = 2**-53 for float64):
  softmax_backward      f64: |dx - dx*| <= 2u|dx*| + 2**-100 |y| sum|dy*y|
                        f32: half a float32 ULP (+ 2**-50 relative)
  log_softmax_backward  f64: |dx - dx*| <= 2u|dx*| + 2u e|s|  (e = exp(logp), s = sum dy)
                        f32: half a float32 ULP + 2**-33 e|s|
Every compiled and supported instruction set is checked (the ISA is switched
in the test and restored).
"""
from __future__ import annotations

import mpmath
import numpy as np
import pytest

import csoftmax
import _oracle
from conftest import assert_bitwise, isa, make_view

FUNCS = {"softmax_backward": csoftmax.softmax_backward,
         "log_softmax_backward": csoftmax.log_softmax_backward}
NAMES = list(FUNCS)
DTYPES = [np.float32, np.float64]
ISAS = csoftmax.isa_info()["supported"]


def inputs(name, shape, dtype, seed, scale=3.0, axis=-1):
    """A plausible (y or logp, dy) pair: y = softmax(x), logp = log_softmax(x)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    dy = rng.standard_normal(shape)
    if name == "softmax_backward":
        a = csoftmax.softmax(x.astype(dtype), axis=axis)
    else:
        a = csoftmax.log_softmax(x.astype(dtype), axis=axis)
    return a, dy.astype(dtype)


def exact_rows(name, a2, d2):
    """Exact dx (mpf) and the bound's extra term (float), per element, for
    rows along the last axis of 2-D float arrays."""
    R, n = a2.shape
    ref = np.empty((R, n), dtype=object)
    extra = np.empty((R, n))
    with _oracle.workdps(60):   # mpmath's precision is process-wide: the locked form
        for r in range(R):
            a = [mpmath.mpf(float(v)) for v in a2[r]]
            d = [mpmath.mpf(float(v)) for v in d2[r]]
            if name == "softmax_backward":
                s = mpmath.fsum(ai * di for ai, di in zip(a, d))
                sab = float(mpmath.fsum(abs(ai * di) for ai, di in zip(a, d)))
                for i in range(n):
                    ref[r, i] = a[i] * (d[i] - s)
                    extra[r, i] = abs(float(a[i])) * sab
            else:
                s = mpmath.fsum(d)
                for i in range(n):
                    e = mpmath.exp(a[i])
                    ref[r, i] = d[i] - e * s
                    extra[r, i] = float(e * abs(s))
    return ref, extra


def check_accuracy(name, got, a, d, dtype):
    """|got - exact| within the bound of the module docstring; returns the
    worst error in ULP of the exact result (net of the extra term)."""
    got2 = np.asarray(got, dtype=np.float64).reshape(-1, a.shape[-1])
    ref, extra = exact_rows(name, a.reshape(-1, a.shape[-1]), d.reshape(-1, a.shape[-1]))
    f32 = np.dtype(dtype) == np.float32
    worst = 0.0
    for idx in np.ndindex(ref.shape):
        exact = ref[idx]
        fe = float(exact)
        err = float(abs(mpmath.mpf(got2[idx]) - exact))
        ulp = float(np.spacing(np.abs(np.asarray(fe, dtype))))
        if f32:
            rel_slack = 2.0 ** -50 * abs(fe)
            slack = 2.0 ** -33 * extra[idx] if name == "log_softmax_backward" else 0.0
            bound = 0.5 * ulp + rel_slack + slack
        else:
            u = 2.0 ** -53
            slack = (2.0 ** -100 if name == "softmax_backward" else 2 * u) * extra[idx]
            bound = 2 * u * abs(fe) + slack
        assert err <= bound + 1e-320, (name, dtype, idx, got2[idx], fe, err, bound)
        if ulp > 0:
            worst = max(worst, max(0.0, err - (slack if not f32 else 0.0)) / ulp)
    return worst


@pytest.mark.thread_unsafe   # switches the process-wide instruction set
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa_name", ISAS)
def test_accuracy_lengths(name, dtype, isa_name):
    """Rows of every length 1..67 (all SIMD tails and partial counts) and 300."""
    with isa(isa_name):
        for n in list(range(1, 68)) + [300]:
            a, d = inputs(name, (2, n), dtype, seed=n)
            got = FUNCS[name](a, d)
            assert got.dtype == dtype and got.shape == a.shape
            check_accuracy(name, got, a, d, dtype)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_accuracy_cancellation(name, dtype):
    """dy nearly constant: dy - s cancels (softmax_backward's hard case), and
    dy with terms of both signs summing near 0 (log_softmax_backward's)."""
    rng = np.random.default_rng(5)
    n = 50
    x = rng.standard_normal((4, n)) * 4
    if name == "softmax_backward":
        a = csoftmax.softmax(x.astype(dtype))
        d = (1.0 + rng.standard_normal((4, n)) * 1e-6).astype(dtype)
    else:
        a = csoftmax.log_softmax(x.astype(dtype))
        d = rng.standard_normal((4, n))
        d[:, -1] -= d.sum(axis=1) * 0.999999
        d = d.astype(dtype)
    check_accuracy(name, FUNCS[name](a, d), a, d, dtype)


@pytest.mark.parametrize("name", NAMES)
def test_brief_bound_on_long_rows(name):
    """The issue's bound 4u|y|(|dy| + |s|) + u|dx| on rows of 1000 and 5000."""
    for n in (1000, 5000):
        a, d = inputs(name, (2, n), np.float64, seed=n, scale=10.0)
        got = FUNCS[name](a, d)
        ref, _ = exact_rows(name, a, d)
        u = 2.0 ** -53
        for r in range(2):
            if name == "softmax_backward":
                s = float(mpmath.fsum(mpmath.mpf(float(p)) * mpmath.mpf(float(q))
                                      for p, q in zip(a[r], d[r])))
                yy = np.abs(a[r])
            else:
                s = float(mpmath.fsum(mpmath.mpf(float(q)) for q in d[r]))
                yy = np.exp(a[r])
            err = np.array([float(abs(mpmath.mpf(float(g)) - e)) for g, e in zip(got[r], ref[r])])
            bound = 4 * u * yy * (np.abs(d[r]) + abs(s)) + u * np.abs(got[r])
            assert np.all(err <= bound), (name, n, np.max(err / bound))


def finite_difference(f, x, dy, h=1e-6):
    """J^T dy of f at x by central differences (float64)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp = x.copy()
        xm = x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = np.sum((f(xp) - f(xm)) * dy) / (2 * h)
    return g


@pytest.mark.parametrize("axis", [-1, 0, (0, 1)])
def test_finite_differences(axis):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5))
    dy = rng.standard_normal((3, 5))
    y = csoftmax.softmax(x, axis=axis)
    got = csoftmax.softmax_backward(y, dy, axis=axis)
    want = finite_difference(lambda v: csoftmax.softmax(v, axis=axis), x, dy)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
    lp = csoftmax.log_softmax(x, axis=axis)
    got = csoftmax.log_softmax_backward(lp, dy, axis=axis)
    want = finite_difference(lambda v: csoftmax.log_softmax(v, axis=axis), x, dy)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_torch_autograd(dim):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(dim)
    x = rng.standard_normal((4, 6, 7)) * 3
    dy = rng.standard_normal((4, 6, 7))
    for fn, bw, tfn in ((csoftmax.softmax, csoftmax.softmax_backward, torch.softmax),
                        (csoftmax.log_softmax, csoftmax.log_softmax_backward,
                         torch.log_softmax)):
        xt = torch.tensor(x, requires_grad=True)
        tfn(xt, dim).backward(torch.tensor(dy))
        got = bw(fn(x, axis=dim), dy, axis=dim)
        np.testing.assert_allclose(got, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", ["C", "F", "sliced", "negative", "unaligned", "field",
                                    "bigendian", "permuted"])
@pytest.mark.parametrize("axis", [-1, 0, 1, (0, 2), None])
def test_layouts_match_contiguous(name, layout, axis):
    """Any layout of y and dy gives the bits of their C-contiguous copies."""
    shape = (3, 4, 5)
    a0 = make_view("C", shape, np.float64, seed=1)
    d0 = make_view(layout, shape, np.float64, seed=2)
    a0 = csoftmax.softmax(a0, axis=axis) if name == "softmax_backward" else \
        csoftmax.log_softmax(a0, axis=axis)
    a = make_view(layout, shape, np.float64)
    a[...] = a0  # same values, the layout's strides
    want = FUNCS[name](np.ascontiguousarray(a0), np.ascontiguousarray(d0).astype(np.float64),
                       axis=axis)
    got = FUNCS[name](a, d0, axis=axis)
    assert_bitwise(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_broadcast_dy(name):
    """A zero-stride dy (read-only broadcast view) is read correctly."""
    a, _ = inputs(name, (4, 9), np.float64, seed=7)
    dyb = np.broadcast_to(np.arange(9.0), (4, 9))
    assert_bitwise(FUNCS[name](a, dyb), FUNCS[name](a, np.ascontiguousarray(dyb)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_out_and_inplace(name, dtype):
    a, d = inputs(name, (6, 33), dtype, seed=9)
    want = FUNCS[name](a, d)
    out = np.empty_like(a)
    assert FUNCS[name](a, d, out=out) is out
    assert_bitwise(out, want)
    d2 = d.copy()
    assert FUNCS[name](a, d2, out=d2) is d2        # in place over dy
    assert_bitwise(d2, want)
    # in place on a strided view of dy (the same view)
    big = np.zeros((6, 66), dtype)
    v = big[:, ::2]
    v[...] = d
    assert FUNCS[name](a, v, out=v) is v
    assert_bitwise(np.ascontiguousarray(v), want)
    assert np.all(big[:, 1::2] == 0)
    # column axis in place
    wc = FUNCS[name](np.ascontiguousarray(a.T), np.ascontiguousarray(d.T), axis=0)
    dT = np.ascontiguousarray(d.T)
    FUNCS[name](np.ascontiguousarray(a.T), dT, axis=0, out=dT)
    assert_bitwise(dT, wc)


@pytest.mark.parametrize("name", NAMES)
def test_overlap_refused(name):
    a, d = inputs(name, (4, 8), np.float64, seed=1)
    a0, d0 = a.copy(), d.copy()
    with pytest.raises(ValueError, match="overlaps"):
        FUNCS[name](a, d, out=a)                    # out = y: not allowed
    with pytest.raises(ValueError, match="overlaps dy"):
        FUNCS[name](a, d[:, ::-1], out=d)           # a reversed view of dy
    buf = np.zeros(40)
    dd = buf[:32].reshape(4, 8)
    dd[...] = d
    with pytest.raises(ValueError, match="overlaps dy"):
        FUNCS[name](a, dd, out=buf[8:40].reshape(4, 8))
    assert_bitwise(a, a0)
    assert_bitwise(d, d0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_threads_bitwise(name, dtype):
    """Every thread count gives the serial bits (rows and columns)."""
    for shape, axis in (((64, 4096), -1), ((4096, 64), 0), ((3, 70000), -1)):
        a, d = inputs(name, shape, dtype, seed=11, axis=axis)
        want = FUNCS[name](a, d, axis=axis, num_threads=1)
        for nt in (2, 3, 8):
            assert_bitwise(FUNCS[name](a, d, axis=axis, num_threads=nt), want)


@pytest.mark.thread_unsafe   # switches the process-wide instruction set
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa_name", ISAS)
def test_columns_match_rows(name, dtype, isa_name):
    """A gradient over a non-last axis (the column kernel: strips of rows
    side by side) gives the bits of the same rows laid out along the last
    axis: every row length modulo the 16 partial sums, strips of 1..130
    columns, signed zeros, an infinity, strided and in place."""
    with isa(isa_name):
        check_columns_match_rows(name, dtype)


def check_columns_match_rows(name, dtype):
    for n in (1, 3, 13, 16, 17, 37):
        for inner in (2, 7, 130):
            a, d = inputs(name, (2, n, inner), dtype, seed=n * inner, axis=1)
            d[0, :, ::2] = -0.0
            if n > 1:
                d[1, 1, ::5] = np.inf
            want = np.moveaxis(FUNCS[name](np.ascontiguousarray(np.moveaxis(a, 1, -1)),
                                           np.ascontiguousarray(np.moveaxis(d, 1, -1))), -1, 1)
            got = FUNCS[name](a, d, axis=1)
            assert_bitwise(got, want, (n, inner))
            d2 = d.copy()
            FUNCS[name](a, d2, axis=1, out=d2)
            assert_bitwise(d2, want, (n, inner))
            sl = (slice(None), slice(None), slice(None, None, 3))   # strided columns
            assert_bitwise(FUNCS[name](a[sl], d[sl], axis=1), want[sl], (n, inner))


@pytest.mark.parametrize("name", NAMES)
def test_dtypes(name):
    a, d = inputs(name, (3, 10), np.float64, seed=2)
    # common float type
    assert FUNCS[name](a.astype(np.float32), d.astype(np.float32)).dtype == np.float32
    assert FUNCS[name](a.astype(np.float32), d).dtype == np.float64
    r16 = FUNCS[name](a.astype(np.float16), d.astype(np.float16))
    assert r16.dtype == np.float16
    want16 = FUNCS[name](a.astype(np.float16).astype(np.float32),
                         d.astype(np.float16).astype(np.float32)).astype(np.float16)
    assert_bitwise(r16, want16)
    # integers -> float64
    ri = FUNCS[name](np.zeros((2, 3), np.int32), np.ones((2, 3), np.int64))
    assert ri.dtype == np.float64
    # longdouble: the NumPy twin in long double
    rl = FUNCS[name](a.astype(np.longdouble), d.astype(np.longdouble))
    assert rl.dtype == np.longdouble
    np.testing.assert_allclose(rl.astype(np.float64), FUNCS[name](a, d), rtol=1e-13,
                               atol=1e-16)
    # lists, 0-d and empty
    assert FUNCS[name]([0.5, 0.5], [1.0, 0.0]).shape == (2,)
    assert FUNCS[name](np.float64(0.0), np.float64(1.0), axis=None).shape == ()
    assert FUNCS[name](np.zeros((0, 3)), np.zeros((0, 3))).shape == (0, 3)
    assert FUNCS[name](np.zeros((3, 0)), np.zeros((3, 0))).shape == (3, 0)


def test_special_values():
    """The formulas in IEEE arithmetic, per row."""
    nan, inf = np.nan, np.inf
    sb, lb = csoftmax.softmax_backward, csoftmax.log_softmax_backward
    # a NaN anywhere in a row of y or dy: the whole row NaN; other rows intact
    y = np.array([[0.25, 0.75], [0.5, 0.5]])
    r = sb(y, np.array([[nan, 1.0], [1.0, 2.0]]))
    assert np.all(np.isnan(r[0])) and np.all(np.isfinite(r[1]))
    r = sb(np.array([[nan, 0.5], [0.5, 0.5]]), np.ones((2, 2)))
    assert np.all(np.isnan(r[0])) and np.array_equal(r[1], [0.0, 0.0])
    r = lb(np.log(y), np.array([[1.0, nan], [1.0, 2.0]]))
    assert np.all(np.isnan(r[0])) and np.all(np.isfinite(r[1]))
    # an infinite dy: s infinite, dy - s = inf - inf = NaN there, -inf*y elsewhere
    r = sb(np.array([0.25, 0.75]), np.array([inf, 1.0]))
    assert np.isnan(r[0]) and r[1] == -inf
    # y = 0 entries with a finite row: dx = 0 exactly
    r = sb(np.array([0.0, 1.0]), np.array([5.0, 1.0]))
    assert np.array_equal(r, [0.0, 0.0])
    # logp = -inf: exp = 0, dx = dy there
    r = lb(np.array([-inf, 0.0]), np.array([3.0, -1.0]))
    assert np.array_equal(r, [3.0, -3.0])
    # logp > 0 (not log-probabilities): still the formula (libm exp there)
    r = lb(np.array([1.0, 2.0]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(r, 1.0 - 2.0 * np.exp([1.0, 2.0]), rtol=1e-15)
    # huge values: no overflow inside the double-double sum
    r = sb(np.array([1e300, 1e-300]), np.array([1e-300, 1e300]))
    assert np.all(np.isfinite(r))
    # NaNs are the canonical quiet NaN
    r = sb(np.array([[0.5, 0.5]]), np.array([[nan, 1.0]]))
    assert np.array_equal(r.view(np.int64), np.full((1, 2), np.array(nan).view(np.int64)))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(name):
    f = FUNCS[name]
    a = np.full((2, 3), 1.0 / 3.0)
    d = np.ones((2, 3))
    out = np.zeros((2, 3))
    with pytest.raises(ValueError, match=f"{name}.*no broadcasting"):
        f(a, np.ones(3))
    with pytest.raises(TypeError, match=f"{name}.*dy.*complex"):
        f(a, d.astype(complex))
    with pytest.raises(TypeError, match=f"{name}.*dtype"):
        f(a.astype(object), d)
    with pytest.raises(TypeError, match=f"{name}: out has dtype"):
        f(a, d, out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=f"{name}: out has shape"):
        f(a, d, out=np.zeros((3, 2)))
    ro = np.zeros((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        f(a, d, out=ro)
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else Exception):
        f(a, d, axis=2)
    with pytest.raises(TypeError, match="num_threads"):
        f(a, d, num_threads=1.5)
    with pytest.raises(ValueError, match="num_threads"):
        f(a, d, num_threads=0)
    with pytest.raises(TypeError, match="masked"):
        f(np.ma.array(a), d)
    with pytest.raises(TypeError):
        f(a, d, out=[[0.0] * 3] * 2)
    assert np.all(out == 0)
