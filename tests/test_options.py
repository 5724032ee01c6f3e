"""where= masks, causal=True and temperature= (issue 8, parts 3 and 4).

* accuracy against the mpmath oracle: temperature (the oracle divides
  exactly) and masks (the oracle sees the kept entries of each row alone),
  through the row and the column (strip) kernels, with the library's bounds;
* the special-value rule of masked rows (the rule of the kept entries; a row
  with none kept is an empty row) against the long double twin, bit for bit
  in the NaN/inf/0 pattern;
* causal=True against an explicit lower-triangular mask (bitwise) and
  torch's is_causal; broadcast masks, every layout, axis tuples, out= and in
  place, a mask that shares memory with out, threads bitwise, dtype policy;
* bad input: clear errors, nothing written.
"""

from __future__ import annotations

import numpy as np
import pytest

import _oracle
import csoftmax
from csoftmax import _reference
from conftest import LAYOUT_NAMES, assert_bitwise, make_view

pytestmark = pytest.mark.filterwarnings("error")

OPS = {"softmax": csoftmax.softmax, "log_softmax": csoftmax.log_softmax,
       "logsumexp": csoftmax.logsumexp}
REFS = {"softmax": _reference.softmax, "log_softmax": _reference.log_softmax,
        "logsumexp": _reference.logsumexp}
BOUND = {"softmax": 4.0, "log_softmax": 4.0, "logsumexp": 2.0}
DTYPES = [np.float32, np.float64]
IDS = ["f32", "f64"]


def _grade(got, hi, lo, dtype):
    """ULP errors (exact values below the normal range in subnormal spacings)."""
    return _oracle.ulp_error(got, hi, lo, dtype)


def _rows_block(dtype, rows, n, scale, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, n)) * scale).astype(dtype)


def _call_layout(fn, x2d, layout, **kw):
    """fn over the rows of x2d through the row kernel ("row": axis=-1) or
    the strip kernel ("col": axis=0 of the transposed copy)."""
    if layout == "row":
        return fn(x2d, axis=-1, **kw)
    xt = np.ascontiguousarray(x2d.T)
    kwt = dict(kw)
    if kw.get("where") is not None:
        kwt["where"] = np.ascontiguousarray(np.broadcast_to(kw["where"], x2d.shape).T)
    res = fn(xt, axis=0, **kwt)
    return res if res.ndim == 1 else res.T


# ------------------------------------------------------------------ accuracy

@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("T", [0.1, 0.7, 3.0, 1e3])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("opname", list(OPS))
def test_temperature_accuracy(opname, dtype, T, layout):
    worst = 0.0
    for n, scale in ((1, 1), (5, 10), (37, 3), (200, 30)):
        x = _rows_block(dtype, 20, n, scale, seed=n)
        got = _call_layout(OPS[opname], x, layout, temperature=T)
        hi, lo = _oracle.exact_rows(x, opname, temperature=T)
        err = _grade(got, hi, lo, dtype)
        worst = max(worst, float(err.max()))
    assert worst <= BOUND[opname], f"{opname} T={T}: {worst} ULP"


