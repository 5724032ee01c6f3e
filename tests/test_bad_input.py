"""Every error path, for all three functions: the exception type, a message
that names the function and the problem, and no side effect (out byte for
byte unchanged, x unchanged). Also the valid dtype conversions."""

import re

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from conftest import OPS, OP_IDS, assert_bitwise, contiguous

pytestmark = pytest.mark.filterwarnings("error")

SENTINEL = 0x5A


def sentinel(shape, dtype):
    """A writeable out filled with a recognisable byte pattern."""
    o = np.empty(shape, dtype)
    o.reshape(-1).view(np.uint8).fill(SENTINEL)
    return o


def out_shape(op, x_shape, axis=-1, keepdims=False):
    if not op.reduces or not x_shape:
        return tuple(x_shape)
    nd = len(x_shape)
    red = range(nd) if axis is None else [a % nd for a in
                                         (axis if isinstance(axis, tuple) else (axis,))]
    return tuple(1 if i in red else s for i, s in enumerate(x_shape) if keepdims or i not in red)


def raises_untouched(op, exc, pattern, x, out=None, **kw):
    """op(x, out=out, **kw) raises exc matching "<name>: ...pattern"; x and out
    are unchanged byte for byte."""
    x_before = np.array(x, copy=True) if isinstance(x, np.ndarray) else None
    out_before = contiguous(out).tobytes() if isinstance(out, np.ndarray) else None
    if out is not None:
        kw["out"] = out
    with pytest.raises(exc, match=rf"^{op.name}: .*{pattern}") as info:
        op.fn(x, **kw)
    if x_before is not None:
        assert_bitwise(x, x_before)
    if out_before is not None:
        assert contiguous(out).tobytes() == out_before, "out was written before the error"
    return info


# --------------------------------------------------------------------------
# dtypes
# --------------------------------------------------------------------------

BAD_X = {
    "complex64": np.array([1 + 2j, 3.0], np.complex64),
    "complex128": np.array([1 + 2j, 3.0]),
    "clongdouble": np.array([1 + 2j, 3.0], np.clongdouble),
    "object-floats": np.array([1.0, 2.0], dtype=object),
    "object-mixed": np.array([1, "a"], dtype=object),
    "str": np.array(["1.0", "2.0"]),
    "bytes": np.array([b"1", b"2"]),
    "datetime64": np.array(["2020-01-01", "2021-01-01"], "datetime64[D]"),
    "timedelta64": np.array([1, 2], "timedelta64[s]"),
    "structured": np.zeros(2, [("a", "f8"), ("b", "f8")]),
    "void": np.zeros(2, "V8"),
    "python-str": "abc",
    "None": None,
}


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("name", list(BAD_X))
def test_unsupported_dtype(op, name):
    if op.name == "logsumexp" and name in ("complex64", "complex128"):
        pytest.skip("logsumexp takes complex input as scipy does (tests/test_logsumexp_b.py)")
    x = BAD_X[name]
    dt = np.asarray(x).dtype
    out = sentinel(out_shape(op, np.shape(x)), np.float64)
    raises_untouched(op, TypeError, r"unsupported dtype " + re.escape(str(dt)), x, out=out)
    raises_untouched(op, TypeError, r"unsupported dtype " + re.escape(str(dt)), x)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_masked_array(op):
    x = np.ma.array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    out = sentinel(out_shape(op, (3,)), np.float64)
    raises_untouched(op, TypeError, "masked arrays are not supported", x, out=out)
    raises_untouched(op, TypeError, "masked arrays", np.ma.array(np.ones((2, 2))), axis=None)


INT_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
              np.uint32, np.uint64, np.intc, np.uintc, np.longlong, np.ulonglong,
              np.dtype(">i8"), np.dtype(">u4")]


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_integer_dtypes_are_valid_and_give_float64(op):
    for dt in INT_DTYPES:
        x = np.arange(12).reshape(3, 4).astype(dt)
        r = op.fn(x)
        assert np.asarray(r).dtype == np.float64, dt
        assert_bitwise(r, op.fn(x.astype(np.float64)))
        # out must be float64 (not the input dtype)
        out = sentinel(out_shape(op, x.shape), np.float64)
        assert op.fn(x, out=out) is out
        assert_bitwise(out, r)
        if np.dtype(dt).kind != "b":
            bad = sentinel(out_shape(op, x.shape), dt)
            raises_untouched(op, TypeError, r"out has dtype .*expected float64", x, out=bad)


