"""Re-derivation of the exp constants in csoftmax/_src/exp_coeffs.h.

The header is parsed as text (each ``#define CSM_<NAME> <literal>`` is read
as the C compiler reads it: the decimal literal rounded to the nearest
double), and checked with mpmath at 50 digits:

(i)  exp(r) ~ 1 + r + r^2 Q(r), Q(r) = sum Q_k r^k (k = 0..10) with the
     double coefficients exactly as rounded: max relative error over a dense
     grid of [-1.01 ln2/2, 1.01 ln2/2] <= 2^-60 (the header states 2^-61.2);
(ii) LN2_HI has >= 11 trailing zero bits in its significand (so k * LN2_HI is
     exact for |k| <= 2^11 - 1; the kernel needs |k| <= 1077), and
     LN2_HI + LN2_LO = ln 2 within 2^-100 relative.
"""

import math
import pathlib
import re

import mpmath
import pytest
from mpmath import mp

from _oracle import workdps

HEADER = pathlib.Path(__file__).resolve().parents[1] / "csoftmax" / "_src" / "exp_coeffs.h"
DEGREE = 10


def _defines():
    text = HEADER.read_text()
    out = {}
    for m in re.finditer(r"^[ \t]*#[ \t]*define[ \t]+(CSM_\w+)[ \t]+\(?[ \t]*"
                         r"([-+]?[0-9][0-9.eE+-]*)[ \t]*\)?(.*)$", text, re.M):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


@pytest.fixture(scope="module")
def consts():
    d = _defines()
    names = [f"CSM_Q{k}" for k in range(DEGREE + 1)] + ["CSM_LN2_HI", "CSM_LN2_LO"]
    missing = [n for n in names if n not in d]
    assert not missing, f"{HEADER}: no #define for {missing}"
    return {n: float(d[n][0]) for n in names}, d


def test_q_polynomial_relative_error(consts):
    c, _ = consts
    with workdps(50):
        q = [mpmath.mpf(c[f"CSM_Q{k}"]) for k in range(DEGREE + 1)]   # exact doubles
        a = mpmath.mpf("1.01") * mp.ln2 / 2
        npts = 6001
        worst, at = mpmath.mpf(0), None
        for i in range(npts):
            r = -a + 2 * a * i / (npts - 1)
            Q = q[DEGREE]
            for k in range(DEGREE - 1, -1, -1):
                Q = Q * r + q[k]
            p = 1 + r + r * r * Q
            e = mpmath.exp(r)
            rel = abs(p - e) / e
            if rel > worst:
                worst, at = rel, r
        log2err = float(mpmath.log(worst, 2)) if worst else -math.inf
    assert worst <= mpmath.mpf(2) ** -60, (
        f"1 + r + r^2 Q(r) has relative error 2^{log2err:.2f} at r = {mpmath.nstr(at, 12)} "
        f"(max over {npts} points of [-1.01 ln2/2, 1.01 ln2/2]); bound 2^-60")


def test_q_coefficients_are_close_to_taylor(consts):
    """Sanity: Q_k ~ 1/(k+2)! (a Chebyshev fit perturbs the high ones only)."""
    c, _ = consts
    assert c["CSM_Q0"] == 0.5
    for k in range(DEGREE + 1):
        taylor = 1.0 / math.factorial(k + 2)
        assert abs(c[f"CSM_Q{k}"] / taylor - 1) < 0.05, (k, c[f"CSM_Q{k}"], taylor)


def test_ln2_split(consts):
    c, raw = consts
    hi, lo = c["CSM_LN2_HI"], c["CSM_LN2_LO"]
    mant = int.from_bytes(__import__("struct").pack(">d", hi), "big") & ((1 << 52) - 1)
    tz = (mant & -mant).bit_length() - 1 if mant else 52
    assert tz >= 11, f"LN2_HI = {hi.hex()} has only {tz} trailing zero significand bits"
    # the hex comment, when present, must match the decimal literal
    m = re.search(r"0x[0-9a-fA-F.]+p[-+]?\d+", raw["CSM_LN2_HI"][1])
    if m:
        assert float.fromhex(m.group(0)) == hi, (m.group(0), hi.hex())
    with workdps(60):
        rel = abs((mpmath.mpf(hi) + mpmath.mpf(lo) - mp.ln2) / mp.ln2)
        log2rel = float(mpmath.log(rel, 2)) if rel else -math.inf
        assert rel <= mpmath.mpf(2) ** -100, (
            f"LN2_HI + LN2_LO differs from ln 2 by 2^{log2rel:.2f} relative (bound 2^-100)")
    # k * LN2_HI exact for every k the kernel uses (|k| <= 1077)
    for k in (1, 3, 1023, 1077, 2047):
        assert (mpmath.mpf(hi) * k) == mpmath.mpf(hi * k), k
