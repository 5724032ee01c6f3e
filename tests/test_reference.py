"""Tests of the pure-NumPy twin ``csoftmax/_reference.py`` itself.

The twin is loaded by file path so that these tests do not need the compiled
extension (``_reference.py`` imports nothing from ``csoftmax``).
"""

import importlib.util
import math
import pathlib
from fractions import Fraction

import numpy as np
import pytest
import scipy.special

import _oracle

pytestmark = pytest.mark.filterwarnings("error")   # the twin must never warn

inf, nan = np.inf, np.nan
OPS = ("softmax", "log_softmax", "logsumexp")
F32_64 = (np.float32, np.float64)


def _load_reference():
    path = pathlib.Path(__file__).resolve().parents[1] / "csoftmax" / "_reference.py"
    spec = importlib.util.spec_from_file_location("_csoftmax_reference_standalone", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ref():
    return _load_reference()


# ---------------------------------------------------------------------------
# special-value table
# ---------------------------------------------------------------------------

def _cases(n):
    """(kind, row) pairs of length n covering every line of the table."""
    c = []
    if n == 1:
        c += [("n1", [3.5]), ("n1", [0.0]), ("n1", [-1e30]), ("n1", [-inf]),
              ("n1", [inf]), ("nan", [nan])]
    elif n == 2:
        c += [("finite", [0.5, -1.25]), ("finite", [7.0, 7.0]),
              ("nan", [nan, 0.0]), ("nan", [nan, inf]), ("nan", [-inf, nan]),
              ("nan", [nan, nan]),
              ("someninf", [-inf, 0.75]), ("someninf", [2.0, -inf]),
              ("allninf", [-inf, -inf]),
              ("k1", [inf, 0.0]), ("k1", [-inf, inf]),
              ("k2", [inf, inf])]
    else:
        c += [("finite", [0.5, -1.25, 3.0, 3.0, -40.0]),
              ("nan", [0.0, nan, 1.0, inf, -inf]), ("nan", [nan] * 5),
              ("nan", [-inf, -inf, nan, -inf, -inf]),
              ("someninf", [-inf, 1.0, -inf, 2.0, 0.5]),
              ("someninf", [-inf, -inf, -inf, -inf, -3.0]),
              ("allninf", [-inf] * 5),
              ("k1", [0.0, inf, -inf, 3.0, -1e30]),
              ("k2", [inf, 0.0, inf, -inf, inf]), ("k2", [inf] * 5)]
    return c


def _expected(ref, kind, row, dtype):
    """Expected (softmax, log_softmax, logsumexp) straight from the table.
    For finite / partly -inf rows the expectation is the twin applied to the
    finite entries only (the -inf entries contribute exact zeros to T)."""
    row = np.asarray(row, dtype=dtype)
    pinf = row == inf
    if kind == "nan":
        return np.full_like(row, nan), np.full_like(row, nan), dtype(nan)
    if kind == "allninf":
        return np.full_like(row, nan), np.full_like(row, nan), dtype(-inf)
    if kind == "k1":
        return (np.where(pinf, 1, 0).astype(dtype),
                np.where(pinf, 0, -inf).astype(dtype), dtype(inf))
    if kind == "k2":
        return (np.where(pinf, nan, 0).astype(dtype),
                np.where(pinf, nan, -inf).astype(dtype), dtype(inf))
    if kind == "n1":
        return np.ones(1, dtype), np.zeros(1, dtype), row[0]
    if kind in ("someninf", "finite"):
        fin = row != -inf
        sm = np.zeros_like(row)
        ls = np.full_like(row, -inf)
        sm[fin] = ref.softmax(row[fin])
        ls[fin] = ref.log_softmax(row[fin])
        return sm, ls, ref.logsumexp(row[fin])[()]
    raise AssertionError(kind)


@pytest.mark.parametrize("dtype", F32_64)
@pytest.mark.parametrize("n", [1, 2, 5])
def test_special_value_table(ref, n, dtype):
    cases = _cases(n)
    # rows one by one
    for kind, row in cases:
        x = np.asarray(row, dtype=dtype)
        esm, els, else_ = _expected(ref, kind, row, dtype)
        sm, ls, lse = ref.softmax(x), ref.log_softmax(x), ref.logsumexp(x)
        assert sm.dtype == ls.dtype == lse.dtype == dtype
        assert isinstance(lse, np.ndarray) and lse.shape == ()
        np.testing.assert_array_equal(sm, esm, err_msg=f"softmax {kind} {row}")
        np.testing.assert_array_equal(ls, els, err_msg=f"log_softmax {kind} {row}")
        np.testing.assert_array_equal(lse, else_, err_msg=f"logsumexp {kind} {row}")
        if kind == "finite":
            assert np.all(np.isfinite(sm)) and abs(float(np.sum(sm, dtype=np.float64)) - 1) < 1e-6
            assert np.all(ls < 0) or n == 1
    # all rows at once (masks must not leak between rows), and along axis 0
    X = np.asarray([r for _, r in cases], dtype=dtype)
    for op in OPS:
        f = getattr(ref, op)
        whole = f(X, axis=-1)
        whole_t = f(np.ascontiguousarray(X.T), axis=0)
        for i, (kind, row) in enumerate(cases):
            exp = _expected(ref, kind, row, dtype)[OPS.index(op)]
            np.testing.assert_array_equal(whole[i], exp, err_msg=f"{op} {kind} {row}")
            got_t = whole_t[i] if op == "logsumexp" else whole_t[:, i]
            np.testing.assert_array_equal(got_t, exp, err_msg=f"{op} axis0 {kind} {row}")


@pytest.mark.parametrize("dtype", F32_64)
def test_special_explicit_values(ref, dtype):
    x = np.array([-inf, 0.0], dtype)
    np.testing.assert_array_equal(ref.softmax(x), [0.0, 1.0])
    np.testing.assert_array_equal(ref.log_softmax(x), [-inf, 0.0])
    assert ref.logsumexp(x) == 0.0
    x = np.array([-inf, 0.0, 0.0], dtype)
    np.testing.assert_array_equal(ref.softmax(x), [0.0, 0.5, 0.5])
    assert ref.logsumexp(x) == dtype(math.log(2))
    big = np.finfo(dtype).max
    np.testing.assert_array_equal(ref.softmax(np.array([big, -big], dtype)), [1.0, 0.0])
    np.testing.assert_array_equal(ref.log_softmax(np.array([big, -big], dtype)), [0.0, -inf])
    np.testing.assert_array_equal(ref.softmax(np.array([big, big], dtype)), [0.5, 0.5])
    assert ref.logsumexp(np.array([-big, -big, -big], dtype)) == dtype(-big)
    tiny = np.finfo(dtype).smallest_subnormal
    np.testing.assert_array_equal(ref.softmax(np.array([tiny, 0], dtype)), [0.5, 0.5])


def test_near_zero_results(ref):
    # logsumexp([0, -40]) = log1p(e^-40) = 4.248354255291589e-18 (not 0)
    assert ref.logsumexp(np.array([0.0, -40.0])) == 4.248354255291589e-18
    x = np.array([[0.0, -40.0], [0.0, -92.0], [0.0, -740.0], [-3.0, -745.0]])
    for op in OPS:
        hi, lo = _oracle.exact_rows(x, op)
        err = _oracle.ulp_error(getattr(ref, op)(x), hi, lo, np.float64)
        assert err.max() <= 1.0, (op, err)
    # log_softmax at the row max is -e^-92 ~ -1.1e-40, not 0
    assert ref.log_softmax(x)[1, 0] < 0
    # subnormal softmax output is not flushed
    assert ref.softmax(x)[2, 1] > 0
    x32 = np.array([[0.0, -100.0], [0.0, -17.0]], np.float32)
    for op in OPS:
        hi, lo = _oracle.exact_rows(x32, op)
        err = _oracle.ulp_error(getattr(ref, op)(x32), hi, lo, np.float32)
        assert err.max() <= 0.51, (op, err)


# ---------------------------------------------------------------------------
# trivial rows must be exact
# ---------------------------------------------------------------------------

def _is_nearest(v, q, dtype):
    """True if float v (of dtype) is a nearest dtype value to the Fraction q."""
    v = dtype(v)
    d = abs(Fraction(float(v)) - q)
    for direction in (inf, -inf):
        nb = np.nextafter(v, dtype(direction))
        if np.isfinite(nb) and abs(Fraction(float(nb)) - q) < d:
            return False
    return True


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_repeated_value_rows_exact(ref, dtype):
    values = [0.0, 3.7, -1e4, 6e4] + ([1e30, -1e30] if dtype != np.float16 else [])
    for n in [1, 2, 3, 5, 7, 10, 100, 1000, 2731, 4623]:
        for v in values:
            x = np.full(n, v, dtype)
            sm = ref.softmax(x)
            assert sm.dtype == dtype
            assert np.all(sm == sm[0])
            assert _is_nearest(sm[0], Fraction(1, n), dtype), (n, v, sm[0])
            ls = ref.log_softmax(x)
            assert np.all(ls == ls[0])
            if n == 1:
                assert sm[0] == 1 and ls[0] == 0 and ref.logsumexp(x) == x[0]
    # 1/2731 and 1/4623 suffer double rounding through long double -> float64
    assert ref.softmax(np.full(2731, 1.5))[0] == 1.0 / 2731
    assert ref.softmax(np.full(4623, -2.0))[0] == 1.0 / 4623
    # rows with several maxima and underflowing rest: exactly 1/C at the maxima
    x = np.array([[5.0, 5.0, -2000.0, 5.0, -inf]])
    np.testing.assert_array_equal(ref.softmax(x), [[1 / 3, 1 / 3, 0, 1 / 3, 0]])


# ---------------------------------------------------------------------------
# empty rows, axes, 0-d, keepdims
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", F32_64)
def test_empty(ref, dtype):
    x = np.zeros((3, 0), dtype)
    for f in (ref.softmax, ref.log_softmax):
        r = f(x)
        assert r.shape == (3, 0) and r.dtype == dtype
        r = f(x, axis=0)
        assert r.shape == (3, 0) and r.dtype == dtype
    r = ref.logsumexp(x)
    assert r.dtype == dtype
    np.testing.assert_array_equal(r, [-inf] * 3)
    assert ref.logsumexp(x, axis=0).shape == (0,)
    np.testing.assert_array_equal(ref.logsumexp(x, keepdims=True), [[-inf]] * 3)
    r = ref.logsumexp(x, axis=None)
    assert isinstance(r, np.ndarray) and r.shape == () and r == -inf
    r = ref.logsumexp(np.zeros(0, dtype))
    assert isinstance(r, np.ndarray) and r.shape == () and r == -inf
    y = np.zeros((2, 0, 3), dtype)
    np.testing.assert_array_equal(ref.logsumexp(y, axis=1), np.full((2, 3), -inf))
    assert ref.logsumexp(y, axis=1, keepdims=True).shape == (2, 1, 3)
    np.testing.assert_array_equal(ref.logsumexp(y, axis=(0, 1)), np.full(3, -inf))
    assert ref.softmax(y, axis=(0, 1)).shape == (2, 0, 3)
    # no rows, non-empty axis
    z = np.zeros((0, 4), dtype)
    assert ref.softmax(z).shape == (0, 4) and ref.logsumexp(z).shape == (0,)


def _by_hand(ref, op, x, axes):
    """Move ``axes`` to the end, flatten them and apply op on axis -1."""
    kept = [i for i in range(x.ndim) if i not in axes]
    xt = np.transpose(x, kept + list(axes))
    kshape = xt.shape[:len(kept)]
    y = getattr(ref, op)(xt.reshape(kshape + (-1,)), axis=-1)
    if op == "logsumexp":
        return y
    y = y.reshape(xt.shape)
    return np.transpose(y, np.argsort(kept + list(axes)))


def test_axes(ref):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 5)) * 3
    specs = {0: (0,), 1: (1,), -1: (2,), (0, 2): (0, 2), (2, 0): (0, 2),
             (-1, 0): (0, 2), (0, 1, 2): (0, 1, 2), None: (0, 1, 2), (): ()}
    for axis, axes in specs.items():
        for op in OPS:
            got = getattr(ref, op)(x, axis=axis)
            np.testing.assert_array_equal(got, _by_hand(ref, op, x, axes), err_msg=f"{op} {axis}")
            if axes:
                want = getattr(scipy.special, op)(x, axis=axis)
                np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
        if axes:
            np.testing.assert_allclose(ref.softmax(x, axis=axis).sum(axis=axes), 1, rtol=1e-14)
    # axis=() reduces nothing: every element is its own row of length 1
    np.testing.assert_array_equal(ref.softmax(x, axis=()), np.ones_like(x))
    np.testing.assert_array_equal(ref.log_softmax(x, axis=()), np.zeros_like(x))
    np.testing.assert_array_equal(ref.logsumexp(x, axis=()), x)
    with pytest.raises(ValueError):
        ref.softmax(x, axis=(0, 0))
    with pytest.raises(np.exceptions.AxisError):
        ref.logsumexp(x, axis=3)
    # non-contiguous input
    v = x[:, ::-2, 1:]
    np.testing.assert_array_equal(ref.softmax(v, axis=1), ref.softmax(np.ascontiguousarray(v), axis=1))


