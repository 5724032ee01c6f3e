"""Pure-NumPy reference implementation ("twin") of csoftmax.

This module has two roles:

(a) **Oracle / twin for the tests.**  It implements exactly the algorithm and
    the special-value semantics of the C kernels, but vectorised in NumPy and
    carried out in a wide work dtype (``np.longdouble`` by default), so that
    float32 / float64 results are rounded only once, at the very end.  The test
    suite compares the compiled kernels against it (special values must match
    bit for bit in NaN/inf/0 pattern, finite values within a few ULP), and
    compares it against a high-precision mpmath oracle.

(b) **Implementation for dtypes the C kernels do not cover** (``np.longdouble``).
    For those inputs the public functions dispatch here; the computation is
    then done in long double throughout.

It deliberately imports nothing from ``csoftmax`` (it must be usable before
and without the compiled extension).

Algorithm, per reduced row ``x`` of length ``n`` (all in the work dtype)::

    m   = max(x) ignoring NaN
    d_i = x_i - m                      (rounded)
    r_i = exact residual of that subtraction (TwoSum), 0 where d_i not finite
    e_i = exp(d_i) * (1 + r_i)         (evaluated as e + e*r)
    C   = #{i : d_i == 0}              (the maxima; e_i == 1 there)
    T   = sum_{d_i < 0} e_i + (C - 1)  (= S - 1, no cancellation)
    softmax_i     = e_i / (1 + T)
    log_softmax_i = d_i + (r_i - log1p(T))
    logsumexp     = m + log1p(T)

Special rows (k = number of +inf entries in the row):

====================== ========================= ============================== ==========
row                    softmax                   log_softmax                    logsumexp
====================== ========================= ============================== ==========
finite                 accurate                  accurate                       accurate
any NaN                all NaN                   all NaN                        NaN
some -inf, not all     0 there                   -inf there                     ignores them
all -inf, n >= 2       all NaN                   all NaN                        -inf
k == 1                 one-hot                   0 at +inf, -inf elsewhere      +inf
k >= 2                 NaN at +inf, 0 elsewhere  NaN at +inf, -inf elsewhere    +inf
n == 1, not NaN        [1.]                      [0.]                           x
empty row              empty                     empty                          -inf
====================== ========================= ============================== ==========

No warnings are ever emitted.
"""

from __future__ import annotations

import numpy as np
try:
    from numpy.lib.array_utils import normalize_axis_tuple
except ImportError:  # numpy < 2.0
    from numpy.core.numeric import normalize_axis_tuple

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
           "cross_entropy"]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _check_input(x, work_dtype):
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"expected a real floating-point array, got dtype {x.dtype}")
    if work_dtype is None:
        work = np.dtype(np.longdouble)
    else:
        work = np.dtype(work_dtype)
        if not np.issubdtype(work, np.floating):
            raise TypeError(f"work_dtype must be a real floating dtype, got {work}")
    return x, work


def _normalize_axis(axis, ndim):
    """Return the sorted tuple of reduced axes."""
    if axis is None:
        return tuple(range(ndim))
    if ndim == 0:
        if isinstance(axis, tuple) and len(axis) == 0:
            return ()
        raise np.exceptions.AxisError(
            f"axis {axis!r} is out of bounds for array of dimension 0")
    return tuple(sorted(normalize_axis_tuple(axis, ndim)))


def _to_rows(x, red):
    """Move the reduced axes to the end and reshape to (rows, n).

    Returns (x2, perm, kept_shape, n)."""
    kept = tuple(i for i in range(x.ndim) if i not in red)
    perm = kept + red
    kept_shape = tuple(x.shape[i] for i in kept)
    n = 1
    for i in red:
        n *= x.shape[i]
    rows = 1
    for s in kept_shape:
        rows *= s
    x2 = np.transpose(x, perm).reshape(rows, n).copy()
    return x2, perm, kept_shape, n


