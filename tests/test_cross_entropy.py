"""cross_entropy (issue 8, part 2): the fused loss and its gradient.

Oracle: mpmath at 50 digits on the given logits (exact inputs): per-row
loss sum_c q_c (lse - x_c) and gradient (softmax * sum q - q) / count.
Bounds (csoftmax.h): per-row loss within 2 ULP for class targets (f32:
1 ULP), probability targets within 2 ULP of sum |q_c| (lse - x_c); gradient
within 4 ULP of max(softmax, |q|) / count. Compared with torch when it is
installed, and with the NumPy twin (csoftmax._reference.cross_entropy).
"""
from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest

import csoftmax
from csoftmax import _reference
import _oracle
from conftest import assert_bitwise, isa

ce = csoftmax.cross_entropy
DTYPES = [np.float32, np.float64]
ISAS = csoftmax.isa_info()["supported"]


def oracle(x2, target, probs, eps, ignore_index, reduction):
    """Exact per-row losses (mpf), gradient (mpf) of the reduced loss, the
    per-row bound scale sum|q|(lse - x), and the count."""
    R, C = x2.shape
    losses, grads, scales, valid = [], [], [], []
    with _oracle.workdps(50):   # mpmath's precision is process-wide: the locked form
        for r in range(R):
            x = [mpmath.mpf(float(v)) for v in x2[r]]
            if not probs and int(target[r]) == ignore_index:
                losses.append(mpmath.mpf(0))
                grads.append([mpmath.mpf(0)] * (2 * C))
                scales.append(0.0)
                valid.append(False)
                continue
            if probs:
                q = [(1 - mpmath.mpf(eps)) * mpmath.mpf(float(t)) + mpmath.mpf(eps) / C
                     for t in target[r]]
            else:
                q = [(1 - mpmath.mpf(eps)) * (1 if c == int(target[r]) else 0)
                     + mpmath.mpf(eps) / C for c in range(C)]
            m = max(x)
            lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in x))
            losses.append(mpmath.fsum(qc * (lse - v) for qc, v in zip(q, x)))
            scales.append(float(mpmath.fsum(abs(qc) * (lse - v) for qc, v in zip(q, x))))
            sq = mpmath.fsum(q)
            grads.append([mpmath.exp(v - lse) * sq - qc for qc, v in zip(q, x)]
                         + [max(mpmath.exp(v - lse), abs(qc)) for qc, v in zip(q, x)])
            valid.append(True)
    count = sum(valid) if not probs else R
    return losses, grads, scales, count


def check(x, target, probs=False, eps=0.0, ignore_index=-100, reduction="mean", dtype=None):
    dtype = np.dtype(dtype or x.dtype)
    loss, grad = ce(x, target, reduction=reduction, label_smoothing=eps,
                    ignore_index=ignore_index, return_grad=True)
    rows, _ = ce(x, target, reduction="none", label_smoothing=eps,
                 ignore_index=ignore_index, return_grad=True)
    R, C = x.shape
    losses, grads, scales, count = oracle(x, target, probs, eps, ignore_index, reduction)
    f32 = dtype == np.float32
    u = 2.0 ** -24 if f32 else 2.0 ** -53
    tiny = float(np.finfo(dtype).smallest_subnormal)
    for r in range(R):
        exact = losses[r]
        err = abs(mpmath.mpf(float(rows[r])) - exact)
        bound = (2 * u) * (scales[r] if probs else abs(float(exact))) * (1 if not f32 else 1)
        assert err <= bound + 1e-300, (r, float(rows[r]), float(exact), float(err), bound)
    div = count if reduction == "mean" else 1
    for r in range(R):
        for c in range(C):
            exact = grads[r][c] / div if div else grads[r][c]
            scale = float(grads[r][C + c]) / div if div else 0.0
            err = abs(mpmath.mpf(float(grad[r, c])) - exact)
            # (subnormal results: within one subnormal spacing)
            assert err <= 8 * u * scale + tiny, (r, c, float(grad[r, c]), float(exact))
    # the reduction: from the per-row values as returned
    with _oracle.workdps(50):
        s = mpmath.fsum(mpmath.mpf(float(v)) for v in rows)
        want = s / count if reduction == "mean" else s
        if reduction != "none" and count:
            assert abs(mpmath.mpf(float(loss)) - want) <= 2 * u * abs(want) + 1e-300
    return loss, grad


