"""Streaming logsumexp, csoftmax.LogSumExp (issue 8, part 6).

The value after any chunking and any merge order is within the bound of one
logsumexp call over the concatenation (2 ULP, against the mpmath oracle of
tests/_oracle.py), and bitwise independent of the thread count. Run once per
instruction set by .ci/run (KERNEL_TESTS).
"""
from __future__ import annotations

import numpy as np
import pytest

import csoftmax
from _oracle import exact_rows, ulp_error

inf, nan = np.inf, np.nan
DTYPES = [np.float64, np.float32]


def random_cuts(rng, n, k):
    """k - 1 cut points in [0, n], sorted, repeats allowed (empty chunks)."""
    return np.sort(rng.integers(0, n + 1, k - 1))


def stream_value(x, cuts, axis=-1):
    s = csoftmax.LogSumExp(axis=axis)
    for part in np.split(x, cuts, axis=axis):
        s.update(part)
    return s.value


def grade(got, x2d, dtype):
    """Worst error in ULP, less the double-double allowance 2^-99 |m| that
    logsumexp's own bound carries where m + log S cancels (csoftmax.h): the
    one-call bound is then grade <= 2."""
    hi, lo = exact_rows(x2d.astype(np.float64), "logsumexp")
    err = ulp_error(got, hi, lo, dtype)
    m = np.max(x2d.astype(np.float64), axis=1) if x2d.shape[1] else np.zeros(len(x2d))
    with np.errstate(all="ignore"):
        sp = np.spacing(np.abs(hi.astype(dtype))).astype(np.float64)
        allow = np.where(np.isfinite(m), 2.0 ** -99 * np.abs(m) / sp, 0.0)
    return float(np.max(err - allow))


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_chunkings_2ulp(dtype):
    """Random chunkings, with size-1 and empty chunks, at logit scales and
    for rows of log-probabilities (the result cancels to about 0)."""
    rng = np.random.default_rng(10)
    worst = 0.0
    for n in (1, 2, 7, 33, 100, 1000):
        for kind in ("logits", "logprob"):
            if kind == "logits":
                x = rng.standard_normal((5, n)) * 20
            else:
                p = rng.uniform(0.01, 1.0, (5, n))
                x = np.log(p / p.sum(axis=1, keepdims=True))
            x = x.astype(dtype)
            for k in (1, 2, 5, 17):
                got = stream_value(x, random_cuts(rng, n, k))
                assert got.dtype == dtype and got.shape == (5,)
                worst = max(worst, grade(got, x, dtype))
            ones = stream_value(x, np.arange(1, n))      # size-1 chunks
            worst = max(worst, grade(ones, x, dtype))
            # the one-call logsumexp meets the same grade (the bound is its bound)
            assert grade(csoftmax.logsumexp(x), x, dtype) <= 2.0
    assert worst <= 2.0, worst