@pytest.mark.parametrize("layout", ["row", "col"])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("opname", list(OPS))
def test_mask_accuracy_against_kept_entries(opname, dtype, layout):
    rng = np.random.default_rng(11)
    for n, scale, T in ((3, 1, None), (17, 10, None), (64, 5, 0.5), (150, 30, None)):
        x = _rows_block(dtype, 20, n, scale, seed=100 + n)
        keep = rng.random(x.shape) < 0.6
        keep[0] = True                         # a row with every entry kept
        keep[1] = False
        keep[1, n // 2] = True                 # one kept entry
        keep[2] = False                        # none kept
        got = _call_layout(OPS[opname], x, layout, where=keep, temperature=T)
        for i in range(x.shape[0]):
            k = keep[i]
            if not k.any():
                if opname == "softmax":
                    assert np.all(got[i] == 0)
                else:
                    assert np.all(got[i] == -np.inf)
                continue
            hi, lo = _oracle.exact_rows(x[i:i + 1, k], opname, temperature=T)
            g = got[i] if opname == "logsumexp" else got[i][k]
            err = _grade(np.atleast_1d(g), hi.ravel(), lo.ravel(), dtype)
            assert err.max() <= BOUND[opname], (opname, n, i, float(err.max()))
            if opname != "logsumexp":
                excl = got[i][~k]
                assert np.all(excl == (0 if opname == "softmax" else -np.inf))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("opname", list(OPS))
def test_all_true_mask_and_unit_temperature_change_nothing(opname, dtype):
    x = _rows_block(dtype, 33, 91, 7, seed=5)
    plain = OPS[opname](x)
    assert_bitwise(OPS[opname](x, temperature=1.0), plain)
    got = OPS[opname](x, where=np.ones(x.shape, bool))
    hi, lo = _oracle.exact_rows(x, opname)
    assert _grade(got, hi, lo, dtype).max() <= BOUND[opname]
    np.testing.assert_allclose(got, plain, rtol=8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("opname", list(OPS))
def test_temperature_is_division_of_x(opname, dtype):
    """op(x, temperature=T) == op(x / T) when x / T is exact (T a power of 2)."""
    x = _rows_block(dtype, 9, 40, 4, seed=9)
    big = 100 if np.dtype(dtype) == np.float32 else 900
    for T in (0.25, 2.0, 2.0 ** -big, 2.0 ** big):
        xs = x / dtype(T)                       # exact: a power of 2, no over/underflow
        assert_bitwise(OPS[opname](x, temperature=T), OPS[opname](xs), err_msg=str(T))


# ------------------------------------------------------------ special values

SPECIAL_ROWS = [
    # (row, keep)
    ([1.0, 2.0, np.nan], [1, 1, 0]),                 # NaN excluded: ignored
    ([1.0, np.nan, 2.0], [1, 1, 1]),                 # NaN kept: all NaN
    ([np.inf, 1.0, 2.0], [0, 1, 1]),                 # +inf excluded
    ([np.inf, 1.0, np.inf], [1, 1, 0]),              # one kept +inf: one-hot
    ([np.inf, 1.0, np.inf], [1, 1, 1]),              # two kept +inf
    ([-np.inf, -np.inf, 3.0], [1, 1, 0]),            # kept all -inf (2 entries)
    ([-np.inf, 5.0, 3.0], [1, 0, 0]),                # one kept entry, -inf
    ([np.nan, 5.0, 3.0], [1, 0, 0]),                 # one kept entry, NaN
    ([7.0, np.nan, np.inf], [1, 0, 0]),              # one kept entry, finite
    ([np.inf, np.nan, 1.0], [0, 0, 0]),              # none kept: empty row
    (["max", "-max", 1.0], [1, 1, 0]),               # huge
    (["sub", "-sub", 0.0], [1, 0, 1]),               # subnormal
]


def _special_rows(dtype):
    fi = np.finfo(dtype)
    named = {"max": fi.max, "-max": -fi.max, "sub": fi.smallest_subnormal,
             "-sub": -fi.smallest_subnormal}
    return np.array([[named.get(v, v) if isinstance(v, str) else v for v in r]
                     for r, _ in SPECIAL_ROWS], dtype)


@pytest.mark.parametrize("T", [None, 0.5])
@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
@pytest.mark.parametrize("opname", list(OPS))
def test_special_values_follow_the_kept_entries_rule(opname, dtype, T):
    x = _special_rows(dtype)
    keep = np.array([k for _, k in SPECIAL_ROWS], bool)
    with np.errstate(all="ignore"):
        want = REFS[opname](x, -1, where=keep, temperature=T)
    for layout in ("row", "col"):
        got = _call_layout(OPS[opname], x, layout, where=keep, temperature=T)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=layout)
        fin = np.isfinite(want)
        np.testing.assert_array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
        np.testing.assert_allclose(got[fin], want[fin], rtol=4 * np.finfo(dtype).eps,
                                   atol=0 if dtype == np.float64 else 1e-45)
        zero = want == 0
        np.testing.assert_array_equal(got[zero], 0)


def test_special_values_documented_examples():
    sm, ls, lse = csoftmax.softmax, csoftmax.log_softmax, csoftmax.logsumexp
    nan, inf = np.nan, np.inf
    np.testing.assert_array_equal(sm([-inf, 5.0], where=[True, False]), [1.0, 0.0])
    np.testing.assert_array_equal(ls([-inf, 5.0], where=[True, False]), [0.0, -inf])
    assert lse([-inf, 5.0], where=[True, False]) == -inf
    np.testing.assert_array_equal(sm([nan, 1.0], where=[False, False]), [0.0, 0.0])
    np.testing.assert_array_equal(ls([nan, 1.0], where=[False, False]), [-inf, -inf])
    assert lse([nan, 1.0], where=[False, False]) == -inf
    np.testing.assert_array_equal(sm([nan, 1.0, 2.0], where=[True, False, True]),
                                  [nan, 0.0, nan])
    np.testing.assert_array_equal(sm([-inf, -inf, 0.0], where=[True, True, False]),
                                  [nan, nan, 0.0])
    assert np.isnan(lse([nan, 1.0], where=[True, True]))
    assert lse([inf, 1.0], where=[True, True], temperature=1e-300) == inf
    # a huge x / T: +inf as the division overflows, the rules of +inf apply
    np.testing.assert_array_equal(sm([1e300, 0.0], temperature=1e-100), [1.0, 0.0])


def test_empty_and_zero_size():
    for fn in OPS.values():
        r = fn(np.zeros((3, 0)), where=np.zeros((3, 0), bool), temperature=2.0)
        assert r.shape == ((3,) if fn is csoftmax.logsumexp else (3, 0))
    assert np.all(csoftmax.logsumexp(np.zeros((3, 0)), where=np.ones((3, 0), bool)) == -np.inf)
    assert csoftmax.softmax(np.zeros((0, 5)), causal=True).shape == (0, 5)
    assert csoftmax.softmax(np.zeros((4, 0)), causal=True).shape == (4, 0)
    # 0-d: a row of one entry
    assert csoftmax.softmax(np.float64(3.0), axis=None, where=np.bool_(False)) == 0.0
    assert csoftmax.softmax(np.float64(3.0), axis=None, where=True, temperature=3.0) == 1.0


# ------------------------------------------------------------------- causal

@pytest.mark.parametrize("shape", [(1, 1), (5, 5), (3, 8), (8, 3), (2, 3, 17, 40)])
@pytest.mark.parametrize("opname", list(OPS))
def test_causal_equals_explicit_tril_mask(opname, shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) * 4
    tril = np.tri(shape[-2], shape[-1], dtype=bool)
    assert_bitwise(OPS[opname](x, causal=True), OPS[opname](x, where=tril))
    extra = rng.random(shape[-1]) < 0.7
    assert_bitwise(OPS[opname](x, causal=True, where=extra, temperature=0.3),
                   OPS[opname](x, where=tril & extra, temperature=0.3))


@pytest.mark.parametrize("dtype", DTYPES, ids=IDS)
def test_causal_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((2, 4, 33, 47)) * 3).astype(dtype)
    T = 0.125                                       # exact: torch divides first
    tm = torch.ones(33, 47, dtype=torch.bool).tril()
    xt = torch.from_numpy(x / np.asarray(T, dtype)).masked_fill(~tm, -float("inf"))
    want = torch.softmax(xt, -1).numpy()
    got = csoftmax.softmax(x, causal=True, temperature=T)
    # torch rounds x - max before exp: its relative error grows as |x - max| u,
    # the bound used here (csoftmax's own is 4 ULP, checked above)
    eps = float(np.finfo(dtype).eps)
    d = np.abs(np.log(np.where(want > 0, want, 1.0)))
    tol = 4 * eps * (1 + d) * want + float(np.finfo(dtype).smallest_subnormal)
    assert np.all(np.abs(got - want) <= tol)
    assert np.array_equal(got == 0, want == 0)
    wantl = torch.log_softmax(xt, -1).numpy()
    gotl = csoftmax.log_softmax(x, causal=True, temperature=T)
    fin = np.isfinite(wantl)
    np.testing.assert_array_equal(gotl[~fin], wantl[~fin])
    np.testing.assert_allclose(gotl[fin], wantl[fin], rtol=4 * eps, atol=4 * eps)


