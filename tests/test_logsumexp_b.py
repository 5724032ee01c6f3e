"""logsumexp with weights (b=), signs (return_sign=) and complex input
(issue 8, part 5), against an mpmath oracle and against scipy.special.

Bound (README, csoftmax.h): |error| <= 2 ulp(result) + 2 u K, u the unit
roundoff of the result dtype, K = sum|b e^x| / |sum b e^x| (1 for positive
weights). Run once per instruction set by .ci/run (KERNEL_TESTS).

scipy differences (documented in the README), skipped or asserted here:
  * an empty slice: sign 0 here, scipy -1;
  * a sum that cancels to exactly 0 with large x (x = [1000, 1000],
    b = [1, -1]): -inf and sign 0 here, NaN in scipy (its float arithmetic);
  * b must broadcast to x's shape (scipy also broadcasts x to b's).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from mpmath import mp

import csoftmax
from _oracle import workdps

scipy_special = pytest.importorskip("scipy.special")
inf, nan = np.inf, np.nan
U = {np.float64: 2.0 ** -53, np.float32: 2.0 ** -24}


def exact(x, b):
    """(log|S|, sign S, K) for S = sum b_i e^{x_i} over b_i != 0, exact to
    far below float64 (mpmath, precision raised until S is resolved)."""
    x = np.asarray(x, np.float64)
    b = np.broadcast_to(np.asarray(b, np.float64), x.shape)
    for dps in (60, 200, 800):
        with workdps(dps):
            terms = [mp.mpf(float(bi)) * mp.exp(mp.mpf(float(xi)))
                     for xi, bi in zip(x.ravel(), b.ravel()) if bi != 0]
            s = mp.fsum(terms)
            a = mp.fsum([abs(t) for t in terms])
            if s == 0 and a == 0:
                return -inf, 0.0, 1.0
            if s != 0 and abs(s) > a * mp.mpf(10) ** (-dps + 30):
                return float(mp.log(abs(s))), float(mp.sign(s)), float(a / abs(s))
    return -inf, 0.0, inf


def check_row(x, b, dtype, n_ulp=2.0, u=None):
    """Grades one row; u: the unit roundoff of the K term (default the
    dtype's; 2^-100 for rows known to take the double-double path)."""
    x = np.asarray(x, dtype)
    b = np.asarray(b, dtype)
    v, s = csoftmax.logsumexp(x, b=b, return_sign=True)
    assert v.dtype == dtype and s.dtype == dtype
    ev, es, K = exact(x.astype(np.float64), b.astype(np.float64))
    assert s == es, (x, b, s, es)
    if not math.isfinite(ev):
        assert v == ev
        return 0.0
    sp = float(np.spacing(np.abs(np.asarray(ev, dtype))).astype(np.float64))
    err = abs(float(v) - ev)
    # positive weights (K = 1): 2 ULP, plus the double-double path's 2^-100 |m|
    # where the result cancels (as csoftmax.logsumexp); mixed signs: + 2 u K
    m = float(np.max(np.where(b != 0, x, -inf)).astype(np.float64))
    u = U[dtype] if u is None else u
    bound = n_ulp * sp + (2.0 * u * K if K > 1.0 else 0.0) + 2.0 ** -99 * (abs(m) + 1)
    assert err <= bound, (x.tolist(), b.tolist(), float(v), ev, err / sp, K)
    # the same row without return_sign: NaN for a negative sum
    v2 = csoftmax.logsumexp(x, b=b)
    if es < 0:
        assert np.isnan(v2)
    else:
        assert v2 == v
    return err / sp


DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
def test_positive_weights_2ulp(dtype):
    """Positive weights (K = 1): within 2 ULP of the exact value, lengths
    1..67 (every SIMD tail) and a few long rows, logit scales 1..100."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for n in list(range(1, 68)) + [200, 1000, 5000]:
        for scale in (1.0, 30.0, 100.0):
            x = rng.standard_normal(n) * scale
            b = rng.uniform(0.01, 10.0, n)
            worst = max(worst, check_row(x, b, dtype))
    assert worst <= 2.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_mixed_signs_bound(dtype):
    """Mixed signs: within 2 ULP + 2 u K, including heavily cancelling sums
    (the double-double path)."""
    rng = np.random.default_rng(2)
    for n in list(range(2, 40)) + [300]:
        for _ in range(3):
            x = rng.standard_normal(n) * 5
            b = rng.standard_normal(n)
            check_row(x, b, dtype)
    # near-exact cancellation: e^a - e^(a + tiny), K large
    for a in (-3.0, 0.0, 7.5, 300.0):
        for rel in (1e-3, 1e-9, 1e-14):
            x = np.array([a, a + rel], np.float64).astype(dtype)
            if x[0] == x[1]:
                continue
            # K > 2^8: the double-double path, 2^-100 K
            check_row(x, [1.0, -1.0], dtype, u=2.0 ** -100)
            check_row(np.array([a, a, a + 1], dtype), [2.0, 1.0, -1.0], dtype)
            y = np.array([a, a, np.log1p(rel) + a], np.float64).astype(dtype)
            check_row(y, [3.0, -1.0, -2.0], dtype, u=2.0 ** -100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_result_cancels(dtype):
    """m + log|S| near 0 (weighted log-probabilities): full accuracy near 0."""
    rng = np.random.default_rng(3)
    for n in (2, 5, 33, 500):
        p = rng.uniform(0.1, 1.0, n)
        w = rng.uniform(0.5, 2.0, n)
        x = np.log(p / (p * w).sum())          # sum w e^x = 1 up to rounding
        check_row(x, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_cases(dtype):
    """The maxima's terms are exactly b_i (float32's short exp is not exact
    at 0): a single entry gives log|b| + x, equal entries x + log(sum b)."""
    for n in (1, 2, 5, 17):
        x = np.zeros(n, dtype)
        v, s = csoftmax.logsumexp(x, b=np.ones(n, dtype), return_sign=True)
        assert v == np.asarray(np.log(n), dtype) and s == 1
        v = csoftmax.logsumexp(x + dtype(3), b=np.full(n, 0.5, dtype))
        assert v == np.asarray(3 + np.log(n / 2), dtype)
    v, s = csoftmax.logsumexp(np.array([0.0], dtype), b=np.array([-1.0], dtype),
                              return_sign=True)
    assert v == 0 and s == -1


def test_huge_and_tiny_weights():
    """Weights beyond 2^960 or below 2^-960: the sum is scaled by a power of 2."""
    check_row([1.0, 2.0], [1e308, 1e308], np.float64)
    check_row([1.0, 2.0, -3.0], [1.7e308, -1e308, 5e307], np.float64)
    check_row([0.0, 1.0], [1e-300, 3e-310], np.float64)
    check_row([0.0, 1.0], [5e-324, 5e-324], np.float64)
    check_row([10.0, 1.0], [-1e-305, 1e-305], np.float64)


SPECIAL = [
    # x, b, (value, sign)
    ([1.0, 1.0], [1.0, -1.0], (-inf, 0.0)),
    ([nan, 1.0], [0.0, 1.0], (1.0, 1.0)),          # b == 0: absent, even NaN / inf
    ([inf, 1.0], [0.0, 1.0], (1.0, 1.0)),
    ([inf, 1.0], [-1.0, 1.0], (inf, -1.0)),
    ([inf, inf], [-1.0, 1.0], (nan, nan)),
    ([inf, inf], [1.0, 1.0], (inf, 1.0)),
    ([-inf, -inf], [1.0, 1.0], (-inf, 0.0)),
    ([1.0, 2.0], [nan, 1.0], (nan, nan)),
    ([nan, 2.0], [1.0, 1.0], (nan, nan)),
    ([1.0, 2.0], [inf, 1.0], (inf, 1.0)),
    ([1.0, 2.0], [-inf, 1.0], (inf, -1.0)),
    ([-inf, 1.0], [inf, 1.0], (nan, nan)),         # inf * 0
    ([1.0, 2.0], [0.0, 0.0], (-inf, 0.0)),
    ([inf, 2.0], [1.0, -1.0], (inf, 1.0)),
    ([-inf, 2.0], [1.0, -1.0], (2.0, -1.0)),
    ([1e308, 1e308], [1.0, 1.0], (1e308, 1.0)),
    ([1.0], [-0.0], (-inf, 0.0)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,b,want", SPECIAL)
def test_special_values(x, b, want, dtype):
    if dtype == np.float32 and abs(x[0]) == 1e308:
        pytest.skip("not a float32 value")
    xa, ba = np.array(x, dtype), np.array(b, dtype)
    v, s = csoftmax.logsumexp(xa, b=ba, return_sign=True)
    np.testing.assert_array_equal([v, s], np.array(want, dtype))
    # and scipy agrees
    sv, ss = scipy_special.logsumexp(xa, b=ba, return_sign=True)
    np.testing.assert_array_equal([v, s], [sv, ss])
    # in a longer row of -inf / b = 0 padding, at every position (SIMD lanes)
    for n in (3, 9, 17):
        for pos in range(0, n - 1, 2):
            xx = np.full(n, -inf, dtype)
            bb = np.zeros(n, dtype)
            xx[pos:pos + 2] = xa
            bb[pos:pos + 2] = ba
            v2, s2 = csoftmax.logsumexp(xx, b=bb, return_sign=True)
            np.testing.assert_array_equal([v2, s2], [v, s])


def test_scipy_differences():
    """The documented differences from scipy."""
    v, s = csoftmax.logsumexp(np.zeros(0), b=np.zeros(0), return_sign=True)
    assert v == -inf and s == 0.0        # scipy: sign -1
    v, s = csoftmax.logsumexp([1000.0, 1000.0], b=[1.0, -1.0], return_sign=True)
    assert v == -inf and s == 0.0        # scipy: NaN, NaN


@pytest.mark.parametrize("dtype", DTYPES)
def test_versus_scipy(dtype):
    """Axes, broadcast b, keepdims: the values agree with scipy to its own
    accuracy and the signs exactly."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((4, 7, 9)) * 3).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for bshape in [(4, 7, 9), (9,), (7, 1), (1, 1, 1), ()]:
        b = rng.standard_normal(bshape).astype(dtype)
        b = np.where(np.abs(b) < 0.1, 0.0, b).astype(dtype)
        for axis in (0, 1, -1, (0, 2), None):
            for keepdims in (False, True):
                v, s = csoftmax.logsumexp(x, axis=axis, b=b, return_sign=True,
                                          keepdims=keepdims)
                sv, ss = scipy_special.logsumexp(x, axis=axis, b=b, return_sign=True,
                                                 keepdims=keepdims)
                assert np.shape(v) == np.shape(sv) and np.shape(s) == np.shape(ss)
                np.testing.assert_array_equal(s, ss)
                fin = np.isfinite(sv)
                np.testing.assert_allclose(np.asarray(v)[fin], np.asarray(sv)[fin],
                                           rtol=tol, atol=tol)
                np.testing.assert_array_equal(np.asarray(v)[~fin], np.asarray(sv)[~fin])
                w = csoftmax.logsumexp(x, axis=axis, b=b, keepdims=keepdims)
                np.testing.assert_array_equal(w, np.where(np.asarray(s) < 0, nan, v))


