"""csoftmax over Dask arrays: softmax, log_softmax, logsumexp, their
gradients and cross_entropy, lazily.

Import it as ``csoftmax.dask`` (``import csoftmax`` alone never imports
dask). Each function takes ``dask.array.Array`` input and returns Dask
arrays, with the arguments of its NumPy twin (``axis`` int, tuple or None;
``keepdims`` for logsumexp; ``where`` as a NumPy or Dask bool array;
``causal``; ``temperature``; ``num_threads`` per block; for the training
functions ``dy`` and ``target`` as Dask or NumPy arrays, rechunked to the
first argument's chunks) and the same dtype policy (float16 -> float16,
integers and bool -> float64). ``out=`` is not carried over (Dask arrays are
immutable).

Two plans, chosen from the chunking:

* every reduced axis lies within one chunk: one ``map_blocks`` calling the C
  kernel on each block. The result is bitwise the NumPy path's.
* a reduced axis spans several chunks: each block gives, per slice, the
  triple (m, s, k) = (max, sum of exp((x - m) / T), count of +inf), the sum
  from csoftmax's own logsumexp of the shifted block; a tree reduction
  (``dask.array.reduction``, ``split_every``) merges the triples exactly up
  to rounding (S = sum s_i exp((m_i - M) / T)); one blockwise pass then writes
  exp((x - M) / T) / S (softmax), (x - M) / T - log S (log_softmax) or
  M / T + log S (logsumexp), in double arithmetic (longdouble for longdouble
  input) with x - M corrected by its exact rounding error. The input is read
  twice, and no block is ever gathered with another.

Accuracy of the second plan (bounds checked by tests/test_dask.py against
the NumPy path, on random chunkings): float32 and float16 results within
1 ULP of it (computed in double, rounded once); float64 softmax within 8 ULP,
float64 log_softmax and logsumexp within 4 ULP (the sum is carried as
r = S - 1 and used as log1p(r), so log_softmax near 0 keeps its relative
accuracy; logsumexp = M / T + log1p(r) is accurate to a few ULP of
max(|M / T|, log1p(r)) where the two cancel, unlike the NumPy path's
double-double result). With a temperature, (x - M) / T is carried with
its remainder (Dekker's exact product), so the same bounds hold. longdouble
input is computed in longdouble throughout (within 4 longdouble eps of the
NumPy path's longdouble twin).

Special values follow the NumPy functions exactly in both plans: a NaN makes
its slice NaN, -inf entries give 0 (softmax) / -inf (log_softmax), all -inf
gives NaN (logsumexp: -inf), one +inf gives a one-hot slice, several +inf
give NaN at the +inf entries.

``causal=True`` (softmax, log_softmax, logsumexp) is the NumPy path's mask
(query i sees keys j <= i over the last two axes, reduced over the last),
made per block from the block's offsets (one small task per block of the
last two axes) and combined with ``where``; then either plan above.

The gradients (``softmax_backward``, ``log_softmax_backward``) and
``cross_entropy`` follow the same two plans: within one chunk the NumPy
kernel per block (bitwise); across chunks a tree reduction of per-block
double-double sums (sum(dy * y), sum(dy); for cross_entropy the stats of
logsumexp above, then the partial sums of its loss formulas) and one
blockwise pass. Their accuracy is stated in their docstrings.
"""
import numpy as np

import dask.array as da
from dask.graph_manipulation import clone as _clone

import csoftmax as _cs

__all__ = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
           "cross_entropy"]

# per slice: max m, r = sum(exp((x - m) / T)) - 1 (kept as r for relative
# accuracy of log(1 + r) near 0), k = count of +inf
_STATS = np.dtype([("m", "f8"), ("r", "f8"), ("k", "f8")])
_STATS_LD = np.dtype([("m", np.longdouble), ("r", np.longdouble), ("k", "f8")])


def _check(name, x, axis, temperature, num_threads, extra=None):
    """Validate eagerly (the NumPy function on a tiny array of x's dtype
    raises its own errors); return (result dtype, reduced axes)."""
    if not isinstance(x, da.Array):
        raise TypeError(f"csoftmax.dask.{name}: x must be a dask.array.Array, got "
                        f"{type(x).__module__}.{type(x).__name__}; for NumPy arrays "
                        f"use csoftmax.{name}")
    probe = np.zeros((1,) * x.ndim, dtype=x.dtype)
    res = getattr(_cs, name)(probe, axis=axis, temperature=temperature,
                             num_threads=num_threads, **(extra or {}))
    if axis is None:
        red = tuple(range(x.ndim))
    else:
        ax = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        red = tuple(sorted(int(a) % x.ndim for a in ax)) if x.ndim else ()
    return np.asarray(res).dtype, red


def _mask(name, x, where):
    """where= as a bool dask array of x's shape and chunks (None: None)."""
    if where is None:
        return None
    w = where if isinstance(where, da.Array) else np.asarray(where)
    if w.dtype != np.bool_:
        raise TypeError(f"csoftmax.dask.{name}: where must be a boolean array, "
                        f"got dtype {w.dtype}")
    try:
        ok = np.broadcast_shapes(w.shape, x.shape) == x.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"csoftmax.dask.{name}: where has shape {w.shape}, which does not "
                         f"broadcast to x's shape {x.shape}")
    if isinstance(w, da.Array):
        return da.broadcast_to(w, x.shape).rechunk(x.chunks)
    return da.from_array(np.broadcast_to(w, x.shape), chunks=x.chunks)


def _masked(x, w):
    """x with the excluded entries -inf: absent from every max and sum."""
    return x if w is None else da.where(w, x, -np.inf)


def _causal_block(b, block_info=None):
    """The block of the causal mask (query i sees keys j <= i) at the block's
    offsets: rows [r0, r1), columns [c0, c1)."""
    (r0, r1), (c0, c1) = block_info[None]["array-location"][-2:]
    return np.arange(c0, c1)[None, :] <= np.arange(r0, r1)[:, None]


def _with_causal(x, w, causal):
    """where= combined with causal=True's mask, built per block from the
    block offsets (never materialized whole), broadcast to x's chunks."""
    if not causal:
        return w
    cm = da.map_blocks(_causal_block, da.ones(x.shape[-2:], dtype=bool, chunks=x.chunks[-2:]),
                       dtype=bool, meta=np.empty((0, 0), bool), token="csoftmax-causal")
    cm = da.broadcast_to(cm, x.shape, chunks=x.chunks)
    return cm if w is None else w & cm


def _spans(x, red):
    return any(len(x.chunks[a]) > 1 for a in red)


def _work_dtype(dt):
    return np.longdouble if dt == np.longdouble else np.float64


