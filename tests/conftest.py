"""Shared helpers of the csoftmax test suite.

* ``OPS``: one entry per public function (csoftmax function, ``_reference``
  twin, ``scipy.special`` function, whether it reduces the axis).
* ``LAYOUTS`` / ``make_view``: views of a given shape in many memory layouts
  (C, Fortran, sliced, negative strides, zero-stride broadcast, unaligned,
  record field with an odd stride, big-endian, permuted axes).
* ``ulp_diff`` / ``assert_same_result``: exact comparisons with NaN/inf
  equality and a bound in units in the last place.

Everything random is seeded.
"""

from __future__ import annotations

import collections
import contextlib
import os

import numpy as np

import csoftmax
from csoftmax import _core, _reference

# Under .ci/harden.sh's ASan run (libasan preloaded), the compilers and the
# Pythons that tests start (tests/test_capi.py, subprocess tests) inherit
# LD_PRELOAD, and LeakSanitizer would fail them for their own leaks (gcc
# frees nothing at exit). This process read its sanitizer options when it
# started, so the change reaches only the children.
if "libasan" in os.environ.get("LD_PRELOAD", ""):
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"

Op = collections.namedtuple("Op", "name fn ref scipy reduces")


def _scipy_special(name):
    """scipy.special.<name>, imported at the first call (the import costs
    half a minute under valgrind, in .ci/harden.sh)."""
    def call(*args, **kwargs):
        import scipy.special
        return getattr(scipy.special, name)(*args, **kwargs)
    call.__qualname__ = call.__name__ = f"scipy.special.{name}"
    return call


OPS = [
    Op("softmax", csoftmax.softmax, _reference.softmax, _scipy_special("softmax"), False),
    Op("log_softmax", csoftmax.log_softmax, _reference.log_softmax,
       _scipy_special("log_softmax"), False),
    Op("logsumexp", csoftmax.logsumexp, _reference.logsumexp, _scipy_special("logsumexp"), True),
]
OP_IDS = [op.name for op in OPS]
OPS_BY_NAME = {op.name: op for op in OPS}

# accuracy bound against the long double reference (the reference is itself
# rounded once to the result dtype): f64 per function, f32 always 1 ULP
ULP_F64 = {"softmax": 4, "log_softmax": 4, "logsumexp": 2}
ULP_F32 = {"softmax": 1, "log_softmax": 1, "logsumexp": 1}


def ulp_bound(opname, dtype):
    return (ULP_F64 if np.dtype(dtype) == np.float64 else ULP_F32)[opname]


DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]


# --------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------

def _values(rng, shape, scale):
    return rng.standard_normal(shape) * scale


def _layout_c(v, dtype):
    return np.array(v, dtype=dtype, order="C")


def _layout_f(v, dtype):
    return np.array(v, dtype=dtype, order="F")


def _layout_sliced(v, dtype):
    big = np.zeros(tuple(2 * s + 1 for s in v.shape), dtype)
    idx = tuple(slice(1, None, 2) for _ in v.shape) + (Ellipsis,)
    big[idx] = v
    return big[idx]


def _layout_negative(v, dtype):
    base = np.array(v[(slice(None, None, -1),) * v.ndim], dtype=dtype, order="C")
    return base[(slice(None, None, -1),) * v.ndim + (Ellipsis,)]


def _layout_broadcast(v, dtype):
    """Zero stride along axis 0 (every slice along axis 0 is equal)."""
    if v.ndim == 0:
        return np.broadcast_to(np.asarray(v, dtype), ())
    small = np.array(v[:1], dtype=dtype, order="C")
    return np.broadcast_to(small, v.shape)


def _layout_unaligned(v, dtype):
    dt = np.dtype(dtype)
    buf = np.zeros(v.size * dt.itemsize + 1, np.uint8)
    a = np.frombuffer(buf.data, dtype=dt, count=v.size, offset=1).reshape(v.shape)
    # frombuffer over a writeable buffer gives a writeable array
    a[...] = v
    assert not a.flags.aligned or a.size == 0
    return a


def _layout_field(v, dtype):
    """A field of a packed record array: unaligned, stride not a multiple of
    the item size (9 or 5 bytes)."""
    rec = np.zeros(v.shape, [("pad", "u1"), ("v", dtype)])
    f = rec["v"]
    f[...] = v
    assert not f.flags.aligned or f.size == 0
    return f


def _layout_bigendian(v, dtype):
    return np.asarray(v).astype(np.dtype(dtype).newbyteorder(">"))


def _layout_permuted(v, dtype):
    """The axes of a C array in rotated order (a transposed 3-D view for 3-D)."""
    nd = v.ndim
    perm = [(i + 1) % nd for i in range(nd)] if nd else []
    base = np.array(np.transpose(v, perm), dtype=dtype, order="C")
    return np.transpose(base, np.argsort(perm))


