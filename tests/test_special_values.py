"""The special-value table (NaN, +-inf, length-1 and empty rows), huge and
subnormal values, no warnings / floating-point exceptions, signalling NaN.

SPECIAL_VALUE_TABLE below is the table of the README (a test elsewhere checks
that both agree): keep it a plain module-level list of dicts.
"""

import warnings
from fractions import Fraction

import numpy as np
import pytest

import csoftmax
from csoftmax import _reference
from conftest import (DTYPE_IDS, DTYPES, OPS, OP_IDS, assert_bitwise, assert_same_result,
                      contiguous, ulp_bound)

pytestmark = pytest.mark.filterwarnings("error")

inf, nan = np.inf, np.nan

# One dict per line of the table: "row" describes the row, the three
# function columns say what comes out, "examples" are concrete rows of that
# kind (checked as they are, and also generated at many lengths below).
SPECIAL_VALUE_TABLE = [
    {"row": "any NaN",
     "softmax": "all NaN", "log_softmax": "all NaN", "logsumexp": "NaN",
     "examples": [[nan], [nan, 0.0], [0.0, nan, 1.0], [inf, nan], [nan, nan],
                  [-inf, nan, -inf], [nan, inf, -inf, 2.0]]},
    {"row": "some -inf, not all",
     "softmax": "0 there", "log_softmax": "-inf there", "logsumexp": "ignores them",
     "examples": [[-inf, 0.0], [2.0, -inf, 2.0], [-inf, -inf, -3.0, 1.0], [-inf, 3e38]]},
    {"row": "all -inf, n >= 2",
     "softmax": "all NaN", "log_softmax": "all NaN", "logsumexp": "-inf",
     "examples": [[-inf, -inf], [-inf, -inf, -inf, -inf, -inf]]},
    {"row": "k = 1",
     "softmax": "one-hot (1 at the +inf)", "log_softmax": "0 at the +inf, -inf elsewhere",
     "logsumexp": "+inf",
     "examples": [[inf, 0.0], [-inf, inf], [1.0, inf, -inf, 3e38], [inf, -inf, -inf]]},
    {"row": "k >= 2",
     "softmax": "NaN at the +inf entries, 0 elsewhere",
     "log_softmax": "NaN at +inf, -inf elsewhere", "logsumexp": "+inf",
     "examples": [[inf, inf], [inf, 0.0, inf, -inf], [inf, inf, inf], [-3e38, inf, 5.0, inf]]},
    {"row": "n = 1, not NaN (even +-inf)",
     "softmax": "[1.]", "log_softmax": "[0.]", "logsumexp": "x",
     "examples": [[3.5], [0.0], [-1e30], [3e38], [inf], [-inf]]},
    {"row": "empty row (size-0 axis)",
     "softmax": "empty result", "log_softmax": "empty result",
     "logsumexp": "-inf (keepdims honoured)",
     "examples": [[]]},
]
ROWS = [t["row"] for t in SPECIAL_VALUE_TABLE]
TABLE = {t["row"]: t for t in SPECIAL_VALUE_TABLE}


def expected(row_kind, x):
    """(softmax, log_softmax, logsumexp) of the 1-D row x by the table."""
    dt = x.dtype
    pinf = x == inf
    full = np.full_like
    if row_kind == "any NaN":
        return full(x, nan), full(x, nan), dt.type(nan)
    if row_kind == "all -inf, n >= 2":
        return full(x, nan), full(x, nan), dt.type(-inf)
    if row_kind == "k = 1":
        return np.where(pinf, 1, 0).astype(dt), np.where(pinf, 0, -inf).astype(dt), dt.type(inf)
    if row_kind == "k >= 2":
        return (np.where(pinf, nan, 0).astype(dt), np.where(pinf, nan, -inf).astype(dt),
                dt.type(inf))
    if row_kind == "n = 1, not NaN (even +-inf)":
        return np.ones(1, dt), np.zeros(1, dt), x[0]
    if row_kind == "empty row (size-0 axis)":
        return np.empty(0, dt), np.empty(0, dt), dt.type(-inf)
    if row_kind == "some -inf, not all":
        # the finite entries give what the finite row alone gives (by the
        # long double reference)
        fin = x != -inf
        sm, ls = np.zeros_like(x), full(x, -inf)
        sm[fin] = _reference.softmax(x[fin])
        ls[fin] = _reference.log_softmax(x[fin])
        return sm, ls, _reference.logsumexp(x[fin])[()]
    raise AssertionError(row_kind)


