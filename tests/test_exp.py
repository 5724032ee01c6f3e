"""The kernel's own exp (``csoftmax._core._exp_nonpos``: cv_exp_nonpos of the
active instruction set) against long-double ``np.exp``.

Bound: <= 0.64 ULP (measured 0.6304, near odd multiples of ln2/2, where the
rounding of t^2 Q(t) adds to the final rounding) where the exact result is a normal double, <= 1 subnormal
spacing where it is subnormal (or rounds to 0). The ULP is that of the exact
value's binade (not of its rounding, which would be twice as lenient just
below a power of two). The long-double reference (x87 expl, ~2^-63 relative)
is exact to ~0.001 ULP of double; the tests are skipped where np.longdouble is
not wider than double.
"""

import numpy as np
import pytest

from csoftmax import _core

LD = np.longdouble

pytestmark = pytest.mark.skipif(
    int(np.finfo(LD).nmant) < 63,
    reason="np.longdouble is not x87 extended (or wider): no reference exp")

NORMAL_BOUND = 0.64
SUBNORMAL_BOUND = 1.0
TINY = float(np.finfo(np.float64).tiny)
LN2 = 0.6931471805599453


def _points():
    """About 5.5e6 arguments in [-746, 0], returned with a label per group."""
    rng = np.random.default_rng(20260523)
    groups = {}
    groups["uniform [-746, 0]"] = -rng.uniform(0.0, 746.0, 1_200_000)
    groups["uniform [-1, 0]"] = -rng.uniform(0.0, 1.0, 300_000)
    groups["uniform [-1e-3, 0]"] = -rng.uniform(0.0, 1e-3, 200_000)
    groups["log-uniform -10^[-320, 0]"] = -(10.0 ** rng.uniform(-320.0, 0.0, 400_000))
    groups["subnormal boundary [-745.2, -708]"] = -rng.uniform(708.0, 745.2, 600_000)
    groups["integers 0..-746"] = -np.arange(0.0, 747.0)
    k = np.arange(0, 2153)                        # k ln2/2 down to -746
    mult = -(k * (LN2 / 2))
    near = [mult]
    for s in range(1, 5):                          # +- 1..4 ulp neighbours
        near.append(np.nextafter(mult, -np.inf) if s == 1 else
                    mult - s * np.spacing(np.abs(mult)))
        near.append(mult + s * np.spacing(np.abs(mult)))
    jitter = mult[:, None] + rng.uniform(-1e-9, 1e-9, (mult.size, 200))
    groups["multiples of ln2/2 (+- ulps)"] = np.concatenate(near)
    groups["multiples of ln2/2 (+- 1e-9)"] = jitter.ravel()
    # |t| = ln2/2 (the reduction boundaries (k + 1/2) ln2) is where the
    # polynomial and the final rounding err most
    odd = -(np.arange(1, 2153, 2) * (LN2 / 2))
    groups["odd multiples of ln2/2 (+- 3e-6)"] = (
        odd[:, None] + rng.uniform(-3e-6, 3e-6, (odd.size, 2000))).ravel()
    # the worst arguments found by a wider search of the same kind
    groups["known hard cases"] = np.array([float.fromhex(h) for h in (
        "-0x1.ba9310c36cbffp+8", "-0x1.2bc9414c4c315p+8", "-0x1.132deeedb1016p+7",
        "-0x1.0e53d02540d2dp+6", "-0x1.1fa7f4b63fd9cp+7", "-0x1.6232bdd7a5b6fp+7")])
    groups["-2^-j"] = -np.ldexp(1.0, -np.arange(0, 1075))
    out = {}
    for name, v in groups.items():
        v = np.minimum(np.asarray(v, dtype=np.float64), 0.0)
        out[name] = v[v >= -746.0]
    return out


def _ulp_errors(x):
    """(err, is_normal): |kernel - exact| in ULPs of the exact value's binade
    (subnormal spacing below 2^-1022)."""
    got = _core._exp_nonpos(x)
    ex = np.exp(x.astype(LD))
    _, e = np.frexp(ex)                           # ex = f 2^e, f in [0.5, 1)
    ulp = np.ldexp(LD(1), np.maximum(e.astype(np.int64) - 53, -1074))
    err = np.abs(got.astype(LD) - ex) / ulp
    return err.astype(np.float64), ex >= LD(TINY), got, ex


def test_exp_accuracy_bulk():
    pts = _points()
    total = sum(v.size for v in pts.values())
    assert total >= 3_000_000
    msgs = []
    for name, x in pts.items():
        err, normal, got, ex = _ulp_errors(x)
        for mask, bound, kind in ((normal, NORMAL_BOUND, "normal"),
                                  (~normal, SUBNORMAL_BOUND, "subnormal")):
            if not mask.any():
                continue
            e = np.where(mask, err, 0.0)
            i = int(np.argmax(e))
            if not e[i] <= bound:
                nbad = int(np.count_nonzero(mask & ~(err <= bound)))
                msgs.append(f"{name}: {nbad} {kind} results over {bound} ULP, max {e[i]:.4f} ULP "
                            f"at x = {x[i]!r} ({x[i].hex()}): got {got[i]!r}, exact "
                            f"{float(ex[i])!r}")
    assert not msgs, "kernel exp out of bounds:\n" + "\n".join(msgs)


@pytest.mark.parametrize("x, want", [
    (0.0, 1.0),
    (-0.0, 1.0),
    (-np.inf, 0.0),
    (-746.0, 0.0),
    (-745.2, 0.0),
    (-1000.0, 0.0),
    (-1e308, 0.0),
    (-744.44, 5e-324),                 # just above 2^-1074: the smallest subnormal
    (-745.13, 5e-324),                 # just above 2^-1075: rounds up to 2^-1074
    (-5e-324, 1.0),
    (-1e-300, 1.0),
    (-2.0 ** -54, 1.0),                # 1 - 2^-54 rounds (to even) to 1
])
def test_exp_special_values(x, want):
    got = _core._exp_nonpos(np.array([x]))[0]
    assert got == want, f"exp({x!r}) = {got!r}, expected {want!r}"
    if want == 0.0:
        assert not np.signbit(got), f"exp({x!r}) = -0.0, expected +0.0"


def test_exp_nan():
    got = _core._exp_nonpos(np.array([np.nan, -np.nan, 0.0]))
    assert np.isnan(got[0]) and np.isnan(got[1]) and got[2] == 1.0, got


def test_exp_dense_grids():
    """Dense grids where rounding is most delicate: every k * 2^-53 just below
    0 (results 1 - k 2^-53 + ...) and the normal/subnormal threshold -708.4."""
    x = np.concatenate([-np.arange(1, 20001) * 2.0 ** -53,
                        np.linspace(-708.5, -708.3, 20001)])
    err, normal, _, _ = _ulp_errors(x)
    assert np.all(err[normal] <= NORMAL_BOUND), float(err[normal].max())
    assert np.all(err[~normal] <= SUBNORMAL_BOUND), float(err[~normal].max())