@pytest.mark.parametrize("dtype", F32_64)
def test_zero_d(ref, dtype):
    for val, lse in [(3.0, 3.0), (-inf, -inf), (inf, inf), (nan, nan)]:
        x = np.array(val, dtype)
        for axis in (None, ()):
            sm, ls, l = ref.softmax(x, axis=axis), ref.log_softmax(x, axis=axis), ref.logsumexp(x, axis=axis)
            for r in (sm, ls, l):
                assert isinstance(r, np.ndarray) and r.shape == () and r.dtype == dtype
            if np.isnan(val):
                assert np.isnan(sm) and np.isnan(ls) and np.isnan(l)
            else:
                assert sm == 1 and ls == 0 and l == lse
            assert ref.logsumexp(x, axis=axis, keepdims=True).shape == ()
        for axis in (0, -1, (0,)):
            with pytest.raises(np.exceptions.AxisError):
                ref.softmax(x, axis=axis)
            with pytest.raises(np.exceptions.AxisError):
                ref.logsumexp(x, axis=axis)


def test_keepdims(ref):
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    for axis, shape in [(1, (2, 1, 4)), ((0, 2), (1, 3, 1)), (None, (1, 1, 1)),
                        (-1, (2, 3, 1)), ((), (2, 3, 4))]:
        r = ref.logsumexp(x, axis=axis, keepdims=True)
        assert r.shape == shape
        np.testing.assert_array_equal(r.reshape(-1), ref.logsumexp(x, axis=axis).reshape(-1))
    assert ref.logsumexp(x, axis=None).shape == ()