def classify(x):
    """Which line of the table the finite/special row x falls on (or "finite")."""
    if x.size == 0:
        return "empty row (size-0 axis)"
    if np.isnan(x).any():
        return "any NaN"
    if x.size == 1:
        return "n = 1, not NaN (even +-inf)"
    k = int((x == inf).sum())
    if k == 1:
        return "k = 1"
    if k >= 2:
        return "k >= 2"
    if np.all(x == -inf):
        return "all -inf, n >= 2"
    if np.any(x == -inf):
        return "some -inf, not all"
    return "finite"


def generate(row_kind, n, rng, dtype):
    """A random row of length n on the given line of the table, or None."""
    if row_kind == "empty row (size-0 axis)":
        return np.empty(0, dtype) if n == 0 else None
    if n == 0 or (row_kind == "n = 1, not NaN (even +-inf)") != (n == 1):
        return None
    x = (rng.standard_normal(n) * 10).astype(dtype)
    pos = rng.permutation(n)
    if row_kind == "n = 1, not NaN (even +-inf)":
        x[0] = rng.choice([inf, -inf, 2.5, 0.0])
    elif row_kind == "any NaN":
        x[pos[: rng.integers(1, n + 1)]] = nan
        if n > 2:
            x[pos[-1]] = rng.choice([inf, -inf, 1.0])
    elif row_kind == "some -inf, not all":
        if n < 2:
            return None
        x[pos[: rng.integers(1, n)]] = -inf
    elif row_kind == "all -inf, n >= 2":
        if n < 2:
            return None
        x[:] = -inf
    elif row_kind == "k = 1":
        if n < 2:
            return None
        x[pos[0]] = inf
        x[pos[1: rng.integers(1, n)]] = -inf
    elif row_kind == "k >= 2":
        if n < 2:
            return None
        x[pos[: rng.integers(2, n + 1)]] = inf
        if n > 3:
            x[pos[-1]] = -inf
    assert classify(x) == row_kind, (row_kind, x)
    return x


LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65]


def rows_of(row_kind, n, dtype, seed):
    rng = np.random.default_rng(seed)
    rows = [np.asarray(e, dtype) for e in TABLE[row_kind]["examples"] if len(e) == n]
    for _ in range(4):
        r = generate(row_kind, n, rng, dtype)
        if r is not None:
            rows.append(r)
    return rows


