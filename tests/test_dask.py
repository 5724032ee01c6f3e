"""csoftmax.dask: the NumPy functions over Dask arrays (issue 9).

Results are compared with the NumPy-path csoftmax: bitwise when every
reduced axis lies within one chunk (one map_blocks of the same kernel), and
within the bounds stated in csoftmax/dask.py's docstring when a reduced axis
spans chunks (tree reduction + blockwise pass), on random chunkings with
chunks of size 1 and uneven chunks; on the threaded scheduler and on a
distributed LocalCluster of 2 worker processes on loopback.
"""
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import csoftmax  # noqa: E402
import csoftmax.dask as cd  # noqa: E402
from conftest import assert_bitwise, ulp_diff  # noqa: E402

# the LocalCluster and dask's own thread pools: not under pytest-run-parallel's threads
pytestmark = pytest.mark.thread_unsafe

OPS = ("softmax", "log_softmax", "logsumexp")
# ULP bounds of the spanning plan against the NumPy path (see csoftmax/dask.py)
BOUND = {("softmax", "float64"): 8, ("log_softmax", "float64"): 4,
         ("logsumexp", "float64"): 4}


def _bound(op, dt):
    return BOUND.get((op, np.dtype(dt).name), 1)


def _chunks(rng, n, spans):
    """Random chunks of n: single chunk, or uneven ones with 1s among them."""
    if not spans or n == 1:
        return (n,)
    out = []
    while n > 0:
        c = min(n, int(rng.choice([1, 1, 2, 3, int(rng.integers(1, n + 1))])))
        out.append(c)
        n -= c
    return tuple(out)


def _close(got, want, op, dt, msg=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape,
                                                                  got.dtype, want.dtype, msg)
    assert np.array_equal(np.isnan(got), np.isnan(want)), msg
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), msg
    fin = np.isfinite(want)
    assert np.all(np.isfinite(got[fin])), msg
    u = ulp_diff(got[fin], want[fin], want.dtype)
    assert u.size == 0 or int(u.max()) <= _bound(op, want.dtype), (int(u.max()), msg)


def test_import_csoftmax_does_not_import_dask():
    code = ("import sys, csoftmax; csoftmax.softmax([1.0]); "
            "bad = [m for m in sys.modules if m == 'dask' or m.startswith('dask.') "
            "or m == 'distributed' or m == 'csoftmax.dask']; "
            "assert not bad, bad; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16, np.int16],
                         ids=["f64", "f32", "f16", "i16"])
def test_within_one_chunk_bitwise(dt):
    rng = np.random.default_rng(11)
    a = (rng.standard_normal((6, 5, 40)) * 20).astype(dt)
    for axis, ch in ((-1, (2, 1, 40)), (1, (4, 5, 7)), ((0, 2), (6, 2, 40)), (None, -1)):
        x = da.from_array(a, chunks=ch)
        for op in OPS:
            for kw in ({}, {"keepdims": True}) if op == "logsumexp" else ({},):
                r = getattr(cd, op)(x, axis=axis, **kw)
                want = np.asarray(getattr(csoftmax, op)(a, axis=axis, **kw))
                assert isinstance(r, da.Array)
                assert r.dtype == want.dtype and r._meta.dtype == want.dtype
                assert r.shape == want.shape
                # one task per block on top of the input: no reduction stage
                assert "csoftmax-stats" not in str(r.dask.layers.keys())
                assert_bitwise(r.compute(scheduler="threads"), want, f"{op} {axis} {ch}")


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16, np.int32],
                         ids=["f64", "f32", "f16", "i32"])
def test_spanning_chunks_random(dt):
    rng = np.random.default_rng(12 + np.dtype(dt).itemsize)
    for it in range(14):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 90)))
        scale = (1.0, 30.0, 700.0)[it % 3] if np.dtype(dt).kind == "f" else 100.0
        if dt == np.float16:
            scale = min(scale, 8.0)
        a = (rng.standard_normal(shape) * scale).astype(dt)
        axis = [-1, 1, (0, 2), None, (1, 2)][it % 5]
        red = range(3) if axis is None else [a_ % 3 for a_ in np.atleast_1d(axis)]
        chunks = tuple(_chunks(rng, n, i in red) for i, n in enumerate(shape))
        x = da.from_array(a, chunks=chunks)
        for op in OPS:
            kw = {"keepdims": bool(it % 2)} if op == "logsumexp" else {}
            r = getattr(cd, op)(x, axis=axis, split_every=int(rng.integers(2, 5)), **kw)
            want = np.asarray(getattr(csoftmax, op)(a, axis=axis, **kw))
            assert r.dtype == want.dtype and r._meta.dtype == want.dtype and r.shape == want.shape
            _close(r.compute(scheduler="threads"), want, op, dt, f"{op} {axis} {chunks}")


def test_temperature_and_reread():
    rng = np.random.default_rng(13)
    a = rng.standard_normal((5, 60)) * 4
    for ch in ((5, 60), (2, 7)):
        x = da.from_array(a, chunks=ch)
        for op in OPS:
            want = np.asarray(getattr(csoftmax, op)(a, temperature=0.375))
            got = getattr(cd, op)(x, temperature=0.375).compute(scheduler="threads")
            if ch == (5, 60):
                assert_bitwise(got, want)
            else:
                _close(got, want, op, np.float64)
            if op != "logsumexp":
                again = getattr(cd, op)(x, reread=True).compute(scheduler="threads")
                _close(again, np.asarray(getattr(csoftmax, op)(a)), op, np.float64)


