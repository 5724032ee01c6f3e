"""Self-check, demo and benchmark for csoftmax: ``python -m csoftmax``.

Running the package as a program does three things:

1. Prints the environment: csoftmax, NumPy and Python versions, the CPU model
   and the SIMD instruction set (ISA) csoftmax dispatched to at import time.
2. Prints a short demo of worked examples showing where csoftmax differs from
   a naive NumPy formula: tiny results that naive code rounds to zero, large
   inputs that overflow ``exp``, special values (inf) and the in-place
   ``out=`` path.
3. Benchmarks ``softmax``, ``log_softmax`` and ``logsumexp`` along the last
   axis for float32 and float64 on a few shapes, against the usual
   max-shifted NumPy formulas and against ``scipy.special`` (if SciPy is
   installed), and prints an aligned table of median times, speed-ups and
   csoftmax memory throughput (GB/s of input + output bytes).

Options: ``--quick`` (smaller shapes, fewer repeats), ``--no-bench`` (demo
only), ``--repeat N``, ``--json FILE`` (machine-readable results with every
raw timing). Progress goes to stderr, the demo and the table to stdout.

``python -m csoftmax bench [...]`` runs the full benchmark instead: every
supported ISA against NumPy, scipy.special, torch, onnxruntime and jax, with
machine-limit probes, ``--plot`` and ``--markdown`` (engine and method:
``csoftmax._bench``; ``python -m csoftmax bench --help``).

Timing method: each measurement is the median of R repeats; one repeat times
a loop of enough calls to take at least ~5 ms (calibrated once per
implementation, like ``timeit.Timer.autorange`` but cheaper) and records the
time per call. The implementations compared in one (op, dtype, shape) cell
are measured round-robin, repeat by repeat, so machine noise hits them alike.
"""

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

import csoftmax

OPS = ("softmax", "log_softmax", "logsumexp")
DTYPES = ("float32", "float64")
DEFAULT_SHAPES = ((10,), (1000,), (4096, 1024), (65536, 10), (1, 1_000_000))
QUICK_SHAPES = ((10,), (1000,), (512, 1024), (8192, 10))
TINY_SHAPES = ((10,), (1000,))  # CSOFTMAX_BENCH_TINY=1, used by the tests
TARGET_SECONDS = 0.005  # minimum duration of one timed repeat
AXIS = -1


# ---------------------------------------------------------------------------
# Reference implementations (the usual max-shifted NumPy formulas), timing and
# formatting helpers: one definition, in the benchmark engine.
# ---------------------------------------------------------------------------

from csoftmax._bench import (  # noqa: E402,F401 (re-exported for tests)
    NUMPY_IMPLS, calibrate, cpu_model, fmt_gbps, fmt_ms, fmt_shape, fmt_speedup,
    numpy_log_softmax, numpy_logsumexp, numpy_softmax, parse_case, _positive_int, _time_loop)


def _scipy_special():
    """Return scipy.special, or None when SciPy is not importable."""
    try:
        import scipy.special
    except Exception:  # ImportError, or a broken install
        return None
    return scipy.special


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def active_isa():
    try:
        return str(csoftmax.isa_info().get("active", "unknown"))
    except Exception as exc:  # keep the report going even if this breaks
        return "unknown (%s)" % exc