def _check_matrix(op, X, kinds, dtype, in_place):
    """op over the rows of X (axis -1), the columns of X.T (axis 0, as a view
    and as a contiguous copy), against the table; then (if in_place) also
    in place, against the out-of-place result."""
    i = [o.name for o in OPS].index(op.name)
    want = [expected(k, X[j])[i] for j, k in enumerate(kinds)]
    tol = ulp_bound(op.name, dtype)
    want = np.array(want, dtype) if want else np.empty((0,) if op.reduces else X.shape, dtype)
    for x, axis in ((X, -1), (X.T, 0), (contiguous(X.T), 0)):
        got = op.fn(x, axis=axis)
        g = got if op.reduces or axis == -1 else got.T
        assert_same_result(g, want, tol, err_msg=f"{op.name} axis={axis} kinds={kinds}\n{X}")
        if in_place and not op.reduces:
            y = x.copy()
            assert op.fn(y, axis=axis, out=y) is y
            assert_same_result(y, got, 0, err_msg=f"{op.name} in place axis={axis}")


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_table_line(dtype, row, op):
    mats = []
    for n in LENGTHS:
        rows = rows_of(row, n, dtype, seed=n)
        if not rows:
            continue
        X = np.stack(rows) if n else np.empty((len(rows), 0), dtype)
        _check_matrix(op, X, [row] * len(rows), dtype, in_place=False)
        # each row alone (1-D)
        for r in rows:
            want = expected(row, r)[[o.name for o in OPS].index(op.name)]
            assert_same_result(op.fn(r), want, ulp_bound(op.name, dtype), err_msg=f"{r}")
        mats.append(X)
    assert mats
    for X in mats:
        _check_matrix(op, X, [row] * len(X), dtype, in_place=True)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_all_lines_mixed_in_one_array(dtype, op):
    """Rows of every kind (and finite ones) side by side: nothing leaks
    from one row to the next."""
    for n in [2, 3, 4, 7, 8, 9, 16, 17, 33]:
        rows, kinds = [], []
        for k, row in enumerate(ROWS + ["finite"]):
            if row == "finite":
                rs = [(np.random.default_rng(n).standard_normal(n) * 5).astype(dtype)]
            else:
                rs = rows_of(row, n, dtype, seed=100 + n + k)
            rows += rs
            kinds += [classify(r) for r in rs]
        X = np.stack(rows)
        perm = np.random.default_rng(n).permutation(len(rows))
        X = X[perm]
        kinds = [kinds[p] for p in perm]
        # "finite" rows: expected from the reference
        i = [o.name for o in OPS].index(op.name)
        want = []
        for x, k in zip(X, kinds):
            want.append(np.asarray(op.ref(x)) if k == "finite" else expected(k, x)[i])
        want = np.array(want, dtype)
        tol = ulp_bound(op.name, dtype)
        assert_same_result(op.fn(X), want, tol)
        got0 = op.fn(X.T, axis=0)
        assert_same_result(got0 if op.reduces else got0.T, want, tol)


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_special_rows_bitwise_independent_of_layout(dtype, op):
    """The deterministic-kernel contract holds for special rows too: a view
    gives the bytes (NaN sign and payload included) of its contiguous copy,
    and in place gives the bytes of out of place."""
    for n in (2, 3, 4, 5, 8, 9):
        base = np.arange(n) * 0.75 - 1.0
        rows = [np.where(np.arange(n) == i, nan, base) for i in range(n)]
        rows += [np.where(np.arange(n) == i, inf, base) for i in range(n)]
        rows += [np.full(n, -inf), np.full(n, inf), np.where(np.arange(n) % 2, -inf, base),
                 base, np.full(n, nan)]
        X = np.array(rows, dtype)
        for v, axis in ((X, -1), (X.T, 0), (X[::-1, ::-1], -1), (np.asfortranarray(X), -1),
                        (X[:, None, :], (1, 2))):
            got = op.fn(v, axis=axis)
            assert_bitwise(got, op.fn(contiguous(v), axis=axis),
                           err_msg=f"{op.name} n={n} view strides={v.strides} axis={axis}")
            if not op.reduces:
                y = v.copy(order="K")
                op.fn(y, axis=axis, out=y)
                assert_bitwise(y, got, err_msg=f"{op.name} n={n} in place strides={v.strides}")


