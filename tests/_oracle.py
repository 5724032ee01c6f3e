"""High-precision (mpmath) oracle for the csoftmax tests.  Not shipped.

``exact_rows`` returns the exact results of softmax / log_softmax / logsumexp
for rows of finite float32/float64 values as a float64 double-double
``(hi, lo)`` pair: ``hi`` is the float64 nearest to the exact value and ``lo``
the (rounded) remainder, so float64 results can be graded far below 0.01 ULP.

It uses the log1p form, which grades log_softmax values near 0 (e.g. -1e-40
at the row maximum) correctly, where ``log(S)`` at 40 digits would not::

    m     = max(x);  d_i = x_i - m          (exact)
    e_i   = exp(d_i)
    log S = log1p(sum of e_i over all i except ONE argmax)
    softmax_i     = e_i / (1 + T)
    log_softmax_i = d_i - log S
    logsumexp     = m + log S             (precision raised on cancellation)

``ulp_error`` grades results against that pair in units of the spacing of the
exact value rounded to the result dtype.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np
import mpmath
from mpmath import mp

__all__ = ["exact_rows", "ulp_error", "longdouble_available"]

_OPS = ("softmax", "log_softmax", "logsumexp")
_cache: dict = {}
_cache_lock = threading.RLock()
_CACHE_MAX = 64


@contextlib.contextmanager
def workdps(dps):
    """mpmath at `dps` digits, holding the oracle lock: mpmath's precision
    is process-wide, so threads that run tests at once (pytest-run-parallel)
    take turns."""
    with _cache_lock, mp.workdps(dps):
        yield


def longdouble_available() -> bool:
    """True if np.longdouble has at least a 64-bit significand (x87 extended
    or better), i.e. it is a meaningful wider work dtype for float64."""
    return int(np.finfo(np.longdouble).nmant) >= 63


def _split(v):
    """mpf -> (hi, lo) float64 pair."""
    hi = float(v)
    if not math.isfinite(hi):
        return hi, 0.0
    return hi, float(v - hi)


def _row_exact(row, dps, temperature=None):
    """Exact results for one row of Python floats (of row / temperature when
    a temperature is given).  Returns (sm_pairs, ls_pairs, lse_pair)."""
    mpf = mpmath.mpf
    fsub = mpmath.fsub
    exp = mpmath.exp
    n = len(row)
    j = max(range(n), key=row.__getitem__)          # one argmax
    m = mpf(row[j])
    ds = [fsub(mpf(v), m, exact=True) for v in row]
    if temperature is not None:
        T = mpf(temperature)
        m = m / T
        ds = [d / T for d in ds]
    es = [exp(d) for d in ds]
    T = mpmath.fsum(es[:j] + es[j + 1:])
    L = mpmath.log1p(T)
    S = 1 + T
    sm = [_split(ei / S) for ei in es]
    ls = [_split(di - L) for di in ds]
    # logsumexp = m + L.  m and L have opposite signs only when m < 0; then the
    # sum can cancel.  Redo it with enough extra digits to cover the loss.
    if T == 0:
        lse = m
    else:
        lse = m + L
        extra = 0
        for _ in range(6):
            if not m < 0:
                break
            if lse == 0:
                extra += dps + 20
            else:
                loss = float(mpmath.log10(abs(L) / abs(lse)))
                if loss <= 5 + extra:
                    break
                extra = int(loss) + 10
            with workdps(dps + extra):
                es2 = [exp(d) for d in ds]
                T2 = mpmath.fsum(es2[:j] + es2[j + 1:])
                L = mpmath.log1p(T2)
                lse = m + L
    return sm, ls, _split(lse)


def _exact_all(x2d, dps, temperature=None):
    x2d = np.asarray(x2d)
    if x2d.ndim != 2:
        raise ValueError("x2d must be 2-D (rows x n)")
    if x2d.dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"unsupported dtype {x2d.dtype}")
    if not np.all(np.isfinite(x2d)):
        raise ValueError("oracle rows must be finite")
    key = (x2d.dtype.str, x2d.shape, x2d.tobytes(), dps, temperature)
    # one lock around lookup and computation: tests run in several threads at
    # once (pytest-run-parallel) compute each oracle once, and mpmath's
    # precision (mp.workdps) is process-wide state
    with _cache_lock:
        hit = _cache.get(key)
        if hit is None:
            hit = _compute_all(x2d, dps, temperature)
            if len(_cache) >= _CACHE_MAX:
                _cache.pop(next(iter(_cache)))
            _cache[key] = hit
    return hit


def _compute_all(x2d, dps, temperature=None):
    rows, n = x2d.shape
    out = {op: (np.zeros(x2d.shape if op != "logsumexp" else (rows,)),
                np.zeros(x2d.shape if op != "logsumexp" else (rows,)))
           for op in _OPS}
    if n == 0:
        out["logsumexp"][0][:] = -np.inf
    else:
        data = x2d.astype(np.float64).tolist()
        with workdps(dps):
            for i, row in enumerate(data):
                sm, ls, lse = _row_exact(row, dps, temperature)
                out["softmax"][0][i], out["softmax"][1][i] = zip(*sm)
                out["log_softmax"][0][i], out["log_softmax"][1][i] = zip(*ls)
                out["logsumexp"][0][i], out["logsumexp"][1][i] = lse
    return out


def exact_rows(x2d, op, dps=40, temperature=None):
    """Exact ``op`` over the last axis of the 2-D finite array ``x2d`` (of
    ``x2d / temperature`` when a temperature is given, divided exactly).

    Returns float64 arrays ``(hi, lo)`` of shape ``x2d.shape`` (softmax,
    log_softmax) or ``(rows,)`` (logsumexp) with hi + lo = exact value to
    about ``dps`` digits, hi = nearest float64."""
    if op not in _OPS:
        raise ValueError(f"op must be one of {_OPS}, got {op!r}")
    hi, lo = _exact_all(x2d, dps, temperature)[op]
    return hi.copy(), lo.copy()


def _round_dd(hi, lo, dtype):
    """Round the double-double hi + lo to ``dtype`` (float16/float32); returned
    as an array of ``dtype``."""
    with np.errstate(all="ignore"):
        r = hi.astype(dtype)
        best = r
        best_d = np.abs((r.astype(np.float64) - hi) - lo)
        for direction in (np.inf, -np.inf):
            c = np.nextafter(r, np.asarray(direction, dtype=dtype))
            cd = np.abs((c.astype(np.float64) - hi) - lo)
            take = np.isfinite(c) & np.isfinite(cd) & (cd < best_d)
            best = np.where(take, c, best)
            best_d = np.where(take, cd, best_d)
    return best


def ulp_error(got, hi, lo, dtype):
    """|got - (hi + lo)| in units of the spacing of the exact value rounded to
    ``dtype`` (float16/float32/float64).  Subnormal exact values are graded in
    subnormal spacing (np.spacing does that); exact 0 uses the smallest
    subnormal.  A non-finite ``got`` against a finite exact value gives inf.
    Returns a float64 array."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float16, np.float32, np.float64):
        raise TypeError(f"unsupported dtype {dtype}")
    g = np.asarray(got).astype(np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    lo = np.asarray(lo, dtype=np.float64)
    g, hi, lo = np.broadcast_arrays(g, hi, lo)
    with np.errstate(all="ignore"):
        if dtype == np.float64:
            ex = hi.copy()
        else:
            ex = _round_dd(hi, lo, dtype)
        # spacing of |ex|: np.spacing is wrong for negative float16 (NumPy
        # 2.4 returns the spacing of the binade below, e.g. 2**-9 for -4.0).
        sp = np.spacing(np.abs(ex)).astype(np.float64)
        # accurate got - (hi + lo)
        s = g - hi
        if dtype == np.float64:
            bb = s - g
            err = (g - (s - bb)) + (-hi - bb)          # TwoSum(g, -hi)
            diff = s + (err - lo)
        else:
            diff = s - lo
        res = np.abs(diff) / sp
        ex_fin = np.isfinite(ex)
        g_fin = np.isfinite(g)
        res = np.where(ex_fin & ~g_fin, np.inf, res)
        both_inf = ~ex_fin & ~g_fin
        res = np.where(~ex_fin & g_fin, np.inf, res)
        res = np.where(both_inf, np.where(g == ex.astype(np.float64), 0.0, np.inf), res)
        res = np.where(np.isnan(res), np.inf, res)
    return np.asarray(res, dtype=np.float64)
