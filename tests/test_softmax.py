"""csoftmax.softmax: layouts x axes x dtypes against the long double twin,
lengths 1..67 and long rows, out= / in place / overlap, dtype policy,
exact rows, the documented examples."""

import numpy as np
import pytest

import _checks
import _oracle
import csoftmax
from conftest import DTYPE_IDS, DTYPES, LAYOUT_NAMES, OPS_BY_NAME, assert_bitwise

OP = OPS_BY_NAME["softmax"]
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
def test_repeated_value_rows_exactly_one_over_n(dtype):
    _checks.check_exact_repeated_rows(OP, dtype, [0.0, 3.7, -1e4, 1e30, -0.25])


def test_worked_example():
    x = np.array([13.0, 31.0, 5.0])
    got = csoftmax.softmax(x)
    np.testing.assert_allclose(got, [1.52299795e-08, 9.99999985e-01, 5.10908895e-12], rtol=5e-9)
    hi, lo = _oracle.exact_rows(x[None], "softmax")
    assert _oracle.ulp_error(got[None], hi, lo, np.float64).max() <= 4
    # the same from a list, and in float32 (graded by the oracle at 1 ULP)
    assert_bitwise(csoftmax.softmax([13.0, 31.0, 5.0]), got)
    g32 = csoftmax.softmax(x.astype(np.float32))
    assert _oracle.ulp_error(g32[None], hi, lo, np.float32).max() <= 1


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_against_oracle(dtype):
    rng = np.random.default_rng(2024)
    for n in (2, 5, 16, 33):
        for scale in (1, 20, 300):
            x = (rng.standard_normal((30, n)) * scale).astype(dtype)
            hi, lo = _oracle.exact_rows(x, "softmax")
            err = _oracle.ulp_error(csoftmax.softmax(x), hi, lo, dtype)
            assert err.max() <= 4, (n, scale, err.max())


def test_sums_to_one_and_axis_none():
    x = np.arange(12.0).reshape(3, 4)
    r = csoftmax.softmax(x, axis=None)
    assert abs(r.sum() - 1) <= 12 * np.finfo(float).eps
    r = csoftmax.softmax(x, axis=(0, 1))
    assert_bitwise(r, csoftmax.softmax(x, axis=None))
    assert_bitwise(csoftmax.softmax(x, axis=(1, 0)), r)
    # axis=(): every element is its own row of length 1
    assert_bitwise(csoftmax.softmax(x, axis=()), np.ones_like(x))


def test_numpy_integer_axis():
    x = np.random.default_rng(1).standard_normal((3, 4))
    for ax in (np.int64(0), np.int8(-1), np.uint8(1), (np.int32(0), 1)):
        want = csoftmax.softmax(x, axis=tuple(int(a) for a in ax) if isinstance(ax, tuple)
                                else int(ax))
        assert_bitwise(csoftmax.softmax(x, axis=ax), want)


def test_default_axis_is_last():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    assert_bitwise(csoftmax.softmax(x), csoftmax.softmax(x, axis=2))