NAN_LENGTHS = [1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_special_at_every_position(dtype):
    """NaN / +inf / -inf at every position, incl. SIMD-tail positions, in
    rows (axis -1) and columns (axis 0)."""
    sm, ls, lse = csoftmax.softmax, csoftmax.log_softmax, csoftmax.logsumexp
    for n in NAN_LENGTHS:
        base = np.tile((np.arange(n) % 5 - 2.0).astype(dtype), (n, 1))
        eye = np.eye(n, dtype=bool)
        for X, axis in ((base, -1), (base.T, 0)):
            nanx = np.where(eye, nan, base).astype(dtype)
            Xn = nanx if axis == -1 else contiguous(nanx.T)
            assert np.isnan(sm(Xn, axis=axis)).all(), n
            assert np.isnan(ls(Xn, axis=axis)).all(), n
            assert np.isnan(lse(Xn, axis=axis)).all(), n
            # one +inf at every position: one-hot
            pinf = np.where(eye, inf, base).astype(dtype)
            Xp = pinf if axis == -1 else contiguous(pinf.T)
            onehot = eye.astype(dtype) if axis == -1 else eye.T.astype(dtype)
            assert np.array_equal(sm(Xp, axis=axis), onehot), n
            assert np.array_equal(ls(Xp, axis=axis), np.where(onehot == 1, 0, -inf)), n
            assert np.all(lse(Xp, axis=axis) == inf)
            # -inf at every position (n >= 2): exactly 0 / -inf there
            if n >= 2:
                minf = np.where(eye, -inf, base).astype(dtype)
                Xm = minf if axis == -1 else contiguous(minf.T)
                mask = eye if axis == -1 else eye.T
                r = sm(Xm, axis=axis)
                assert np.all(r[mask] == 0) and np.all(r[~mask] > 0), n
                r = ls(Xm, axis=axis)
                assert np.all(r[mask] == -inf) and np.all(np.isfinite(r[~mask])), n
                assert np.all(np.isfinite(lse(Xm, axis=axis)))


# --------------------------------------------------------------------------
# agreement with scipy.special where it follows the same table
# --------------------------------------------------------------------------

# scipy 1.17 differs from the table on these (row, function) pairs:
# softmax of +inf rows is NaN everywhere; a length-1 +-inf row gives NaN for
# softmax/log_softmax; empty rows raise in softmax/log_softmax; log_softmax
# of a one-+inf row gives NaN (not 0) at the +inf entry.
SCIPY_DIFFERS = {("k = 1", "softmax"), ("k >= 2", "softmax"),
                 ("empty row (size-0 axis)", "softmax"), ("empty row (size-0 axis)", "log_softmax")}


def _scipy(op, x, axis):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return np.asarray(op.scipy(x, axis=axis))


@pytest.mark.parametrize("row, op", [(r, op) for r in ROWS for op in OPS
                                     if (r, op.name) not in SCIPY_DIFFERS],
                         ids=lambda v: getattr(v, "name", v))
def test_agrees_with_scipy(row, op):
    for dtype in DTYPES:
        for n in LENGTHS:
            for x in rows_of(row, n, dtype, seed=7 * n):
                if row == "n = 1, not NaN (even +-inf)" and np.isinf(x[0]) and not op.reduces:
                    continue    # scipy: softmax([inf]) = [nan]
                x2 = x[None, :]
                got = np.asarray(op.fn(x2), np.float64)
                # scipy in float64 (its float32 arithmetic is less accurate)
                want = _scipy(op, x2.astype(np.float64), -1)
                if (row, op.name) == ("k = 1", "log_softmax"):
                    keep = x2 != inf    # scipy gives NaN at the +inf entry
                    got, want = got[keep], want[keep]
                _assert_close(got, want, dtype, err_msg=f"{op.name} {x}")


def _assert_close(got, want, dtype, err_msg):
    """Same NaN and inf pattern; finite values close (scipy's log_softmax
    loses absolute accuracy ~1e-16 near 0: hence atol)."""
    assert np.array_equal(np.isnan(got), np.isnan(want)), (err_msg, got, want)
    fin = np.isfinite(want)
    inf_ = np.isinf(want)
    assert np.array_equal(got[inf_], want[inf_]), (err_msg, got, want)
    rtol = 1e-13 if dtype == np.float64 else 2e-7
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=1e-15, err_msg=err_msg)


# --------------------------------------------------------------------------
# huge, subnormal, empty, 0-d
# --------------------------------------------------------------------------

@pytest.mark.thread_unsafe   # switches the process-wide instruction set
def test_max_within_an_ulp_of_dbl_max():
    """x - m rounded outwards next to DBL_MAX: TwoSum's d - x overflowed and
    the residual was NaN (the fuzzer's find: [DBL_MAX, 4.056e306] gave a NaN
    log_softmax). Now d alone, within half an ULP; rows, columns, short rows
    and cross_entropy, on every ISA."""
    from conftest import isa
    mx = np.finfo(np.float64).max
    lo = 4.0560584216648076e306
    want = float(Fraction(lo) - Fraction(mx))        # exact difference, rounded once
    for name in csoftmax.isa_info()["supported"]:
        with isa(name):
            pair = np.tile([[mx], [lo]], (1, 130))           # (2, 130): columns
            for x, axis in ((np.array([mx, lo]), -1), (pair.T.copy(), -1), (pair, 0),
                            (np.tile([mx, lo, lo / 2], 200), -1)):
                y = csoftmax.log_softmax(x, axis=axis)
                top = -np.log(200) if x.size == 600 else 0.0  # (200 maxima in the long row)
                assert np.all(np.isfinite(y)), (name, x.shape)
                np.testing.assert_allclose(y[x == mx], top, rtol=2e-16, atol=0)
                assert np.all(y[x == lo] == want), (name, x.shape)
                assert np.all(y[x == lo / 2] == float(Fraction(lo / 2) - Fraction(mx)))
            for axis in (-1, 0):
                x = np.tile([[mx, lo, -mx]], (40, 1))
                xs = x if axis == -1 else x.T.copy()
                loss = csoftmax.cross_entropy(xs, np.full(40, 1), axis=axis, reduction="none")
                assert np.all(np.isfinite(loss)) and np.all(loss == -want), (name, axis, loss)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_huge_finite_no_overflow(dtype):
    big = dtype(1e308) if dtype == np.float64 else dtype(3e38)
    mx = np.finfo(dtype).max
    for b in (big, mx):
        x = np.array([b, -b], dtype)
        assert np.array_equal(csoftmax.softmax(x), [1, 0])
        assert csoftmax.logsumexp(x) == b
        assert csoftmax.log_softmax(x)[0] == 0
        x = np.array([b, b], dtype)
        assert np.array_equal(csoftmax.softmax(x), [0.5, 0.5])
        assert np.array_equal(csoftmax.log_softmax(x), np.full(2, -np.log(2), dtype))
        assert csoftmax.logsumexp(x) == b      # b + log 2 rounds to b
        x = np.array([-b, -b, -b], dtype)
        assert csoftmax.logsumexp(x) == -b
        assert np.array_equal(csoftmax.softmax(x), np.full(3, dtype(1 / 3)))
    # large spread within one row: finite, exact ends
    x = np.array([big, 0.0, -big, big / 2], dtype)
    r = csoftmax.softmax(x)
    assert np.array_equal(r, [1, 0, 0, 0])
    assert csoftmax.logsumexp(x) == big