def test_input_validation(ref):
    with pytest.raises(TypeError):
        ref.softmax(np.arange(3))
    with pytest.raises(TypeError):
        ref.logsumexp(np.ones(3, complex))


# ---------------------------------------------------------------------------
# accuracy against the mpmath oracle
# ---------------------------------------------------------------------------

ROWS = 120


def _random_blocks(dtype, scale, seed):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((ROWS, n)) * scale).astype(dtype) for n in (2, 3, 7, 64)]


@pytest.mark.parametrize("scale", [1, 10, 100])
@pytest.mark.parametrize("dtype", F32_64)
def test_against_oracle(ref, dtype, scale):
    if dtype == np.float64 and not _oracle.longdouble_available():
        pytest.skip("np.longdouble is not wider than float64 here")
    tol = 1.0 if dtype == np.float64 else 0.51
    worst = {}
    for x in _random_blocks(dtype, scale, seed=1000 + scale):
        for op in OPS:
            hi, lo = _oracle.exact_rows(x, op)
            got = getattr(ref, op)(x)
            assert got.dtype == dtype
            err = _oracle.ulp_error(got, hi, lo, dtype)
            worst[op] = max(worst.get(op, 0.0), float(err.max()))
    assert all(v <= tol for v in worst.values()), worst


def test_float32_with_float64_work(ref):
    for x in _random_blocks(np.float32, 10, seed=5):
        for op in OPS:
            hi, lo = _oracle.exact_rows(x, op)
            got = getattr(ref, op)(x, work_dtype=np.float64)
            assert got.dtype == np.float32
            assert _oracle.ulp_error(got, hi, lo, np.float32).max() <= 0.51