def test_causal_errors():
    with pytest.raises(ValueError, match="softmax: causal=True needs x of at least 2"):
        csoftmax.softmax(np.ones(4), causal=True)
    with pytest.raises(ValueError, match="log_softmax: causal=True reduces over the keys"):
        csoftmax.log_softmax(np.ones((4, 4)), axis=0, causal=True)
    with pytest.raises(ValueError, match="logsumexp: causal=True reduces over the keys"):
        csoftmax.logsumexp(np.ones((4, 4)), axis=None, causal=True)
    with pytest.raises(TypeError, match="causal must be True or False"):
        csoftmax.softmax(np.ones((4, 4)), causal=1)


# ------------------------------------------------------ layouts and broadcast

@pytest.mark.parametrize("layout", LAYOUT_NAMES)
@pytest.mark.parametrize("opname", list(OPS))
def test_layouts_axes_and_broadcast_masks(opname, layout):
    shape = (3, 4, 5)
    x = make_view(layout, shape, np.float64, seed=7, scale=5.0)
    rng = np.random.default_rng(8)
    masks = [rng.random(shape) < 0.5, rng.random((4, 1)) < 0.5, rng.random(5) < 0.5,
             np.asfortranarray(rng.random(shape) < 0.5)[:, ::-1, :]]
    for axis in (-1, 0, 1, (0, 2), (1, 2), None):
        for w in masks:
            got = OPS[opname](x, axis=axis, where=w, temperature=1.5)
            with np.errstate(all="ignore"):
                want = REFS[opname](np.array(x), axis, where=np.broadcast_to(w, shape),
                                    temperature=1.5)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-300,
                                       err_msg=f"{layout} axis={axis}")