def test_subnormal_inputs_are_tiny_numbers():
    for dtype in DTYPES:
        tiny = np.finfo(dtype).smallest_subnormal
        x = np.array([tiny, 0.0, -tiny], dtype)
        assert np.array_equal(csoftmax.softmax(x), np.full(3, dtype(1 / 3)))
        assert_same_result(csoftmax.logsumexp(x), dtype(np.log(3)), ulp_bound("logsumexp", dtype))
        assert_same_result(csoftmax.log_softmax(x), np.full(3, -np.log(3), dtype), 1)
        x = np.array([tiny, 0.0], dtype)
        assert np.array_equal(csoftmax.softmax(x), [0.5, 0.5])


def test_subnormal_outputs_kept():
    r = csoftmax.softmax(np.array([0.0, -740.0]))
    assert r[0] == 1.0
    assert 0 < r[1] < np.finfo(np.float64).tiny           # subnormal, not flushed
    assert abs(r[1] - 4.2e-322) <= 2 * 5e-324, r[1]        # exp(-740) ~ 4.2e-322
    r = csoftmax.softmax(np.array([0.0, -100.0], np.float32))
    assert 0 < r[1] < np.finfo(np.float32).tiny
    assert abs(float(r[1]) - 3.7200760e-44) <= 1.5e-45, r[1]
    # the same deep in a long row and in a column
    x = np.zeros((3, 40))
    x[:, 17] = -740.0
    assert np.all(csoftmax.softmax(x)[:, 17] > 0)
    assert np.all(csoftmax.softmax(x.T, axis=0)[17] > 0)
    # logsumexp / log_softmax of such rows: tiny increments are not lost
    assert csoftmax.logsumexp(np.array([0.0, -740.0])) > 0
    assert csoftmax.log_softmax(np.array([0.0, -740.0]))[0] < 0


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_empty_rows_and_empty_arrays(dtype):
    x = np.zeros((3, 0), dtype)
    for f in (csoftmax.softmax, csoftmax.log_softmax):
        for axis in (-1, 0, 1, None, (0, 1)):
            r = f(x, axis=axis)
            assert type(r) is np.ndarray and r.shape == (3, 0) and r.dtype == dtype
    r = csoftmax.logsumexp(x)
    assert r.dtype == dtype and np.array_equal(r, [-inf] * 3)
    assert csoftmax.logsumexp(x, axis=0).shape == (0,)
    assert np.array_equal(csoftmax.logsumexp(x, keepdims=True), np.full((3, 1), -inf))
    r = csoftmax.logsumexp(x, axis=None)
    assert isinstance(r, dtype) and r == -inf
    r = csoftmax.logsumexp(np.zeros(0, dtype))
    assert isinstance(r, dtype) and r == -inf
    y = np.zeros((2, 0, 3), dtype)
    assert np.array_equal(csoftmax.logsumexp(y, axis=1), np.full((2, 3), -inf))
    assert csoftmax.logsumexp(y, axis=1, keepdims=True).shape == (2, 1, 3)
    assert np.array_equal(csoftmax.logsumexp(y, axis=(0, 1)), np.full(3, -inf))
    assert csoftmax.logsumexp(y, axis=(0, 2)).shape == (0,)
    assert csoftmax.logsumexp(y, axis=2).shape == (2, 0)
    assert csoftmax.softmax(y, axis=(0, 1)).shape == (2, 0, 3)
    z = np.zeros((0, 4), dtype)
    assert csoftmax.softmax(z).shape == (0, 4) and csoftmax.logsumexp(z).shape == (0,)
    # out= on empty results: returned, and for logsumexp filled with -inf
    o = np.zeros(3, dtype)
    assert csoftmax.logsumexp(x, out=o) is o and np.all(o == -inf)
    o = np.zeros((3, 0), dtype)
    assert csoftmax.softmax(x, out=o) is o


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_zero_d_special(dtype):
    for v in (3.0, -inf, inf, nan, 0.0):
        x = dtype(v)
        for axis in (None, ()):
            s, l, e = (csoftmax.softmax(x, axis=axis), csoftmax.log_softmax(x, axis=axis),
                       csoftmax.logsumexp(x, axis=axis))
            for r in (s, l, e):
                assert isinstance(r, dtype)
            if np.isnan(v):
                assert np.isnan(s) and np.isnan(l) and np.isnan(e)
            else:
                assert s == 1 and l == 0 and e == v