@pytest.mark.thread_unsafe   # switches the process-wide instruction set
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa_name", ISAS)
def test_class_targets_accuracy(dtype, isa_name):
    rng = np.random.default_rng(1)
    with isa(isa_name):
        for C in list(range(1, 40)) + [67, 300]:
            for scale in (1.0, 30.0):
                x = (rng.standard_normal((3, C)) * scale).astype(dtype)
                t = rng.integers(0, C, 3)
                t[1] = int(np.argmax(x[1]))            # the target at the max
                check(x, t)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_smoothing_reductions_ignore(dtype, eps, reduction):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((6, 11)) * 4).astype(dtype)
    t = rng.integers(0, 11, 6)
    t[2] = -100
    check(x, t, eps=eps, reduction=reduction)
    t[2] = 3
    t[[0, 4]] = 7
    check(x, t, eps=eps, ignore_index=7, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("C", [17, 10], ids=["rows", "short-rows-strips"])
def test_probability_targets(dtype, eps, C):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, C)) * 3).astype(dtype)
    p = rng.random((5, C))
    p = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    for reduction in ("mean", "sum", "none"):
        check(x, p, probs=True, eps=eps, reduction=reduction)


def test_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 5, 3)) * 3
    t = rng.integers(0, 5, (8, 3))
    t[1, 2] = -100
    t[5, 0] = -100
    p = rng.random((8, 5, 3))
    p /= p.sum(axis=1, keepdims=True)
    for target, tt in ((t, torch.tensor(t)), (p, torch.tensor(p))):
        for reduction in ("mean", "sum", "none"):
            for eps in (0.0, 0.3):
                xt = torch.tensor(x, requires_grad=True)
                lt = F.cross_entropy(xt, tt, reduction=reduction, label_smoothing=eps)
                lt.sum().backward()
                loss, grad = ce(x, target, axis=1, reduction=reduction, label_smoothing=eps,
                                return_grad=True)
                np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12, atol=1e-15)
                np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_vs_numpy_twin():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 9))
    t = rng.integers(0, 9, 7)
    t[3] = -100
    for reduction in ("mean", "sum", "none"):
        want_l, want_g = _reference.cross_entropy(x.astype(np.longdouble), t, -1, reduction,
                                                  0.1, -100)
        got_l, got_g = ce(x, t, reduction=reduction, label_smoothing=0.1, return_grad=True)
        np.testing.assert_allclose(got_l, want_l.astype(np.float64), rtol=1e-14)
        np.testing.assert_allclose(got_g, want_g.astype(np.float64), rtol=1e-13, atol=1e-17)
        # longdouble logits: the twin itself
        ll, lg = ce(x.astype(np.longdouble), t, reduction=reduction, label_smoothing=0.1,
                    return_grad=True)
        assert np.asarray(ll).dtype == np.longdouble and lg.dtype == np.longdouble


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_axes_and_layouts(axis):
    """Any class axis and memory layout: the bits of the contiguous call with
    the class axis last."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 6, 5))
    C = x.shape[axis]
    t = rng.integers(0, C, np.delete(x.shape, axis % 3))
    want_l, want_g = ce(np.ascontiguousarray(np.moveaxis(x, axis, -1)), t, reduction="none",
                        return_grad=True)
    for xv in (x, np.asfortranarray(x), x[::-1, :, ::-1].copy()[::-1, :, ::-1]):
        got_l, got_g = ce(xv, t, axis=axis, reduction="none", return_grad=True)
        assert_bitwise(got_l, want_l)
        assert_bitwise(np.ascontiguousarray(np.moveaxis(got_g, axis, -1)), want_g)
    # a strided, big-endian and unaligned logits view
    big = np.zeros((8, 12, 10))
    big[::2, ::2, ::2] = x
    got_l, _ = ce(big[::2, ::2, ::2], t, axis=axis, reduction="none", return_grad=True)
    assert_bitwise(got_l, want_l)
    got_l = ce(x.astype(">f8"), t, axis=axis, reduction="none")
    assert_bitwise(got_l, want_l)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_threads_bitwise(dtype):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((2000, 100)) * 3).astype(dtype)
    t = rng.integers(0, 100, 2000)
    t[::17] = -100
    p = rng.random((2000, 100)).astype(dtype)
    for target in (t, p):
        for reduction in ("mean", "sum", "none"):
            want = ce(x, target, reduction=reduction, return_grad=True, num_threads=1)
            for nt in (2, 3, 8):
                got = ce(x, target, reduction=reduction, return_grad=True, num_threads=nt)
                assert_bitwise(np.asarray(got[0]), np.asarray(want[0]))
                assert_bitwise(got[1], want[1])


def test_target_dtypes_and_results():
    x = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    want = ce(x, np.array([0, 1]))
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
               np.uint64, ">i4"):
        assert ce(x, np.array([0, 1], dtype=dt)) == want
    assert isinstance(want, np.float64)
    assert ce(x.astype(np.float32), [0, 1]).dtype == np.float32
    r16 = ce(x.astype(np.float16), [0, 1])
    assert r16.dtype == np.float16
    assert ce(np.array([[1, 2, 3]]), [2]).dtype == np.float64      # integer logits
    # 1-D logits, 0-d target
    assert ce(np.array([1.0, 2.0]), np.int64(1), reduction="none").shape == ()
    # empty batch: mean NaN, sum 0
    assert np.isnan(ce(np.zeros((0, 3)), np.zeros(0, np.int64)))
    assert ce(np.zeros((0, 3)), np.zeros(0, np.int64), reduction="sum") == 0.0
    # all ignored: mean NaN (as torch), gradient zero
    l, g = ce(x, [-100, -100], return_grad=True)
    assert np.isnan(l) and np.all(g == 0)
    # out= for "none"
    out = np.empty(2)
    assert ce(x, [0, 1], reduction="none", out=out) is out
    assert_bitwise(out, ce(x, [0, 1], reduction="none"))


def test_special_values():
    nan, inf = np.nan, np.inf
    x = np.array([[nan, 1.0, 2.0], [1.0, 2.0, 3.0], [-inf, 0.0, 1.0], [inf, 0.0, 1.0],
                  [-inf, -inf, -inf]])
    loss, grad = ce(x, [1, 1, 0, 0, 0], reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.all(np.isnan(grad[0]))          # NaN poisons its row
    assert np.isfinite(loss[1]) and np.all(np.isfinite(grad[1]))    # other rows intact
    assert loss[2] == inf                                           # -inf at the target
    assert np.all(np.isfinite(grad[2])) and grad[2, 0] == -1.0      # softmax 0 there
    assert np.isnan(loss[3])                                        # inf - inf
    np.testing.assert_array_equal(grad[3], [0.0, 0.0, 0.0])         # one-hot - one-hot
    assert np.isnan(loss[4]) and np.all(np.isnan(grad[4]))          # all -inf
    # a -inf logit elsewhere than the target: finite
    l = ce(np.array([[-inf, 0.0, 1.0]]), [2], reduction="sum")
    assert np.isfinite(l)
    # huge logits: no overflow
    l, g = ce(np.array([[1e308, -1e308, 0.0]]), [0], reduction="sum", return_grad=True)
    assert l == 0.0 and np.all(np.isfinite(g))


def test_bad_input():
    x = np.zeros((2, 3))
    t = np.array([0, 1])
    with pytest.raises(ValueError, match=r"cross_entropy: target 3 at index \(1,\) is out of range"):
        ce(x, [0, 3])
    with pytest.raises(ValueError, match="target -1 at index"):
        ce(x, [-1, 0])
    with pytest.raises(ValueError, match="cross_entropy: class-index target has shape"):
        ce(x, [0, 1, 2])
    with pytest.raises(ValueError, match="cross_entropy: probability target has shape"):
        ce(x, np.zeros((2, 4)))
    with pytest.raises(TypeError, match="cross_entropy: target must be"):
        ce(x, np.array([True, False]))
    with pytest.raises(TypeError, match="cross_entropy: target must be"):
        ce(x, np.array(["a", "b"]))
    with pytest.raises(ValueError, match="reduction"):
        ce(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        ce(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="label_smoothing"):
        ce(x, t, label_smoothing=float("nan"))
    with pytest.raises(TypeError, match="label_smoothing"):
        ce(x, t, label_smoothing="0.1")
    with pytest.raises(TypeError, match="ignore_index"):
        ce(x, t, ignore_index=1.5)
    with pytest.raises(TypeError, match="axis"):
        ce(x, t, axis=(0, 1))
    with pytest.raises(TypeError, match="logits.*dtype"):
        ce(x.astype(complex), t)
    with pytest.raises(ValueError, match="at least one axis"):
        ce(np.float64(1.0), np.int64(0))
    with pytest.raises(TypeError, match="return_grad"):
        ce(x, t, return_grad=1)
    with pytest.raises(ValueError, match="out is only for reduction='none'"):
        ce(x, t, out=np.zeros(2))
    out = np.full(2, 7.0)
    with pytest.raises(ValueError, match="out of range"):
        ce(x, [0, 5], reduction="none", out=out)
    assert np.all(out == 7.0)
    with pytest.raises(TypeError, match="out has dtype"):
        ce(x, t, reduction="none", out=np.zeros(2, np.float32))
    with pytest.raises(ValueError, match="num_threads"):
        ce(x, t, num_threads=0)


# ---- class weights (weight=, torch's) -------------------------------------

def oracle_w(x2, target, probs, eps, ignore_index, w):
    """Exact per-row losses, the per-row loss bound scale sum|q|(lse - x),
    the gradient rows of the unreduced loss (mpf) with their bound scales
    max(softmax |sum q|, |q|), and the weighted count (sum of w_t over the
    rows not ignored; probabilities: the rows)."""
    R, C = x2.shape
    losses, scales, grads, gscales, count = [], [], [], [], mpmath.mpf(0)
    with _oracle.workdps(50):   # mpmath's precision is process-wide: the locked form
        W = [mpmath.mpf(float(v)) for v in w]
        for r in range(R):
            x = [mpmath.mpf(float(v)) for v in x2[r]]
            if not probs and int(target[r]) == ignore_index:
                losses.append(mpmath.mpf(0))
                scales.append(0.0)
                grads.append([mpmath.mpf(0)] * C)
                gscales.append([0.0] * C)
                continue
            if probs:
                q = [((1 - mpmath.mpf(eps)) * mpmath.mpf(float(t)) + mpmath.mpf(eps) / C) * wc
                     for t, wc in zip(target[r], W)]
                count += 1
            else:
                t = int(target[r])
                q = [((1 - mpmath.mpf(eps)) * (1 if c == t else 0) + mpmath.mpf(eps) / C) * W[c]
                     for c in range(C)]
                count += W[t]
            m = max(x)
            lse = m + mpmath.log(mpmath.fsum(mpmath.exp(v - m) for v in x))
            losses.append(mpmath.fsum(qc * (lse - v) for qc, v in zip(q, x)))
            scales.append(float(mpmath.fsum(abs(qc) * (lse - v) for qc, v in zip(q, x))))
            sq = mpmath.fsum(q)
            grads.append([mpmath.exp(v - lse) * sq - qc for qc, v in zip(q, x)])
            gscales.append([float(max(mpmath.exp(v - lse) * abs(sq), abs(qc)))
                            for qc, v in zip(q, x)])
    return losses, scales, grads, gscales, count


WORST = {}


def check_w(x, target, w, probs=False, eps=0.0, ignore_index=-100, reduction="mean"):
    """Accuracy with weights: loss within 4u sum|q|(lse - x) (u: the unit
    roundoff of x's dtype, i.e. 2 ULP and more), gradient within 8u (4 ULP)
    of max(softmax |sum q|, |q|) / |count|; the reduction from the rows."""
    dtype = x.dtype
    loss, grad = ce(x, target, weight=w, reduction=reduction, label_smoothing=eps,
                    ignore_index=ignore_index, return_grad=True)
    rows = ce(x, target, weight=w, reduction="none", label_smoothing=eps,
              ignore_index=ignore_index)
    R, C = x.shape
    losses, scales, grads, gscales, count = oracle_w(x, target, probs, eps, ignore_index,
                                                     np.asarray(w, dtype))
    u = 2.0 ** -24 if dtype == np.float32 else 2.0 ** -53
    tiny = float(np.finfo(dtype).smallest_subnormal)
    key = (np.dtype(dtype).name, probs)
    for r in range(R):
        err = abs(mpmath.mpf(float(rows[r])) - losses[r])
        assert err <= 4 * u * scales[r] + 1e-300, (r, float(rows[r]), float(losses[r]))
        if scales[r]:
            WORST[key + ("loss",)] = max(WORST.get(key + ("loss",), 0), float(err) / (u * scales[r]))
    div = count if reduction == "mean" else 1
    for r in range(R):
        for c in range(C):
            exact = grads[r][c] / div
            scale = gscales[r][c] / abs(float(div))
            err = abs(mpmath.mpf(float(grad[r, c])) - exact)
            assert err <= 8 * u * scale + tiny, (r, c, float(grad[r, c]), float(exact))
            if u * scale > 1e6 * tiny:
                WORST[key + ("grad",)] = max(WORST.get(key + ("grad",), 0), float(err) / (u * scale))
    # the reduction: the double-double sum of the rows rounded, over the
    # weighted count rounded (for "mean"), the quotient rounded: 3u
    with _oracle.workdps(50):
        s = mpmath.fsum(mpmath.mpf(float(v)) for v in rows)
        want = s / count if reduction == "mean" else s
        if reduction != "none":
            k = 3 if reduction == "mean" else 2
            assert abs(mpmath.mpf(float(loss)) - want) <= k * u * abs(want) + 1e-300


@pytest.mark.thread_unsafe   # switches the process-wide instruction set
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa_name", ISAS)
def test_weight_accuracy(dtype, isa_name):
    rng = np.random.default_rng(11)
    with isa(isa_name):
        for C in list(range(1, 21)) + [37, 67, 300]:
            for scale in (1.0, 30.0):
                x = (rng.standard_normal((4, C)) * scale).astype(dtype)
                w = rng.random(C).astype(dtype) * 3
                t = rng.integers(0, C, 4)
                t[1] = int(np.argmax(x[1]))            # the target at the max
                t[3] = -100
                p = rng.random((4, C))
                p = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
                for eps in (0.0, 0.1, 1.0):
                    for reduction in ("mean", "sum"):
                        check_w(x, t, w, eps=eps, reduction=reduction)
                    check_w(x, p, w, probs=True, eps=eps)
                # weights spanning magnitudes, one zero
                w2 = (np.exp(rng.standard_normal(C) * 4) * (rng.random(C) > 0.2)).astype(dtype)
                check_w(x, t, w2, eps=0.1)
                check_w(x, p, w2, probs=True, eps=0.1)


def torch_ce(torch, x, target, axis, w, **kw):
    """torch's loss and gradient (of loss.sum()) for logits x with the class
    axis `axis` (moved to torch's axis 1 and back)."""
    xt = torch.tensor(np.moveaxis(x, axis, 1) if x.ndim > 1 else x, requires_grad=True)
    tt = torch.tensor(np.moveaxis(target, axis, 1) if target.dtype.kind == "f" and x.ndim > 1
                      else target)
    wt = None if w is None else torch.tensor(np.asarray(w, x.dtype))
    lt = torch.nn.functional.cross_entropy(xt, tt, weight=wt, **kw)
    lt.sum().backward()
    g = xt.grad.numpy()
    return lt.detach().numpy(), np.moveaxis(g, 1, axis) if x.ndim > 1 else g


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("shape,axis", [((9, 6), 1), ((9, 6), -1), ((6, 9), 0),
                                        ((4, 5, 3), 1), ((5, 4, 3), 0), ((4, 3, 5), 2),
                                        ((7,), 0)])
def test_weight_vs_torch(dtype, shape, axis):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    C = shape[axis]
    rshape = tuple(np.delete(shape, axis % len(shape)))
    t = rng.integers(0, C, rshape)
    if t.size > 2:
        t.flat[1] = -100
        t.flat[t.size - 1] = 2
    p = rng.random(shape)
    p = (p / p.sum(axis=axis, keepdims=True)).astype(dtype)
    w = (rng.random(C) * 2).astype(dtype)
    w[0] = 0.0
    tol = dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    for target in (t, p):
        for ii in (-100, 2):
            if target is p and ii == 2:
                continue
            for reduction in ("mean", "sum", "none"):
                for eps in (0.0, 0.1):
                    kw = dict(reduction=reduction, label_smoothing=eps, ignore_index=ii)
                    tg = np.where(t == -100, ii, t) if target is t else p
                    want_l, want_g = torch_ce(torch, x, tg, axis, w, **kw)
                    loss, grad = ce(x, tg, axis=axis, weight=w, return_grad=True, **kw)
                    assert np.asarray(loss).dtype == dtype and grad.dtype == dtype
                    np.testing.assert_allclose(loss, want_l, **tol)
                    np.testing.assert_allclose(grad, want_g, **tol)
                    # the NumPy twin (the longdouble path) agrees too
                    ll, lg = ce(x.astype(np.longdouble), tg, axis=axis, weight=w,
                                return_grad=True, **kw)
                    np.testing.assert_allclose(np.asarray(ll, np.float64), want_l, **tol)
                    np.testing.assert_allclose(lg.astype(np.float64), want_g, **tol)


def test_weight_zero_sum_and_special_vs_torch():
    """A mean whose weight sum is 0: NaN loss, NaN gradient rows (ignored
    rows: 0), as torch; negative weights are used as given (torch)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 4))
    w = np.array([0.0, 0.0, 2.0, 3.0])
    for eps in (0.0, 0.1):
        t = np.array([0, 1, -100])
        want_l, want_g = torch_ce(torch, x, t, 1, w, label_smoothing=eps)
        l, g = ce(x, t, weight=w, label_smoothing=eps, return_grad=True)
        assert np.isnan(l) and np.isnan(want_l)
        np.testing.assert_array_equal(g, want_g)            # NaN rows 0, 1; zero row 2
        for ll, gg in (ce(x.astype(np.longdouble), t, weight=w, label_smoothing=eps,
                          return_grad=True),):
            assert np.isnan(ll)
            np.testing.assert_array_equal(gg.astype(np.float64), want_g)
        # all rows ignored: NaN and a zero gradient
        l, g = ce(x, [-100] * 3, weight=w, label_smoothing=eps, return_grad=True)
        assert np.isnan(l) and np.all(g == 0)
    wn = np.array([-1.0, 0.5, 2.0, 3.0])
    for eps in (0.0, 0.1):
        for reduction in ("mean", "sum", "none"):
            t = np.array([0, 2, 3])
            want_l, want_g = torch_ce(torch, x, t, 1, wn, reduction=reduction,
                                      label_smoothing=eps)
            l, g = ce(x, t, weight=wn, reduction=reduction, label_smoothing=eps,
                      return_grad=True)
            np.testing.assert_allclose(l, want_l, rtol=1e-12)
            np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-15)
    # a -inf logit at a weight-0 target: 0 * inf = NaN, as torch
    xi = np.array([[-np.inf, 1.0, 2.0], [0.0, 1.0, 2.0]])
    for eps in (0.0, 0.1):
        want_l, _ = torch_ce(torch, xi, np.array([0, 1]), 1, [0.0, 1.0, 1.0],
                             reduction="none", label_smoothing=eps)
        l = ce(xi, [0, 1], weight=[0.0, 1.0, 1.0], reduction="none", label_smoothing=eps)
        np.testing.assert_array_equal(np.isnan(l), np.isnan(want_l))
        np.testing.assert_allclose(l[1], want_l[1], rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_weight_layouts_threads_dtypes(dtype):
    """Strided, reversed, big-endian, integer weights and any thread count:
    the bits of the contiguous call; weight=ones: the unweighted values."""
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((1500, 40)) * 3).astype(dtype)
    t = rng.integers(0, 40, 1500)
    t[::13] = -100
    p = rng.random((1500, 40)).astype(dtype)
    wi = rng.integers(0, 5, 40)
    w = wi.astype(dtype)
    for target in (t, p):
        for eps in (0.0, 0.1):
            for reduction in ("mean", "none"):
                kw = dict(weight=w, reduction=reduction, label_smoothing=eps, return_grad=True)
                want = ce(x, target, num_threads=1, **kw)
                for nt in (2, 3):
                    got = ce(x, target, num_threads=nt, **kw)
                    assert_bitwise(np.asarray(got[0]), np.asarray(want[0]))
                    assert_bitwise(got[1], want[1])
                big = np.zeros(80, dtype)
                big[::2] = w
                rev = w[::-1].copy()[::-1]
                for wv in (big[::2], rev, w.astype(w.dtype.newbyteorder(">")), wi, list(w)):
                    kw["weight"] = wv
                    got = ce(x, target, **kw)
                    assert_bitwise(np.asarray(got[0]), np.asarray(want[0]))
                    assert_bitwise(got[1], want[1])
                # the class axis first (the transposed layout)
                got = ce(np.ascontiguousarray(x.T), target.T if target is p else target,
                         axis=0, **kw)
                assert_bitwise(np.asarray(got[0]), np.asarray(want[0]))
                assert_bitwise(got[1].T, want[1])
                # weight = 1: the unweighted results (to rounding)
                kw["weight"] = np.ones(40)
                got = ce(x, target, **kw)
                kw["weight"] = None
                ref = ce(x, target, **kw)
                rtol = 1e-6 if dtype == np.float32 else 1e-14
                np.testing.assert_allclose(got[0], ref[0], rtol=rtol)
                np.testing.assert_allclose(got[1], ref[1], rtol=rtol, atol=rtol * 1e-3)
    # float16 logits: computed in float32
    l16 = ce(x[:5].astype(np.float16), t[:5], weight=w)
    assert l16.dtype == np.float16
    np.testing.assert_allclose(float(l16), float(ce(x[:5].astype(np.float16).astype(np.float32),
                                                    t[:5], weight=w)), rtol=1e-3)


def test_weight_bad_input():
    x = np.zeros((2, 3))
    t = np.array([0, 1])
    with pytest.raises(ValueError, match=r"cross_entropy: weight has shape \(2,\), expected \(3,\)"):
        ce(x, t, weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="cross_entropy: weight has shape"):
        ce(x, t, weight=np.ones((1, 3)))
    with pytest.raises(ValueError, match="cross_entropy: weight has shape"):
        ce(x, t, weight=1.0)
    with pytest.raises(ValueError, match=r"expected \(2,\)"):
        ce(x, np.array([0, 1, 1]), axis=0, weight=np.ones(3))
    with pytest.raises(TypeError, match="cross_entropy: weight must be real numbers"):
        ce(x, t, weight=np.ones(3, complex))
    with pytest.raises(TypeError, match="cross_entropy: weight must be real numbers"):
        ce(x, t, weight=np.ones(3, bool))
    with pytest.raises(TypeError, match="cross_entropy: weight must be real numbers"):
        ce(x, t, weight=["a", "b", "c"])
    with pytest.raises((TypeError, ValueError), match="cross_entropy: weight"):
        ce(x, t, weight=[[1.0], [2.0, 3.0]])
    buf = np.ones(3)
    with pytest.raises(ValueError, match="cross_entropy: out overlaps weight"):
        ce(np.zeros((3, 3)), [0, 1, 2], weight=buf, reduction="none", out=buf)


def test_weight_report_worst():
    """(prints the worst measured errors of the accuracy tests above, in
    units of u * bound scale; run with -s)"""
    for k, v in sorted(WORST.items()):
        print("weighted cross_entropy worst", k, round(v, 3))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_smoothing_near_one_at_the_max(dtype):
    """The gradient at a target that is the row maximum, label_smoothing near
    1 and nearly flat logits: p_t - q_t is of order 1/C there, and the form
    -T/S + eps (1 - 1/C) lost it (up to 64x the bound); within the gradient
    bound, 4 ULP of max(softmax, q) / count, against mpmath."""
    rng = np.random.default_rng(0)
    u = 2.0 ** -53 if dtype == np.float64 else 2.0 ** -24
    for _ in range(60):
        C = int(rng.integers(2, 400))
        eps = float(rng.choice([1.0, 0.99, 0.9]))
        x = (rng.standard_normal((1, C)) * 1e-3).astype(dtype)
        t = int(np.argmax(x[0]))
        _, g = csoftmax.cross_entropy(x, np.array([t]), label_smoothing=eps,
                                      return_grad=True, reduction="sum")
        with _oracle.workdps(50):
            X = [mpmath.mpf(float(v)) for v in x[0]]
            S = mpmath.fsum(mpmath.exp(v) for v in X)
            pt = mpmath.exp(X[t]) / S
            qt = (1 - mpmath.mpf(eps)) + mpmath.mpf(eps) / C
            err = abs(mpmath.mpf(float(g[0, t])) - (pt - qt))
            assert err <= 4 * u * max(pt, qt), (C, eps, float(err / (u * max(pt, qt))))



def _rows_one_by_one(x, t, axis, **kw):
    """Loss and gradient of each row by its own call (outer 1: the row kernel),
    in the layout of x."""
    xm = np.moveaxis(x, axis, -1)
    C = xm.shape[-1]
    t = np.asarray(t)
    xr = xm.reshape(-1, C)
    # class targets: one per row; probabilities: x's shape, a row each
    tr = np.moveaxis(t, axis, -1).reshape(-1, C) if t.shape == x.shape else t.reshape(-1)
    loss = np.empty(len(tr), x.dtype)
    grad = np.empty_like(xr)
    for i in range(len(tr)):
        li, gi = ce(xr[i:i + 1], tr[i:i + 1], return_grad=True, **kw)
        loss[i] = np.asarray(li).reshape(-1)[0]
        grad[i] = gi[0]
    return (loss.reshape(xm.shape[:-1]),
            np.moveaxis(grad.reshape(xm.shape), -1, axis))


def _strip_targets(rng, x, axis, probs):
    """Targets for test_strips_match_rows: classes (every fifth ignored, some
    at the row's max) or probabilities (random distributions, a few rows
    with negative entries or not summing to 1, as torch allows)."""
    xm = np.moveaxis(x, axis, -1)
    C = xm.shape[-1]
    if probs:
        p = rng.gamma(0.5, size=xm.shape)
        p /= p.sum(axis=-1, keepdims=True)
        flat = p.reshape(-1, C)
        flat[1::9] *= 1.5
        flat[2::11] -= 0.1
        return np.moveaxis(p, -1, axis).astype(x.dtype)
    t = rng.integers(0, C, xm.shape[:-1])
    t.flat[::5] = -100
    flat_t = t.reshape(-1)
    flat_x = xm.reshape(-1, C)
    for r in range(1, len(flat_t), 7):                        # the target at the max
        if flat_t[r] != -100:
            flat_t[r] = int(np.argmax(flat_x[r]))
    return flat_t.reshape(t.shape)


@pytest.mark.thread_unsafe   # switches the process-wide instruction set
@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("probs", [False, True], ids=["classes", "probabilities"])
def test_strips_match_rows(isa_name, probs):
    """Columns (a class axis that is not last) and many short rows (C <= 16)
    run CSM_STRIP rows side by side, one per lane: the bits of each row by
    itself (the row kernel), for class and probability targets, with
    smoothing, class weights (negative ones too), ignored rows, targets at
    the max, partial strips and vectors, strided views (of the logits and
    of the probabilities) and rows of special values in a strip (which then
    goes row by row)."""
    rng = np.random.default_rng(21)
    cases = [((2, 21, 9, 17), 1), ((3, 5, 130), 1), ((1, 100, 3), 1), ((129, 1, 2), 0),
             ((300, 10), -1), ((257, 16), -1), ((130, 1), -1), ((2, 7, 3), 0)]
    with isa(isa_name):
        for dtype in DTYPES:
            for shape, axis in cases:
                x = (rng.standard_normal(shape) * 4).astype(dtype)
                C = shape[axis]
                t = _strip_targets(rng, x, axis, probs)
                xm = np.moveaxis(x, axis, -1)                 # a view
                if x.size >= 3 * C:                           # special rows in a strip
                    row = [np.unravel_index(r, xm.shape[:-1]) for r in (0, 1, 2)]
                    xm[row[0]][0] = np.nan
                    xm[row[1]][:] = -np.inf
                    xm[row[2]][C - 1] = np.inf
                signed = rng.uniform(-0.5, 2.0, C).astype(dtype)    # torch allows any real
                positive = rng.uniform(0.25, 2.0, C).astype(dtype)
                for eps, wgt in itertools.product((0.0, 0.1, 1.0), (None, signed, positive)):
                    want_l, want_g = _rows_one_by_one(x, t, axis, reduction="none",
                                                      label_smoothing=eps, weight=wgt)
                    what = f"{shape} {axis} eps {eps} weight {wgt is not None}"
                    for red in ("none", "sum"):
                        kw = dict(axis=axis, reduction=red, label_smoothing=eps, weight=wgt,
                                  return_grad=True)
                        tv = t[..., ::-1].copy()[..., ::-1] if probs else t
                        for xv, tt in ((x, t), (x[..., ::-1].copy()[..., ::-1], tv)):
                            l, g = ce(xv, tt, **kw)
                            if red == "none":
                                assert_bitwise(l, want_l, what)
                            assert_bitwise(g, want_g, f"{what} {red}")
                    if wgt is signed:
                        continue
                    # the mean's gradient: the same terms over the count (one
                    # more rounding for float32, whose terms were rounded);
                    # probabilities: over the rows (torch's)
                    if probs:
                        count = float(t.size // C)
                    else:
                        kept = t[t != -100]
                        count = float(len(kept) if wgt is None else np.sum(wgt[kept], dtype=float))
                    _, g = ce(x, t, axis=axis, label_smoothing=eps, weight=wgt, return_grad=True)
                    np.testing.assert_allclose(g, want_g.astype(np.float64) / count,
                                               rtol=2.0 ** -22 if dtype == np.float32 else 3e-15)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("probs", [False, True], ids=["classes", "probabilities"])
def test_strips_threads_bitwise(dtype, probs):
    rng = np.random.default_rng(22)
    for shape, axis in (((4, 21, 40, 40), 1), ((20000, 12), -1)):
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        t = _strip_targets(rng, x, axis, probs)
        for reduction in ("mean", "none"):
            want = ce(x, t, axis=axis, reduction=reduction, return_grad=True, num_threads=1)
            for nt in (2, 3):
                got = ce(x, t, axis=axis, reduction=reduction, return_grad=True, num_threads=nt)
                assert_bitwise(np.asarray(got[0]), np.asarray(want[0]))
                assert_bitwise(got[1], want[1])