def _from_rows(y2, x_shape, perm):
    """Inverse of _to_rows for a (rows, n) result of the input's shape."""
    tshape = tuple(x_shape[i] for i in perm)
    inv = np.argsort(perm)
    return np.transpose(y2.reshape(tshape), inv)


def _recip_int_rounded(s, dtype):
    """Correctly rounded 1/s in ``dtype`` for a positive Python integer s."""
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    if dtype.itemsize > 8:                 # long double: no double rounding issue here
        return dtype.type(1) / dtype.type(s)
    nmant, emin = int(fi.nmant), int(fi.minexp)
    b = s.bit_length()
    e = -(b - 1) if (s & (s - 1)) == 0 else -b          # floor(log2(1/s))
    e = max(e, emin)
    k = nmant - e
    mant, rem = divmod(1 << k, s)
    if 2 * rem > s or (2 * rem == s and (mant & 1)):
        mant += 1
    return np.float64(np.ldexp(float(mant), e - nmant)).astype(dtype)


def _core(x, axis, work_dtype, want, where=None, temperature=None):
    """Shared computation.  ``want`` in {"softmax", "log_softmax", "logsumexp"}.

    Returns (result_rows, perm, kept_shape, n, red) where result_rows has shape
    (rows, n) for the elementwise ops and (rows,) for logsumexp, already in
    x.dtype."""
    x, work = _check_input(x, work_dtype)
    out_dt = x.dtype
    red = _normalize_axis(axis, x.ndim)
    x2, perm, kept_shape, n = _to_rows(x, red)
    rows = x2.shape[0]

    if n == 0:
        if want == "logsumexp":
            return np.full(rows, -np.inf, dtype=out_dt), x, perm, kept_shape, red
        return np.empty((rows, 0), dtype=out_dt), x, perm, kept_shape, red

    keep = None
    if where is not None:
        keep = _to_rows(np.broadcast_to(np.asarray(where, dtype=bool), x.shape), red)[0]
    with np.errstate(all="ignore"):
        xw = x2.astype(work)
        if temperature is not None and temperature != 1:
            xw = xw / work.type(temperature)
        if keep is not None:
            xw = np.where(keep, xw, -np.inf).astype(work)
        res = _rows(xw, n, want, out_dt, work)
        if keep is not None and want != "logsumexp":
            res = _masked_rules(res, xw, keep, want, out_dt)
    return res, x, perm, kept_shape, red


def _masked_rules(res, xw, keep, want, out_dt):
    """A where= mask: the excluded entries were given -inf (right for
    logsumexp); here the rules of the kept entries alone. A row of one kept
    entry gives 1 (softmax) or 0 (log_softmax) there unless it is NaN; the
    excluded outputs are 0 or -inf whatever the row holds."""
    single = (keep.sum(axis=1) == 1)[:, None] & keep & ~np.isnan(xw)
    hit, miss = (1, 0) if want == "softmax" else (0, -np.inf)
    res = np.where(single, np.asarray(hit, out_dt), res)
    return np.where(keep, res, np.asarray(miss, out_dt)).astype(out_dt, copy=False)