# ------------------------------------------------------------- per-slice stats
def _chunk(xb, axis, keepdims, T=1.0, wd=np.float64, exact=True):
    """(max m, r = sum exp((x - m) / T) - 1, count of +inf) of each slice of
    a block."""
    st = _STATS_LD if wd == np.longdouble else _STATS
    shape = tuple(1 if i in axis else n for i, n in enumerate(xb.shape))
    out = np.empty(shape, st)
    xb = np.asarray(xb)
    if any(xb.shape[a] == 0 for a in axis):
        out["m"], out["r"], out["k"] = -np.inf, -1.0, 0.0
        return out
    if not exact:
        # at most 24 significant bits: x - m in double is exact to 2**-53 of
        # |x - m|, and the kernel's logsumexp (relatively accurate near 0) of
        # the shifted block gives log(1 + r)
        m = np.max(xb, axis=axis, keepdims=True)
        mf = np.where(np.isfinite(m), m, 0).astype(wd)
        lse = np.empty(m.shape, wd)
        with np.errstate(invalid="ignore", over="ignore"):
            for sl, buf in _slabs(xb, axis, wd):
                np.subtract(xb[sl], mf[sl], out=buf, dtype=wd)
                lse[sl] = _cs.logsumexp(buf, axis=axis, keepdims=True,
                                        temperature=None if T == 1.0 else T, num_threads=1)
        out["m"] = m
        out["r"] = np.where(m == -np.inf, -1.0, np.expm1(lse))
        out["k"] = np.sum(xb == np.inf, axis=axis, keepdims=True)
        return out
    xw = xb.astype(wd, copy=False)
    m = np.max(xw, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        # the kernel's softmax shifts by the max exactly: p = exp((x - m) / T) / s,
        # p_max = 1 / s, so r = s - 1 = (sum of p below the max + (ties - 1) p_max) / p_max
        p = np.asarray(_cs.softmax(xw, axis=axis, temperature=None if T == 1.0 else T,
                                   num_threads=1), dtype=wd)
        top = xw == m
        pmax = np.max(np.where(top, p, 0), axis=axis, keepdims=True)
        below = np.sum(np.where(top, 0, p), axis=axis, keepdims=True)
        ties = np.sum(top, axis=axis, keepdims=True)
        r = (below + (ties - 1) * pmax) / pmax
    out["m"] = m
    out["r"] = np.where(m == -np.inf, -1.0, r)
    out["k"] = np.sum(xw == np.inf, axis=axis, keepdims=True)
    return out


def _merge(st, axis, keepdims, T=1.0):
    """Merge the triples along the (concatenated) reduced axes: with
    w_i = exp((m_i - M) / T), S - 1 = sum r_i w_i + (sum w_i - 1), where the
    blocks holding the max have w_i = 1 exactly."""
    m = st["m"]
    with np.errstate(invalid="ignore"):
        M = np.max(m, axis=axis, keepdims=True)
        dh, dl = _div(*_two_diff(m, M), T)
        w = np.where(np.isfinite(M) & (m > -np.inf), np.exp(dh) * (1 + dl), 0.0)
        one = w == 1.0
        R = (np.sum(st["r"] * w, axis=axis, keepdims=True)
             + np.sum(np.where(one, 0.0, w), axis=axis, keepdims=True)
             + (np.sum(one, axis=axis, keepdims=True) - 1.0))
    out = np.empty(M.shape, st.dtype)
    out["m"] = M
    out["r"] = np.where(np.isnan(M), np.nan, np.where(M == -np.inf, -1.0, R))
    out["k"] = np.sum(st["k"], axis=axis, keepdims=True)
    return out


# ------------------------------------------------------------- final pass
def _two_diff(x, M):
    """x - M as d + err exactly (TwoSum; err 0 where not finite), with M's
    non-finite values replaced by 0."""
    Mf = np.where(np.isfinite(M), M, 0).astype(x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        d = x - Mf
        bv = d - x
        err = (x - (d - bv)) + (-Mf - bv)
        err = np.where(np.isfinite(err), err, 0).astype(x.dtype)
    return d, err


def _split(a):
    """Veltkamp split: a == hi + lo, each half the significand."""
    f = float(2 ** ((np.finfo(a.dtype).nmant + 2) // 2) + 1)   # 2**27 + 1 for float64
    c = f * a
    hi = c - (c - a)
    return hi, a - hi


def _div(d, err, T):
    """(d + err) / T as q + lo, q = fl(d / T) and lo its remainder (Dekker's
    exact product q * T), so a temperature adds no error in the exponent."""
    if T == 1.0:
        return d, err
    with np.errstate(invalid="ignore", over="ignore"):
        q = d / T
        qh, ql = _split(q)
        th, tl = _split(np.asarray(T, dtype=d.dtype))
        ph = q * T
        pl = ((qh * th - ph) + qh * tl + ql * th) + ql * tl
        lo = (((d - ph) - pl) + err) / T
        lo = np.where(np.isfinite(lo), lo, 0).astype(d.dtype)
    return q, lo


def _slabs(xb, axis, wd, elems=2 ** 16):
    """Slices of a block along axis 0 (when not reduced) of about ``elems``
    entries, each with a reused ``wd`` buffer of its shape: the double
    temporaries stay in cache and no block-sized one is allocated."""
    n0 = xb.shape[0] if xb.ndim else 1
    per = max(1, int(np.prod(xb.shape[1:], dtype=np.int64))) if xb.ndim else 1
    step = n0 if (xb.ndim == 0 or 0 in axis) else max(1, min(n0, elems // per))
    full = np.empty((step,) + xb.shape[1:] if xb.ndim else (), wd)
    for i in range(0, max(n0, 1), step):
        rows = min(step, n0 - i)
        if xb.ndim == 0:
            yield (), full
        else:
            yield slice(i, i + rows), full[:rows]


def _final_narrow(xb, st, wb, T, wd, odt, log, axis):
    """The final pass for input of at most 24 significant bits: (x - M) / T
    in double slab by slab, written straight into the result."""
    x = np.asarray(xb)
    y = np.empty(x.shape, odt)
    Mf = np.where(np.isfinite(st["m"]), st["m"], 0).astype(wd)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        c = np.log1p(st["r"]) if log else 1 + st["r"]
        for sl, buf in _slabs(x, axis, wd):
            np.subtract(x[sl], Mf[sl], out=buf, dtype=wd)
            if T != 1.0:
                buf /= T
            if log:
                np.subtract(buf, c[sl], out=y[sl], casting="same_kind")
            else:
                np.exp(buf, out=buf)
                np.divide(buf, c[sl], out=y[sl], casting="same_kind")
        y = _special(y, x, st, 0.0 if log else 1.0, np.nan, -np.inf if log else 0.0)
        if wb is not None:
            y = np.where(wb, y, -np.inf if log else 0.0)
    return y.astype(odt, copy=False)


def _shift(xb, st, T, wd, exact):
    """x, and (x - M) / T as hi + lo, with the rounding errors of the
    subtraction and the division in lo (exact=False, for input of at most
    24 significant bits: lo = 0, the double result's error is below 2**-45
    relative in y)."""
    x = np.asarray(xb).astype(wd, copy=False)
    if not exact:
        with np.errstate(invalid="ignore"):
            d = x - np.where(np.isfinite(st["m"]), st["m"], 0).astype(wd)
        if T != 1.0:
            d /= T
        return x, d, None
    d, err = _two_diff(x, st["m"])
    d, err = _div(d, err, T)
    return x, d, err


def _special(y, x, st, k_one, k_many, rest):
    """The special-value rules, for slices with a +inf (k_one: one of them,
    k_many: several, at the +inf entries; rest: elsewhere) or a max of NaN or
    -inf (all NaN)."""
    M, K = st["m"], st["k"]
    if not (np.any(K > 0) or not np.all(np.isfinite(M))):
        return y
    isinf = x == np.inf
    y = np.where(K > 0, np.where(isinf, np.where(K == 1, k_one, k_many), rest), y)
    return np.where((M == -np.inf) | np.isnan(M), np.nan, y)


def _final_softmax(xb, st, wb=None, T=1.0, wd=np.float64, odt=np.float64, exact=True,
                   axis=()):
    if not exact:
        return _final_narrow(xb, st, wb, T, wd, odt, False, axis)
    x, y, err = _shift(xb, st, T, wd, exact)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        np.exp(y, out=y)
        if err is not None:
            y *= 1 + err
        y /= 1 + st["r"]
        y = _special(y, x, st, 1.0, np.nan, 0.0)
        if wb is not None:
            y = np.where(wb, y, 0.0)
    return y.astype(odt, copy=False)


def _final_log_softmax(xb, st, wb=None, T=1.0, wd=np.float64, odt=np.float64, exact=True,
                       axis=()):
    if not exact:
        return _final_narrow(xb, st, wb, T, wd, odt, True, axis)
    x, y, err = _shift(xb, st, T, wd, exact)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        y -= np.log1p(st["r"])                 # d <= 0 <= log1p(r): no cancellation
        if err is not None:
            y += err
        y = _special(y, x, st, 0.0, np.nan, -np.inf)
        if wb is not None:
            y = np.where(wb, y, -np.inf)
    return y.astype(odt, copy=False)


def _final_logsumexp(st, axis, keepdims, T=1.0, odt=np.float64):
    M, R, K = st["m"], st["r"], st["k"]
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(np.isfinite(M), M, 0) / T + np.log1p(R)
        y = np.where(K > 0, np.inf, y)
        y = np.where(M == -np.inf, -np.inf, y)
        y = np.where(np.isnan(M), np.nan, y)
    y = y.astype(odt)
    return y if keepdims else np.squeeze(y, axis=axis)


def _narrow(dt):
    """At most 24 significant bits (float16/32, bool, 8/16-bit ints): (x - M) / T
    in double is accurate enough without remainders."""
    dt = np.dtype(dt)
    return dt.kind == "b" or (dt.kind == "f" and dt.itemsize <= 4) or (
        dt.kind in "iu" and dt.itemsize <= 2)


def _stats(x, red, T, wd, split_every, exact=True):
    st = _STATS_LD if wd == np.longdouble else _STATS
    return da.reduction(
        x, lambda b, axis, keepdims: _chunk(b, axis, keepdims, T, wd, exact),
        lambda b, axis, keepdims: _merge(b, axis, keepdims, T),
        axis=red, keepdims=True, dtype=st, split_every=split_every,
        combine=lambda b, axis, keepdims: _merge(b, axis, keepdims, T),
        concatenate=True, meta=np.empty((0,) * x.ndim, st), name="csoftmax-stats")


def _kernel_where(b, wb=None, *, kern, **kw):
    return kern(b, where=wb, **kw)


def _elementwise(name, x, axis, temperature, num_threads, split_every, reread, where,
                 causal=False):
    odt, red = _check(name, x, axis, temperature, num_threads, {"causal": causal})
    w = _with_causal(x, _mask(name, x, where), causal)
    kern = getattr(_cs, name)
    meta = np.empty((0,) * x.ndim, odt)
    if not _spans(x, red):
        args = (x,) if w is None else (x, w)
        return da.map_blocks(_kernel_where, *args, kern=kern, axis=axis,
                             temperature=temperature, num_threads=num_threads, dtype=odt,
                             meta=meta, token=f"csoftmax-{name}")
    T = 1.0 if temperature is None else float(temperature)
    wd = _work_dtype(x.dtype)
    xm = _masked(x, w)
    st = _stats(xm, red, T, wd, split_every, not _narrow(x.dtype))
    src = (_clone(xm), None if w is None else _clone(w)) if reread else (xm, w)
    fin = _final_softmax if name == "softmax" else _final_log_softmax
    exact = not _narrow(x.dtype)
    args = (src[0], st) if w is None else (src[0], st, src[1])
    return da.map_blocks(fin, *args, T=T, wd=wd, odt=odt, exact=exact, axis=red, dtype=odt,
                         meta=meta,
                         token=f"csoftmax-{name}")


def softmax(x, axis=-1, *, where=None, causal=False, temperature=None, num_threads=None,
            split_every=None, reread=False):
    """`csoftmax.softmax` of a Dask array, lazily.

    Parameters
    ----------
    x : dask.array.Array
        Input of a dtype `csoftmax.softmax` accepts.
    axis : int, tuple of ints or None, default -1
        Axis or axes of each slice that sums to 1 (None: all).
    where : array_like of bool or dask.array.Array, optional
        Entries to include, broadcast to ``x``'s shape (rechunked to its
        chunks); excluded entries give 0 (see `csoftmax.softmax`).
    causal : bool, default False
        The causal mask of attention (see `csoftmax.softmax`): for ``x`` of
        shape (..., queries, keys) reduced over the last axis only, query
        ``i`` includes keys ``j <= i``. Made per block from the block
        offsets, never as one array; with ``where``, both must include an
        entry.
    temperature : float, optional
        Softmax of ``x / temperature`` (see `csoftmax.softmax`).
    num_threads : int or None
        The threads each block's kernel call may use.
    split_every : int or dict, optional
        Fan-in of the tree reduction when a reduced axis spans chunks
        (``dask.array.reduction``'s argument).
    reread : bool, default False
        When a reduced axis spans chunks: compute ``x``'s blocks again for
        the final pass (a clone of its graph) instead of keeping them in
        memory between the two passes. For inputs cheaper to recompute or
        reread than to hold (larger than memory, e.g. from ``da.random`` or
        a file).

    Returns
    -------
    dask.array.Array
        Lazy result, the shape of ``x``, dtype as `csoftmax.softmax`.

    Notes
    -----
    Reduced axes within one chunk: the NumPy path per block, bitwise the
    same. Spanning chunks: a tree reduction of per-block (max, sum, +inf
    count) then one blockwise pass; see the module docstring for accuracy.

    Examples
    --------
    >>> import dask.array as da, csoftmax.dask
    >>> x = da.from_array([[1.0, 2.0, 3.0, 4.0]], chunks=(1, 2))
    >>> csoftmax.dask.softmax(x).compute()
    array([[0.0320586 , 0.08714432, 0.23688282, 0.64391426]])
    >>> csoftmax.dask.softmax(da.zeros((3, 3), chunks=2), causal=True).compute()
    array([[1.        , 0.        , 0.        ],
           [0.5       , 0.5       , 0.        ],
           [0.33333333, 0.33333333, 0.33333333]])
    """
    return _elementwise("softmax", x, axis, temperature, num_threads, split_every, reread,
                        where, causal)


def log_softmax(x, axis=-1, *, where=None, causal=False, temperature=None, num_threads=None,
                split_every=None, reread=False):
    """`csoftmax.log_softmax` of a Dask array, lazily.

    Parameters and plans as `softmax`.

    Returns
    -------
    dask.array.Array
        Lazy result, the shape of ``x``, dtype as `csoftmax.log_softmax`.

    Examples
    --------
    >>> import dask.array as da, csoftmax.dask
    >>> x = da.from_array([0.0, 0.0, 0.0, 0.0], chunks=1)
    >>> csoftmax.dask.log_softmax(x).compute()
    array([-1.38629436, -1.38629436, -1.38629436, -1.38629436])
    """
    return _elementwise("log_softmax", x, axis, temperature, num_threads, split_every, reread,
                        where, causal)


def logsumexp(x, axis=-1, *, keepdims=False, where=None, causal=False, temperature=None,
              num_threads=None, split_every=None):
    """`csoftmax.logsumexp` of a Dask array, lazily.

    Parameters
    ----------
    x : dask.array.Array
        Input of a dtype `csoftmax.logsumexp` accepts.
    axis : int, tuple of ints or None, default -1
        Axis or axes to reduce (None: all).
    keepdims : bool, default False
        Keep the reduced axes as axes of length 1.
    where : array_like of bool or dask.array.Array, optional
        Entries to include (see `softmax`); a slice with none gives -inf.
    causal : bool, default False
        As in `softmax`.
    temperature, num_threads, split_every
        As in `softmax`.

    Returns
    -------
    dask.array.Array
        Lazy result, dtype as `csoftmax.logsumexp`.

    Examples
    --------
    >>> import dask.array as da, csoftmax.dask
    >>> x = da.from_array([[1.0, 2.0], [3.0, 4.0]], chunks=1)
    >>> csoftmax.dask.logsumexp(x, axis=0).compute()
    array([3.12692801, 4.12692801])
    """
    odt, red = _check("logsumexp", x, axis, temperature, num_threads,
                      {"keepdims": keepdims, "causal": causal})
    w = _with_causal(x, _mask("logsumexp", x, where), causal)
    T = 1.0 if temperature is None else float(temperature)
    meta_nd = x.ndim if keepdims else x.ndim - len(red)
    meta = np.empty((0,) * meta_nd, odt)
    if not _spans(x, red):
        def blk(b, wb=None):
            return np.asarray(_cs.logsumexp(b, axis=axis, keepdims=keepdims, where=wb,
                                            temperature=temperature,
                                            num_threads=num_threads), dtype=odt)
        args = (x,) if w is None else (x, w)
        if keepdims:
            chunks = tuple((1,) if i in red else c for i, c in enumerate(x.chunks))
            return da.map_blocks(blk, *args, chunks=chunks, dtype=odt, meta=meta,
                                 token="csoftmax-logsumexp")
        return da.map_blocks(blk, *args, drop_axis=red, dtype=odt, meta=meta,
                             token="csoftmax-logsumexp")
    wd = _work_dtype(x.dtype)
    st = _stats(_masked(x, w), red, T, wd, split_every, not _narrow(x.dtype))
    y = st.map_blocks(_final_logsumexp, axis=red, keepdims=True, T=T, odt=odt,
                      dtype=odt, meta=np.empty((0,) * x.ndim, odt))
    return y if keepdims else y.squeeze(axis=red)


# ------------------------------------------------------------- accurate sums
# A per-slice sum carried as a double-double (hi, lo): each block's terms
# are added by a pairwise cascade of TwoSums (every rounding error kept and
# added up in lo), the blocks' pairs merged by the same cascade in a tree
# reduction. The sum is within about (log2 n)^2 u^2 sum|terms| of the exact
# one (u = 2**-53), like the NumPy path's double-double sums.

def _dd_dtype(names, wd):
    return np.dtype([(f"{n}_{p}", wd) for n in names for p in ("hi", "lo")])


def _two_sum(a, b):
    """a + b = s + e exactly (Knuth's TwoSum; e is NaN where s is not finite)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fin0(e):
    """e with its non-finite entries 0 (the error terms of inf/NaN sums)."""
    return np.where(np.isfinite(e), e, 0).astype(e.dtype, copy=False)


def _two_prod(a, b):
    """a * b = p + e exactly (Dekker's product over Veltkamp splits; e = 0
    where p is not finite or the split overflows)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return p, _fin0(e)


def _rows_last(t, axis):
    """t with the axes `axis` moved last and flattened into one."""
    keep = [i for i in range(t.ndim) if i not in axis]
    t = np.transpose(t, keep + list(axis))
    return t.reshape(t.shape[:len(keep)] + (int(np.prod(t.shape[len(keep):], dtype=np.int64)),))


def _dd_sum(t, axis, lo=None):
    """(hi, lo): the sum of t over `axis` (keepdims) as a double-double, plus
    the sum of `lo` (error terms of t, same shape). hi is the plain IEEE sum
    where it is not finite (lo 0 there). Each level adds the two halves of
    the row with TwoSum (contiguous halves; an odd last column is added to
    the first); an error term is non-finite only if the row's sum is."""
    shape = tuple(1 if i in axis else n for i, n in enumerate(t.shape))
    with np.errstate(invalid="ignore", over="ignore"):
        a = _rows_last(t, axis)
        err = np.zeros(a.shape[:-1], t.dtype)
        if lo is not None:
            err += np.sum(_rows_last(lo, axis), axis=-1)
        if a.shape[-1] == 0:
            a = np.zeros(a.shape[:-1] + (1,), t.dtype)
        while a.shape[-1] > 1:
            n = a.shape[-1]
            h = n // 2
            s, e = _two_sum(a[..., :h], a[..., h:2 * h])
            err += np.sum(e, axis=-1)
            if n % 2:
                s0, e0 = _two_sum(s[..., 0], a[..., -1])
                s[..., 0] = s0
                err += e0
            a = s
        hi, lo2 = _two_sum(a[..., 0], err)
        fin = np.isfinite(a[..., 0])
        hi = np.where(fin, hi, a[..., 0])
        lo2 = np.where(fin, _fin0(lo2), 0)
    return hi.reshape(shape), lo2.astype(t.dtype).reshape(shape)


def _dd_merge(b, axis, keepdims):
    """Merge the (hi, lo) fields of per-block partials along `axis`."""
    names = [n[:-3] for n in b.dtype.names if n.endswith("_hi")]
    shape = tuple(1 if i in axis else n for i, n in enumerate(b.shape))
    out = np.empty(shape, b.dtype)
    for n in names:
        out[n + "_hi"], out[n + "_lo"] = _dd_sum(b[n + "_hi"], axis, b[n + "_lo"])
    return out


def _dd_reduce(parts, red, split_every, name):
    """Tree reduction of per-block partials (one entry per block along the
    reduced axes) into per-slice double-double sums (keepdims)."""
    return da.reduction(parts, lambda b, axis, keepdims: b, _dd_merge, axis=red, keepdims=True,
                        dtype=parts.dtype, split_every=split_every, combine=_dd_merge,
                        concatenate=True, meta=np.empty((0,) * parts.ndim, parts.dtype),
                        name=name)


def _per_block(fn, x, red, dt, *args, name, **kw):
    """map_blocks of fn over x (and args) giving one entry per block along
    the reduced axes."""
    chunks = tuple((1,) * len(c) if i in red else c for i, c in enumerate(x.chunks))
    return da.map_blocks(fn, x, *args, chunks=chunks, dtype=dt,
                         meta=np.empty((0,) * x.ndim, dt), token=name, **kw)


# ------------------------------------------------------------- gradients
def _as_dask(name, what, a, like=None):
    if isinstance(a, da.Array):
        return a
    if like is None:
        raise TypeError(f"csoftmax.dask.{name}: {what} must be a dask.array.Array, got "
                        f"{type(a).__module__}.{type(a).__name__}; for NumPy arrays use "
                        f"csoftmax.{name}")
    a = np.asarray(a)
    return da.from_array(a, chunks=like.chunks if a.shape == like.shape else "auto")


def _red_axes(axis, nd):
    if axis is None:
        return tuple(range(nd))
    ax = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return tuple(sorted(int(a) % nd for a in ax)) if nd else ()


def _check_grad(name, xname, y, dy, axis, num_threads):
    """Validate (the NumPy function on tiny arrays of the dtypes raises its
    own errors); return (y, dy with y's chunks, result dtype, reduced axes)."""
    y = _as_dask(name, xname, y)
    dy = _as_dask(name, "dy", dy, like=y)
    if y.shape != dy.shape:
        raise ValueError(f"{name}: {xname} has shape {y.shape} and dy {dy.shape}; they must "
                         "be equal (no broadcasting)")
    probe = np.zeros((1,) * y.ndim, y.dtype), np.zeros((1,) * y.ndim, dy.dtype)
    res = getattr(_cs, name)(*probe, axis=axis, num_threads=num_threads)
    if dy.chunks != y.chunks:
        dy = dy.rechunk(y.chunks)
    return y, dy, np.asarray(res).dtype, _red_axes(axis, y.ndim)


def _grad_terms(yb, db, axis, wd, log, narrow):
    """Per block: the double-double sum of dy * y (softmax) or dy (log_softmax).
    narrow (both inputs of at most 24 significant bits): dy * y is exact in
    double, no product error term."""
    d = np.asarray(db).astype(wd, copy=False)
    out = np.empty(tuple(1 if i in axis else n for i, n in enumerate(d.shape)),
                   _dd_dtype(("s",), wd))
    with np.errstate(invalid="ignore", over="ignore"):
        if log:
            out["s_hi"], out["s_lo"] = _dd_sum(d, axis)
        elif narrow:
            out["s_hi"], out["s_lo"] = _dd_sum(np.asarray(yb).astype(wd, copy=False) * d, axis)
        else:
            p, e = _two_prod(np.asarray(yb).astype(wd, copy=False), d)
            out["s_hi"], out["s_lo"] = _dd_sum(p, axis, e)
    return out


def _final_grad(yb, db, st, wd, odt, log, narrow):
    """dx = y * ((dy - hi) - lo) (softmax) or dy - exp(logp) (hi + lo)
    (log_softmax), each difference formed with its exact rounding error:
    one rounding for dy - s, one for the product (the NumPy kernel's order).
    narrow (a result of at most 24 significant bits): log_softmax's
    exp(logp) * s in plain double, its 2**-53 relative error far below the
    result's rounding."""
    y = np.asarray(yb).astype(wd, copy=False)
    d = np.asarray(db).astype(wd, copy=False)
    hi, lo = st["s_hi"], st["s_lo"]
    with np.errstate(invalid="ignore", over="ignore"):
        if log and narrow:
            e = np.exp(y)
            s_ = d - e * hi
            dx = np.where(np.isfinite(s_), s_ - e * lo, s_)
        elif log:
            e = np.exp(y)
            p, pe = _two_prod(e, np.broadcast_to(hi, e.shape))
            s, err = _two_sum(d, -p)
            fin = np.isfinite(s) & np.isfinite(p)
            dx = np.where(fin, s + (_fin0(err) - (pe + e * lo)), s)
        else:
            s, err = _two_sum(d, -hi)
            dx = y * np.where(np.isfinite(s), s + (_fin0(err) - lo), s)
    return dx.astype(odt, copy=False)


def _grad(name, xname, y, dy, axis, num_threads, split_every):
    y, dy, odt, red = _check_grad(name, xname, y, dy, axis, num_threads)
    meta = np.empty((0,) * y.ndim, odt)
    if not _spans(y, red):
        kern = getattr(_cs, name)
        return da.map_blocks(lambda a, b: np.asarray(kern(a, b, axis=axis,
                                                          num_threads=num_threads), dtype=odt),
                             y, dy, dtype=odt, meta=meta, token=f"csoftmax-{name}")
    wd = _work_dtype(odt)
    log = name == "log_softmax_backward"
    parts = _per_block(_grad_terms, y, red, _dd_dtype(("s",), wd), dy, axis=red, wd=wd,
                       log=log, narrow=_narrow(y.dtype) and _narrow(dy.dtype),
                       name=f"csoftmax-{name}-parts")
    st = _dd_reduce(parts, red, split_every, f"csoftmax-{name}-sum")
    return da.map_blocks(_final_grad, y, dy, st, wd=wd, odt=odt, log=log,
                         narrow=_narrow(odt), dtype=odt, meta=meta,
                         token=f"csoftmax-{name}")


def softmax_backward(y, dy, axis=-1, *, num_threads=None, split_every=None):
    """`csoftmax.softmax_backward` of Dask arrays, lazily:
    ``dx = y * (dy - sum(dy * y, axis))``.

    Parameters
    ----------
    y : dask.array.Array
        The softmax output.
    dy : dask.array.Array or array_like
        The incoming gradient, exactly y's shape (no broadcasting); rechunked
        to y's chunks (a NumPy array is wrapped with them).
    axis : int, tuple of ints or None, default -1
        The axis (axes) softmax was taken along.
    num_threads : int or None
        The threads each block's kernel call may use.
    split_every : int or dict, optional
        Fan-in of the tree reduction of the sums when a reduced axis spans
        chunks (``dask.array.reduction``'s argument).

    Returns
    -------
    dask.array.Array
        Lazy dx, y's shape and chunks, of the common float dtype of y and
        dy (the dtype rules of `csoftmax.softmax_backward`: integers ->
        float64, float16 -> float16, longdouble kept).

    Notes
    -----
    Reduced axes within one chunk: the NumPy kernel per block, bitwise the
    same result. Spanning chunks: each block gives per slice sum(dy * y) as a
    double-double (exact products, a TwoSum cascade), a tree reduction merges
    them, and one blockwise pass writes y * ((dy - hi) - lo) in double
    (longdouble for longdouble). Against the NumPy path (tests/test_dask.py):
    float64 within 4 ULP, float32 and float16 within 1 ULP. Special values
    follow the formula in IEEE arithmetic, as the NumPy path.

    Examples
    --------
    >>> import numpy as np, dask.array as da, csoftmax.dask
    >>> y = da.from_array(csoftmax.softmax(np.array([1.0, 2.0, 3.0])), chunks=2)
    >>> csoftmax.dask.softmax_backward(y, np.array([0.0, 0.0, 1.0])).compute()
    array([-0.05989202, -0.1628034 ,  0.22269543])
    """
    return _grad("softmax_backward", "y", y, dy, axis, num_threads, split_every)


def log_softmax_backward(logp, dy, axis=-1, *, num_threads=None, split_every=None):
    """`csoftmax.log_softmax_backward` of Dask arrays, lazily:
    ``dx = dy - exp(logp) * sum(dy, axis)``.

    Parameters as `softmax_backward` (``logp``, the log_softmax output, in
    place of ``y``).

    Returns
    -------
    dask.array.Array
        Lazy dx, logp's shape and chunks, dtype as `softmax_backward`.

    Notes
    -----
    Within one chunk: the NumPy kernel per block (bitwise). Spanning chunks:
    sum(dy) per slice as a double-double (tree reduction), then
    dy - exp(logp) (hi + lo) with the product and the difference carried
    with their exact rounding errors (as the kernel's FMA). NumPy's exp
    replaces the kernel's, so the two paths agree within 2 ULP of dx plus
    2**-50 exp(logp) |sum(dy)| (float64), 1 ULP plus 2**-32 exp(logp)
    |sum(dy)| (float32: the kernel's float32 exp), the NumPy path's own
    error bound.

    Examples
    --------
    >>> import numpy as np, dask.array as da, csoftmax.dask
    >>> logp = da.from_array(csoftmax.log_softmax(np.array([1.0, 2.0, 3.0])), chunks=1)
    >>> csoftmax.dask.log_softmax_backward(logp, np.array([0.0, 0.0, -1.0])).compute()
    array([ 0.09003057,  0.24472847, -0.33475904])
    """
    return _grad("log_softmax_backward", "logp", logp, dy, axis, num_threads, split_every)


# ------------------------------------------------------------- cross-entropy
def _check_ce(logits, target, axis, reduction, label_smoothing, ignore_index, return_grad,
              num_threads):
    """Validate (the NumPy function on tiny arrays of the dtypes raises its
    own errors, the shape checks give its messages); return (logits, target
    with the class axis kept as length 1 (class indices) and chunks aligned,
    probs, loss dtype, class axis)."""
    name = "cross_entropy"
    x = _as_dask(name, "logits", logits)
    t = _as_dask(name, "target", target, like=x)
    nd = x.ndim
    kind = t.dtype.kind
    probs = kind == "f"
    pt = np.zeros((1,) * (nd if probs or kind not in "iu" else max(nd - 1, 0)), t.dtype)
    res = _cs.cross_entropy(np.zeros((1,) * nd, x.dtype), pt, axis=axis, reduction=reduction,
                            label_smoothing=label_smoothing, ignore_index=ignore_index,
                            return_grad=return_grad, num_threads=num_threads)
    odt = np.asarray(res[0] if return_grad else res).dtype
    ax = int(axis) % nd
    rshape = x.shape[:ax] + x.shape[ax + 1:]
    if probs:
        if t.shape != x.shape:
            raise ValueError(f"{name}: probability target has shape {t.shape}, expected "
                             f"logits' shape {x.shape}")
        t = t.rechunk(x.chunks) if t.chunks != x.chunks else t
    else:
        if t.shape != rshape:
            raise ValueError(f"{name}: class-index target has shape {t.shape}, expected "
                             f"{rshape} (logits' shape {x.shape} without axis {ax})")
        t = da.expand_dims(t, ax)
        want = tuple((1,) if i == ax else c for i, c in enumerate(x.chunks))
        t = t.rechunk(want) if t.chunks != want else t
    return x, t, probs, odt, ax


def _range_check(tb, C, ii, ax, loc):
    """The NumPy path's error for a class index out of range (tb: a target
    block with the class axis of length 1, loc its block_info location)."""
    bad = (tb != ii) & ((tb < 0) | (tb >= C))
    if bad.any():
        where = list(np.unravel_index(int(np.argmax(bad)), tb.shape))
        v = int(tb[tuple(where)])
        idx = tuple(int(w + lo) for i, (w, (lo, _)) in enumerate(zip(where, loc)) if i != ax)
        raise ValueError(f"cross_entropy: target {v} at index {idx} is out of range for {C} "
                         f"classes (and is not ignore_index={ii})")


def _ce_block(xb, tb, *, ax, probs, kw, odt, C, ii, block_info=None):
    """Within one chunk: the NumPy kernel's per-slice losses (and gradient)
    of a block; with the gradient, the loss is one more entry along ax."""
    if not probs:
        _range_check(tb, C, ii, ax, block_info[1]["array-location"])
        tb = np.squeeze(tb, ax)
    res = _cs.cross_entropy(xb, tb, axis=ax, reduction="none", **kw)
    if kw["return_grad"]:
        loss, grad = res
        return np.concatenate([np.asarray(grad, odt), np.expand_dims(np.asarray(loss, odt), ax)],
                              axis=ax)
    return np.expand_dims(np.asarray(res, odt), ax)


def _ce_fields(probs, eps):
    return ("s", "q") if probs else (("a", "b") if eps > 0 else ("a",))


def _ce_parts(xb, st, tb, *, ax, probs, eps, C, ii, wd, odt, block_info=None):
    """Per block, per slice, double-double partial sums with M = the slice's
    max (IEEE M - x where M is not finite): class indices: a = M - x_t (the
    block holding the target; 0 elsewhere), b = sum(M - x_c) (label
    smoothing); probabilities: s = sum q_c (M - x_c), q = sum q_c."""
    c0, c1 = block_info[0]["array-location"][ax]
    x = np.asarray(xb).astype(wd, copy=False)
    names = _ce_fields(probs, eps)
    out = np.empty(tuple(1 if i == ax else n for i, n in enumerate(x.shape)),
                   _dd_dtype(names, wd))
    M = st["m"].astype(wd)
    with np.errstate(invalid="ignore", over="ignore"):
        d, err = _two_sum(M, -x)
        err = np.where(np.isfinite(M), _fin0(err), 0).astype(wd)
        if probs:
            keep, eps_c = 1.0 - eps, eps / C
            q = keep * np.asarray(tb).astype(odt).astype(wd) + eps_c
            p, pe = _two_prod(q, d)
            out["s_hi"], out["s_lo"] = _dd_sum(p, (ax,), pe + q * err)
            out["q_hi"], out["q_lo"] = _dd_sum(q, (ax,))
            return out
        if c0 == 0:
            _range_check(tb, C, ii, ax, block_info[2]["array-location"])
        tb = np.asarray(tb)
        inb = (tb != ii) & (tb >= c0) & (tb < c1)
        idx = np.where(inb, tb - c0, 0).astype(np.intp)
        if x.shape[ax]:
            ah = np.take_along_axis(d, idx, axis=ax)
            al = np.take_along_axis(err, idx, axis=ax)
        else:
            ah = al = np.zeros(idx.shape, wd)
        out["a_hi"], out["a_lo"] = np.where(inb, ah, 0), np.where(inb, al, 0)
        if eps > 0:
            out["b_hi"], out["b_lo"] = _dd_sum(d, (ax,), err)
    return out


def _ce_loss(st, parts, tb=None, *, probs, eps, C, ii, odt):
    """Per slice loss from the stats (L = log1p(S - 1)) and the summed
    partials, with the NumPy kernel's formulas."""
    M = st["m"]
    fin = np.isfinite(M)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        L = np.log1p(st["r"])
        if probs:
            qs = parts["q_hi"] + parts["q_lo"]
            l2, l2e = _two_prod(L, qs)
            sh, se = _two_sum(parts["s_hi"], l2)
            loss = sh + (parts["s_lo"] + _fin0(se) + l2e)
            loss = np.where(np.isfinite(parts["s_hi"]) & fin, loss, parts["s_hi"])
            return loss.astype(odt)
        keep = 1.0 - eps
        ah, al = parts["a_hi"], parts["a_lo"]
        a1 = np.where(ah < np.inf, ah + (al + L), ah)
        loss = np.where(fin, keep * a1, keep * ah)
        if eps > 0:
            bh, bl = parts["b_hi"], parts["b_lo"]
            bm = np.where(bh < np.inf, (bh + bl) / C, bh)
            sm = L + bm if eps == 1.0 else keep * a1 + eps * (L + bm)
            loss = np.where(fin, sm, loss + eps * (bh / C))
        loss = np.where(np.asarray(tb) == ii, 0.0, loss)
    return loss.astype(odt)


def _ce_grad(xb, st, tb, qs, scale, *, ax, probs, eps, C, ii, wd, odt, exact,
             block_info=None):
    """grad_c = (softmax_c * sum(q) - q_c) / scale, the target entry at the
    max as -(S - 1) / S + (1 - keep - eps / C) (no cancellation)."""
    c0, c1 = block_info[0]["array-location"][ax]
    p = _final_softmax(xb, st, None, 1.0, wd, wd, exact, (ax,))
    keep, eps_c = 1.0 - eps, eps / C
    sc = float(scale)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if probs:
            q = keep * np.asarray(tb).astype(odt).astype(wd) + eps_c
            g = (p * (qs["q_hi"] + qs["q_lo"]) - q) / sc
            return g.astype(odt)
        tb = np.asarray(tb)
        cls = np.arange(c0, c1).reshape(tuple(-1 if i == ax else 1 for i in range(p.ndim)))
        hit = cls == tb
        q = np.where(hit, keep, 0.0) + eps_c
        g = (p - q) / sc
        x = np.asarray(xb).astype(wd, copy=False)
        r = st["r"]
        top = hit & (x == st["m"]) & np.isfinite(st["m"])
        g = np.where(top, (-(r / (1 + r)) + (1.0 - keep - eps_c)) / sc, g)
        g = np.where(tb == ii, 0.0, g)
    return g.astype(odt)


def _ce_total(loss, reduction, count, split_every):
    """sum (or mean) of the per-slice losses: a double-double sum (tree
    reduction), the plain sum where it is not finite; a 0-d Dask array."""
    odt = loss.dtype
    red = tuple(range(loss.ndim))
    wd = _work_dtype(odt)
    if loss.ndim == 0:
        loss = loss[None]
        red = (0,)
    parts = _per_block(lambda b, axis: _dd_merge(_as_dd(b, wd), axis, True), loss, red,
                       _dd_dtype(("s",), wd), axis=red, name="csoftmax-cross_entropy-parts")
    tot = _dd_reduce(parts, red, split_every, "csoftmax-cross_entropy-total")

    def fin(hi, lo, c):
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            v = hi + lo
            v = (v / float(c) if float(c) != 0 else np.nan) if reduction == "mean" else v
        return np.asarray(v).astype(odt)

    hi, lo = (tot[f].reshape(()) for f in ("s_hi", "s_lo"))
    return da.map_blocks(fin, hi, lo, count, dtype=odt, meta=np.empty((), odt),
                         token="csoftmax-cross_entropy-reduce")


def _as_dd(b, wd):
    out = np.empty(b.shape, _dd_dtype(("s",), wd))
    out["s_hi"], out["s_lo"] = b, 0
    return out


def cross_entropy(logits, target, axis=-1, *, weight=None, reduction="mean",
                  label_smoothing=0.0, ignore_index=-100, return_grad=False, num_threads=None,
                  split_every=None):
    """`csoftmax.cross_entropy` of Dask arrays, lazily.

    ``loss = sum_c q_c * (logsumexp(logits) - logits_c)`` per slice along
    `axis` (the class axis), q the target distribution, with the semantics
    of `csoftmax.cross_entropy` (torch's reductions, label smoothing and
    ignore_index).

    Parameters
    ----------
    logits : dask.array.Array
        Unnormalized scores, at least one axis; the classes along `axis`.
    target : dask.array.Array or array_like
        Class indices (an integer dtype, logits' shape without `axis`) or
        class probabilities (a float dtype, logits' shape); rechunked to
        logits' chunks (a NumPy array is wrapped with them).
    axis : int, default -1
        The class axis.
    weight : array_like or None, default None
        The class weights of `csoftmax.cross_entropy` (a NumPy array: C
        values; "mean" then divides by the sum of weight[t] over the slices
        not ignored). Only with the class axis within one chunk: across
        chunks it raises NotImplementedError.
    reduction : {"mean", "sum", "none"}, default "mean"
        As `csoftmax.cross_entropy`; "mean" divides by the number of slices
        whose target is not ignore_index (class indices) or by all slices
        (probabilities); a mean over no slice is NaN.
    label_smoothing : float in [0, 1], default 0.0
        q = (1 - label_smoothing) * target + label_smoothing / C.
    ignore_index : int, default -100
        Class-index slices with this target: loss 0, gradient 0, not counted.
    return_grad : bool, default False
        Also return the gradient of the returned loss with respect to the
        logits (logits' shape and chunks).
    num_threads : int or None
        The threads each block's kernel call may use.
    split_every : int or dict, optional
        Fan-in of the tree reductions (``dask.array.reduction``'s argument).

    Returns
    -------
    loss : dask.array.Array
        0-d for "mean" and "sum", logits' shape without `axis` for "none";
        the logits' float dtype (integer logits -> float64, float16 kept).
    grad : dask.array.Array
        Only with return_grad=True: ``(loss, grad)``.

    Notes
    -----
    Arguments are checked when the graph is built, with the NumPy
    function's errors; a class index out of range (and not ignore_index)
    raises its ValueError when the blocks holding it are computed.

    Class axis within one chunk: the NumPy kernel per block
    (reduction="none", bitwise the same per-slice losses and gradient; a
    "mean" gradient is the block's divided by the global count: bitwise for
    float64, within 1 ULP for float32). The sum or mean of the losses is a
    double-double tree reduction (within 1 ULP of the NumPy path).

    Class axis spanning chunks: the per-slice max and sum of exp of
    `logsumexp` (a tree reduction), then one blockwise pass giving per block
    the double-double partial sums the kernel's formulas need (M - x_t at the
    target, sum(M - x_c) for label smoothing; sum q_c (M - x_c) and sum q_c
    for probabilities), a second tree reduction of those, then the per-slice
    loss (and a blockwise pass for the gradient). Against the NumPy path
    (tests/test_dask.py): per-slice losses within 4 ULP (float64) and 1 ULP
    (float32, float16), for probability targets of the bound's scale
    sum |q_c| (lse - x_c); gradients within 4 eps (float64) and 2 eps
    (float32, float16) of max(softmax, |q|) / count (the NumPy path's own
    bound form: softmax * sum(q) - q cancels). Special values follow the
    kernel's IEEE formulas (a NaN logit makes its slice's loss and gradient
    NaN, a -inf logit at the target gives +inf). longdouble is computed in
    longdouble (within 2**-50 of the NumPy twin, whose sums are plain).

    dtypes: the logits' float dtype as `csoftmax.cross_entropy` (integers
    -> float64; float16 within one chunk as the NumPy path, in float32,
    across chunks in double, rounded once); probability targets are cast to
    it.

    Examples
    --------
    >>> import numpy as np, dask.array as da, csoftmax.dask
    >>> logits = da.from_array(np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]]), chunks=(1, 2))
    >>> round(float(csoftmax.dask.cross_entropy(logits, np.array([0, 1])).compute()), 12)
    0.306882056599
    >>> loss, grad = csoftmax.dask.cross_entropy(logits, np.array([0, -100]), return_grad=True)
    >>> grad.compute()
    array([[-0.34099886,  0.24243297,  0.09856589],
           [ 0.        ,  0.        ,  0.        ]])
    """
    x, t, probs, odt, ax = _check_ce(logits, target, axis, reduction, label_smoothing,
                                     ignore_index, return_grad, num_threads)
    eps = float(label_smoothing)
    ii = int(ignore_index)
    C = x.shape[ax]
    wv = None
    if weight is not None:
        wv = np.asarray(weight.compute() if isinstance(weight, da.Array) else weight)
        shp = tuple(C if i == ax else 1 for i in range(x.ndim))
        # the NumPy function's checks and messages (shape, dtype) on C classes
        _cs.cross_entropy(np.zeros(shp, x.dtype),
                          np.zeros(shp, t.dtype) if probs else np.full((1,) * (x.ndim - 1), ii),
                          axis=ax, weight=wv, ignore_index=ii)
        if _spans(x, (ax,)):
            raise NotImplementedError(
                "cross_entropy: weight= across chunks of the class axis is not implemented "
                "(rechunk logits so that the class axis is one chunk)")
    if probs:                           # every slice counts
        count = da.from_array(np.asarray(float(np.prod(x.shape[:ax] + x.shape[ax + 1:]))))
    elif wv is not None:                # the sum of the counted slices' weights
        wc = np.asarray(wv, np.float32 if np.dtype(odt).itemsize <= 4 else odt)
        cdt = np.longdouble if np.dtype(odt).itemsize > 8 else np.float64
        def wt(tb):                     # (out-of-range indices: the blocks' ValueError)
            if not C:
                return np.zeros(tb.shape, cdt)
            return np.where(tb != ii, wc[np.clip(tb, 0, C - 1)], 0).astype(cdt)
        count = da.map_blocks(wt, t, dtype=cdt).sum(dtype=cdt)
    else:
        count = da.sum(t != ii, dtype=np.float64)
    if reduction != "mean":
        scale = da.from_array(np.asarray(1.0))
    elif wv is not None and not probs:  # torch: a zero weight sum gives NaN
        scale = da.where(count != 0, count, np.nan)
    else:
        scale = da.where(count > 0, count, 1.0)
    meta = np.empty((0,) * x.ndim, odt)
    if not _spans(x, (ax,)):
        kw = {"label_smoothing": eps, "ignore_index": ii, "return_grad": bool(return_grad),
              "num_threads": num_threads, "weight": wv}
        chunks = tuple(((c[0] + 1,) if return_grad else (1,)) if i == ax else c
                       for i, c in enumerate(x.chunks))
        out = da.map_blocks(_ce_block, x, t, ax=ax, probs=probs, kw=kw, odt=odt, C=C, ii=ii,
                            chunks=chunks, dtype=odt, meta=meta, token="csoftmax-cross_entropy")
        sl = [slice(None)] * x.ndim
        sl[ax] = C if return_grad else 0
        loss = out[tuple(sl)]
        grad = None
        if return_grad:
            sl[ax] = slice(0, C)
            grad = out[tuple(sl)]
            if reduction == "mean" and wv is not None and not probs:
                # the ignored slices stay 0 (also under a NaN scale)
                grad = da.map_blocks(lambda g, tb, s: np.where(
                    tb != ii, np.asarray(g, np.float64) / float(s), 0).astype(odt),
                    grad, t, scale, dtype=odt, meta=meta)
            elif reduction == "mean":
                grad = da.map_blocks(lambda g, s: (np.asarray(g, np.float64) / float(s))
                                     .astype(odt), grad, scale, dtype=odt, meta=meta)
    else:
        wd = _work_dtype(odt)
        exact = not _narrow(x.dtype)
        st = _stats(x, (ax,), 1.0, wd, split_every, exact)
        names = _ce_fields(probs, eps)
        parts = _per_block(_ce_parts, x, (ax,), _dd_dtype(names, wd), st, t, ax=ax,
                           probs=probs, eps=eps, C=C, ii=ii, wd=wd, odt=odt,
                           name="csoftmax-cross_entropy-parts")
        sums = _dd_reduce(parts, (ax,), split_every, "csoftmax-cross_entropy-sums")
        targs = () if probs else (t,)         # class indices: the ignored slices
        loss = da.map_blocks(_ce_loss, st, sums, *targs, probs=probs, eps=eps, C=C, ii=ii,
                             odt=odt, dtype=odt, meta=meta, token="csoftmax-cross_entropy-loss")
        loss = loss[tuple(0 if i == ax else slice(None) for i in range(x.ndim))]
        grad = None
        if return_grad:
            grad = da.map_blocks(_ce_grad, x, st, t, sums, scale, ax=ax, probs=probs, eps=eps,
                                 C=C, ii=ii, wd=wd, odt=odt, exact=exact, dtype=odt, meta=meta,
                                 token="csoftmax-cross_entropy-grad")
    if reduction != "none":
        loss = _ce_total(loss, reduction, count, split_every)
    return (loss, grad) if return_grad else loss