@pytest.mark.parametrize("dtype, tol", [(np.float64, 4.0), (np.float32, 6.0)])
def test_native_work_dtype(ref, dtype, tol):
    """work_dtype == input dtype (what the C kernels do).  This is where the
    TwoSum residual r matters: without it softmax is off by ~500 ULP (f64,
    scale 100).  Bounds include NumPy's own exp error (f32 SIMD exp: 2.5 ULP).
    logsumexp is not graded here: m + log1p(T) cancels when m < 0 and the
    result is near 0, which costs up to ~200 ULP in native precision."""
    worst = {}
    for scale in (10, 100):
        for x in _random_blocks(dtype, scale, seed=2000 + scale):
            for op in ("softmax", "log_softmax"):
                hi, lo = _oracle.exact_rows(x, op)
                got = getattr(ref, op)(x, work_dtype=dtype)
                err = _oracle.ulp_error(got, hi, lo, dtype)
                worst[op] = max(worst.get(op, 0.0), float(err.max()))
    assert all(v <= tol for v in worst.values()), worst


def test_float16(ref):
    x = (np.random.default_rng(11).standard_normal((100, 16)) * 3).astype(np.float16)
    for op in OPS:
        hi, lo = _oracle.exact_rows(x, op)
        got = getattr(ref, op)(x)
        assert got.dtype == np.float16
        assert _oracle.ulp_error(got, hi, lo, np.float16).max() <= 0.51


