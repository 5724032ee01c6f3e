"""csoftmax.dask.softmax vs the naive dask.array softmax, larger than memory.

A (2^16, 2^14) float32 array (4 GiB) is made lazily by ``da.random`` (each
block generated on a worker, never on the client), and its softmax along the
rows (axis -1) is computed on a ``distributed.LocalCluster`` of 2 worker
processes (1 thread each) whose memory limit per worker (default 1.5 GiB) is
below the array's size. Only a checksum (sum of y**2, in float64) comes
back. Reported per method and chunking, the median over ``--repeat`` runs:
wall time and the peak resident memory of the worker processes (sampled
every 20 ms by a thread in each worker, psutil), max over the workers.

Methods:
* csoftmax: ``csoftmax.dask.softmax(x, reread=True)``: per-block (max, sum)
  triples, a tree reduction, then one blockwise pass (x generated twice).
* csoftmax (hold): the same with ``reread=False`` (x's blocks kept between
  the passes, dask's default).
* naive: ``e = da.exp(x - x.max(-1, keepdims=True)); e / e.sum(-1, keepdims=True)``.
* x itself: the checksum of x, the cost of generating the data once (the floor).

Chunkings: rows whole in one chunk (``--row-chunk`` rows x all columns; the
csoftmax plan is one map_blocks) and rows split over chunks (``--col-chunk``
columns).

Usage::

    python benchmarks/bench_dask.py --markdown            # full size, 4 GiB
    python benchmarks/bench_dask.py --small --markdown    # (2^12, 2^12), seconds
"""
import argparse
import os
import statistics
import threading
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402


def _start_sampler(dask_worker):
    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "stop": False}

    def loop():
        while not state["stop"]:
            rss = proc.memory_info().rss
            if rss > state["peak"]:
                state["peak"] = rss
            time.sleep(0.02)

    threading.Thread(target=loop, daemon=True).start()
    dask_worker._csm_mem = state
    return True


def _read_peak(dask_worker):
    state = dask_worker._csm_mem
    state["stop"] = True
    time.sleep(0.05)
    return state["peak"]


def _methods():
    import dask.array as da

    import csoftmax.dask as cd

    def naive(x):
        e = da.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    return {
        "csoftmax.dask.softmax (reread=True)": lambda x: cd.softmax(x, num_threads=1, reread=True),
        "csoftmax.dask.softmax (reread=False)": lambda x: cd.softmax(x, num_threads=1),
        "naive dask.array": naive,
        # the floor: generating x and the checksum alone
        "x itself (no softmax)": lambda x: x,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2 ** 16)
    ap.add_argument("--cols", type=int, default=2 ** 14)
    ap.add_argument("--small", action="store_true", help="(2^12, 2^12), 1 MiB-ish chunks")
    ap.add_argument("--row-chunk", type=int, default=1024, help="rows per chunk, whole rows")
    ap.add_argument("--col-chunk", type=int, default=4096,
                    help="columns per chunk when rows are split (with 4096 rows per chunk)")
    ap.add_argument("--memory-limit", default="1.5GiB", help="per worker")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--only", default=None, help="substring of the method names to run")
    args = ap.parse_args(argv)
    if args.small:
        args.rows, args.cols, args.row_chunk, args.col_chunk = 2 ** 12, 2 ** 12, 256, 1024

    import dask.array as da
    import distributed

    def fresh_cluster():
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address=None,
                                           worker_dashboard_address=None,
                                           # the scheduler's HTTP routes: loopback, a free port
                                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                           memory_limit=args.memory_limit)
        return cluster, distributed.Client(cluster)

    nbytes = args.rows * args.cols * 4
    chunkings = {
        f"whole rows ({args.row_chunk}, {args.cols})": (args.row_chunk, args.cols),
        f"rows split ({4 * args.row_chunk}, {args.col_chunk})": (4 * args.row_chunk,
                                                                  args.col_chunk),
    }
    results = []
    if True:
        for cname, chunks in chunkings.items():
            for mname, fn in _methods().items():
                if args.only and args.only not in mname:
                    continue
                if "reread=False" in mname and cname.startswith("whole"):
                    continue        # one pass there: reread changes nothing
                times, peaks, chk = [], [], None
                for _ in range(args.repeat):
                    # a new cluster per run: the peak RSS is this run's alone
                    cluster, client = fresh_cluster()
                    x = da.random.default_rng(42).standard_normal(
                        (args.rows, args.cols), chunks=chunks, dtype=np.float32)
                    y = fn(x)
                    s = (y.astype(np.float64) ** 2).sum()
                    client.run(_start_sampler)
                    t0 = time.perf_counter()
                    try:
                        chk = float(client.compute(s).result())
                    except Exception as exc:  # a killed worker, out of memory
                        chk = f"failed: {type(exc).__name__}"
                    times.append(time.perf_counter() - t0)
                    try:
                        peaks.append(max(client.run(_read_peak).values()))
                    except Exception:  # a worker was restarted: its sampler is gone
                        peaks.append(float("nan"))
                    client.close()
                    cluster.close()
                results.append((cname, mname, statistics.median(times),
                                statistics.median(peaks) / 2 ** 20, chk))
                print(f"# {cname} | {mname} | {results[-1][2]:.2f} s | "
                      f"{results[-1][3]:.0f} MiB | {chk}", flush=True)

    head = (f"softmax of a ({args.rows}, {args.cols}) float32 array ({nbytes / 2 ** 30:.2f} GiB) "
            f"along axis -1, LocalCluster 2 workers x 1 thread, memory_limit={args.memory_limit} "
            f"per worker, median of {args.repeat}")
    if args.markdown:
        print(head + "\n")
        print("| chunks | method | wall time (s) | peak worker RSS (MiB) | checksum sum(y**2) |")
        print("|---|---|---:|---:|---|")
        for c, m, t, p, k in results:
            kk = f"{k:.6f}" if isinstance(k, float) else k
            print(f"| {c} | {m} | {t:.2f} | {p:.0f} | {kk} |")
    else:
        print(head)
        for r in results:
            print(*r, sep="\t")


if __name__ == "__main__":
    main()
