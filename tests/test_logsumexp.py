"""csoftmax.logsumexp: layouts x axes x dtypes against the long double twin,
lengths 1..67 and long rows, out= (incl. overlapping x), keepdims, dtype
policy, exact rows, the documented examples."""

import numpy as np
import pytest

import _checks
import _oracle
import csoftmax
from conftest import (DTYPE_IDS, DTYPES, LAYOUT_NAMES, OPS_BY_NAME, assert_bitwise,
                      assert_same_result, contiguous, make_view)

OP = OPS_BY_NAME["logsumexp"]
pytestmark = pytest.mark.filterwarnings("error")


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("shape", _checks.SHAPES, ids=_checks.SHAPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_layouts_and_axes(dtype, shape, layout):
    _checks.check_layouts(OP, dtype, shape, layout)


@pytest.mark.parametrize("scale", [1, 30, 1000])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_every_length_1_to_67(dtype, scale):
    _checks.check_lengths(OP, dtype, scale, seed=scale)


@pytest.mark.parametrize("n", [10_000, 100_003])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_long_rows(dtype, n):
    _checks.check_long_rows(OP, dtype, n)


def test_many_dims():
    _checks.check_many_dims(OP)


@pytest.mark.parametrize("out_layout", _checks.OUT_LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_out_layouts(dtype, out_layout):
    _checks.check_out_layouts(OP, dtype, out_layout)


@pytest.mark.parametrize("dtype", DTYPES + [np.float16, np.longdouble],
                         ids=DTYPE_IDS + ["f16", "f128"])
def test_out_overlapping_x(dtype):
    _checks.check_partial_overlap(OP, dtype)


def test_int_and_bool_give_float64():
    _checks.check_int_dtypes(OP)


def test_float16():
    _checks.check_float16(OP)


def test_longdouble():
    _checks.check_longdouble(OP)


def test_array_likes():
    _checks.check_array_likes(OP)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_repeated_value_rows_exactly_log_n_plus_value(dtype):
    _checks.check_exact_repeated_rows(OP, dtype, [0.0, 3.7, -1e4, 1e30, -0.25])


def test_worked_examples():
    r = csoftmax.logsumexp([0.0, -40.0])
    assert isinstance(r, np.float64)
    assert r == 4.248354255291589e-18
    assert csoftmax.logsumexp(np.float32([0.0, -40.0])) == np.float32(4.248354255291589e-18)
    # the docstring example, graded by the oracle
    got = csoftmax.logsumexp([[1.0, 2.0], [3.0, 4.0]], axis=0)
    np.testing.assert_allclose(got, [3.12692801, 4.12692801], rtol=2e-9)
    hi, lo = _oracle.exact_rows(np.array([[1.0, 3.0], [2.0, 4.0]]), "logsumexp")
    assert _oracle.ulp_error(got, hi, lo, np.float64).max() <= 2
    # cancellation: m < 0 and log1p(T) ~ -m: the result keeps relative accuracy
    x = np.array([[-1e-10, -1e-10 - np.log1p(-2e-10)], [0.0, -740.0], [-0.7, -0.7],
                  [-0.6931471805599453, -0.6931471805599453], [1000.0, 1000.0]])
    hi, lo = _oracle.exact_rows(x, "logsumexp")
    got = csoftmax.logsumexp(x)
    assert _oracle.ulp_error(got, hi, lo, np.float64).max() <= 2, (got, hi)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_against_oracle(dtype):
    rng = np.random.default_rng(2026)
    for n in (2, 5, 16, 33):
        for scale in (1, 20, 300):
            x = (rng.standard_normal((30, n)) * scale).astype(dtype)
            hi, lo = _oracle.exact_rows(x, "logsumexp")
            err = _oracle.ulp_error(csoftmax.logsumexp(x), hi, lo, dtype)
            assert err.max() <= 2, (n, scale, err.max())
    # results near 0 by cancellation (m < 0, sum of exp ~ 1)
    x = np.array([[-np.log(2.0), -np.log(2.0) + d] for d in np.linspace(-1e-7, 1e-7, 41)],
                 dtype)
    hi, lo = _oracle.exact_rows(x, "logsumexp")
    err = _oracle.ulp_error(csoftmax.logsumexp(x), hi, lo, dtype)
    assert err.max() <= 2, err.max()


@pytest.mark.parametrize("layout", ["C", "F", "negative", "permuted", "broadcast"])
def test_keepdims(layout):
    x = make_view(layout, (2, 3, 4), np.float64, seed=8)
    for axis, shape in [(0, (1, 3, 4)), (1, (2, 1, 4)), (-1, (2, 3, 1)), ((0, 2), (1, 3, 1)),
                        ((2, 0), (1, 3, 1)), (None, (1, 1, 1)), ((0, 1, 2), (1, 1, 1)),
                        ((), (2, 3, 4))]:
        r = csoftmax.logsumexp(x, axis=axis, keepdims=True)
        assert type(r) is np.ndarray and r.shape == shape, (axis, r.shape)
        flat = csoftmax.logsumexp(x, axis=axis)
        assert_bitwise(r.reshape(np.shape(flat)), flat)
        assert_same_result(r, np.asarray(OP.ref(contiguous(x), axis=axis, keepdims=True)), 2)
    # keepdims on 0-d input keeps 0-d (a scalar)
    r = csoftmax.logsumexp(np.float64(2.0), axis=None, keepdims=True)
    assert isinstance(r, np.float64) and r == 2.0
    # keepdims with an empty row: -inf
    r = csoftmax.logsumexp(np.zeros((3, 0)), keepdims=True)
    assert r.shape == (3, 1) and np.all(r == -np.inf)


def test_full_reduction_is_a_scalar():
    for x in ([1.0, 2.0], np.ones((2, 3), np.float32), np.float64(4.0), []):
        r = csoftmax.logsumexp(x, axis=None)
        assert isinstance(r, np.generic) and not isinstance(r, np.ndarray)
    assert csoftmax.logsumexp([], axis=None) == -np.inf
    assert csoftmax.logsumexp(np.ones((2, 3), np.float32), axis=None).dtype == np.float32
    # axis=(): every element is its own row of length 1 -> x itself
    x = np.random.default_rng(1).standard_normal((3, 4))
    assert_bitwise(csoftmax.logsumexp(x, axis=()), x)


def test_default_axis_is_last_not_none():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    assert csoftmax.logsumexp(x).shape == (3, 4)
    assert_bitwise(csoftmax.logsumexp(x), csoftmax.logsumexp(x, axis=2))
