"""where= masks, causal=True and temperature= against the NumPy and torch ways.

    python benchmarks/bench_options.py [--markdown] [--repeat 15] [--shape 4096 1024]

Every case is timed round-robin (csoftmax, NumPy, torch in turn, `--repeat`
rounds) on one thread each (csoftmax num_threads=1, torch.set_num_threads(1)),
and the medians are reported with the ratios NumPy / csoftmax and torch /
csoftmax (> 1: csoftmax is faster). The NumPy and torch ways are what users
write without these options:

  masked     np.where(w, x, -inf) then the stable softmax; torch: masked_fill
  causal     the same with the materialized lower-triangular mask, x viewed as
             (rows / n, n, n) blocks of attention scores
  temperature  op(x / T): NumPy and torch divide first (a temporary)

torch is optional (its columns are empty without it). Nothing is asserted:
this is a measurement; the README quotes its output.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import csoftmax


def _np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np_log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))


def _np_logsumexp(z):
    m = z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True)))[..., 0]


NP_OPS = {"softmax": _np_softmax, "log_softmax": _np_log_softmax, "logsumexp": _np_logsumexp}


def cases(x, rng):
    """(name, csoftmax call, NumPy call, torch call or None) for input x."""
    rows, n = x.shape
    w = rng.random(x.shape) < 0.7
    T = 0.7
    xa = x.reshape(-1, n, n) if rows % n == 0 else None
    tril = np.tri(n, n, dtype=bool)
    out = []
    for op in ("softmax", "log_softmax", "logsumexp"):
        fn, npf = getattr(csoftmax, op), NP_OPS[op]
        out.append((f"{op} where=", lambda fn=fn: fn(x, where=w, num_threads=1),
                    lambda npf=npf: npf(np.where(w, x, -np.inf)), ("mask", op)))
    if xa is not None:
        out.append(("softmax causal=True", lambda: csoftmax.softmax(xa, causal=True,
                                                                    num_threads=1),
                    lambda: _np_softmax(np.where(tril, xa, -np.inf)), ("causal", "softmax")))
    for op in ("softmax", "log_softmax"):
        fn, npf = getattr(csoftmax, op), NP_OPS[op]
        out.append((f"{op} temperature=", lambda fn=fn: fn(x, temperature=T, num_threads=1),
                    lambda npf=npf: npf(x / x.dtype.type(T)), ("temp", op)))
    return out, w, T, xa, tril


def torch_call(torch, kind, op, x, w, T, xa, tril):
    f = {"softmax": torch.softmax, "log_softmax": torch.log_softmax,
         "logsumexp": torch.logsumexp}[op]
    if kind == "mask":
        xt, nw = torch.from_numpy(x), torch.from_numpy(~w)
        return lambda: f(xt.masked_fill(nw, float("-inf")), -1)
    if kind == "causal":
        xt, nt = torch.from_numpy(xa), torch.from_numpy(~tril)
        return lambda: f(xt.masked_fill(nt, float("-inf")), -1)
    xt = torch.from_numpy(x)
    return lambda: f(xt / T, -1)


def measure(fns, repeat):
    times = [[] for _ in fns]
    for f in fns:
        f()                                   # warm up (allocations, first touch)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            f()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) * 1e3 for t in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--shape", type=int, nargs=2, default=(4096, 1024))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for dt in (np.float32, np.float64):
        x = (rng.standard_normal(tuple(args.shape)) * 3).astype(dt)
        cs, w, T, xa, tril = cases(x, rng)
        for name, fc, fn, (kind, op) in cs:
            fns = [fc, fn]
            if torch is not None:
                fns.append(torch_call(torch, kind, op, x, w, T, xa, tril))
            ms = measure(fns, args.repeat)
            tt = ms[2] if torch is not None else None
            rows.append((name, np.dtype(dt).name, ms[0], ms[1], tt))
    head = ["case", "dtype", "csoftmax ms", "NumPy ms", "torch ms", "NumPy / csoftmax",
            "torch / csoftmax"]
    lines = []
    for name, dt, c, n, t in rows:
        lines.append([name, dt, f"{c:.2f}", f"{n:.2f}", "-" if t is None else f"{t:.2f}",
                      f"{n / c:.2f}x", "-" if t is None else f"{t / c:.2f}x"])
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for ln in lines:
            print("| " + " | ".join(ln) + " |")
    else:
        wid = [max(len(r[i]) for r in [head] + lines) for i in range(len(head))]
        for ln in [head] + lines:
            print("  ".join(v.rjust(wd) for v, wd in zip(ln, wid)))
    print(f"\nshape {tuple(args.shape)} (causal: viewed as blocks of {args.shape[1]}^2), "
          f"1 thread each, median of {args.repeat} round-robin runs; csoftmax ISA "
          f"{csoftmax.isa_info()['active']}")


if __name__ == "__main__":
    main()
