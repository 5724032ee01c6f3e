"""csoftmax.log_softmax: layouts x axes x dtypes against the long double twin,
lengths 1..67 and long rows, out= / in place / overlap, dtype policy,
exact rows, the documented examples."""

import numpy as np
import pytest

import _checks
import _oracle
import csoftmax
from conftest import DTYPE_IDS, DTYPES, LAYOUT_NAMES, OPS_BY_NAME, assert_bitwise

OP = OPS_BY_NAME["log_softmax"]
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


@pytest.mark.parametrize("layout", ["C", "F", "sliced", "negative", "unaligned", "field",
                                    "permuted"])
@pytest.mark.parametrize("dtype", DTYPES + [np.float16, np.longdouble],
                         ids=DTYPE_IDS + ["f16", "f128"])
def test_in_place(dtype, layout):
    _checks.check_inplace(OP, dtype, layout)


@pytest.mark.parametrize("dtype", DTYPES + [np.float16, np.longdouble],
                         ids=DTYPE_IDS + ["f16", "f128"])
def test_partial_overlap(dtype):
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
def test_repeated_value_rows_exactly_minus_log_n(dtype):
    _checks.check_exact_repeated_rows(OP, dtype, [0.0, 3.7, -1e4, 1e30])


def test_worked_example_near_zero_at_the_max():
    r = csoftmax.log_softmax([0.0, -40.0])
    assert r[0] == -4.248354255291589e-18
    assert r[1] == -40.0 - 4.248354255291589e-18
    # deeper: the exact value at the max is -exp(-92) ~ -1.1e-40, not 0
    x = np.array([[0.0, -40.0], [0.0, -92.0], [0.0, -700.0], [5.0, -3.0], [-3.0, -745.0]])
    got = csoftmax.log_softmax(x)
    assert got[1, 0] < 0 and got[2, 0] < 0
    hi, lo = _oracle.exact_rows(x, "log_softmax")
    assert _oracle.ulp_error(got, hi, lo, np.float64).max() <= 4
    x32 = np.array([[0.0, -20.0], [0.0, -90.0]], np.float32)
    hi, lo = _oracle.exact_rows(x32, "log_softmax")
    assert _oracle.ulp_error(csoftmax.log_softmax(x32), hi, lo, np.float32).max() <= 1


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_against_oracle(dtype):
    rng = np.random.default_rng(2025)
    for n in (2, 5, 16, 33):
        for scale in (1, 20, 300):
            x = (rng.standard_normal((30, n)) * scale).astype(dtype)
            hi, lo = _oracle.exact_rows(x, "log_softmax")
            err = _oracle.ulp_error(csoftmax.log_softmax(x), hi, lo, dtype)
            assert err.max() <= 4, (n, scale, err.max())


def test_consistent_with_logsumexp():
    x = np.random.default_rng(4).standard_normal((6, 9)) * 5
    for axis in (0, 1, None, (0, 1)):
        lse = csoftmax.logsumexp(x, axis=axis, keepdims=True)
        np.testing.assert_allclose(csoftmax.log_softmax(x, axis=axis), x - lse,
                                   rtol=1e-14, atol=1e-14)
    # axis=(): every element is its own row of length 1 -> 0
    assert_bitwise(csoftmax.log_softmax(x, axis=()), np.zeros_like(x))


def test_default_axis_is_last():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    assert_bitwise(csoftmax.log_softmax(x), csoftmax.log_softmax(x, axis=2))
    assert_bitwise(csoftmax.log_softmax(x, axis=np.int16(-3)), csoftmax.log_softmax(x, axis=0))