def _rows(xw, n, want, out_dt, work):
    """The op over the rows of xw (rows, n >= 1), in the work dtype; the
    result in out_dt."""
    isnan = np.isnan(xw)
    has_nan = isnan.any(axis=1)
    m = np.where(isnan, -np.inf, xw).max(axis=1)
    posinf = xw == np.inf
    k = posinf.sum(axis=1)
    fin_m = np.isfinite(m) & ~has_nan

    # ---- general path (computed for every row, overridden below) ----
    ms = np.where(fin_m, m, 0).astype(work)[:, None]
    a = xw
    b = -ms
    d = a + b
    bb = d - a
    r = (a - (d - bb)) + (b - bb)
    r = np.where(np.isfinite(d), r, 0).astype(work)
    e = np.exp(d)
    e = e + e * r
    is_max = d == 0
    C = is_max.sum(axis=1)
    tail = np.sum(np.where(d < 0, e, 0).astype(work), axis=1)
    T = tail + (C - 1).astype(work)
    lp = np.log1p(T)

    if want == "logsumexp":
        res = (m + lp)
        res = np.where(fin_m, res, 0).astype(work)
        # special rows
        res = np.where(~has_nan & (m == np.inf), np.inf, res)
        res = np.where(~has_nan & (m == -np.inf), -np.inf, res)
        if n == 1:
            res = np.where(~has_nan, xw[:, 0], res)
        res = np.where(has_nan, np.nan, res)
        return res.astype(out_dt)

    if want == "softmax":
        S = (1 + T)[:, None]
        res = (e / S).astype(out_dt)
        # Rows whose non-maximal terms all underflowed to 0 (e.g. rows of
        # one repeated value): the maxima get exactly 1/C.  Do the division
        # correctly rounded in the output dtype to avoid double rounding
        # (1/2731 in long double -> float64 is off by one ULP otherwise).
        if np.dtype(out_dt) != work:
            triv = fin_m & (tail == 0)
            if triv.any():
                for c in np.unique(C[triv]):
                    sel = triv & (C == c)
                    val = _recip_int_rounded(int(c), out_dt)
                    res[sel] = np.where(is_max[sel], val, res[sel])
        one = np.ones((), out_dt)
        zero = np.zeros((), out_dt)
        nan = np.array(np.nan, out_dt)
        pinf_row = (~has_nan & (m == np.inf))[:, None]
        res = np.where(pinf_row & (k == 1)[:, None],
                       np.where(posinf, one, zero), res)
        res = np.where(pinf_row & (k >= 2)[:, None],
                       np.where(posinf, nan, zero), res)
        res = np.where((~has_nan & (m == -np.inf))[:, None], nan, res)
        if n == 1:
            res = np.where(~has_nan[:, None], one, res)
        res = np.where(has_nan[:, None], nan, res)
        return res.astype(out_dt, copy=False)

    # log_softmax
    res = d + (r - lp[:, None])
    res = res.astype(out_dt)
    zero = np.zeros((), out_dt)
    ninf = np.array(-np.inf, out_dt)
    nan = np.array(np.nan, out_dt)
    pinf_row = (~has_nan & (m == np.inf))[:, None]
    res = np.where(pinf_row & (k == 1)[:, None],
                   np.where(posinf, zero, ninf), res)
    res = np.where(pinf_row & (k >= 2)[:, None],
                   np.where(posinf, nan, ninf), res)
    res = np.where((~has_nan & (m == -np.inf))[:, None], nan, res)
    if n == 1:
        res = np.where(~has_nan[:, None], zero, res)
    res = np.where(has_nan[:, None], nan, res)
    return res.astype(out_dt, copy=False)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def softmax(x, axis=-1, *, work_dtype=None, where=None, temperature=None):
    """softmax of ``x`` over ``axis`` (int, tuple of ints or None), in x.dtype.
    where: bool mask broadcast to x (excluded entries absent); temperature:
    softmax(x / temperature)."""
    res, x, perm, _, _ = _core(x, axis, work_dtype, "softmax", where, temperature)
    return _from_rows(res, x.shape, perm)


def log_softmax(x, axis=-1, *, work_dtype=None, where=None, temperature=None):
    """log_softmax of ``x`` over ``axis`` (int, tuple of ints or None), in
    x.dtype; where and temperature as in `softmax`."""
    res, x, perm, _, _ = _core(x, axis, work_dtype, "log_softmax", where, temperature)
    return _from_rows(res, x.shape, perm)


def logsumexp(x, axis=-1, *, keepdims=False, work_dtype=None, where=None, temperature=None):
    """log(sum(exp(x))) over ``axis``; returns an ndarray (0-d for a full
    reduction) of dtype x.dtype.  Empty reductions give -inf. where and
    temperature as in `softmax`."""
    res, x, perm, kept_shape, red = _core(x, axis, work_dtype, "logsumexp", where,
                                          temperature)
    if keepdims:
        shape = tuple(1 if i in red else s for i, s in enumerate(x.shape))
    else:
        shape = kept_shape
    return np.asarray(res).reshape(shape)