def test_dtypes():
    x32 = np.array([1.0, 2.0], np.float32)
    assert csoftmax.logsumexp(x32, b=np.float32(2)).dtype == np.float32
    assert csoftmax.logsumexp(x32, b=2.0).dtype == np.float32          # weak scalar
    assert csoftmax.logsumexp(x32, b=np.array([1.0, 2.0])).dtype == np.float64
    assert csoftmax.logsumexp(x32, b=np.array([1, 2])).dtype == np.float64
    assert csoftmax.logsumexp([1, 2], b=[1, 2]).dtype == np.float64
    x16 = np.array([1.0, 2.0], np.float16)
    v, s = csoftmax.logsumexp(x16, b=np.float16(-1), return_sign=True)
    assert v.dtype == np.float16 and s.dtype == np.float16 and s == -1
    sv, _ = scipy_special.logsumexp(x16, b=np.float16(-1), return_sign=True)
    assert v == sv
    v = csoftmax.logsumexp(np.array([True, False]), b=[1, 1])
    assert v.dtype == np.float64 and v == np.log(np.e + 1)
    # the plain call with return_sign (b None): sign 1, or 0 for -inf
    x = np.array([[1.0, 2.0], [-inf, -inf]])
    v, s = csoftmax.logsumexp(x, return_sign=True)
    np.testing.assert_array_equal(v, csoftmax.logsumexp(x))
    np.testing.assert_array_equal(s, [1.0, 0.0])


