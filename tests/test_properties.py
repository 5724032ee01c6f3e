"""Property tests (hypothesis): arbitrary small shapes, finite values of any
magnitude, random axes and random basic-index views."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import (OPS, OPS_BY_NAME, assert_bitwise, assert_same_result, contiguous,
                      reference, ulp_bound, ulp_diff)

# thread_unsafe: hypothesis's engine is not made to run one test in several
# threads at once (pytest-run-parallel saw spurious flaky-test reports); the
# kernels' thread safety is what the other modules check under it
pytestmark = [pytest.mark.filterwarnings("error::RuntimeWarning"), pytest.mark.thread_unsafe]

# derandomize: the same examples on every run (CI stays deterministic);
# database=None: nothing is written to the source tree
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def finite(dtype, **kw):
    return st.floats(allow_nan=False, allow_infinity=False, width=dtype.itemsize * 8, **kw)


@st.composite
def arrays(draw, elements=None, max_dims=4, max_side=6):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    el = elements(dtype) if elements else st.one_of(
        finite(dtype, min_value=-30, max_value=30),       # the interesting range
        finite(dtype))                                    # any magnitude, subnormals too
    return draw(hnp.arrays(dtype, shape, elements=el))


@st.composite
def axis_for(draw, ndim):
    kind = draw(st.sampled_from(["none", "int", "tuple"]) if ndim else st.just("none0"))
    if kind == "none0":
        return draw(st.sampled_from([None, ()]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@st.composite
def view_and_axis(draw, elements=None):
    a = draw(arrays(elements))
    if a.ndim and draw(st.booleans()):
        a = a[draw(hnp.basic_indices(a.shape, min_dims=1, allow_newaxis=False))]
    return a, draw(axis_for(a.ndim))


def rows_of(a, axis):
    """(rows, n) copy with the reduced axes last (for row-wise properties)."""
    nd = a.ndim
    red = list(range(nd)) if axis is None else sorted(
        {x % nd for x in (axis if isinstance(axis, tuple) else (axis,))})
    keep = [i for i in range(nd) if i not in red]
    t = np.transpose(a, keep + red)
    n = int(np.prod([a.shape[i] for i in red], dtype=np.int64))
    rows = int(np.prod([a.shape[i] for i in keep], dtype=np.int64))
    return t.reshape(rows, n)


@SETTINGS
@given(view_and_axis(), st.sampled_from(OPS))
def test_matches_reference_and_contiguous_copy(xa, op):
    x, axis = xa
    got = op.fn(x, axis=axis)
    assert np.asarray(got).dtype == x.dtype
    assert_same_result(got, reference(op, x, axis), ulp_bound(op.name, x.dtype),
                       err_msg=f"{op.name} axis={axis} x={x!r}")
    assert_bitwise(got, op.fn(contiguous(x), axis=axis))


@SETTINGS
@given(view_and_axis())
def test_softmax_sums_to_one(xa):
    x, axis = xa
    s = rows_of(np.asarray(OPS_BY_NAME["softmax"].fn(x, axis=axis)), axis)
    if s.size == 0:
        return
    n = s.shape[1]
    total = s.astype(np.float64).sum(axis=1)
    assert np.all(np.abs(total - 1) <= max(n, 2) * np.finfo(x.dtype).eps), total
    assert np.all((s >= 0) & (s <= 1))


@SETTINGS
@given(view_and_axis(elements=lambda dt: st.integers(-60, 60).map(float)),
       st.integers(0, 12), st.booleans())
def test_softmax_shift_invariance(xa, k, negative):
    """x integer-valued and c = +-2**k: x + c is exact, so the results agree
    within the accuracy bound (the kernel subtracts the max exactly)."""
    x, axis = xa
    c = x.dtype.type(-(2.0 ** k) if negative else 2.0 ** k)
    xc = x + c
    assert np.array_equal(xc - c, x)            # the shift is exact
    for op in (OPS_BY_NAME["softmax"], OPS_BY_NAME["log_softmax"]):
        a, b = np.asarray(op.fn(x, axis=axis)), np.asarray(op.fn(xc, axis=axis))
        assert_same_result(b, a, 2 * ulp_bound(op.name, x.dtype), err_msg=f"{op.name} c={c}")
    lse = OPS_BY_NAME["logsumexp"]
    a, b = np.asarray(lse.fn(x, axis=axis)), np.asarray(lse.fn(xc, axis=axis))
    # logsumexp(x + c) = logsumexp(x) + c up to the rounding of the sum
    fin = np.isfinite(a)
    assert np.array_equal(a[~fin], b[~fin])      # empty rows: -inf both
    a, b = a[fin], b[fin]
    tol = 4 * np.finfo(x.dtype).eps * (np.abs(a) + abs(c)) + np.finfo(x.dtype).tiny
    assert np.all(np.abs((b.astype(np.float64) - c) - a) <= tol)


@SETTINGS
@given(view_and_axis())
def test_log_softmax_is_x_minus_logsumexp(xa):
    x, axis = xa
    if x.size == 0:
        return
    ls = np.asarray(OPS_BY_NAME["log_softmax"].fn(x, axis=axis), np.float64)
    lse = OPS_BY_NAME["logsumexp"].fn(x, axis=axis, keepdims=True)
    lse = np.asarray(lse, np.float64)
    if x.ndim == 0:
        lse = lse.reshape(())
    xd = x.astype(np.float64)
    want = xd - lse
    eps = np.finfo(x.dtype).eps
    fin = np.isfinite(want)
    # both sides carry an error of a few ulp of max(|x|, |lse|), plus the
    # underflow of log_softmax to -inf for huge spreads
    tol = 16 * eps * np.maximum(np.abs(xd), np.abs(lse)) + np.finfo(x.dtype).tiny
    ok = np.abs(ls - want) <= tol
    ok |= ~fin & (ls == want)
    ok |= np.isneginf(ls) & (want < np.finfo(x.dtype).min / 2)
    assert np.all(ok), (ls[~ok], want[~ok])


@SETTINGS
@given(view_and_axis())
def test_monotonic(xa):
    x, axis = xa
    r = rows_of(x, axis)
    if r.size == 0:
        return
    order = np.argsort(r, axis=1, kind="stable")
    for name in ("softmax", "log_softmax"):
        y = rows_of(np.asarray(OPS_BY_NAME[name].fn(x, axis=axis)), axis)
        ys = np.take_along_axis(y, order, axis=1)
        assert np.all(np.diff(ys, axis=1) >= 0), (name, r, y)
        # equal inputs give equal outputs
        xs = np.take_along_axis(r, order, axis=1)
        same = np.diff(xs, axis=1) == 0
        assert np.all(np.diff(ys, axis=1)[same] == 0)


@SETTINGS
@given(view_and_axis(), st.sampled_from(OPS))
def test_out_and_in_place_match(xa, op):
    x, axis = xa
    want = op.fn(x, axis=axis)
    if np.size(want) == 0:
        return      # empty outs: test_bad_input.py::test_empty_out_is_accepted
    out = np.full(np.shape(want), 7.0, x.dtype)
    assert op.fn(x, axis=axis, out=out) is out
    assert_bitwise(out, want)
    if not op.reduces and x.flags.writeable and x.size:
        y = x.copy()
        assert op.fn(y, axis=axis, out=y) is y
        assert_bitwise(y, op.fn(x.copy(), axis=axis))


def test_ulp_diff_sanity():
    """The comparison helper itself (so the bounds above mean something)."""
    a = np.array([1.0, -0.0, 5e-324, -5e-324, 1.0])
    b = np.array([np.nextafter(1.0, 2), 0.0, 0.0, 5e-324, 1.0])
    assert list(ulp_diff(a, b, np.float64)) == [1, 0, 1, 2, 0]
    assert int(ulp_diff(np.float32(1), np.float32(1) + np.finfo(np.float32).eps,
                        np.float32)) == 1
    with pytest.raises(AssertionError):
        assert_same_result(np.array([1.0]), np.array([np.nextafter(np.nextafter(1.0, 2), 2)]), 1)
    with pytest.raises(AssertionError):
        assert_same_result(np.array([np.nan]), np.array([1.0]), 100)
    with pytest.raises(AssertionError):
        assert_same_result(np.array([np.inf]), np.array([-np.inf]), 100)
    with pytest.raises(AssertionError):
        assert_bitwise(np.array([np.nan]), np.array([-np.nan]))


# --------------------------------------------------------------------------
# issue 7: bounds, monotonicity in each entry, permutations, special values
# --------------------------------------------------------------------------

SETTINGS_200 = settings(SETTINGS, max_examples=200)


def _tol(dtype, *vals):
    """A few ULP of the largest magnitude involved (and a tiny floor)."""
    fi = np.finfo(dtype)
    mag = max([1e-300] + [float(np.max(np.abs(v), initial=0.0)) for v in vals])
    return 8 * float(fi.eps) * mag + float(fi.tiny)


@SETTINGS_200
@given(view_and_axis())
def test_logsumexp_between_max_and_max_plus_log_n(xa):
    """max(x) <= logsumexp(x) <= max(x) + log(n), per row."""
    x, axis = xa
    r = rows_of(x, axis).astype(np.float64)
    if r.size == 0:
        return
    lse = np.asarray(OPS_BY_NAME["logsumexp"].fn(x, axis=axis), np.float64).reshape(-1)
    m = r.max(axis=1)
    tol = _tol(x.dtype, lse, m)
    with np.errstate(over="ignore"):
        hi = m + np.log(r.shape[1]) + tol
    assert np.all(lse >= m - tol), (lse, m)
    assert np.all(lse <= hi), (lse, m)


@SETTINGS_200
@given(arrays(max_dims=1, max_side=40), st.integers(0, 39), st.integers(1, 60))
def test_increasing_one_entry(x, i, k):
    """Raising x[i] raises logsumexp and softmax[i], lowers softmax
    elsewhere (up to the rounding of the results)."""
    x = x.reshape(-1)
    if x.size == 0:
        return
    i %= x.size
    bump = x.copy()
    with np.errstate(over="ignore"):
        bump[i] = x[i] + x.dtype.type(k) * max(abs(x[i]), x.dtype.type(1)) * x.dtype.type(0.01)
    if not np.isfinite(bump[i]) or not bump[i] > x[i]:
        return
    lse0, lse1 = (float(OPS_BY_NAME["logsumexp"].fn(v)) for v in (x, bump))
    assert lse1 >= lse0 - _tol(x.dtype, lse0), (lse0, lse1)
    s0, s1 = (OPS_BY_NAME["softmax"].fn(v).astype(np.float64) for v in (x, bump))
    assert s1[i] >= s0[i] - _tol(x.dtype, s0[i]), (s0[i], s1[i])
    others = np.arange(x.size) != i
    assert np.all(s1[others] <= s0[others] + 4 * np.finfo(x.dtype).eps * s0[others]
                  + np.finfo(x.dtype).tiny)


@SETTINGS_200
@given(arrays(max_dims=2, max_side=12), st.randoms(use_true_random=False))
def test_permuting_a_row_permutes_the_result(x, rnd):
    if x.ndim == 0 or x.size == 0:
        return
    perm = list(range(x.shape[-1]))
    rnd.shuffle(perm)
    xp = x[..., perm]
    for op in OPS:
        a = np.asarray(op.fn(x))
        b = np.asarray(op.fn(xp))
        if not op.reduces:
            a = a[..., perm]
        # the sums are taken in another order: within twice the bound
        assert_same_result(b, a, 2 * ulp_bound(op.name, x.dtype), err_msg=f"{op.name} {perm}")


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e308, -1e308, 1.0, -745.0]


def _in(dt):
    def conv(v):
        with np.errstate(over="ignore"):
            return float(np.array(v).astype(dt))
    return conv


@SETTINGS_200
@given(view_and_axis(elements=lambda dt: st.one_of(
    finite(dt, min_value=-50, max_value=50), st.sampled_from(SPECIAL).map(_in(dt)))),
    st.sampled_from(OPS))
def test_special_values_match_reference_in_every_layout(xa, op):
    """NaN, +-inf, subnormals and extremes anywhere: the reference's special
    values exactly, finite values within the bound, and the same bits as on
    a contiguous copy."""
    x, axis = xa
    got = op.fn(x, axis=axis)
    assert_same_result(got, reference(op, x, axis), ulp_bound(op.name, x.dtype),
                       err_msg=f"{op.name} axis={axis} x={x!r}")
    assert_bitwise(got, op.fn(contiguous(x), axis=axis))