# --------------------------------------------------------------------------
# out=
# --------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_out_not_an_ndarray(op):
    x = np.ones((2, 3))
    for bad in ([0.0] * 3, (0.0, 0.0), np.float64(0.0), memoryview(bytearray(24)), 1.0):
        raises_untouched(op, TypeError, r"out must be a numpy.ndarray, got "
                         + type(bad).__name__, x, out=bad)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_out_wrong_dtype(op):
    cases = [(np.float64, np.float32), (np.float32, np.float64), (np.float64, np.int64),
             (np.float32, np.float16), (np.float16, np.float32), (np.int32, np.int32),
             (np.int32, np.float32), (np.float64, np.longdouble), (np.longdouble, np.float64),
             (np.float64, np.dtype(">f8")), (np.float64, np.complex128),
             (np.dtype(">f4"), np.dtype(">f4"))]
    for xdt, odt in cases:
        x = np.arange(6.0).reshape(2, 3).astype(xdt)
        out = sentinel(out_shape(op, x.shape), odt)
        info = raises_untouched(op, TypeError, r"out has dtype ", x, out=out)
        assert "expected" in str(info.value)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.longdouble, np.int64])
def test_out_wrong_shape(op, dtype):
    x = np.arange(24).reshape(2, 3, 4).astype(dtype)
    rdt = np.float64 if np.dtype(dtype).kind == "i" else dtype
    good = out_shape(op, x.shape)
    bads = [(2, 3, 5), (4, 3, 2), (24,), (2, 3, 4, 1), (), (1, 2, 3, 4)]
    if op.reduces:
        bads += [(2, 3, 1), (3,), (2,), (1, 3, 4)]     # keepdims shape without keepdims
    for s in bads:
        if s == good:
            continue
        raises_untouched(op, ValueError, re.escape(f"out has shape {s}, expected {good}"),
                         x, out=sentinel(s, rdt))
    if op.reduces:
        # with keepdims the keepdims shape is required
        raises_untouched(op, ValueError, r"out has shape", x, out=sentinel((2, 3), rdt),
                         keepdims=True)
        raises_untouched(op, ValueError, r"out has shape", x, out=sentinel((1,), rdt),
                         axis=None)
        raises_untouched(op, ValueError, r"out has shape", x, out=sentinel((), rdt),
                         axis=None, keepdims=True)
    else:
        raises_untouched(op, ValueError, r"out has shape", np.float64(1.0),
                         out=sentinel((1,), np.float64), axis=None)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.longdouble])
def test_out_read_only(op, dtype):
    x = np.arange(12.0).reshape(3, 4).astype(dtype)
    out = sentinel(out_shape(op, x.shape), dtype)
    out.flags.writeable = False
    raises_untouched(op, ValueError, "out is read-only", x, out=out)
    # read-only in place: x itself not writeable
    if not op.reduces:
        y = x.copy()
        y.flags.writeable = False
        raises_untouched(op, ValueError, "out is read-only", y, out=y)
    # broadcast views are read-only
    bshape = out_shape(op, x.shape)
    b = np.broadcast_to(np.ones(1, dtype), bshape) if bshape else None
    if b is not None:
        raises_untouched(op, ValueError, "out is read-only", x, out=b)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.longdouble])
def test_out_self_overlapping(op, dtype):
    x = np.arange(12.0).reshape(3, 4).astype(dtype)
    shape = out_shape(op, x.shape)
    base = sentinel(64, dtype)
    isz = base.itemsize
    candidates = [as_strided(base, shape, (0,) * len(shape)),
                  as_strided(base, shape, (isz,) * (len(shape) - 1) + (0,))]
    if len(shape) == 2:
        candidates.append(as_strided(base, shape, (isz, isz)))     # diagonals alias
        candidates.append(as_strided(base, shape, (0, isz)))
        candidates.append(sliding_window_view(base, 4, writeable=True)[:3])
    for out in candidates:
        assert out.shape == shape and out.flags.writeable
        before = base.tobytes()
        raises_untouched(op, ValueError, "out has overlapping elements", x, out=out)
        assert base.tobytes() == before


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_first_error_wins_and_nothing_written(op):
    """Several problems at once: the dtype/axis problems are reported and out
    is untouched; x is untouched too."""
    x = np.arange(6.0).reshape(2, 3)
    out = sentinel((5,), np.float32)   # wrong dtype and shape
    raises_untouched(op, np.exceptions.AxisError, "out of bounds", x, out=out, axis=7)
    raises_untouched(op, TypeError, "unsupported dtype", x.astype(np.clongdouble), out=out)
    raises_untouched(op, TypeError, "out has dtype", x, out=out)


