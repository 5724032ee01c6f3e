#!/usr/bin/env python3
"""Leak check (issue 7): N calls (default 10**5) of each public function on
its success paths and, separately, on its error paths, with stable memory
and reference counts.

For every (function, path) group the calls cycle through the scenarios
below; after a warm-up it measures, over the N calls:
  * tracemalloc: growth of the traced Python/NumPy memory;
  * RSS (/proc/self/statm): growth of the process;
  * sys.getrefcount of every input, out, axis tuple and dtype involved.
Limits: traced growth < 64 KiB, RSS growth < 4 MiB, every refcount the
same. (A leak of one small object per call would show as > 1 MB traced and
a +N refcount; raw C malloc leaks are LSan's job: .ci/harden.sh asan.)
It starts by checking itself: a deliberately leaking function is caught.

Usage: python tests/leak_check.py [--calls N]   (exit status 1 on a leak)
Run by .ci/harden.sh (stage leaks); too slow for the plain pytest run.
"""

import argparse
import gc
import os
import sys
import time
import tracemalloc

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isdir(os.path.join(_ROOT, "csoftmax")):
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

import csoftmax  # noqa: E402

TRACED_LIMIT = 64 * 1024
RSS_LIMIT = 4 * 2**20


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def scenarios(fn, reduces):
    """(success calls, error calls, objects whose refcounts must not move)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16))
    x32 = x.astype(np.float32)
    xt = x.T                                   # general path, columns
    xs = x[:, ::-2]                            # strided
    xbe = x.astype(">f8")                      # byte-swapped: copy
    xi = (x * 10).astype(np.int64)             # cast
    x16 = x.astype(np.float16)
    xld = x.astype(np.longdouble)
    buf = np.zeros(8 * 64 + 1, np.uint8)
    xun = np.frombuffer(buf.data, np.float64, 64, 1).reshape(4, 16)   # misaligned
    xun[...] = x
    lst = x.tolist()
    axes = (0, 1)
    rshape = (4,) if reduces else (4, 16)
    out = np.empty(rshape)
    out32 = np.empty(rshape, np.float32)
    ok = [
        lambda: fn(x), lambda: fn(x32), lambda: fn(x, out=out), lambda: fn(x32, out=out32),
        lambda: fn(xt, axis=0), lambda: fn(xs), lambda: fn(x, axis=None), lambda: fn(x, axis=axes),
        lambda: fn(xbe), lambda: fn(xi), lambda: fn(x16), lambda: fn(xld), lambda: fn(xun),
        lambda: fn(lst), lambda: fn(np.float64(2.0), axis=None),
    ]
    if reduces:
        outk = np.empty((4, 1))
        ok += [lambda: fn(x, keepdims=True, out=outk), lambda: fn(x, out=x[:, 3])]
        keep = [outk]
    else:
        y = x.copy()
        big = np.zeros(70)
        ok += [lambda: fn(y, out=y), lambda: fn(big[1:65].reshape(4, 16), out=big[:64].reshape(4, 16))]
        keep = [y, big]
    bad_out = np.empty((3, 3))
    ro = np.empty(rshape)
    ro.flags.writeable = False
    zero = as_strided(np.zeros(1), rshape, (0,) * len(rshape), writeable=True)
    xc = x.astype(np.clongdouble)   # complex64/128: logsumexp takes them (issue 8)
    masked = np.ma.array(x)
    err = [
        (lambda: fn(xc), TypeError), (lambda: fn(x, axis=2), ValueError),
        (lambda: fn(x, axis=(0, 0)), ValueError), (lambda: fn(x, axis=1.5), TypeError),
        (lambda: fn(x, out=bad_out), ValueError), (lambda: fn(x, out=out32), TypeError),
        (lambda: fn(x, out=ro), ValueError), (lambda: fn(x, out=zero), ValueError),
        (lambda: fn(x, out=[0.0]), TypeError), (lambda: fn(masked), TypeError),
        (lambda: fn([[1.0], [2.0, 3.0]]), ValueError),
    ]
    tracked = [x, x32, xt, xs, xbe, xi, x16, xld, xun, buf, lst, axes, out, out32, bad_out, ro,
               zero, xc, masked, np.dtype(np.float64), np.dtype(np.float32),
               np.dtype(np.float16), np.dtype(np.longdouble), fn] + keep
    return ok, err, tracked


def scenarios_issue8():
    """The functions and options of issue 8: where= / causal= / temperature=,
    the gradients, cross_entropy, logsumexp's b= / return_sign= / complex
    input, and the streaming LogSumExp."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 16))
    x32 = x.astype(np.float32)
    w = rng.random(16) < 0.7
    sq = rng.standard_normal((2, 8, 8))
    y = csoftmax.softmax(x)
    lp = csoftmax.log_softmax(x)
    dy = rng.standard_normal((4, 16))
    dyc = dy.copy()
    t = np.array([0, 3, -100, 15])
    probs = csoftmax.softmax(rng.standard_normal((4, 16)))
    b = rng.standard_normal(16)
    xc = x.astype(np.complex128)
    acc = csoftmax.LogSumExp()
    other = csoftmax.LogSumExp()
    other.update(x)
    outg = np.empty((4, 16))
    ok = [
        lambda: csoftmax.softmax(x, where=w), lambda: csoftmax.log_softmax(x32, where=w),
        lambda: csoftmax.logsumexp(x, where=w, temperature=0.5),
        lambda: csoftmax.softmax(sq, causal=True), lambda: csoftmax.softmax(x, temperature=3.0),
        lambda: csoftmax.softmax_backward(y, dy), lambda: csoftmax.log_softmax_backward(lp, dy),
        lambda: csoftmax.softmax_backward(y, dyc, out=dyc),
        lambda: csoftmax.cross_entropy(x, t), lambda: csoftmax.cross_entropy(x, t, return_grad=True),
        lambda: csoftmax.cross_entropy(x, probs, label_smoothing=0.1, reduction="none"),
        lambda: csoftmax.logsumexp(x, b=b), lambda: csoftmax.logsumexp(x, b=b, return_sign=True),
        lambda: csoftmax.logsumexp(xc), lambda: csoftmax.logsumexp(x, b=b, where=w),
        lambda: acc.update(x), lambda: acc.merge(other), lambda: acc.value,
    ]
    err = [
        (lambda: csoftmax.softmax(x, where=np.ones(16)), TypeError),
        (lambda: csoftmax.softmax(x, where=np.ones(5, bool)), ValueError),
        (lambda: csoftmax.softmax(x, temperature=0.0), ValueError),
        (lambda: csoftmax.softmax(x, temperature="2"), TypeError),
        (lambda: csoftmax.softmax(x[0], causal=True), ValueError),
        (lambda: csoftmax.softmax_backward(y, dy[:, :3]), ValueError),
        (lambda: csoftmax.softmax_backward(y, dy, out=outg[:, :3]), ValueError),
        (lambda: csoftmax.cross_entropy(x, np.array([0, 1, 2, 16])), ValueError),
        (lambda: csoftmax.cross_entropy(x, t, reduction="avg"), ValueError),
        (lambda: csoftmax.logsumexp(x, b=np.ones(3)), ValueError),
        (lambda: csoftmax.logsumexp(x, b=b, temperature=2.0), ValueError),
        (lambda: acc.update(np.ones((3, 5))), ValueError),
    ]
    tracked = [x, x32, w, sq, y, lp, dy, dyc, t, probs, b, xc, acc, other, outg]
    return ok, err, tracked


