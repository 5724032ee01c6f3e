"""Thread scaling of csoftmax, measured side by side (not a test).

    python benchmarks/bench_threads.py [--markdown] [--repeat N]

(after `pip install .`; from a checkout with an in-place build, prefix
`PYTHONPATH=.`)

1. User threads: a batch of independent arrays computed by 1 Python thread
   vs split between 2 (``num_threads=1`` per call, so only the user threads
   run), for a cache-resident and a memory-bound shape.
2. Inside one call: ``num_threads=2`` vs ``num_threads=1`` on the issue's
   shapes, float32 and float64.
3. Grain: the same ratio for a single row of 1..16 grains (CSM_GRAIN =
   32768 elements per thread) and for calls below the grain, which must not
   slow down (they stay serial).

Every ratio is a median over rounds in which the compared variants run
back to back (round-robin), so machine noise hits both alike.
"""
import argparse
import os
import sys
import threading
import time

import numpy as np

import csoftmax

GRAIN = 32768


def _median_ratio(fa, fb, repeat):
    """Median time of fa and of fb (seconds), measured alternately."""
    ta, tb = [], []
    fa(), fb()                                   # warm-up (pages, thread pool)
    for _ in range(repeat):
        t0 = time.perf_counter(); fa(); t1 = time.perf_counter(); fb(); t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return float(np.median(ta)), float(np.median(tb))


def _user_threads(shape, count, dtype, repeat):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(shape).astype(dtype) for _ in range(count)]
    outs = [np.empty_like(x) for x in xs]

    def work(lo, hi):
        for i in range(lo, hi):
            csoftmax.softmax(xs[i], out=outs[i], num_threads=1)

    def one():
        work(0, count)

    def two():
        t = threading.Thread(target=work, args=(0, count // 2))
        t.start()
        work(count // 2, count)
        t.join()

    return _median_ratio(one, two, repeat)


def _intra(shape, dtype, axis, repeat, op=csoftmax.softmax, threads=2):
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    if op is csoftmax.logsumexp:
        f1 = lambda: op(x, axis=axis, num_threads=1)
        f2 = lambda: op(x, axis=axis, num_threads=threads)
    else:
        out = np.empty_like(x)
        f1 = lambda: op(x, axis=axis, out=out, num_threads=1)
        f2 = lambda: op(x, axis=axis, out=out, num_threads=threads)
    return _median_ratio(f1, f2, repeat)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--repeat", type=int, default=21, help="rounds per measurement (median)")
    args = ap.parse_args(argv)
    r = args.repeat
    info = csoftmax.isa_info()
    print(f"csoftmax {csoftmax.__version__}, ISA {info['active']}, OpenMP {info['openmp']}, "
          f"{os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}, "
          f"default threads {csoftmax.get_num_threads()}, Python {sys.version.split()[0]}")
    rows = []

    def emit(kind, what, t1, t2, target):
        ratio = t1 / t2
        verdict = "" if target is None else ("met" if ratio >= target else "NOT met")
        rows.append((kind, what, t1 * 1e3, t2 * 1e3, ratio, target, verdict))
        print(f"{kind:12s} {what:42s} 1: {t1 * 1e3:9.3f} ms  2: {t2 * 1e3:9.3f} ms  "
              f"x{ratio:5.2f} {'' if target is None else f'(target >= {target}: {verdict})'}",
              flush=True)

    # 1. user threads, num_threads=1 per call
    t1, t2 = _user_threads((64, 1024), 64, np.float32, r)
    emit("user", "64 x softmax (64, 1024) f32, cache-resident", t1, t2, 1.7)
    t1, t2 = _user_threads((1, 8_000_000), 4, np.float32, max(5, r // 3))
    emit("user", "4 x softmax (1, 8e6) f32, memory-bound", t1, t2, None)
    # 2. inside one call
    for op in (csoftmax.softmax, csoftmax.log_softmax, csoftmax.logsumexp):
        for dtype in (np.float32, np.float64):
            for shape, axis in (((4096, 1024), -1), ((1, 16_000_000), -1),
                                ((4096, 1024), 0), ((65536, 10), -1)):
                target = 1.7 if (op is csoftmax.softmax and dtype is np.float32
                                 and axis == -1 and shape != (65536, 10)) else None
                reps = max(5, r // 3) if shape[1] > 10 ** 6 else r
                t1, t2 = _intra(shape, dtype, axis, reps, op)
                emit("num_threads", f"{op.__name__} {shape} axis={axis} "
                     f"{np.dtype(dtype).name}", t1, t2, target)
    # 3. grain: one row of k grains; below the grain nothing may slow down
    for k in (0.25, 1, 2, 4, 8, 16):
        n = int(k * GRAIN)
        t1, t2 = _intra((1, n), np.float32, -1, r * 3)
        emit("grain", f"softmax (1, {n}) f32 = {k} grains", t1, t2, None)
    if args.markdown:
        print("\n| kind | call | 1 thread ms | 2 threads ms | speed-up | target |")
        print("|:---|:---|---:|---:|---:|:---|")
        for kind, what, a, b, ratio, target, verdict in rows:
            tgt = "" if target is None else f">= {target}: {verdict}"
            print(f"| {kind} | {what} | {a:.3f} | {b:.3f} | {ratio:.2f}x | {tgt} |")


if __name__ == "__main__":
    main()