def test_longdouble_input(ref):
    if not _oracle.longdouble_available():
        pytest.skip("np.longdouble is not wider than float64 here")
    x = np.random.default_rng(12).standard_normal((60, 16)) * 10
    for op in OPS:
        hi, lo = _oracle.exact_rows(x, op)
        got = getattr(ref, op)(x.astype(np.longdouble))
        assert got.dtype == np.longdouble
        err = np.abs((got - np.longdouble(hi)) - np.longdouble(lo)) / np.spacing(np.abs(got))
        assert float(err.max()) <= 4.0, op


# ---------------------------------------------------------------------------
# agreement with scipy.special on finite rows
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1, 10])
@pytest.mark.parametrize("n", [3, 64])
def test_against_scipy(ref, n, scale):
    rng = np.random.default_rng(n * 100 + scale)
    x = rng.standard_normal((50, n)) * scale
    np.testing.assert_allclose(ref.softmax(x), scipy.special.softmax(x, axis=-1), rtol=1e-13)
    # scipy's log_softmax loses absolute accuracy (~1e-16) at the row max,
    # where the exact value can be tiny (scipy#19521): hence atol.
    np.testing.assert_allclose(ref.log_softmax(x), scipy.special.log_softmax(x, axis=-1),
                               rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ref.logsumexp(x), scipy.special.logsumexp(x, axis=-1),
                               rtol=1e-13, atol=1e-15)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(ref.softmax(x32), scipy.special.softmax(x32.astype(np.float64), axis=-1),
                               rtol=2e-7)


# ---------------------------------------------------------------------------
# the oracle itself
# ---------------------------------------------------------------------------

def test_oracle_sanity():
    hi, lo = _oracle.exact_rows(np.array([[0.0, -92.0]]), "log_softmax")
    assert hi[0, 0] == -math.exp(-92.0) or abs(hi[0, 0] / -math.exp(-92.0) - 1) < 3e-16
    assert hi[0, 1] == -92.0
    hi, lo = _oracle.exact_rows(np.array([[0.0, -40.0]]), "logsumexp")
    assert hi[0] == 4.248354255291589e-18
    g = np.array([0.5, np.nextafter(0.5, 1), nan, inf, 0.0, 5e-324])
    e = _oracle.ulp_error(g, np.array([0.5, 0.5, 0.5, 0.5, 0.0, 0.0]), np.zeros(6), np.float64)
    np.testing.assert_array_equal(e, [0, 1, inf, inf, 0, 1])
    e = _oracle.ulp_error(np.float32([-4.0]), np.array([-4.0 - 2.0 ** -9]), np.zeros(1), np.float32)
    assert e[0] == 2.0 ** -9 / 2.0 ** -21
    e = _oracle.ulp_error(np.float16([-4.0]), np.array([-4.00175]), np.zeros(1), np.float16)
    assert abs(e[0] - 0.00175 / 2.0 ** -8) < 1e-9