def test_special_values_across_chunks():
    inf, nan = np.inf, np.nan
    rows = [[1, inf, 2, 3, 0], [inf, inf, 1, 2, 0], [-inf] * 5, [nan, 1, 2, 3, inf],
            [1, 2, 3, 4, inf], [-inf, 1, -inf, 2, -inf], [1e308, -1e308, 1e308, 0, 0],
            [-inf, -inf, -inf, -inf, 7], [inf, nan, -inf, 1, 1], [-745.5, -800, -1e3, 0, -inf]]
    a = np.array(rows, dtype=np.float64)
    for dt in (np.float64, np.float32):
        with np.errstate(over="ignore"):
            b = a.astype(dt)            # +-1e308 -> +-inf in float32
        for ch in ((3, 1), (10, 2), (1, (1, 3, 1))):
            x = da.from_array(b, chunks=ch)
            for op in OPS:
                want = np.asarray(getattr(csoftmax, op)(b))
                _close(getattr(cd, op)(x).compute(scheduler="threads"), want, op, dt, f"{op} {ch}")


def test_empty():
    x = da.zeros((3, 0), chunks=(1, 1))
    assert cd.softmax(x).compute().shape == (3, 0)
    assert np.array_equal(cd.logsumexp(x).compute(), np.full(3, -np.inf))
    y = da.zeros((0, 4), chunks=(1, 2))
    assert cd.log_softmax(y).compute().shape == (0, 4)
    assert cd.logsumexp(y, axis=0).compute().shape == (4,)
    assert np.array_equal(cd.logsumexp(y, axis=0).compute(), np.full(4, -np.inf))


def test_graph_grows_linearly():
    def size(nchunks, op):
        x = da.ones((4, 64 * nchunks), chunks=(4, 64))
        return len(getattr(cd, op)(x).__dask_graph__())

    for op in OPS:
        s1, s4, s16 = size(8, op), size(32, op), size(128, op)
        assert s4 > 2 * s1 and s16 > 2 * s4
        # constant cost per chunk: the increments per added chunk agree
        per1, per2 = (s4 - s1) / 24, (s16 - s4) / 96
        assert abs(per1 - per2) <= 0.1 * per2, (op, s1, s4, s16)


def test_bad_input():
    with pytest.raises(TypeError, match=r"csoftmax\.dask\.softmax.*csoftmax\.softmax"):
        cd.softmax(np.ones(3))
    with pytest.raises(TypeError, match=r"csoftmax\.dask\.logsumexp.*list"):
        cd.logsumexp([1.0, 2.0])
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(np.exceptions.AxisError, match="softmax"):
        cd.softmax(x, axis=2)
    with pytest.raises(ValueError, match="duplicate"):
        cd.log_softmax(x, axis=(0, -2))
    with pytest.raises(TypeError, match="dtype"):
        cd.softmax(da.ones(3, dtype=complex, chunks=1))
    with pytest.raises(ValueError, match="temperature"):
        cd.logsumexp(x, temperature=-1.0)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       worker_dashboard_address=None,
                                       # the scheduler's HTTP routes: loopback, a free port
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    cl = distributed.Client(cluster)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()


def test_distributed_local_cluster(client):
    rng = np.random.default_rng(14)
    a = (rng.standard_normal((9, 300)) * 10).astype(np.float32)
    for ch in ((9, 300), (4, 37), (1, (1, 100, 1, 198))):
        x = da.from_array(a, chunks=ch)
        for op in OPS:
            want = np.asarray(getattr(csoftmax, op)(a, axis=-1))
            got = client.compute(getattr(cd, op)(x)).result()
            if ch == (9, 300):
                assert_bitwise(got, want)
            else:
                _close(got, want, op, np.float32, f"{op} {ch}")
    # the work ran in the worker processes
    assert len(client.scheduler_info()["workers"]) == 2


def test_where_mask():
    rng = np.random.default_rng(15)
    a = rng.standard_normal((7, 50)) * 5
    a[0, 3], a[1, 10], a[2, 0] = np.nan, np.inf, -np.inf
    a[3, :] = -np.inf
    w = rng.random((7, 50)) < 0.6
    w[4] = False                         # a slice with no included entry
    w[0, 3] = False                      # the NaN excluded
    w[5, :] = w[5, :] & (np.arange(50) > 40)
    for ch in ((7, 50), (3, 9), (2, (1, 40, 1, 8))):
        x = da.from_array(a, chunks=ch)
        for wm in (w, da.from_array(w, chunks=(4, 13)), w[0]):
            for op in OPS:
                want = np.asarray(getattr(csoftmax, op)(a, where=wm if isinstance(wm, np.ndarray)
                                                        else w))
                got = getattr(cd, op)(x, where=wm).compute(scheduler="threads")
                if ch == (7, 50):
                    assert_bitwise(got, want)
                else:
                    _close(got, want, op, np.float64, f"{op} {ch}")
    x = da.from_array(a, chunks=5)
    with pytest.raises(TypeError, match=r"csoftmax\.dask\.softmax: where must be a boolean"):
        cd.softmax(x, where=np.ones((7, 50)))
    with pytest.raises(ValueError, match="does not broadcast"):
        cd.logsumexp(x, where=np.ones((7, 2), bool))


