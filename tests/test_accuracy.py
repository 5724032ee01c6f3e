"""Accuracy of the compiled csoftmax kernels against the mpmath oracle.

Every result is graded with ``_oracle.ulp_error``: |got - exact| in units of
the spacing of the exact value rounded to the result dtype. The bounds the
library claims (README, docstrings) are:

    softmax      <= 4 ULP
    log_softmax  <= 4 ULP  (including the entries near 0 at the row maximum)
    logsumexp    <= 2 ULP

for outputs whose exact value is a normal number of the dtype; an output whose
exact value is subnormal (or rounds to 0) must be within ONE subnormal spacing.
float16 (computed in float32) must be within 1 float16 ULP. Rows of one
repeated value give exactly the correctly rounded 1/n.

Inputs are rows of ``scale * standard_normal`` rounded to the dtype, for
scales 1, 10, 100 and 1000 (at 1000 almost every exp underflows), every
length 1..67, and long rows (1000, 100_000, 1_000_000). Each block is graded
through two code paths of the C kernel: the row layout (``axis=-1`` on a
C-contiguous block) and the column layout (``axis=0`` on the transposed,
C-contiguous block: the strip kernel).

A failing test lists the offending rows (dtype, scale, n, seed, the row as
float.hex) and the worst error per (op, layout). Nothing is printed.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from mpmath import mp

import csoftmax
import _oracle

OPS = ("softmax", "log_softmax", "logsumexp")
F32_64 = (np.float32, np.float64)
BOUND = {"softmax": 4.0, "log_softmax": 4.0, "logsumexp": 2.0}
SUBNORMAL_BOUND = 1.0           # in subnormal spacings
F16_BOUND = 1.0
SEED = 20260523
ROWS_PER_LENGTH = 20            # > 16: one full strip of the column kernel plus a partial one
LENGTHS = tuple(range(1, 68))
LD = np.longdouble


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _seed(*parts):
    return [SEED] + [int(p) for p in parts]


def _call(op, x2d, layout):
    """op over each row of the 2-D block x2d, through the given layout.
    Returns (rows, n) for softmax/log_softmax and (rows,) for logsumexp."""
    f = getattr(csoftmax, op)
    if layout == "row":
        res = f(np.ascontiguousarray(x2d), axis=-1)
    else:
        res = f(np.ascontiguousarray(x2d.T), axis=0)
        if op != "logsumexp":
            res = res.T
    res = np.asarray(res)
    assert res.dtype == x2d.dtype, (op, layout, res.dtype, x2d.dtype)
    return res


def _bounds(op, hi, dtype, normal_bound=None):
    """Per-element bound: the op's ULP bound where the exact value is normal
    in ``dtype``, one subnormal spacing where it is subnormal (or 0)."""
    b = np.full(np.shape(hi), BOUND[op] if normal_bound is None else normal_bound)
    b[np.abs(hi) < float(np.finfo(dtype).tiny)] = SUBNORMAL_BOUND
    return b


def _hexrow(row, limit=70):
    vals = [float(v).hex() for v in np.asarray(row).astype(np.float64)]
    if len(vals) > limit:
        return "[" + ", ".join(vals[:limit]) + f", ... ({len(vals)} values)]"
    return "[" + ", ".join(vals) + "]"


class _RowExact:
    """Exact op values of single elements of the rows of x2d (mpmath, 40
    digits), for re-grading float64 outputs whose exact value is subnormal.

    Why: the oracle's (hi, lo) pair cannot carry the remainder of a subnormal
    float64 value (lo would itself be below the smallest subnormal, and
    mpmath's float() truncates before the subnormal rounding), so
    ulp_error() is only good to about +-0.5 subnormal spacing there: a true
    error of 0.72 shows as 1.0, and a true 1.4 could show as 1.0. Entries
    measured at >= 0.5 spacing are therefore re-graded exactly here. ``T``
    (= S - 1) may be given when it is known (long rows); otherwise it is
    computed per row with mpmath fsum."""

    def __init__(self, x2d, T=None):
        self.x = np.asarray(x2d).astype(np.float64)
        self.T = T
        self.rows = {}

    def _row(self, r):
        if r not in self.rows:
            xs = self.x[r].tolist()
            j = max(range(len(xs)), key=xs.__getitem__)
            m = mpmath.mpf(xs[j])
            T = self.T
            if T is None:
                T = mpmath.fsum(mpmath.exp(mpmath.fsub(mpmath.mpf(v), m, exact=True))
                                for i, v in enumerate(xs) if i != j)
            self.rows[r] = (xs, m, T, mpmath.log1p(T))
        return self.rows[r]

    def error(self, op, r, c, got):
        """|got - exact| in units of the smallest float64 subnormal."""
        with _oracle.workdps(40):
            xs, m, T, L = self._row(r)
            if op == "logsumexp":
                v = m + L
            else:
                d = mpmath.fsub(mpmath.mpf(xs[c]), m, exact=True)
                v = mpmath.exp(d) / (1 + T) if op == "softmax" else d - L
            return float(abs(mpmath.mpf(float(got)) - v) / mpmath.mpf(2) ** -1074)


class _Grader:
    """Grades results, keeps the worst error per key and describes failures."""

    MAX_LISTED = 12

    def __init__(self, title):
        self.title = title
        self.worst = {}          # key -> (err, bound, where)
        self.failures = []
        self.nfail = 0

    def grade(self, key, op, dtype, got, hi, lo, x2d, ctx, bound=None, cols=None,
              show_row=True, exact=None):
        """got, hi, lo: (rows, k) or (rows,); x2d: the rows (rows, n). ``cols``
        maps the k graded positions to row positions (sampled grading).
        ``exact``: a _RowExact for x2d, to re-grade float64 subnormal outputs."""
        got = np.asarray(got)
        err = _oracle.ulp_error(got, hi, lo, dtype)
        if exact is not None and np.dtype(dtype) == np.float64:
            fix = np.argwhere((np.abs(hi) < float(np.finfo(np.float64).tiny)) & (err >= 0.5)
                              & np.isfinite(err))
            for loc in fix:
                loc = tuple(int(v) for v in loc)
                c = None if len(loc) == 1 else (loc[1] if cols is None else int(cols[loc[1]]))
                err[loc] = exact.error(op, loc[0], c, got[loc])
        b = _bounds(op, hi, dtype) if bound is None else np.broadcast_to(
            np.asarray(bound, dtype=np.float64), err.shape)
        if err.size == 0:
            return
        ratio = err / b
        flat = int(np.argmax(np.where(np.isnan(ratio), np.inf, ratio)))
        loc = np.unravel_index(flat, err.shape)
        prev = self.worst.get(key)
        if prev is None or err[loc] / b[loc] > prev[0] / prev[1]:
            self.worst[key] = (float(err[loc]), float(b[loc]),
                               f"{ctx} {self._where(loc, cols)}")
        bad = np.argwhere(~(err <= b))
        self.nfail += len(bad)
        for loc in bad:
            if len(self.failures) >= self.MAX_LISTED:
                break
            loc = tuple(int(v) for v in loc)
            r = loc[0]
            g = got[loc]
            if show_row:
                row_txt = f"; x[{r}] = {_hexrow(x2d[r])}"
            elif len(loc) > 1:
                c = loc[1] if cols is None else int(cols[loc[1]])
                row_txt = f"; x[{r}][{c}] = {float(x2d[r][c]).hex()}, row max {float(x2d[r].max()).hex()}"
            else:
                row_txt = f"; row max {float(x2d[r].max()).hex()}"
            self.failures.append(
                f"  {ctx} {op} [{key}] {self._where(loc, cols)}: {err[loc]:.4g} ULP > "
                f"{b[loc]:g} (got {float(g)!r} = {float(g).hex()}, exact "
                f"{float(hi[loc])!r} + {float(lo[loc])!r}){row_txt}")

    @staticmethod
    def _where(loc, cols):
        if len(loc) == 1:
            return f"row {int(loc[0])}"
        c = int(loc[1]) if cols is None else int(cols[int(loc[1])])
        return f"row {int(loc[0])} col {c}"

    def summary(self):
        return "; ".join(f"{k}: max {e:.4g} ULP (bound {b:g}) at {w}"
                         for k, (e, b, w) in self.worst.items())

    def check(self):
        assert self.nfail == 0, (
            f"{self.title}: {self.nfail} result(s) exceed the bound.\n"
            f"worst per (op, layout): {self.summary()}\n"
            "first failures:\n" + "\n".join(self.failures))


def _grade_block(g, x, ctx, layouts=("row", "col"), ops=OPS):
    """Grade all ops / layouts of a (rows, n) block with the full oracle."""
    dtype = x.dtype.type
    exact = _RowExact(x)
    for op in ops:
        hi, lo = _oracle.exact_rows(x, op)
        for layout in layouts:
            g.grade((op, layout), op, dtype, _call(op, x, layout), hi, lo, x, ctx, exact=exact)


def _random_block(dtype, scale, n, rows):
    seed = _seed(scale, n, np.dtype(dtype).itemsize)
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, n)) * scale).astype(dtype)
    return x, seed


# ---------------------------------------------------------------------------
# (a) + (f): every length 1..67, scales 1, 10, 100 and 1000, both layouts
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1, 10, 100, 1000])
@pytest.mark.parametrize("dtype", F32_64)
def test_random_rows_every_length(dtype, scale):
    """ROWS_PER_LENGTH random rows of every length 1..67. Scale 1000 (most
    exp terms underflow to 0 or are subnormal) must meet the same bounds."""
    g = _Grader(f"random rows {np.dtype(dtype).name} scale {scale}")
    for n in LENGTHS:
        x, seed = _random_block(dtype, scale, n, ROWS_PER_LENGTH)
        _grade_block(g, x, f"[{np.dtype(dtype).name} scale={scale} n={n} seed={seed}]")
    g.check()


# ---------------------------------------------------------------------------
# (b) long rows
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [1, 10, 100, 1000])
@pytest.mark.parametrize("dtype", F32_64)
def test_rows_of_1000(dtype, scale):
    """A few rows of 1000 elements, every output graded with the full oracle."""
    g = _Grader(f"n=1000 rows {np.dtype(dtype).name} scale {scale}")
    x, seed = _random_block(dtype, scale, 1000, 5)
    _grade_block(g, x, f"[{np.dtype(dtype).name} scale={scale} n=1000 seed={seed}]")
    g.check()


def _residual_parts(row):
    """row: float64 values. Returns (j, m, d, r) with d + r == row - m exactly
    (TwoSum), j one argmax."""
    j = int(np.argmax(row))
    m = float(row[j])
    d = row - m
    bb = d - row
    r = (row - (d - bb)) + (-m - bb)
    return j, m, d, r


def _tail_sum_longdouble(row):
    """T = sum of exp(x_i - m) over all i but one argmax, as (t1, t2) doubles
    with t1 + t2 = T to ~2^-63 relative: each term is exp in long double
    (exp(d) * (1 + r), relative error ~2^-63), split exactly into two doubles,
    and the 2n doubles are summed with math.fsum (correctly rounded), the
    residual t2 by a second fsum. Terms below the double range (< 2^-1075)
    are dropped: their total is < n * 2^-1075, far below T for these rows.
    Also returns the long double terms (argmax included, = 1)."""
    j, m, d, r = _residual_parts(row)
    with np.errstate(under="ignore"):
        e = np.exp(d.astype(LD)) * (1 + r.astype(LD))
    et = e.copy()
    et[j] = 0
    hi = et.astype(np.float64)
    lo = (et - hi.astype(LD)).astype(np.float64)
    vals = hi.tolist() + lo.tolist()
    t1 = math.fsum(vals)
    vals.append(-t1)
    t2 = math.fsum(vals)
    return (t1, t2), e, (j, m, d, r)


def _tail_sum_mpmath(row, dps=40):
    """The same T with mpmath at ``dps`` digits (exact x_i - m)."""
    j = int(np.argmax(row))
    xs = row.tolist()
    with _oracle.workdps(dps):
        m = mpmath.mpf(xs[j])
        T = mpmath.fsum(mpmath.exp(mpmath.fsub(mpmath.mpf(v), m, exact=True))
                        for i, v in enumerate(xs) if i != j)
    return T


def _split(v):
    hi = float(v)
    return hi, float(v - hi)


def _exact_at(row, cols, T, dps=40):
    """mpmath exact softmax / log_softmax at positions cols of row (floats)
    and logsumexp, given T = S - 1 (mpf). Same formulas as _oracle."""
    j = int(np.argmax(row))
    with _oracle.workdps(dps):
        m = mpmath.mpf(float(row[j]))
        L = mpmath.log1p(T)
        S = 1 + T
        sm = np.zeros((2, len(cols)))
        ls = np.zeros((2, len(cols)))
        for k, c in enumerate(cols):
            d = mpmath.fsub(mpmath.mpf(float(row[c])), m, exact=True)
            sm[:, k] = _split(mpmath.exp(d) / S)
            ls[:, k] = _split(d - L)
        with _oracle.workdps(dps + 40):          # m > 0 here, but be generous
            lse = _split(m + mpmath.log1p(T))
    return sm, ls, lse, L


def _long_rows(dtype, scale, n):
    """Two rows: a random row and a shuffled copy of it (the same exact sum,
    a different summation order)."""
    seed = _seed(scale, n, np.dtype(dtype).itemsize, 7)
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * scale).astype(dtype)
    perm = rng.permutation(n)
    return np.stack([a, a[perm]]), perm, seed, rng


@pytest.mark.parametrize("n", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
@pytest.mark.parametrize("scale", [1, 10, 100])
@pytest.mark.parametrize("dtype", F32_64)
def test_long_rows(dtype, scale, n):
    """Rows of 1e5 and 1e6 elements, both layouts.

    The exact row sum T = S - 1 is computed once per row: with mpmath fsum at
    40 digits for n = 1e5 (about 1 s), and for n = 1e6 (mpmath would take
    ~10 s per row) as a correctly rounded math.fsum of the long-double exp
    terms split into double pairs (relative error ~2^-63, i.e. < 0.002 ULP of
    float64); for n = 1e5 both are computed and must agree to 2^-60.

    Graded: (1) about 2000 random positions plus the argmax, the argmin and
    the 20 largest entries with the mpmath per-element formulas of the oracle
    (d_i - m exact, exp / log1p at 40 digits) using that T; (2) every
    position against the long-double values (exact to ~0.002 ULP; checked
    against mpmath at the sampled positions); (3) logsumexp = m + log1p(T)."""
    if n > 100_000 and not _oracle.longdouble_available():
        pytest.skip("needs an x87-extended (or wider) np.longdouble for the exact sum")
    name = np.dtype(dtype).name
    X, perm, seed, rng = _long_rows(dtype, scale, n)
    ctx = f"[{name} scale={scale} n={n} seed={seed}; row 1 = row 0 permuted]"
    g = _Grader(f"long rows {name} scale {scale} n={n}")
    row = X[0].astype(np.float64)
    wide = _oracle.longdouble_available()
    if wide:
        (t1, t2), e_ld, (j, m, d, r) = _tail_sum_longdouble(row)
    if n <= 100_000:
        T = _tail_sum_mpmath(row)
        if wide:
            with _oracle.workdps(40):
                rel = abs((mpmath.mpf(t1) + t2 - T) / T) if T != 0 else 0
            assert rel <= 2.0 ** -60, f"{ctx}: long-double row sum off by {float(rel):.3g} relative"
    else:
        with _oracle.workdps(40):
            T = mpmath.mpf(t1) + mpmath.mpf(t2)
    m = float(row.max())
    assert m > 0, ctx            # no cancellation in m + log1p(T) for these rows

    got = {(op, lay): _call(op, X, lay) for op in OPS for lay in ("row", "col")}

    # (1) sampled positions, mpmath
    order = np.argsort(row, kind="stable")
    cols0 = np.unique(np.concatenate([
        rng.choice(n, size=2000, replace=False), [int(np.argmax(row)), int(np.argmin(row))],
        order[-20:]]))
    sm0, ls0, lse, L = _exact_at(row, cols0, T)
    inv = np.argsort(perm)                   # row 1 position of row-0 element c: inv[c]
    cols1 = inv[cols0]
    for op, (hi, lo) in (("softmax", sm0), ("log_softmax", ls0)):
        for lay in ("row", "col"):
            res = got[(op, lay)]
            for k, cols in ((0, cols0), (1, cols1)):
                g.grade((op, lay, "sample"), op, dtype, res[k:k + 1, cols], hi[None], lo[None],
                        X[k:k + 1], f"{ctx} row {k}:", cols=cols, show_row=False,
                        exact=_RowExact(X[k:k + 1], T))
    for lay in ("row", "col"):
        g.grade(("logsumexp", lay), "logsumexp", dtype, got[("logsumexp", lay)],
                np.full(2, lse[0]), np.full(2, lse[1]), X, ctx, show_row=False)

    # (2) every position against long double
    if wide:
        exact = _RowExact(X, T)
        S_ld = 1 + (LD(t1) + LD(t2))
        sm_ld = e_ld / S_ld
        Lhi, Llo = _split(L)
        ls_ld = (d.astype(LD) + r.astype(LD)) - (LD(Lhi) + LD(Llo))
        for op, v in (("softmax", sm_ld), ("log_softmax", ls_ld)):
            hi = v.astype(np.float64)
            lo = (v - hi.astype(LD)).astype(np.float64)
            # the long-double values must agree with mpmath where both exist
            ref = sm0 if op == "softmax" else ls0
            with np.errstate(all="ignore"):
                agree = np.abs((hi[cols0] - ref[0]) + (lo[cols0] - ref[1])) / \
                    np.spacing(np.abs(ref[0]))
            agree = np.where(np.abs(ref[0]) < 1e-300, 0.0, agree)   # dropped tiny terms
            assert agree.max() <= 0.01, f"{ctx}: long-double {op} disagrees with mpmath"
            HI = np.stack([hi, hi[perm]])
            LO = np.stack([lo, lo[perm]])
            for lay in ("row", "col"):
                g.grade((op, lay, "all"), op, dtype, got[(op, lay)], HI, LO, X, ctx,
                        show_row=False, exact=exact)
    g.check()


# ---------------------------------------------------------------------------
# (c) rows of log-probabilities: logsumexp ~ 0 (cancellation)
# ---------------------------------------------------------------------------

def _logprob_rows(dtype, n, rows, rng):
    out = []
    for k in range(rows):
        kind = k % 4
        if kind == 0:                                   # flat-ish
            p = rng.dirichlet(np.ones(n))
        elif kind == 1:                                 # peaked: one p near 1
            p = rng.dirichlet(np.full(n, 0.05))
        elif kind == 2:                                 # softmax of logits
            z = rng.standard_normal(n) * 3
            p = np.exp(z - z.max())
            p /= p.sum()
        else:                                           # uniform: one repeated value
            p = np.full(n, 1.0 / n)
        p = np.maximum(p, 1e-300)
        out.append(np.log(p))
    return np.asarray(out).astype(dtype)


@pytest.mark.parametrize("dtype", F32_64)
def test_log_probability_rows(dtype):
    """x = log(p) for probability vectors p (rounded to dtype): logsumexp is
    tiny (~n eps) and m + log1p(T) cancels, which the kernel detects and
    redoes in double-double (about 2^-104 relative to log1p(T) ~ |m|).
    Documented bound for such rows: |error| <= 2 ULP(exact) + 2^-100 |m|
    (m = row maximum); for random-normal rows the plain 2 ULP bound holds
    (tests above). softmax and log_softmax of the same rows are graded with
    their usual bounds."""
    name = np.dtype(dtype).name
    g = _Grader(f"log-probability rows {name}")
    for n in list(range(1, 68)) + [1000]:
        rows = 8 if n <= 67 else 4
        seed = _seed(n, np.dtype(dtype).itemsize, 3)
        x = _logprob_rows(dtype, n, rows, np.random.default_rng(seed))
        ctx = f"[{name} log-prob n={n} seed={seed}]"
        _grade_block(g, x, ctx, ops=("softmax", "log_softmax"))
        hi, lo = _oracle.exact_rows(x, "logsumexp")
        m = np.abs(x.max(axis=1).astype(np.float64))
        spacing = np.spacing(np.abs(hi).astype(dtype)).astype(np.float64)
        allowed = 2.0 * spacing + 2.0 ** -100 * m
        for lay in ("row", "col"):
            got = _call("logsumexp", x, lay).astype(np.float64)
            abserr = np.abs((got - hi) - lo)
            ratio = abserr / allowed
            key = ("logsumexp", lay, "2 ULP + 2^-100 |m|")
            w = float(ratio.max())
            if key not in g.worst or w > g.worst[key][0]:
                g.worst[key] = (w, 1.0, f"{ctx} (error / allowance)")
            for r in np.nonzero(~(ratio <= 1.0))[0]:
                g.nfail += 1
                if len(g.failures) < g.MAX_LISTED:
                    g.failures.append(
                        f"  {ctx} logsumexp [{lay}] row {r}: |got - exact| = {abserr[r]:.3g} > "
                        f"2 ULP + 2^-100 |m| = {allowed[r]:.3g} (got {got[r]!r}, exact "
                        f"{hi[r]!r}); x[{r}] = {_hexrow(x[r])}")
    g.check()


# ---------------------------------------------------------------------------
# (d) subnormal and tiny results
# ---------------------------------------------------------------------------

def _tiny_rows(dtype):
    """Rows (1-D) and blocks of rows (2-D) whose softmax outputs are subnormal
    or near the normal/subnormal boundary, and whose log_softmax at the max /
    logsumexp are tiny."""
    rows = []
    if dtype == np.float64:
        rows += [[0.0, -740.0], [0.0, -745.0], [0.0, -744.4], [0.0, -745.2], [0.0, -746.0],
                 [0.0, -708.0], [0.0, -708.4], [0.0, -709.0], [0.0, -720.0],
                 [0.0, -40.0], [0.0, -92.0], [0.0, -700.0], [-3.0, -745.0]]
        sweep = np.linspace(700.0, 746.0, 185)
    else:
        rows += [[0.0, -100.0], [0.0, -103.0], [0.0, -103.9], [0.0, -104.0], [0.0, -87.0],
                 [0.0, -87.4], [0.0, -88.0], [0.0, -90.0], [0.0, -40.0], [0.0, -17.0],
                 [-3.0, -100.0]]
        sweep = np.linspace(85.0, 104.0, 153)
    for t in sweep:
        rows.append([0.0, -t])
    out = [np.asarray(r, dtype) for r in rows]
    # several maxima (S = k + tiny): outputs e/S just below the normal range
    for k in (2, 3, 5, 16):
        for t in sweep[::4]:
            out.append(np.asarray([0.0] * k + [-t], dtype))
    # the same with a non-zero, non-integer maximum (x - m then rounds: the
    # TwoSum residual matters)
    rng = np.random.default_rng(_seed(np.dtype(dtype).itemsize, 11))
    for t in sweep[::2]:
        m0 = float(rng.uniform(-50, 50))
        out.append(np.asarray([m0, m0 - t, m0 - t / 2], dtype))
    # S = 1 + e^-s not representable (its low part matters) and one output
    # subnormal, e^-t / S: 3000 random rows [0, -s, -t], 2000 of them with
    # e^-t just below the normal range (2^-1022 = e^-708.4, 2^-126 = e^-87.3)
    near = (708.0, 709.2) if dtype == np.float64 else (87.2, 88.5)
    t = np.concatenate([rng.uniform(sweep[0], sweep[-1], 1000), rng.uniform(*near, 2000)])
    block = np.stack([np.zeros(t.size), -rng.uniform(1.0, 40.0, t.size), -t], axis=1)
    out.append(block.astype(dtype))
    return out


@pytest.mark.parametrize("dtype", F32_64)
def test_subnormal_and_tiny_results(dtype):
    """softmax([0, -740]) (float64) and softmax([0, -100]) (float32) have
    subnormal outputs: within one subnormal spacing, never flushed to 0.
    log_softmax at the row max (-log1p(e^-t): -4.2e-18 for t = 40,
    -9.9e-305 for t = 700, subnormal for t >= 708 in float64 / 87.4 in
    float32) and logsumexp (= log1p(e^-t)) keep full relative accuracy."""
    name = np.dtype(dtype).name
    g = _Grader(f"tiny results {name}")
    rows = _tiny_rows(dtype)
    blocks = [r[None, :] for r in rows if r.ndim == 1] + [r for r in rows if r.ndim == 2]
    for x in blocks:
        ctx = f"[{name} x={_hexrow(x[0])}]" if len(x) == 1 else \
            f"[{name} {len(x)} random rows [0, -s, -t], seed {_seed(np.dtype(dtype).itemsize, 11)}]"
        _grade_block(g, x, ctx)
    g.check()
    # explicit spot checks (not flushed, correct sign)
    if dtype == np.float64:
        sm = csoftmax.softmax(np.array([0.0, -740.0]))
        assert 0 < sm[1] < np.finfo(np.float64).tiny, sm
        ls = csoftmax.log_softmax(np.array([0.0, -40.0]))
        assert ls[0] == -4.248354255291589e-18, ls
        ls = csoftmax.log_softmax(np.array([0.0, -700.0]))
        assert -1e-304 < ls[0] < -9e-305, ls
        assert csoftmax.logsumexp(np.array([0.0, -40.0])) == 4.248354255291589e-18
    else:
        sm = csoftmax.softmax(np.array([0.0, -100.0], np.float32))
        assert 0 < sm[1] < np.finfo(np.float32).tiny, sm
        ls = csoftmax.log_softmax(np.array([0.0, -100.0], np.float32))
        assert ls[0] < 0, ls


# ---------------------------------------------------------------------------
# rows of one repeated value: exactly 1/n
# ---------------------------------------------------------------------------

def _recip_nearest(n, dtype):
    """Correctly rounded 1/n in dtype (ties to even), via exact rationals."""
    from fractions import Fraction
    q = Fraction(1, n)
    c = dtype(1.0 / n)
    best, bd = c, abs(Fraction(float(c)) - q)
    for direction in (np.inf, -np.inf):
        nb = np.nextafter(c, dtype(direction))
        dd = abs(Fraction(float(nb)) - q)
        if dd < bd or (dd == bd and int(np.asarray(nb).view(f"u{np.dtype(dtype).itemsize}")) % 2 == 0):
            best, bd = nb, dd
    return best


@pytest.mark.parametrize("dtype", F32_64)
def test_repeated_value_rows_exact(dtype):
    """softmax of a row of one repeated value is exactly the correctly rounded
    1/n; log_softmax is -log(n) within 4 ULP (0 exactly for n = 1) and
    logsumexp is v + log(n) within 2 ULP. Both layouts."""
    name = np.dtype(dtype).name
    big = float(np.finfo(dtype).max) / 3
    values = [0.0, 1.5, 7.0, -3.25e4, 1e-30, big, -big, float(np.finfo(dtype).smallest_subnormal)]
    g = _Grader(f"repeated-value rows {name}")
    for n in list(LENGTHS) + [100, 1000, 2731, 4097, 4623, 100_000]:
        x = np.repeat(np.asarray(values, dtype)[:, None], n, axis=1)
        want = _recip_nearest(n, dtype)
        with _oracle.workdps(60):
            Ln = mpmath.log(n)
            ls_hi, ls_lo = _split(-Ln)
            lse = [_split(mpmath.mpf(float(v)) + Ln) for v in x[:, 0]]
        ctx = f"[{name} repeated n={n}]"
        for lay in ("row", "col"):
            sm = _call("softmax", x, lay)
            bad = np.argwhere(sm != want)
            assert len(bad) == 0, (
                f"{ctx} softmax [{lay}] not exactly 1/{n} = {float(want)!r}: "
                f"{len(bad)} entries, e.g. row value {float(x[bad[0][0], 0])!r} gives "
                f"{float(sm[tuple(bad[0])])!r}")
            ls = _call("log_softmax", x, lay)
            if n == 1:
                assert np.all(ls == 0), f"{ctx} log_softmax [{lay}] of a length-1 row: {ls}"
            g.grade(("log_softmax", lay), "log_softmax", dtype, ls, np.full(ls.shape, ls_hi),
                    np.full(ls.shape, ls_lo), x, ctx, show_row=False)
            got = _call("logsumexp", x, lay)
            g.grade(("logsumexp", lay), "logsumexp", dtype, got,
                    np.array([h for h, _ in lse]), np.array([l for _, l in lse]), x, ctx,
                    show_row=False)
    g.check()


# ---------------------------------------------------------------------------
# (e) float16: every finite float16 value
# ---------------------------------------------------------------------------

F16_MAX_ROUNDS_TO_INF = 65520.0      # |v| >= this rounds to inf in float16


def test_float16_all_finite_values():
    """All 63488 finite float16 values, shuffled into rows of length 7 and 64;
    every result (computed in float32, returned as float16) within 1 float16
    ULP of the exact value; exact-subnormal outputs within one subnormal
    spacing. log_softmax entries whose exact value lies beyond the float16
    range (|v| >= 65520, e.g. -65504 - 65504) must be -inf: the oracle's
    rounding helper clamps those to -65504, so they are checked apart."""
    allv = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    allv = allv[np.isfinite(allv)]
    assert allv.size == 63488
    g = _Grader("float16, every finite value")
    for n in (7, 64):
        rng = np.random.default_rng(_seed(16, n))
        v = allv[rng.permutation(allv.size)]
        pad = (-v.size) % n
        v = np.concatenate([v, v[:pad]])
        x = v.reshape(-1, n)
        ctx = f"[float16 n={n} seed={_seed(16, n)}]"
        for op in OPS:
            hi, lo = _oracle.exact_rows(x, op)
            over = np.abs(hi) >= F16_MAX_ROUNDS_TO_INF
            for lay in ("row", "col"):
                got = _call(op, x, lay)
                if over.any():
                    want = np.where(hi[over] < 0, -np.inf, np.inf)
                    wrong = got[over] != want
                    assert not wrong.any(), (
                        f"{ctx} {op} [{lay}]: exact values beyond the float16 range "
                        f"must give +-inf, got {got[over][wrong][:5]}")
                g.grade((op, lay), op, np.float16, np.where(over, 0, got),
                        np.where(over, 0, hi), np.where(over, 0, lo), x, ctx, bound=F16_BOUND)
    g.check()
