"""logsumexp with weights and signs, and streaming, side by side (not a test).

    python benchmarks/bench_lse_ext.py [--markdown] [--repeat N]

(after `pip install .`; from a checkout with an in-place build, prefix
`PYTHONPATH=.`)

1. ``logsumexp(x, b=b, return_sign=True)`` over the last axis of (4096, 1024)
   float32 and float64, positive and mixed-sign weights: csoftmax (1 thread)
   against the NumPy composition (max, b * exp(x - max), sum, log|.|, sign),
   scipy.special.logsumexp(b=, return_sign=True) and torch (the same
   composition, 1 thread; torch has no weighted logsumexp), when importable.
2. Streaming: csoftmax.LogSumExp fed 16 chunks of 64 columns (given as
   separate contiguous arrays) against one csoftmax.logsumexp call over
   the whole array.

Every implementation runs once per round, round-robin (machine noise hits
all alike); the table gives the median time per call over the rounds.
"""
import argparse
import time

import numpy as np

import csoftmax

try:
    import scipy.special as _sps
except ImportError:  # pragma: no cover
    _sps = None
try:
    import torch as _torch
    _torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    _torch = None

SHAPE = (4096, 1024)


def numpy_weighted(x, b):
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    s = (b * np.exp(x - m)).sum(axis=-1)
    return np.log(np.abs(s)) + m[..., 0], np.sign(s)


def torch_weighted(x, b):
    m = x.amax(dim=-1, keepdim=True)
    s = (b * _torch.exp(x - m)).sum(dim=-1)
    return _torch.log(s.abs()) + m[..., 0], _torch.sign(s)


def cases(dtype, rng):
    x = (rng.standard_normal(SHAPE) * 4).astype(dtype)
    out = []
    for kind in ("b > 0", "mixed b"):
        if kind == "b > 0":
            b = rng.uniform(0.1, 2.0, SHAPE).astype(dtype)
        else:
            b = rng.standard_normal(SHAPE).astype(dtype)
        impls = {
            "csoftmax": lambda x=x, b=b: csoftmax.logsumexp(x, b=b, return_sign=True,
                                                            num_threads=1),
            "numpy": lambda x=x, b=b: numpy_weighted(x, b),
        }
        if _sps is not None:
            impls["scipy"] = lambda x=x, b=b: _sps.logsumexp(x, axis=-1, b=b, return_sign=True)
        if _torch is not None:
            tx, tb = _torch.from_numpy(x), _torch.from_numpy(b)
            impls["torch"] = lambda tx=tx, tb=tb: torch_weighted(tx, tb)
        out.append((f"logsumexp(b=, return_sign=True) {kind}", impls))
    chunks = [np.ascontiguousarray(c) for c in np.split(x, 16, axis=1)]

    def stream():
        s = csoftmax.LogSumExp(num_threads=1)
        for c in chunks:
            s.update(c)
        return s.value

    out.append(("streaming, 16 chunks", {
        "LogSumExp (16 updates)": stream,
        "one logsumexp call": lambda: csoftmax.logsumexp(x, num_threads=1),
    }))
    return out


def measure(impls, repeat):
    times = {k: [] for k in impls}
    for f in impls.values():
        f()                                       # warm-up
    for _ in range(repeat):
        for k, f in impls.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--repeat", type=int, default=15, help="rounds (default 15)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        for title, impls in cases(dtype, rng):
            t = measure(impls, args.repeat)
            base = next(iter(t.values()))
            for k, v in t.items():
                rows.append((np.dtype(dtype).name, title, k, v * 1e3, v / base))
    if args.markdown:
        print(f"| dtype | case {SHAPE} | implementation | ms | x first |")
        print("|---|---|---|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]:.2f} | {r[4]:.2f} |")
    else:
        for r in rows:
            print(f"{r[0]:8s} {r[1]:40s} {r[2]:24s} {r[3]:9.2f} ms  x{r[4]:.2f}")
    print(f"csoftmax {csoftmax.__version__}, ISA {csoftmax.isa_info()['active']}, "
          f"numpy {np.__version__}"
          + ("" if _sps is None else f", scipy {__import__('scipy').__version__}")
          + ("" if _torch is None else f", torch {_torch.__version__} (1 thread)")
          + f", median of {args.repeat} rounds")


if __name__ == "__main__":
    main()