@pytest.mark.parametrize("opname", list(OPS))
def test_out_in_place_and_mask_sharing_memory_with_out(opname):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((6, 40))
    w = rng.random((6, 40)) < 0.5
    want = OPS[opname](x, where=w, temperature=0.7)
    out = np.full(want.shape, 123.0)
    assert OPS[opname](x, where=w, temperature=0.7, out=out) is out
    assert_bitwise(out, want)
    if opname != "logsumexp":
        xi = x.copy()
        assert OPS[opname](xi, where=w, temperature=0.7, out=xi) is xi
        assert_bitwise(xi, want)
    # a mask over the bytes that out's first elements occupy
    raw = np.zeros(x.size * 8, np.uint8)
    outv = raw.view(np.float64)[:want.size].reshape(want.shape)
    mask = raw[:x.size].view(bool).reshape(x.shape)
    mask[...] = w
    OPS[opname](x, where=mask, temperature=0.7, out=outv)
    assert_bitwise(outv, want)


def test_logsumexp_keepdims_with_options():
    x = np.arange(24.0).reshape(2, 3, 4)
    w = (np.arange(4) % 2).astype(bool)
    r = csoftmax.logsumexp(x, axis=(0, 2), keepdims=True, where=w)
    assert r.shape == (1, 3, 1)
    np.testing.assert_allclose(r.ravel(), csoftmax.logsumexp(x[:, :, w], axis=(0, 2)),
                               rtol=1e-15)


@pytest.mark.parametrize("opname", list(OPS))
def test_threads_bitwise(opname):
    rng = np.random.default_rng(13)
    for shape, axis in (((64, 3000), -1), ((2, 300_000), -1), ((3000, 64), 0)):
        x = rng.standard_normal(shape).astype(np.float32) * 10
        w = rng.random(shape) < 0.8
        one = OPS[opname](x, axis=axis, where=w, temperature=0.37, num_threads=1)
        for nt in (2, 3):
            assert_bitwise(OPS[opname](x, axis=axis, where=w, temperature=0.37,
                                       num_threads=nt), one)


# ------------------------------------------------------------------- dtypes