# --------------------------------------------------------------------------
# axis
# --------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_axis_out_of_range(op):
    x = np.arange(6.0).reshape(2, 3)
    out = sentinel(out_shape(op, x.shape), np.float64)
    for axis, bad in [(2, 2), (-3, -3), ((0, 2), 2), ((-3, 1), -3), (100, 100),
                      (np.int64(5), 5)]:
        info = raises_untouched(op, np.exceptions.AxisError,
                                rf"axis {bad} is out of bounds for array of dimension 2",
                                x, out=out, axis=axis)
        assert isinstance(info.value, (ValueError, IndexError))
    # 0-d input: only None or () are valid
    for axis in (0, -1, (0,), (0, 1)):
        raises_untouched(op, np.exceptions.AxisError, "out of bounds for array of dimension 0",
                         np.array(2.0), axis=axis)
        raises_untouched(op, np.exceptions.AxisError, "dimension 0", np.float32(2.0), axis=axis)
    assert op.fn(np.array(2.0), axis=None) == op.fn(np.array(2.0), axis=())


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_axis_duplicate(op):
    x = np.arange(24.0).reshape(2, 3, 4)
    out = sentinel(out_shape(op, x.shape), np.float64)
    for axis in [(0, 0), (0, -3), (1, 2, 1), (-1, 2), (np.int8(1), 1)]:
        raises_untouched(op, ValueError, "duplicate", x, out=out, axis=axis)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_axis_bad_type(op):
    x = np.arange(6.0).reshape(2, 3)
    out = sentinel(out_shape(op, x.shape), np.float64)
    for axis, got in [(True, "True"), (False, "False"), (np.True_, r"(np\.)?True"),
                      ((0, True), "True"), (1.0, "float"), (np.float64(1.0), "float64"), ((0, 1.0), "float"),
                      ([0], "list"), ([0, 1], "list"), ("0", "str"), ((0, None), "NoneType"),
                      (slice(0, 1), "slice"), (np.array([0, 1]), "ndarray")]:
        raises_untouched(op, TypeError, r"axis must be an integer, a tuple of integers or "
                         rf"None, got {got}", x, out=out, axis=axis)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_valid_integer_axis_types(op):
    x = np.arange(6.0).reshape(2, 3)
    want = op.fn(x, axis=1)
    for axis in (np.int8(1), np.uint64(1), np.intp(-1), np.array(1), (np.int16(1),)):
        assert_bitwise(op.fn(x, axis=axis), want)


# --------------------------------------------------------------------------
# valid out= edge cases that must not be rejected
# --------------------------------------------------------------------------

@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("shape", [(3, 0), (0, 3), (0,), (2, 0, 3)])
def test_empty_out_is_accepted(op, shape):
    """An empty out has no elements, so none of them can overlap."""
    x = np.zeros(shape)
    for axis in range(len(shape)):
        out = np.empty(out_shape(op, shape, axis))
        r = op.fn(x, axis=axis, out=out)
        assert r is out
        if op.reduces and x.shape[axis] == 0:
            assert np.all(out == -np.inf)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_interleaved_out_is_refused(op):
    """Strides (24, 16) bytes on a float64 buffer give element offsets
    0, 2, 4 / 3, 5, 7: distinct, but the non-overlap check is sufficient, not
    exact, and refuses strides that interleave (documented): ValueError, and
    nothing written."""
    base = np.zeros(8)
    out = as_strided(base, (2, 3), (24, 16))
    x = np.arange(6.0).reshape(2, 3) if not op.reduces else np.arange(24.0).reshape(2, 3, 4)
    offsets = {(out[i, j:].__array_interface__["data"][0] - base.ctypes.data) // 8
               for i in range(2) for j in range(3)}
    assert offsets == {0, 2, 4, 3, 5, 7}
    base[:] = 7.0
    with pytest.raises(ValueError, match="interleave"):
        op.fn(x, out=out)
    assert np.all(base == 7.0)