# ---- training (issue 8): the gradients' twins, in the inputs' dtype (long
# double for the public functions' longdouble path)

def softmax_backward(y, dy, axis=-1):
    """dx = y * (dy - sum(dy * y)) along `axis` (int, tuple or None)."""
    y = np.asarray(y)
    dy = np.asarray(dy)
    ax = tuple(range(y.ndim)) if axis is None else normalize_axis_tuple(axis, y.ndim)
    with np.errstate(all="ignore"):
        s = np.sum(dy * y, axis=ax, keepdims=True)
        return y * (dy - s)


def log_softmax_backward(logp, dy, axis=-1):
    """dx = dy - exp(logp) * sum(dy) along `axis` (int, tuple or None)."""
    logp = np.asarray(logp)
    dy = np.asarray(dy)
    ax = tuple(range(logp.ndim)) if axis is None else normalize_axis_tuple(axis, logp.ndim)
    with np.errstate(all="ignore"):
        s = np.sum(dy, axis=ax, keepdims=True)
        return dy - np.exp(logp) * s


def cross_entropy(x, target, axis=-1, reduction="mean", label_smoothing=0.0,
                  ignore_index=-100, weight=None):
    """(loss, grad) of csoftmax.cross_entropy in x's dtype (the NumPy twin:
    torch's semantics; the class axis `axis`; integer targets are class
    indices, float targets probabilities; weight: None or the C class
    weights)."""
    x = np.asarray(x)
    target = np.asarray(target)
    ax = normalize_axis_tuple(axis, x.ndim)[0]
    C = x.shape[ax]
    eps = label_smoothing
    with np.errstate(all="ignore"):
        lse = logsumexp(x, axis=ax, keepdims=True) if C else np.full(
            x.shape[:ax] + (1,) + x.shape[ax + 1:], -np.inf, x.dtype)
        nlp = lse - x                                  # -log_softmax
        if target.dtype.kind in "iu":
            valid = target != ignore_index
            t = np.where(valid, target, 0).astype(np.intp)
            onehot = np.zeros(x.shape, x.dtype)
            if C:
                np.put_along_axis(onehot, np.expand_dims(t, ax), 1, axis=ax)
            q = (1 - eps) * onehot + eps / C if C else onehot
            q = q * np.expand_dims(valid, ax)
            count = x.dtype.type(np.count_nonzero(valid))
            if weight is not None:
                wsh = [1] * x.ndim
                wsh[ax] = C
                q = q * np.asarray(weight, x.dtype).reshape(wsh)
                count = np.sum(np.where(valid, np.asarray(weight, x.dtype)[t] if C else 0, 0),
                               dtype=x.dtype)
        else:
            q = (1 - eps) * target.astype(x.dtype) + (eps / C if C else 0)
            if weight is not None:
                wsh = [1] * x.ndim
                wsh[ax] = C
                q = q * np.asarray(weight, x.dtype).reshape(wsh)
            valid = np.ones(x.shape[:ax] + x.shape[ax + 1:], bool)
            count = x.dtype.type(valid.size)
        prod = np.where(q == 0, np.where(np.isnan(nlp), np.nan, 0), q * nlp) \
            if target.dtype.kind in "iu" else q * nlp
        loss = np.where(valid, np.sum(prod, axis=ax), 0).astype(x.dtype)
        p = np.exp(x - lse) if C else np.zeros_like(x)
        grad = p * np.sum(q, axis=ax, keepdims=True) - q
        grad = np.where(np.expand_dims(valid, ax), grad, 0).astype(x.dtype)
        if reduction == "none":
            return loss, grad
        total = np.sum(loss)
        if reduction == "mean":
            total = total / count if count or weight is None else x.dtype.type(np.nan)
            if weight is not None and target.dtype.kind in "iu":
                grad = np.where(np.expand_dims(valid, ax),
                                grad / count if count else np.nan * grad, 0)
            else:
                grad = grad / count if count else grad
        return x.dtype.type(total), grad.astype(x.dtype)