def test_readme_example():
    """The README's "Larger than memory" example runs as written (scaled
    down: the 4 GiB array made 2048 x 1024, the blocks 512 x 256)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    sec = text[text.index("## Larger than memory"):]
    block = re.search(r"```python\n(.*?)```", sec, re.S).group(1)
    small = (block.replace("2**16, 2**14", "2048, 1024").replace("(4096, 4096)", "(512, 256)")
             .replace("y[:4096]", "y[:512]").replace("x[:4096]", "x[:512]"))
    assert small != block
    with __import__("dask").config.set(scheduler="threads"):
        exec(compile(small, "README.md", "exec"), {})  # noqa: S102 - our own README


def test_docstring_examples_run():
    """csoftmax.dask's Examples sections are true (run as doctests)."""
    import doctest

    res = doctest.testmod(cd, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 9 and res.failed == 0, res


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                    reason="longdouble is float64 here")
def test_longdouble_spanning():
    """longdouble is carried in longdouble through both plans (the NumPy
    path's longdouble twin): within 4 longdouble eps relative without a
    temperature; with one, the NumPy twin rounds x / T once more (about
    |x / T| eps), so the two agree to 1 float64 ULP."""
    rng = np.random.default_rng(16)
    a = (rng.standard_normal((3, 50)) * 30).astype(np.longdouble)
    x = da.from_array(a, chunks=(2, 7))
    eps = np.finfo(np.longdouble).eps
    for op in OPS:
        got = getattr(cd, op)(x).compute(scheduler="threads")
        want = np.asarray(getattr(csoftmax, op)(a))
        assert got.dtype == want.dtype == np.longdouble
        assert np.all(np.abs(got - want) <= 4 * eps * np.abs(want)), op
        got = getattr(cd, op)(x, temperature=0.7).compute(scheduler="threads")
        want = np.asarray(getattr(csoftmax, op)(a, temperature=0.7))
        assert ulp_diff(got.astype(np.float64), want.astype(np.float64), np.float64).max() <= 1


# ---------------------------------------------------------------- gradients
GRADS = ("softmax_backward", "log_softmax_backward")


def _grad_inputs(rng, shape, axis, dt):
    a = rng.standard_normal(shape) * 3
    y = csoftmax.softmax(a, axis=axis).astype(dt)
    logp = csoftmax.log_softmax(a, axis=axis).astype(dt)
    dy = rng.standard_normal(shape).astype(dt)
    return {"softmax_backward": y, "log_softmax_backward": logp}, dy