@pytest.mark.parametrize("dtype", DTYPES)
def test_merge_associative(dtype):
    """(a + b) + c, a + (b + c) and one stream over all give results within
    the bound, and within 1 ULP of each other."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((4, 300)) * 10).astype(dtype)
    a, b, c = np.split(x, [50, 170], axis=1)
    s1 = csoftmax.LogSumExp().update(a)
    s1.merge(csoftmax.LogSumExp().update(b)).merge(csoftmax.LogSumExp().update(c))
    s2 = csoftmax.LogSumExp().update(b).merge(csoftmax.LogSumExp().update(c))
    s3 = csoftmax.LogSumExp().update(a).merge(s2)
    for s in (s1, s3):
        assert grade(s.value, x, dtype) <= 2.0
    v1, v3 = s1.value, s3.value
    assert np.all(np.abs(v1 - v3) <= np.spacing(np.abs(v1)))
    # merging an empty stream, into an empty stream, and with itself
    e = csoftmax.LogSumExp()
    np.testing.assert_array_equal(csoftmax.LogSumExp().update(x).merge(e).value,
                                  csoftmax.LogSumExp().update(x).value)
    np.testing.assert_array_equal(e.merge(csoftmax.LogSumExp().update(x)).value,
                                  csoftmax.LogSumExp().update(x).value)
    s = csoftmax.LogSumExp().update(x)
    twice = csoftmax.LogSumExp().update(np.concatenate([x, x], axis=1)).value
    np.testing.assert_allclose(s.merge(s).value, twice, rtol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_chunks(dtype):
    """-inf, +inf and NaN chunks: the rules of logsumexp, in any order."""
    fin = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], dtype)
    special = np.array([[-inf, -inf], [inf, 1.0], [nan, 0.0]], dtype)
    want = csoftmax.logsumexp(np.concatenate([fin, special], axis=1))
    np.testing.assert_array_equal(want, np.array([csoftmax.logsumexp([1.0, 2.0]), inf, nan],
                                                 dtype))
    for order in ((fin, special), (special, fin)):
        s = csoftmax.LogSumExp()
        for c in order:
            s.update(c)
        np.testing.assert_array_equal(s.value, want)
        s = csoftmax.LogSumExp().update(order[0]).merge(csoftmax.LogSumExp().update(order[1]))
        np.testing.assert_array_equal(s.value, want)
    # NaN beats +inf; all -inf and empty chunks: -inf
    s = csoftmax.LogSumExp().update(np.array([inf], dtype)).update(np.array([nan], dtype))
    assert np.isnan(s.value)
    s = csoftmax.LogSumExp().update(np.array([nan], dtype)).update(np.array([inf], dtype))
    assert np.isnan(s.value)
    s = csoftmax.LogSumExp().update(np.zeros(0, dtype)).update(np.array([-inf, -inf], dtype))
    assert s.value == -inf and s.value.dtype == dtype
    s = csoftmax.LogSumExp().update(np.zeros((3, 0), dtype))
    np.testing.assert_array_equal(s.value, [-inf] * 3)
    s.update(np.array([[5.0], [-inf], [1e30]], dtype))
    np.testing.assert_array_equal(s.value, np.array([5.0, -inf, 1e30], dtype))


def test_axes_and_dtypes():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 4, 5))
    for axis in (0, 1, -1, (0, 2), None):
        ax0 = axis if isinstance(axis, int) else 0
        if axis is None:
            parts = [x[:2], x[2:3], x[3:]]
        else:
            parts = np.split(x, [1, 3], axis=ax0)
        s = csoftmax.LogSumExp(axis=axis)
        for p in parts:
            s.update(p)
        np.testing.assert_allclose(s.value, csoftmax.logsumexp(x, axis=axis), rtol=5e-16,
                                   atol=0)
    assert csoftmax.LogSumExp(axis=None).update(x).value.shape == ()
    assert isinstance(csoftmax.LogSumExp(axis=None).update(x).value, np.float64)
    s16 = csoftmax.LogSumExp().update(np.array([1.0, 2.0], np.float16))
    assert s16.value.dtype == np.float16 and s16.dtype == np.float16
    assert s16.value == csoftmax.logsumexp(np.array([1.0, 2.0], np.float16))
    si = csoftmax.LogSumExp().update([1, 2]).update(np.array([3], np.int32))
    assert si.value.dtype == np.float64
    np.testing.assert_allclose(si.value, csoftmax.logsumexp([1.0, 2.0, 3.0]), rtol=3e-16)


def test_threads_bitwise():
    rng = np.random.default_rng(13)
    x = rng.standard_normal((128, 2048))
    one = csoftmax.LogSumExp(num_threads=1).update(x).value
    two = csoftmax.LogSumExp(num_threads=2).update(x).value
    np.testing.assert_array_equal(one, two)


def test_chunk_not_modified_and_views():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((7, 40))
    before = x.copy()
    ref = csoftmax.LogSumExp().update(x).value
    np.testing.assert_array_equal(x, before)
    v = csoftmax.LogSumExp().update(np.asfortranarray(x)).value
    np.testing.assert_array_equal(v, ref)
    big = np.zeros((14, 80))
    big[::2, ::2] = x
    np.testing.assert_array_equal(csoftmax.LogSumExp().update(big[::2, ::2]).value, ref)


def test_bad_input():
    s = csoftmax.LogSumExp().update(np.zeros((3, 4)))
    before = s.value.copy()
    with pytest.raises(ValueError, match=r"LogSumExp.update: the kept axes have shape \(2,\)"):
        s.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="LogSumExp.update: the kept axes"):
        s.update(np.zeros((3, 4, 1)))
    with pytest.raises(TypeError, match="LogSumExp.update: result dtype float32 differs"):
        s.update(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="LogSumExp.update: unsupported dtype"):
        s.update(np.zeros((3, 4), complex))
    with pytest.raises(TypeError, match="LogSumExp.update: unsupported dtype"):
        s.update(np.zeros((3, 4), np.longdouble))
    with pytest.raises(TypeError, match="LogSumExp.update: masked"):
        s.update(np.ma.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"shape \(\) \(ndim 1\), expected \(3,\)"):
        s.update(np.zeros(3))
    with pytest.raises(np.exceptions.AxisError):
        csoftmax.LogSumExp(axis=2).update(np.zeros(3))
    with pytest.raises(TypeError, match="LogSumExp.merge: expected a LogSumExp"):
        s.merge(np.zeros(3))
    with pytest.raises(TypeError, match="LogSumExp.merge: result dtype"):
        s.merge(csoftmax.LogSumExp().update(np.zeros((3, 4), np.float32)))
    with pytest.raises(ValueError, match="LogSumExp.merge: the kept axes"):
        s.merge(csoftmax.LogSumExp().update(np.zeros((5, 4))))
    np.testing.assert_array_equal(s.value, before)     # nothing changed
    with pytest.raises(ValueError, match="LogSumExp.value: no chunk yet"):
        csoftmax.LogSumExp().value
    with pytest.raises(TypeError, match="LogSumExp: axis"):
        csoftmax.LogSumExp(axis=1.5)
    with pytest.raises(TypeError, match="LogSumExp: axis"):
        csoftmax.LogSumExp(axis=True)
    with pytest.raises(ValueError, match="LogSumExp.update: duplicate"):
        csoftmax.LogSumExp(axis=(0, 0)).update(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="num_threads"):
        csoftmax.LogSumExp(num_threads=0)