def environment():
    return {
        "version": getattr(csoftmax, "__version__", "unknown"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "isa": active_isa(),
    }


def print_environment(env):
    print("csoftmax %s" % env["version"])
    print("  numpy    %s" % env["numpy"])
    print("  python   %s" % env["python"])
    print("  cpu      %s" % env["cpu"])
    print("  isa      %s" % env["isa"])


# ---------------------------------------------------------------------------
# Demo
# ---------------------------------------------------------------------------

def _fl(a):
    """Full-precision repr of a scalar or 1-d array (as a Python list)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return repr(float(a))
    return repr([float(v) for v in a])


def demo():
    """Print worked examples: csoftmax result, and naive NumPy where it fails."""
    x = np.array([13.0, 31.0, 5.0])
    t = np.array([0.0, -40.0])
    big = np.array([1000.0, 1000.0])
    with np.errstate(all="ignore"):  # the naive formulas over/underflow
        naive_lse = np.log(np.sum(np.exp(t)))
        naive_lsm0 = (t - np.log(np.sum(np.exp(t))))[0]
        naive_big = np.exp(big) / np.sum(np.exp(big))
    v = np.array([1.0, 2.0, 3.0])
    r = csoftmax.softmax(v, out=v)

    rows = [
        ("softmax([13, 31, 5])", _fl(csoftmax.softmax(x))),
        ("log_softmax([13, 31, 5])", _fl(csoftmax.log_softmax(x))),
        ("logsumexp([13, 31, 5])", _fl(csoftmax.logsumexp(x))),
        ("logsumexp([0, -40])", "%s   (exact 4.248354255291589e-18)"
         % _fl(csoftmax.logsumexp(t))),
        ("  naive np.log(np.sum(np.exp(x)))", _fl(naive_lse)),
        ("log_softmax([0, -40])[0]", "%s   (exact -4.248354255291589e-18)"
         % _fl(csoftmax.log_softmax(t)[0])),
        ("  naive (x - np.log(np.sum(np.exp(x))))[0]", _fl(naive_lsm0)),
        ("softmax([1000., 1000.])", _fl(csoftmax.softmax(big))),
        ("  naive np.exp(x) / np.sum(np.exp(x))",
         "%s   (exp overflows)" % _fl(naive_big)),
        ("softmax([0, inf, 1])", "%s   (one-hot)"
         % _fl(csoftmax.softmax(np.array([0.0, np.inf, 1.0])))),
        ("x = [1., 2., 3.]; softmax(x, out=x)", "x = %s   (in place, returns x: %s)"
         % (_fl(v), r is v)),
    ]
    print("\nDemo (float64):")
    width = max(len(expr) for expr, _ in rows)
    for expr, val in rows:
        print("  %-*s = %s" % (width, expr, val))


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------

def measure(fns, repeat, target=TARGET_SECONDS):
    """Per-call times (seconds) of each fn, `repeat` samples each.

    The functions are measured round-robin, one repeat at a time, so slow
    phases of the machine affect all of them alike.
    """
    loops = {}
    for name, fn in fns.items():
        fn()  # warm-up (page faults, caches, lazy imports)
        loops[name] = calibrate(fn, target)
    times = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for name, fn in fns.items():
                n = loops[name]
                times[name].append(_time_loop(fn, n) / n)
    finally:
        if gc_was_enabled:
            gc.enable()
    return loops, times


def _make_input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * 4.0).astype(dtype)


def _implementations(op, x, out, sp):
    """name -> zero-argument callable for one benchmark cell."""
    cfun = getattr(csoftmax, op)
    nfun = NUMPY_IMPLS[op]
    if op == "logsumexp":
        fns = {"csoftmax": lambda: cfun(x, AXIS, num_threads=1)}
    else:
        fns = {"csoftmax": lambda: cfun(x, AXIS, out=out, num_threads=1)}
    fns["numpy"] = lambda: nfun(x, AXIS)
    if sp is not None:
        sfun = getattr(sp, op)
        fns["scipy"] = lambda: sfun(x, axis=AXIS)
    return fns


def bench_cell(op, dtype, shape, repeat, sp):
    x = _make_input(shape, dtype)
    out = np.empty_like(x) if op != "logsumexp" else None
    fns = _implementations(op, x, out, sp)

    # One correctness sanity check against the NumPy formula.
    with np.errstate(all="ignore"):
        got = np.asarray(fns["csoftmax"]())
        ref = np.asarray(NUMPY_IMPLS[op](x.astype(np.float64), AXIS))
        max_abs_diff = float(np.max(np.abs(got.astype(np.float64) - ref)))

    loops, times = measure(fns, repeat)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    out_nbytes = got.nbytes
    nbytes = x.nbytes + out_nbytes
    c = medians["csoftmax"]
    rec = {
        "op": op,
        "dtype": dtype,
        "shape": list(shape),
        "axis": AXIS,
        "in_nbytes": x.nbytes,
        "out_nbytes": out_nbytes,
        "max_abs_diff_vs_float64_numpy": max_abs_diff,
        "loops": loops,
        "times_s": times,
        "median_s": medians,
        "speedup_vs_numpy": medians["numpy"] / c if c > 0 else None,
        "speedup_vs_scipy": (medians["scipy"] / c
                             if "scipy" in medians and c > 0 else None),
        "csoftmax_gbps": nbytes / c / 1e9 if c > 0 else None,
    }
    return rec


def run_benchmark(shapes, repeat, sp):
    cells = [(op, dt, sh) for op in OPS for dt in DTYPES for sh in shapes]
    records = []
    t_start = time.perf_counter()
    for i, (op, dt, sh) in enumerate(cells, 1):
        sys.stderr.write("[%d/%d] %s %s %s ..." % (i, len(cells), op, dt, sh))
        sys.stderr.flush()
        t0 = time.perf_counter()
        records.append(bench_cell(op, dt, sh, repeat, sp))
        sys.stderr.write(" %.2f s\n" % (time.perf_counter() - t0))
        sys.stderr.flush()
    sys.stderr.write("benchmark done in %.1f s\n"
                     % (time.perf_counter() - t_start))
    sys.stderr.flush()
    return records


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------

def format_table(records, with_scipy):
    header = ["op", "dtype", "shape", "csoftmax ms", "numpy ms"]
    if with_scipy:
        header.append("scipy ms")
    header.append("vs numpy")
    if with_scipy:
        header.append("vs scipy")
    header.append("GB/s")

    rows = []
    for r in records:
        m = r["median_s"]
        row = [r["op"], r["dtype"], fmt_shape(r["shape"]),
               fmt_ms(m["csoftmax"]), fmt_ms(m["numpy"])]
        if with_scipy:
            row.append(fmt_ms(m.get("scipy")))
        row.append(fmt_speedup(r["speedup_vs_numpy"]))
        if with_scipy:
            row.append(fmt_speedup(r["speedup_vs_scipy"]))
        row.append(fmt_gbps(r["csoftmax_gbps"]))
        rows.append(row)

    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    left = 3  # op, dtype, shape are left-aligned; numbers right-aligned

    def line(cells):
        parts = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def _parse_shape(text):
    """'4096x1024' or '4096,1024' or '10' -> tuple of ints (last axis only)."""
    if "@" in text:
        raise argparse.ArgumentTypeError("bad shape %r (this table uses the last axis)" % text)
    return parse_case(text)[0]


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m csoftmax",
        description="Print environment info, a short accuracy demo and a "
                    "benchmark of csoftmax against NumPy and scipy.special.",
        epilog="Full benchmark (every ISA and peer, limit probes, --plot, "
               "--markdown): python -m csoftmax bench --help",
    )
    p.add_argument("--quick", action="store_true",
                   help="smaller shapes and fewer repeats (~10 s)")
    p.add_argument("--no-bench", action="store_true",
                   help="print environment and demo only, no benchmark")
    p.add_argument("--repeat", type=_positive_int, default=None, metavar="N",
                   help="timed repeats per measurement, median is reported "
                        "(default 7, or 5 with --quick)")
    p.add_argument("--json", metavar="FILE", default=None,
                   help="also write metadata and all raw timings to FILE")
    # Hidden: explicit shapes, e.g. --shapes 10 1000 512x1024 (for tests).
    p.add_argument("--shapes", type=_parse_shape, nargs="+", default=None,
                   help=argparse.SUPPRESS)
    return p


def main(argv=None):
    argv_list = list(sys.argv[1:] if argv is None else argv)
    if argv_list[:1] == ["bench"]:
        from csoftmax import _bench
        return _bench.main(argv_list[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    cmdline = [sys.executable, "-m", "csoftmax"] + list(
        sys.argv[1:] if argv is None else argv)

    tiny = os.environ.get("CSOFTMAX_BENCH_TINY", "") not in ("", "0")
    if args.shapes:
        shapes = args.shapes
    elif tiny:
        shapes = TINY_SHAPES
    elif args.quick:
        shapes = QUICK_SHAPES
    else:
        shapes = DEFAULT_SHAPES
    if args.repeat is not None:
        repeat = args.repeat
    elif tiny:
        repeat = 3
    else:
        repeat = 5 if args.quick else 7

    env = environment()
    print_environment(env)
    demo()
    sys.stdout.flush()

    records = []
    sp = None
    if not args.no_bench:
        sp = _scipy_special()
        if sp is None:
            sys.stderr.write("scipy not importable: skipping scipy column\n")
        print("\nBenchmark: axis=-1, median of %d repeats, csoftmax "
              "softmax/log_softmax write to a preallocated out=" % repeat)
        sys.stdout.flush()
        records = run_benchmark(shapes, repeat, sp)
        print(format_table(records, with_scipy=sp is not None))
        print("vs numpy/scipy = their time / csoftmax time; "
              "GB/s = (input + output bytes) / csoftmax time")

    if args.json:
        meta = dict(env)
        meta.update({
            "command_line": cmdline,
            "timestamp": datetime.datetime.now(
                datetime.timezone.utc).isoformat(),
            "scipy": None,
            "repeat": repeat,
            "target_seconds_per_repeat": TARGET_SECONDS,
            "shapes": [list(s) for s in shapes] if not args.no_bench else [],
        })
        if sp is not None:
            import scipy
            meta["scipy"] = scipy.__version__
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"metadata": meta, "results": records}, f, indent=2)
            f.write("\n")
        print("\nwrote %s" % args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