@pytest.mark.parametrize("opname", list(OPS))
def test_dtype_policy(opname):
    fn = OPS[opname]
    w = np.array([True, False, True, True])
    xi = np.array([1, 2, 3, 4])
    r = fn(xi, where=w, temperature=2.0)
    assert r.dtype == np.float64
    assert_bitwise(r, fn(xi.astype(np.float64), where=w, temperature=2.0))
    x16 = np.array([1, 2, 3, 4], np.float16)
    r16 = fn(x16, where=w, temperature=2.0)
    assert r16.dtype == np.float16
    assert_bitwise(r16, np.asarray(fn(x16.astype(np.float32), where=w,
                                      temperature=2.0)).astype(np.float16))
    xl = np.array([1, 2, 3, 4], np.longdouble)
    rl = fn(xl, where=w, temperature=2.0)
    assert rl.dtype == np.longdouble
    want = fn(np.array([1.0, 3.0, 4.0]) / 2.0)
    got = rl if opname == "logsumexp" else rl[w]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=1e-15)
    if opname != "logsumexp":
        assert rl[1] == (0 if opname == "softmax" else -np.inf)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("opname", list(OPS))
def test_bad_options(opname):
    fn = OPS[opname]
    x = np.ones((3, 4))
    out = np.full(fn(x).shape, 7.0)
    cases = [
        (TypeError, "where must be a boolean array", dict(where=np.ones((3, 4)))),
        (TypeError, "where must be a boolean array", dict(where=[[1, 0, 1, 0]])),
        (ValueError, r"where has shape \(3, 5\), which does not broadcast",
         dict(where=np.ones((3, 5), bool))),
        (ValueError, r"where has shape \(2, 3, 4\)", dict(where=np.ones((2, 3, 4), bool))),
        (ValueError, "temperature must be a positive number", dict(temperature=0.0)),
        (ValueError, "temperature must be a positive number", dict(temperature=-1.0)),
        (ValueError, "temperature must be a positive number", dict(temperature=np.nan)),
        (ValueError, "temperature must be a positive number", dict(temperature=np.inf)),
        (ValueError, "temperature must be a positive number", dict(temperature=1e-310)),
        (ValueError, "temperature must be a positive number", dict(temperature=10 ** 400)),
        (TypeError, "temperature must be a real number", dict(temperature="2")),
        (TypeError, "temperature must be a real number", dict(temperature=True)),
        (TypeError, "temperature must be a real number", dict(temperature=1j)),
        (TypeError, "temperature must be a real number", dict(temperature=np.ones(3))),
        (TypeError, "causal must be True or False", dict(causal="yes")),
    ]
    for kind, msg, kw in cases:
        with pytest.raises(kind, match=f"{opname}: {msg}"):
            fn(x, out=out, **kw)
        assert np.all(out == 7.0), kw


def test_masked_array_message_points_to_where():
    with pytest.raises(TypeError, match="where=~np.ma.getmaskarray"):
        csoftmax.softmax(np.ma.array([1.0, 2.0], mask=[0, 1]))


# ------------------------------------------- logsumexp: options with b= (weights)

def test_logsumexp_where_folds_into_weights():
    """With b= or return_sign=, a where= / causal= mask drops entries as b = 0
    does (the same rule); temperature= does not combine with them."""
    rng = np.random.default_rng(21)
    x = rng.standard_normal((5, 12)) * 3
    x[1, 3] = np.nan                       # excluded below: never read
    b = rng.standard_normal(12)
    w = np.ones(12, bool)
    w[3] = w[7] = False
    val, sgn = csoftmax.logsumexp(x, b=b, where=w, return_sign=True)
    v2, s2 = csoftmax.logsumexp(x[:, w], b=b[w], return_sign=True)
    assert_bitwise(val, v2)
    assert_bitwise(sgn, s2)
    sq = np.ones((4, 4))
    assert_bitwise(csoftmax.logsumexp(sq, causal=True, return_sign=True)[0],
                   csoftmax.logsumexp(sq, where=np.tri(4, dtype=bool), b=np.ones(4)))
    with pytest.raises(ValueError, match="logsumexp: temperature= does not combine with b="):
        csoftmax.logsumexp(x, b=b, temperature=2.0)
    with pytest.raises(ValueError, match=r"logsumexp: b has shape \(4,\), which does not"):
        csoftmax.logsumexp(x, b=np.ones(4), where=w)
    with pytest.raises(TypeError, match="logsumexp: where must be a boolean array"):
        csoftmax.logsumexp(x, b=b, where=np.ones(12))