def measure(label, calls, n, tracked):
    """Runs calls round-robin n times in all; returns a dict of figures."""
    k = len(calls)
    for i in range(2000):                      # warm-up: caches, free lists, arenas
        calls[i % k]()
    gc.collect()
    refs0 = [sys.getrefcount(o) for o in tracked]
    rss0 = rss()
    tracemalloc.start()
    snap0 = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    for i in range(n):
        calls[i % k]()
    t = time.perf_counter() - t
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - snap0
    tracemalloc.stop()
    drss = rss() - rss0
    refs1 = [sys.getrefcount(o) for o in tracked]
    moved = [(i, b - a) for i, (a, b) in enumerate(zip(refs0, refs1)) if a != b]
    return {"label": label, "calls": n, "seconds": t, "traced": traced, "rss": drss,
            "refs": moved}


def err_calls(pairs):
    def wrap(f, exc):
        def g():
            try:
                f()
            except exc:
                return
            raise AssertionError("no error")
        return g
    return [wrap(f, e) for f, e in pairs]


def verdict(r):
    bad = []
    if r["traced"] >= TRACED_LIMIT:
        bad.append(f"traced +{r['traced']} B")
    if r["rss"] >= RSS_LIMIT:
        bad.append(f"RSS +{r['rss'] / 2**20:.1f} MiB")
    if r["refs"]:
        bad.append(f"refcounts moved {r['refs']}")
    return bad


def self_test():
    """The check catches a reference leak and a memory leak."""
    keep = []
    obj = np.zeros(3)

    def leak_ref():
        keep.append(obj)

    def leak_mem():
        keep.append(np.zeros(16))

    r1 = measure("self-test: reference leak", [leak_ref], 10_000, [obj])
    r2 = measure("self-test: memory leak", [leak_mem], 10_000, [])
    keep.clear()
    assert r1["refs"] and r1["refs"][0][1] >= 10_000, r1
    assert verdict(r2) and r2["traced"] > 10_000 * 128, r2
    print(f"self-test: a deliberate reference leak moved the refcount by {r1['refs'][0][1]}, "
          f"a deliberate array leak grew traced memory by {r2['traced'] / 2**20:.1f} MiB: caught")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    print(f"csoftmax {csoftmax.__version__} from {os.path.dirname(csoftmax.__file__)}, "
          f"isa {csoftmax.isa_info()['active']}; {args.calls} calls per group")
    self_test()
    failed = ngroups = 0
    groups = [(fn.__name__,) + scenarios(fn, reduces)
              for fn, reduces in ((csoftmax.softmax, False), (csoftmax.log_softmax, False),
                                  (csoftmax.logsumexp, True))]
    groups.append(("issue 8",) + scenarios_issue8())
    for name, ok, err, tracked in groups:
        for label, calls in ((f"{name} success ({len(ok)} scenarios)", ok),
                             (f"{name} errors ({len(err)} scenarios)", err_calls(err))):
            ngroups += 1
            r = measure(label, calls, args.calls, tracked)
            bad = verdict(r)
            failed += bool(bad)
            print(f"{'LEAK' if bad else 'ok  '} {label:34s} {r['calls']} calls in "
                  f"{r['seconds']:.1f} s: traced {r['traced']:+d} B, RSS "
                  f"{r['rss'] / 1024:+.0f} KiB, refcounts of {len(tracked)} objects "
                  f"{'unchanged' if not r['refs'] else r['refs']}"
                  + (f"  <- {'; '.join(bad)}" if bad else ""))
    print(f"leak_check: {ngroups - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