LAYOUTS = {
    "C": _layout_c,
    "F": _layout_f,
    "sliced": _layout_sliced,
    "negative": _layout_negative,
    "broadcast": _layout_broadcast,
    "unaligned": _layout_unaligned,
    "field": _layout_field,
    "bigendian": _layout_bigendian,
    "permuted": _layout_permuted,
}
LAYOUT_NAMES = list(LAYOUTS)


def make_view(layout, shape, dtype, seed=0, scale=3.0):
    """An array of ``shape`` with the values of a seeded normal sample, laid
    out as ``layout``. Its values equal those of the "C" layout except for
    "broadcast" (constant along axis 0)."""
    rng = np.random.default_rng(seed)
    v = np.asarray(_values(rng, shape, scale))
    a = LAYOUTS[layout](v, dtype)
    assert a.shape == tuple(shape)
    return a


# --------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------

_INT_OF = {np.dtype(np.float16): np.int16, np.dtype(np.float32): np.int32,
           np.dtype(np.float64): np.int64}


def _ordered(a, dtype):
    """Map floats to integers in the same order (-0.0 and +0.0 both to 0)."""
    it = _INT_OF[np.dtype(dtype)]
    i = np.array(a, dtype=dtype).view(it).astype(np.int64)
    top = np.int64(np.iinfo(it).min)
    return np.where(i < 0, top - i, i)


def ulp_diff(a, b, dtype):
    """Number of representable ``dtype`` values between a and b (elementwise,
    as uint64; 0 for equal values; meaningless where either is NaN)."""
    dtype = np.dtype(dtype)
    a = np.asarray(a)
    b = np.asarray(b)
    ia, ib = _ordered(a, dtype), _ordered(b, dtype)
    same = (ia < 0) == (ib < 0)
    with np.errstate(over="ignore"):
        d_same = np.abs(ia - ib).astype(np.uint64)
        d_cross = np.abs(ia).astype(np.uint64) + np.abs(ib).astype(np.uint64)
    return np.where(same, d_same, d_cross)


def assert_same_result(got, want, ulps=0, dtype=None, err_msg=""):
    """got and want agree: same shape and dtype, NaN at the same places,
    infinities equal, finite values within ``ulps`` ULP (of ``dtype``,
    default want's dtype)."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape, err_msg)
    assert got.dtype == want.dtype, (got.dtype, want.dtype, err_msg)
    dtype = want.dtype if dtype is None else np.dtype(dtype)
    gn, wn = np.isnan(got), np.isnan(want)
    assert np.array_equal(gn, wn), f"NaN pattern differs {err_msg}\ngot={got}\nwant={want}"
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin & ~wn], want[~fin & ~wn]), f"inf differs {err_msg}"
    assert np.all(np.isfinite(got[fin])), f"non-finite result {err_msg}"
    if fin.any():
        d = ulp_diff(got[fin], want[fin], dtype)
        worst = int(d.max())
        if worst > ulps:
            i = int(np.argmax(d))
            raise AssertionError(
                f"{worst} ULP > {ulps} {err_msg}: got {got[fin][i]!r} want {want[fin][i]!r}")


def contiguous(x):
    """C-contiguous copy keeping dtype (byte order) and ndim (also 0-d)."""
    return np.asarray(x).copy(order="C")


def assert_bitwise(got, want, err_msg=""):
    """Same shape, dtype and bytes (NaN payloads included)."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, err_msg)
    if got.dtype == np.longdouble and got.dtype.itemsize > 8:
        # x87 extended: the padding bytes are garbage; compare values + signs
        assert np.array_equal(got, want, equal_nan=True), f"{err_msg}\n{got}\n{want}"
        assert np.array_equal(np.signbit(got), np.signbit(want)), err_msg
        return
    assert contiguous(got).tobytes() == contiguous(want).tobytes(), (
        f"not bitwise equal {err_msg}\ngot={got}\nwant={want}")


def axes_for(ndim):
    """Every single axis, a negative one, tuples and None (and () for 0-d)."""
    if ndim == 0:
        return [None, ()]
    out = list(range(ndim)) + [-1, None]
    if ndim >= 2:
        out += [(0, ndim - 1), (-1, 0), tuple(range(ndim))]
    if ndim >= 3:
        out += [(1, 2), (0, 1)]
    out.append(())
    return out


def call(op, x, axis, **kw):
    return op.fn(x, axis=axis, **kw)


def reference(op, x, axis):
    """The _reference result, shaped like csoftmax's (0-d ndarray kept)."""
    x = np.asarray(x)
    if x.dtype.kind == "f" and not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="))
    return np.asarray(op.ref(x, axis=axis))


@contextlib.contextmanager
def isa(name):
    """The kernels of instruction set `name` active inside the block."""
    before = csoftmax.isa_info()["active"]
    _core._set_isa(name)
    try:
        yield
    finally:
        _core._set_isa(before)