def _grad_close(name, got, want, inp, dy, axis, msg=""):
    """softmax_backward: float64 within 4 ULP of the NumPy path, float32 and
    float16 within 1. log_softmax_backward (the exp differs: NumPy's against
    the kernel's): within 2 ULP + 2**-51 exp(logp)|sum(dy)| (float64), 1 ULP
    + 2**-32 exp(logp)|sum(dy)| (float32, float16), inside the NumPy path's
    own error bound."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, msg
    assert np.array_equal(np.isnan(got), np.isnan(want)), msg
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), msg
    fin = np.isfinite(want)
    dt = want.dtype
    k = 4 if (dt == np.float64 and name == "softmax_backward") else (
        2 if dt == np.float64 else 1)
    if name == "softmax_backward":
        u = ulp_diff(got[fin], want[fin], dt)
        assert u.size == 0 or int(u.max()) <= k, (int(u.max()), msg)
        return
    ax = tuple(range(dy.ndim)) if axis is None else axis
    with np.errstate(all="ignore"):
        s = np.abs(np.sum(dy.astype(np.float64), axis=ax, keepdims=True))
        extra = (2.0 ** -51 if dt == np.float64 else 2.0 ** -32) * np.exp(
            inp.astype(np.float64)) * s
        tol = k * np.spacing(np.abs(want).astype(dt)).astype(np.float64) + extra
        err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert np.all(err[fin] <= tol[fin]), (float(np.max((err / tol)[fin])), msg)


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16], ids=["f64", "f32", "f16"])
def test_grads_random_chunkings(dt):
    rng = np.random.default_rng(21 + np.dtype(dt).itemsize)
    for it in range(10):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 7)), int(rng.integers(1, 90)))
        axis = [-1, 1, (0, 2), None, (1, 2)][it % 5]
        red = range(3) if axis is None else [a_ % 3 for a_ in np.atleast_1d(axis)]
        spans = it % 4 != 3
        chunks = tuple(_chunks(rng, n, spans and i in red) for i, n in enumerate(shape))
        inps, dy = _grad_inputs(rng, shape, axis, dt)
        for name in GRADS:
            x = da.from_array(inps[name], chunks=chunks)
            # dy: a Dask array of other chunks (rechunked to x's), or NumPy
            d = da.from_array(dy, chunks=1) if it % 2 else dy
            r = getattr(cd, name)(x, d, axis=axis, split_every=int(rng.integers(2, 5)))
            want = getattr(csoftmax, name)(inps[name], dy, axis=axis)
            assert isinstance(r, da.Array) and r.chunks == x.chunks
            assert r.dtype == want.dtype and r._meta.dtype == want.dtype
            got = r.compute(scheduler="threads")
            if not spans:
                assert "parts" not in str(r.dask.layers.keys())
                assert_bitwise(got, want, f"{name} {axis} {chunks}")
            else:
                _grad_close(name, got, want, inps[name], dy, axis, f"{name} {axis} {chunks}")


def test_grads_special_values_and_dtypes():
    inf, nan = np.inf, np.nan
    y = np.array([[0.1, 0.2, 0.3, 0.4], [0.1, nan, 0.5, 0.4], [0.5, 0.5, 0, 0],
                  [0.25] * 4, [0, 1, 0, 0], [1e-300, 0.5, 0.5, 0]])
    dy = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [inf, 1, 2, 3], [inf, -inf, 1, 1],
                   [1, 1, inf, 1.0], [1e300, 1e300, -1e300, 2]])
    with np.errstate(divide="ignore"):
        inps = {"softmax_backward": y, "log_softmax_backward": np.log(y)}
    for name in GRADS:
        for ch in ((6, 4), (2, 1), (1, (1, 3))):
            for dt in (np.float64, np.float32, np.float16):
                with np.errstate(over="ignore"):
                    a, b = inps[name].astype(dt), dy.astype(dt)
                want = getattr(csoftmax, name)(a, b)
                got = getattr(cd, name)(da.from_array(a, chunks=ch), b).compute(
                    scheduler="threads")
                _grad_close(name, got, want, a, b, -1, f"{name} {ch} {np.dtype(dt).name}")
    # integers -> float64; mixed float32 / float64 -> float64
    i = np.arange(12).reshape(3, 4)
    for name in GRADS:
        r = getattr(cd, name)(da.from_array(i, chunks=(2, 3)), i.astype(np.float32))
        assert r.dtype == np.float64
        _grad_close(name, r.compute(), getattr(csoftmax, name)(i, i.astype(np.float32)),
                    i, i.astype(np.float64), -1)


def test_grads_bad_input():
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(TypeError, match=r"csoftmax\.dask\.softmax_backward: y must be a "
                                        r"dask.*csoftmax\.softmax_backward"):
        cd.softmax_backward(np.ones((3, 4)), x)
    with pytest.raises(ValueError, match=r"log_softmax_backward: logp has shape \(3, 4\) "
                                         r"and dy \(4, 3\)"):
        cd.log_softmax_backward(x, da.ones((4, 3), chunks=2))
    with pytest.raises(np.exceptions.AxisError, match="softmax_backward"):
        cd.softmax_backward(x, x, axis=2)
    with pytest.raises(TypeError, match="dtype"):
        cd.softmax_backward(x, da.ones((3, 4), dtype=complex, chunks=2))
    with pytest.raises(ValueError, match="num_threads"):
        cd.log_softmax_backward(x, x, num_threads=-3)


def test_two_results_in_one_compute():
    """Each call's graph has its own keys: results computed together are
    each their own (map_blocks' name= would fix the key and collide)."""
    import dask

    a = da.from_array(np.zeros((2, 4)), chunks=(1, 4))
    b = da.from_array(np.arange(8.0).reshape(2, 4), chunks=(1, 4))
    for op in OPS:
        for ch in ((1, 4), (1, 3)):
            ra, rb = dask.compute(getattr(cd, op)(a.rechunk(ch)), getattr(cd, op)(b.rechunk(ch)),
                                  scheduler="threads")
            _close(ra, np.asarray(getattr(csoftmax, op)(np.zeros((2, 4)))), op, np.float64)
            _close(rb, np.asarray(getattr(csoftmax, op)(np.arange(8.0).reshape(2, 4))), op,
                   np.float64)


# ---------------------------------------------------------------- cross_entropy
def _ce_inputs(rng, shape, ax, dt, probs):
    a = (rng.standard_normal(shape) * 3).astype(dt)
    if probs:
        return a, csoftmax.softmax(rng.standard_normal(shape), axis=ax).astype(dt)
    rs = list(shape)
    C = rs.pop(ax)
    t = rng.integers(0, C, rs)
    t.reshape(-1)[:: 5] = -100                         # some ignored slices
    return a, t


def _ce_close(a, t, ax, eps, probs, red, loss, grad, want, wgrad, bitwise, msg):
    """Class axis within one chunk: per-slice losses and gradients bitwise
    (a "mean" gradient of float32/float16 within the bounds below, being
    divided after rounding). Loss: within 4 ULP
    (float64) / 1 ULP (float32, float16) of the NumPy path, for probability
    targets of the bound's scale sum|q_c|(lse - x_c) (as the NumPy path's
    own bound). Gradient: within 4 eps (float64) / 2 eps (float32, float16)
    of max(softmax, |q|) / count, the NumPy path's bound form, where
    softmax * sum(q) - q cancels (plus as many subnormal steps, for
    gradients below the normal range)."""
    dt = np.asarray(want).dtype
    loss, grad, want = np.asarray(loss), np.asarray(grad), np.asarray(want)
    assert loss.shape == want.shape and loss.dtype == dt, msg
    assert grad.shape == wgrad.shape and grad.dtype == wgrad.dtype, msg
    assert np.array_equal(np.isnan(loss), np.isnan(want)), msg
    assert np.array_equal(np.isnan(grad), np.isnan(wgrad)), msg
    if bitwise:                 # class axis within one chunk: the kernel per block
        if red == "none":
            assert_bitwise(loss, want, msg)
        if not (red == "mean" and dt != np.float64):
            assert_bitwise(grad, wgrad, msg)
    k = 4 if dt == np.float64 else 1
    fin = np.isfinite(want)
    if probs and red == "none":
        x = a.astype(np.float64)
        with np.errstate(all="ignore"):
            lse = np.asarray(csoftmax.logsumexp(x, axis=ax, keepdims=True))
            q = (1 - eps) * t.astype(np.float64) + eps / a.shape[ax]
            sc = np.sum(np.abs(q) * (lse - x), axis=ax)
        err = np.abs(loss.astype(np.float64) - want.astype(np.float64))
        assert np.all(err[fin] <= 2 * k * np.finfo(dt).eps * sc[fin]), msg
    else:
        u = ulp_diff(loss[fin], want[fin], dt)
        assert u.size == 0 or int(u.max()) <= k, (int(u.max()), msg)
    p = np.asarray(csoftmax.softmax(a.astype(np.float64), axis=ax))
    if probs:
        q = np.abs((1 - eps) * t.astype(np.float64) + eps / a.shape[ax])
        count = t.size // max(a.shape[ax], 1)
    else:
        q = np.full(a.shape, eps / a.shape[ax])
        tt = np.expand_dims(np.where(t < 0, 0, t), ax)
        np.put_along_axis(q, tt, np.take_along_axis(q, tt, ax) + (1 - eps), ax)
        count = int(np.sum(t != -100))
    scale = max(count, 1) if red == "mean" else 1
    tol = (4 if dt == np.float64 else 2) * (np.finfo(dt).eps * np.maximum(p, q) / scale
                                            + np.finfo(dt).smallest_subnormal)
    gfin = np.isfinite(wgrad)
    err = np.abs(grad.astype(np.float64) - wgrad.astype(np.float64))
    assert np.all(err[gfin] <= tol[gfin]), (float(np.max((err / tol)[gfin])), msg)


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16], ids=["f64", "f32", "f16"])
@pytest.mark.parametrize("probs", [False, True], ids=["classes", "probs"])
def test_cross_entropy_random_chunkings(dt, probs):
    rng = np.random.default_rng(31 + np.dtype(dt).itemsize + probs)
    for it in range(8):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 60)))
        ax = [-1, 1, 0, 2][it % 4]
        spans = it % 4 != 3
        chunks = tuple(_chunks(rng, n, spans if i == ax % 3 else bool(it % 2))
                       for i, n in enumerate(shape))
        a, t = _ce_inputs(rng, shape, ax, dt, probs)
        eps = [0.0, 0.1, 1.0, 0.3][(it // 2) % 4]
        red = ["none", "mean", "sum"][it % 3]
        x = da.from_array(a, chunks=chunks)
        tgt = t if it % 2 else da.from_array(t, chunks=1)
        loss, grad = cd.cross_entropy(x, tgt, axis=ax, reduction=red, label_smoothing=eps,
                                      return_grad=True, split_every=int(rng.integers(2, 5)))
        want, wgrad = csoftmax.cross_entropy(a, t, axis=ax, reduction=red, label_smoothing=eps,
                                             return_grad=True)
        assert loss.dtype == np.asarray(want).dtype and grad.chunks == x.chunks
        assert loss.shape == np.shape(want)
        only = cd.cross_entropy(x, tgt, axis=ax, reduction=red, label_smoothing=eps)
        got = only.compute(scheduler="threads")
        bitwise = not _class_spans(x, ax)
        _ce_close(a, t, ax, eps, probs, red, got, grad.compute(scheduler="threads"), want,
                  wgrad, bitwise, f"{ax} {chunks} {eps} {red}")
        if bitwise and red == "none":     # one map_blocks of the kernel: no reduction
            assert "parts" not in str(only.dask.layers.keys())


def _class_spans(x, ax):
    return len(x.chunks[ax % x.ndim]) > 1


def test_cross_entropy_special_values():
    inf, nan = np.inf, np.nan
    rows = [[1, inf, 2, 3, 0], [inf, inf, 1, 2, 0], [-inf] * 5, [nan, 1, 2, 3, inf],
            [1, 2, 3, 4, inf], [-inf, 1, -inf, 2, -inf], [1e308, -1e308, 1e308, 0, 0],
            [-inf, -inf, -inf, -inf, 7], [inf, nan, -inf, 1, 1], [-745.5, -800, -1e3, 0, -inf]]
    a = np.array(rows)
    q = np.asarray(csoftmax.softmax(np.random.default_rng(3).standard_normal(a.shape)))
    q[0, 1] = 0
    for t in (np.array([1, 0, 2, 1, 4, 0, 1, 4, 3, 4]), np.array([0, 2, 1, 1, 1, 1, 2, -100, 0, 0]),
              q):
        for eps in (0.0, 0.2, 1.0):
            for red in ("none", "sum"):
                for ch in ((3, 1), (10, 2), (1, (1, 3, 1)), (10, 5)):
                    want, wg = csoftmax.cross_entropy(a, t, reduction=red, label_smoothing=eps,
                                                      return_grad=True)
                    loss, g = cd.cross_entropy(da.from_array(a, chunks=ch), t, reduction=red,
                                               label_smoothing=eps, return_grad=True)
                    loss, g = (r.compute(scheduler="threads") for r in (loss, g))
                    msg = f"{t} {eps} {red} {ch}"
                    assert np.allclose(loss, want, rtol=1e-14, atol=0, equal_nan=True), msg
                    assert np.array_equal(np.isinf(loss), np.isinf(want)), msg
                    assert np.allclose(g, wg, rtol=1e-13, atol=1e-300, equal_nan=True), msg


def test_cross_entropy_edge_cases_and_errors():
    # integer logits -> float64; 1-D; one class; all ignored (mean NaN, zero gradient); empty
    i = np.arange(12).reshape(3, 4)
    got = cd.cross_entropy(da.from_array(i, chunks=(2, 3)), np.array([0, 1, 2])).compute()
    assert got.dtype == np.float64
    assert ulp_diff(got, csoftmax.cross_entropy(i, np.array([0, 1, 2])), np.float64) <= 4
    v = np.array([1.0, 2.0, 3.0])
    for ch in (1, 3):
        loss, g = cd.cross_entropy(da.from_array(v, chunks=ch), np.array(2), return_grad=True)
        wl, wg = csoftmax.cross_entropy(v, np.array(2), return_grad=True)
        assert loss.shape == () and ulp_diff(loss.compute(), wl, np.float64) <= 4
        assert np.max(ulp_diff(g.compute(), wg, np.float64)) <= 4
    _, g = cd.cross_entropy(da.ones((3, 1), chunks=1), np.zeros(3, int), return_grad=True)
    assert np.array_equal(g.compute(), np.zeros((3, 1)))
    for ch in (2, (2, 5)):
        loss, g = cd.cross_entropy(da.ones((3, 5), chunks=ch), np.full(3, -100), return_grad=True)
        assert np.isnan(loss.compute()) and not g.compute().any()
    assert np.isnan(cd.cross_entropy(da.zeros((0, 4), chunks=2), np.zeros(0, int)).compute())
    # a class index out of range: the NumPy path's error, when computed
    x = da.ones((4, 6), chunks=(2, 3))
    for ch in ((2, 3), (2, 6), (1, 1)):
        with pytest.raises(ValueError, match=r"cross_entropy: target 7 at index \(2,\) is out "
                                             r"of range for 6 classes"):
            cd.cross_entropy(x.rechunk(ch), np.array([0, 1, 7, 2])).compute(scheduler="threads")
    # checked when the graph is built
    with pytest.raises(TypeError, match=r"csoftmax\.dask\.cross_entropy: logits must be a "
                                        r"dask.*csoftmax\.cross_entropy"):
        cd.cross_entropy(np.ones((4, 6)), np.zeros(4, int))
    with pytest.raises(ValueError, match="reduction must be"):
        cd.cross_entropy(x, np.zeros(4, int), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        cd.cross_entropy(x, np.zeros(4, int), label_smoothing=2.0)
    with pytest.raises(TypeError, match="axis must be one integer"):
        cd.cross_entropy(x, np.zeros(4, int), axis=(0, 1))
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        cd.cross_entropy(x, np.zeros(4, int), ignore_index=1.5)
    with pytest.raises(ValueError, match=r"class-index target has shape \(5,\), expected \(4,\)"):
        cd.cross_entropy(x, np.zeros(5, int))
    with pytest.raises(ValueError, match="probability target has shape"):
        cd.cross_entropy(x, da.zeros((4, 5), chunks=2))
    with pytest.raises(TypeError, match="target must be class indices"):
        cd.cross_entropy(x, np.zeros(4, complex))


# ---------------------------------------------------------------- causal=
def test_causal_mask_per_block():
    """causal=True (query i sees keys j <= i, nq != nk too), alone and with
    where=: bitwise the NumPy path within one chunk, the spanning bounds
    otherwise; the mask is made per block from the block offsets (one task
    per block of the last two axes, never one array of the full mask)."""
    rng = np.random.default_rng(41)
    for dt in (np.float64, np.float32):
        a = (rng.standard_normal((2, 3, 9, 13)) * 4).astype(dt)
        a[0, 0, 4, 2] = np.nan                  # NaN seen by queries >= 4 only
        a[1, 2, 6, 0] = np.inf
        w = rng.random(a.shape) < 0.7
        for ch in ((1, 2, 4, 13), (2, 3, (1, 3, 5), (1, 5, 7)), (2, 3, 1, 1)):
            x = da.from_array(a, chunks=ch)
            for op in OPS:
                for wm in (None, w):
                    want = np.asarray(getattr(csoftmax, op)(a, causal=True, where=wm))
                    r = getattr(cd, op)(x, causal=True, where=wm)
                    got = r.compute(scheduler="threads")
                    msg = f"{op} {ch} {wm is None} {np.dtype(dt).name}"
                    if ch[-1] == 13:
                        assert_bitwise(got, want, msg)
                    elif op != "logsumexp":
                        _close(got, want, op, dt, msg)
                    else:
                        # M + log1p(S - 1) can cancel (a few ULP of |M|, see csoftmax/dask.py)
                        m = np.max(np.where(np.tril(np.ones((9, 13), bool)) & (
                            True if wm is None else wm), a, -np.inf), axis=-1).astype(float)
                        fin = np.isfinite(want)
                        tol = 4 * np.finfo(dt).eps * (np.abs(want) + np.abs(m))
                        assert np.array_equal(np.isnan(got), np.isnan(want)), msg
                        assert np.array_equal(got[~fin], want[~fin], equal_nan=True), msg
                        with np.errstate(invalid="ignore"):
                            err = np.abs(got - want)
                        assert np.all(err[fin] <= tol[fin]), msg
            layers = r.dask.layers
            cm = [k for k in layers if k.startswith("csoftmax-causal")]
            assert len(cm) == 1 and len(layers[cm[0]]) == len(x.chunks[-2]) * len(x.chunks[-1])
    x = da.ones((3, 3), chunks=2)
    with pytest.raises(ValueError, match=r"softmax: causal=True reduces over the keys"):
        cd.softmax(x, causal=True, axis=-2)
    with pytest.raises(TypeError, match="causal must be True or False"):
        cd.log_softmax(x, causal=1)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        cd.logsumexp(da.ones(3, chunks=2), causal=True)


def test_distributed_training_functions(client):
    """The gradients, cross_entropy and causal= on the LocalCluster's worker
    processes, both plans."""
    rng = np.random.default_rng(42)
    a = (rng.standard_normal((6, 40)) * 3).astype(np.float32)
    t = rng.integers(0, 40, 6)
    dy = rng.standard_normal((6, 40)).astype(np.float32)
    y = np.asarray(csoftmax.softmax(a))
    for ch in ((3, 40), (2, (1, 20, 19))):
        x = da.from_array(a, chunks=ch)
        got = client.compute(cd.softmax_backward(da.from_array(y, chunks=ch), dy)).result()
        _grad_close("softmax_backward", got, csoftmax.softmax_backward(y, dy), y, dy, -1)
        loss, g = client.gather(client.compute(cd.cross_entropy(x, t, label_smoothing=0.1,
                                                                return_grad=True)))
        want, wg = csoftmax.cross_entropy(a, t, label_smoothing=0.1, return_grad=True)
        _ce_close(a, t, -1, 0.1, False, "mean", loss, g, want, wg, False, str(ch))
        got = client.compute(cd.softmax(da.from_array(a[:, :6], chunks=(ch[0], 2)),
                                        causal=True)).result()
        _close(got, np.asarray(csoftmax.softmax(a[:, :6], causal=True)), "softmax", np.float32)


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                    reason="longdouble is float64 here")
def test_longdouble_training_functions():
    """longdouble through the gradients and cross_entropy across chunks:
    longdouble results, within 2**-50 (relative to the slice's scale) of
    the NumPy path's longdouble twin (whose sums are plain and whose
    label-smoothing q is formed in double)."""
    rng = np.random.default_rng(43)
    a = (rng.standard_normal((4, 30)) * 3).astype(np.longdouble)
    dy = rng.standard_normal((4, 30)).astype(np.longdouble)
    t = rng.integers(0, 30, 4)
    x = da.from_array(a, chunks=(2, 7))
    for name, inp in (("softmax_backward", np.asarray(csoftmax.softmax(a))),
                      ("log_softmax_backward", np.asarray(csoftmax.log_softmax(a)))):
        got = getattr(cd, name)(da.from_array(inp, chunks=(2, 7)), dy).compute(scheduler="threads")
        want = getattr(csoftmax, name)(inp, dy)
        assert got.dtype == np.longdouble
        assert np.all(np.abs(got - want) <= 2.0 ** -50 * np.max(np.abs(want), axis=-1,
                                                                keepdims=True)), name
    loss, g = cd.cross_entropy(x, t, reduction="none", label_smoothing=0.1, return_grad=True)
    wl, wg = csoftmax.cross_entropy(a, t, reduction="none", label_smoothing=0.1,
                                    return_grad=True)
    loss, g = loss.compute(scheduler="threads"), g.compute(scheduler="threads")
    assert loss.dtype == g.dtype == np.longdouble
    assert np.all(np.abs(loss - wl) <= 2.0 ** -50 * np.abs(wl))
    assert np.all(np.abs(g - wg) <= 2.0 ** -50)


def test_readme_training_example():
    """The README's training-functions example runs as written (scaled down)."""
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    sec = text[text.index("**Training functions.**"):]
    block = re.search(r"```python\n(.*?)```", sec, re.S).group(1)
    small = (block.replace("(1000, 5000)", "(40, 300)").replace("(250, 1000)", "(10, 70)")
             .replace("5000", "300").replace("1000)", "40)"))
    assert small != block
    with __import__("dask").config.set(scheduler="threads"):
        exec(compile(small, "README.md", "exec"), {})  # noqa: S102 - our own README


def test_double_double_sum_is_accurate():
    """The cascade behind the spanning plans' sums: hi is the correctly
    rounded sum (math.fsum) and hi + lo is within 2**-100 of the exact sum,
    on terms of wide magnitudes with cancellation; inf/NaN rows give the
    IEEE sum with lo = 0."""
    import math
    from fractions import Fraction

    rng = np.random.default_rng(44)
    x = rng.standard_normal((6, 1001)) * np.exp(rng.standard_normal((6, 1001)) * 10)
    x[0, :500] *= -1
    x[1, 1:] = -x[1, :-1]                       # heavy cancellation
    for red, ax in ((x, (1,)), (x.T.copy(), (0,))):
        hi, lo = cd._dd_sum(red, ax)
        for r in range(6):
            row = x[r]
            ex = sum(Fraction(float(v)) for v in row)
            h, lw = float(hi.reshape(-1)[r]), float(lo.reshape(-1)[r])
            assert h == math.fsum(row)
            assert abs(Fraction(h) + Fraction(lw) - ex) <= Fraction(2) ** -100 * max(
                abs(ex), Fraction(2) ** -1000)
    y = np.array([[1.0, np.inf, 2.0], [np.inf, -np.inf, 1.0], [np.nan, 1.0, 1.0]])
    hi, lo = cd._dd_sum(y, (1,))
    assert np.array_equal(hi[:, 0], [np.inf, np.nan, np.nan], equal_nan=True)
    assert not lo.any()


def test_training_graphs_grow_linearly():
    def size(nchunks, op):
        x = da.ones((4, 64 * nchunks), chunks=(4, 64))
        if op == "cross_entropy":
            return len(cd.cross_entropy(x, np.zeros(4, int), label_smoothing=0.1,
                                        return_grad=True)[1].__dask_graph__())
        return len(getattr(cd, op)(x, x).__dask_graph__())

    for op in GRADS + ("cross_entropy",):
        s1, s4, s16 = size(8, op), size(32, op), size(128, op)
        per1, per2 = (s4 - s1) / 24, (s16 - s4) / 96
        assert abs(per1 - per2) <= 0.1 * per2, (op, s1, s4, s16)


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.float16], ids=["f64", "f32", "f16"])
def test_cross_entropy_weight(dt):
    """weight= with the class axis within one chunk: the NumPy path's
    per-slice losses and gradient (bitwise for "none"; "mean" within the
    division's rounding); across chunks NotImplementedError; bad weights
    the NumPy path's errors."""
    rng = np.random.default_rng(41)
    a = (rng.standard_normal((7, 5, 6)) * 3).astype(dt)
    for ax in (-1, 1, 0):
        C = a.shape[ax]
        rshape = tuple(np.delete(a.shape, ax % 3))
        t = rng.integers(0, C, rshape)
        t.flat[::3] = -100
        p = rng.random(a.shape)
        p = (p / p.sum(axis=ax, keepdims=True)).astype(dt)
        w = rng.random(C) * 2
        w[0] = 0
        chunks = tuple(C if i == ax % 3 else 2 for i in range(3))
        x = da.from_array(a, chunks=chunks)
        for target in (t, p):
            for red in ("none", "mean", "sum"):
                for eps in (0.0, 0.1):
                    kw = dict(axis=ax, weight=w, reduction=red, label_smoothing=eps,
                              return_grad=True)
                    want, wg = csoftmax.cross_entropy(a, target, **kw)
                    loss, g = cd.cross_entropy(x, target, **kw)
                    loss, g = (r.compute(scheduler="threads") for r in (loss, g))
                    assert loss.dtype == np.asarray(want).dtype and g.dtype == wg.dtype
                    if red == "none":
                        assert_bitwise(loss, want)
                        assert_bitwise(g, wg)
                    else:
                        rtol = 1e-14 if dt == np.float64 else 2e-3 if dt == np.float16 else 1e-6
                        np.testing.assert_allclose(loss, want, rtol=rtol)
                        np.testing.assert_allclose(g.astype(np.float64), wg.astype(np.float64),
                                                   rtol=rtol, atol=1e-300)
        with pytest.raises(NotImplementedError, match="weight= across chunks"):
            cd.cross_entropy(x.rechunk(1), t, axis=ax, weight=w)
    # a zero weight sum: NaN, NaN gradient rows, ignored rows 0 (as the NumPy path)
    x2 = np.arange(12.0).reshape(3, 4).astype(dt)
    t2 = np.array([0, 1, -100])
    w2 = np.array([0.0, 0.0, 1.0, 1.0])
    want, wg = csoftmax.cross_entropy(x2, t2, weight=w2, return_grad=True)
    loss, g = cd.cross_entropy(da.from_array(x2, chunks=(1, 4)), t2, weight=w2, return_grad=True)
    assert np.isnan(loss.compute()) and np.isnan(want)
    np.testing.assert_array_equal(g.compute(), wg)
    with pytest.raises(ValueError, match="cross_entropy: weight has shape"):
        cd.cross_entropy(da.from_array(x2, chunks=2), t2, weight=np.ones(3))
    with pytest.raises(TypeError, match="cross_entropy: weight must be real numbers"):
        cd.cross_entropy(da.from_array(x2, chunks=2), t2, weight=np.ones(4, complex))