def _views(a):
    yield a
    yield np.asfortranarray(a)
    big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), a.dtype)
    v = big[::-2, 1::3]
    v[...] = a
    yield v


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_bitwise(dtype):
    """Every layout of x and b (and columns, axis=0) gives the contiguous
    call's bits."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((13, 37)) * 4).astype(dtype)
    b = rng.standard_normal((13, 37)).astype(dtype)
    for axis in (0, 1):
        ref = csoftmax.logsumexp(np.ascontiguousarray(x.T if axis == 0 else x),
                                 b=np.ascontiguousarray(b.T if axis == 0 else b),
                                 return_sign=True)
        for xv in _views(x):
            for bv in _views(b):
                v, s = csoftmax.logsumexp(xv, axis=axis, b=bv, return_sign=True)
                np.testing.assert_array_equal(v, ref[0])
                np.testing.assert_array_equal(s, ref[1])


def test_threads_bitwise():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((64, 4096))
    b = rng.standard_normal((64, 4096))
    one = csoftmax.logsumexp(x, b=b, return_sign=True, num_threads=1)
    two = csoftmax.logsumexp(x, b=b, return_sign=True, num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_out():
    x = np.arange(6.0).reshape(2, 3)
    b = np.array([1.0, -2.0, 0.5])
    out = np.full(2, 7.0)
    r = csoftmax.logsumexp(x, b=b, out=out)
    assert r is out
    np.testing.assert_array_equal(out, csoftmax.logsumexp(x, b=b))
    ov, os_ = np.empty(2), np.empty(2)
    r = csoftmax.logsumexp(x, b=b, return_sign=True, out=(ov, os_))
    assert r[0] is ov and r[1] is os_
    v, s = csoftmax.logsumexp(x, b=b, return_sign=True)
    np.testing.assert_array_equal(ov, v)
    np.testing.assert_array_equal(os_, s)
    # keepdims into out
    ok = np.empty((2, 1))
    csoftmax.logsumexp(x, b=b, keepdims=True, out=ok)
    np.testing.assert_array_equal(ok[:, 0], csoftmax.logsumexp(x, b=b))


def _untouched(fn, exc, match, out):
    before = [o.copy() for o in out]
    with pytest.raises(exc, match=match):
        fn()
    for o, bo in zip(out, before):
        np.testing.assert_array_equal(o, bo)


def test_bad_input():
    x = np.arange(6.0).reshape(2, 3)
    out = np.full(2, 7.0)
    lse = csoftmax.logsumexp
    _untouched(lambda: lse(x, b=np.ones(4), out=out), ValueError,
               "logsumexp: b has shape .* does not broadcast", [out])
    _untouched(lambda: lse(x, b=np.ones((3, 3)), out=out), ValueError, "does not broadcast",
               [out])
    _untouched(lambda: lse(x, b=np.array(["a", "b", "c"]), out=out), TypeError,
               "b has unsupported dtype", [out])
    _untouched(lambda: lse(x, b=np.ma.array([1.0, 2, 3]), out=out), TypeError, "masked",
               [out])
    _untouched(lambda: lse(x, b=[[1.0], [2.0, 3.0]], out=out), (TypeError, ValueError),
               "logsumexp: b", [out])
    _untouched(lambda: lse(x.astype(np.longdouble), b=1.0, out=out), TypeError,
               "longdouble|float128", [out])
    _untouched(lambda: lse(x, b=1.0, out=np.empty(2, np.float32)), TypeError, "out has dtype",
               [])
    _untouched(lambda: lse(x, b=1.0, out=np.empty(3)), ValueError, "out has shape", [])
    _untouched(lambda: lse(x, b=1.0, return_sign=True, out=out), TypeError,
               "out must be a tuple", [out])
    o2 = np.full(2, 5.0)
    _untouched(lambda: lse(x, b=1.0, return_sign=True, out=(out, np.empty(3))), ValueError,
               r"out\[1\] has shape", [out])
    _untouched(lambda: lse(x, b=1.0, return_sign=True, out=(out, out)), ValueError,
               "overlap", [out])
    _untouched(lambda: lse(x, axis=3, b=1.0, out=out), np.exceptions.AxisError, "axis 3",
               [out])
    _untouched(lambda: lse(x, b=1.0, num_threads=[2], out=out), TypeError, "num_threads",
               [out])
    ro = np.empty(2)
    ro.flags.writeable = False
    _untouched(lambda: lse(x, b=1.0, out=ro), ValueError, "read-only", [])
    _untouched(lambda: lse(x, b=1.0, return_sign=True, out=(o2, ro)), ValueError,
               "read-only", [o2])
    with pytest.raises(TypeError, match="logsumexp: unsupported dtype"):
        lse(x.astype(object), b=1.0)


# ---------------------------------------------------------------- complex

@pytest.mark.parametrize("ct", [np.complex64, np.complex128])
def test_complex_versus_scipy(ct):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((5, 11)) + 1j * rng.standard_normal((5, 11)) * 3).astype(ct)
    tol = 1e-12 if ct == np.complex128 else 1e-5
    for axis in (0, -1, None):
        for b in (None, rng.standard_normal(11), rng.standard_normal(11) * (1 + 1j)):
            r = csoftmax.logsumexp(z, axis=axis, b=b)
            s = scipy_special.logsumexp(z, axis=axis, b=b)
            assert np.asarray(r).dtype == np.asarray(s).dtype
            np.testing.assert_allclose(r, s, rtol=tol, atol=tol)
            rv, rs = csoftmax.logsumexp(z, axis=axis, b=b, return_sign=True)
            sv, ss = scipy_special.logsumexp(z, axis=axis, b=b, return_sign=True)
            assert np.asarray(rv).dtype == np.asarray(sv).dtype
            assert np.asarray(rs).dtype == np.asarray(ss).dtype
            np.testing.assert_allclose(rv, sv, rtol=tol, atol=tol)
            np.testing.assert_allclose(rs, ss, rtol=tol, atol=tol)
    # a real x with complex weights is complex too
    x = rng.standard_normal(6)
    np.testing.assert_allclose(csoftmax.logsumexp(x, b=1j * np.ones(6)),
                               scipy_special.logsumexp(x, b=1j * np.ones(6)), rtol=1e-13)
    # exact: log(e^1 + e^2) + i pi/2 ... check the formula on a known value
    v = csoftmax.logsumexp(np.array([0.0, 1j * np.pi]))      # 1 + (-1) = 0
    sv = scipy_special.logsumexp(np.array([0.0, 1j * np.pi]))
    assert np.real(v) < -30 and np.real(sv) < -30


def test_complex_errors():
    z = np.array([1 + 1j, 2.0])
    with pytest.raises(TypeError, match="logsumexp: unsupported dtype complex256|clongdouble"):
        csoftmax.logsumexp(z.astype(np.clongdouble))
    with pytest.raises(TypeError, match="out= is not supported for complex"):
        csoftmax.logsumexp(z, out=np.empty((), complex))