# --------------------------------------------------------------------------
# no warnings, no FP exceptions, signalling NaN
# --------------------------------------------------------------------------

def _special_matrix(dtype):
    rows = [[0.0, -1000.0, 5.0, 1e30], [inf, 1.0, -inf, 2.0], [inf, inf, 0.0, 1.0],
            [-inf, -inf, -inf, -inf], [nan, 1.0, 2.0, 3.0], [0.0, -740.0, -1e308, 2.0],
            [1e308, -1e308, 1e308, 0.0], [-inf, 1.0, -inf, -inf]]
    with np.errstate(all="ignore"):
        return np.array(rows).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES + [np.float16, np.longdouble, np.int64],
                         ids=DTYPE_IDS + ["f16", "f128", "i64"])
def test_no_warning_no_fp_exception(dtype):
    x = _special_matrix(dtype) if np.dtype(dtype).kind == "f" else np.arange(-5, 3).reshape(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            for op in OPS:
                for axis in (-1, 0, None):
                    op.fn(x, axis=axis)
                    if not op.reduces:
                        y = x.copy()
                        if y.dtype.kind == "f":
                            op.fn(y, axis=axis, out=y)
            # a numpy ufunc right after: no stale flag trips it
            np.add(np.ones(3), 1.0)


def test_signalling_nan_is_nan():
    snan64 = np.array([0x7FF0000000000001], np.uint64).view(np.float64)[0]
    snan32 = np.array([0x7F800001], np.uint32).view(np.float32)[0]
    for snan, dt in ((snan64, np.float64), (snan32, np.float32)):
        for n in (1, 2, 5, 9, 17):
            for pos in range(n):
                x = np.arange(n, dtype=dt)
                x[pos] = snan
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    for op in OPS:
                        assert np.all(np.isnan(op.fn(x))), (op.name, n, pos)
                        assert np.all(np.isnan(op.fn(x[:, None], axis=0)))


# Lines of the README table that are not row kinds of SPECIAL_VALUE_TABLE,
# with the tests that check them.
README_ONLY_LINES = {
    "finite": "test_accuracy.py (mpmath bounds), test_softmax/log_softmax/logsumexp.py",
    "huge finite (1e308, 3e38)": "test_huge_finite_no_overflow in this file",
    "subnormal inputs/outputs": "test_subnormal_* in this file, test_accuracy.py",
}


def _readme_table():
    import pathlib
    import re

    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    block = re.search(r"<!-- special-values-table:start -->(.*?)<!-- special-values-table:end -->",
                      text, re.S)
    assert block, "README.md lost its special-values table markers"
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in block.group(1).strip().splitlines()]
    assert rows[0] == ["row", "softmax", "log_softmax", "logsumexp"], rows[0]
    return {r[0]: r[1:] for r in rows[2:]}


def test_readme_table_is_this_table():
    """The README's special-value table and SPECIAL_VALUE_TABLE agree, cell
    for cell; the README lines that are not row kinds are covered elsewhere."""
    readme = _readme_table()
    for t in SPECIAL_VALUE_TABLE:
        assert t["row"] in readme, f"README lacks the line {t['row']!r}"
        assert readme[t["row"]] == [t["softmax"], t["log_softmax"], t["logsumexp"]], t["row"]
    extra = set(readme) - set(ROWS)
    assert extra == set(README_ONLY_LINES), extra ^ set(README_ONLY_LINES)
