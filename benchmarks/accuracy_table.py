"""Accuracy table: max ULP error of softmax / log_softmax / logsumexp.

Measures csoftmax, scipy.special, NumPy "stable by hand" (exp(x - max) / sum)
and torch (1 intra-op thread; only if importable) on the SAME rows, graded by
the same mpmath oracle as the test suite (tests/_oracle.py, 40 digits, kept as
a double-double so float64 results are graded to far below 0.01 ULP).

Rows: x = scale * standard_normal, rounded to the dtype (float32 rows are
given to every implementation as float32), scales 1, 10, 100; lengths 2..67
(several rows each), 1000 and 100_000 (fewer rows).

ULP of an exact value v in dtype D: np.spacing(|round_D(v)|). The softmax
column grades the outputs whose exact value is a normal number (exact
subnormal outputs are summarised separately, in subnormal spacings);
log_softmax grades every output (including the near-0 entries at the row
maximum); logsumexp one value per row.

Usage:
    python benchmarks/accuracy_table.py [--quick] [--markdown] [--seed N]

Default: ~1 minute; --quick: ~15 s. Progress goes to stderr, the table to
stdout (plain text, or Markdown with --markdown).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import platform
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
OPS = ("softmax", "log_softmax", "logsumexp")
DTYPES = (np.float32, np.float64)
SCALES = (1, 10, 100)


def _import_csoftmax():
    """Prefer the checkout this script lives in when it holds a build (an
    in-place build); otherwise the installed package."""
    pkg = ROOT / "csoftmax"
    if any(pkg.glob("_core*.so")) or any(pkg.glob("_core*.pyd")):
        sys.path.insert(0, str(ROOT))
    import csoftmax
    return csoftmax


def _load_oracle():
    path = ROOT / "tests" / "_oracle.py"
    spec = importlib.util.spec_from_file_location("_csoftmax_oracle", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- implementations

def _numpy_impl():
    def softmax(x):
        m = x.max(axis=-1, keepdims=True)
        e = np.exp(x - m)
        return e / e.sum(axis=-1, keepdims=True)

    def log_softmax(x):
        d = x - x.max(axis=-1, keepdims=True)
        return d - np.log(np.exp(d).sum(axis=-1, keepdims=True))

    def logsumexp(x):
        m = x.max(axis=-1, keepdims=True)
        return m[:, 0] + np.log(np.exp(x - m).sum(axis=-1))

    return {"softmax": softmax, "log_softmax": log_softmax, "logsumexp": logsumexp}


def _implementations():
    impls = {}
    versions = {}
    cs = _import_csoftmax()
    impls["csoftmax"] = {
        "softmax": lambda x: cs.softmax(x, axis=-1),
        "log_softmax": lambda x: cs.log_softmax(x, axis=-1),
        "logsumexp": lambda x: cs.logsumexp(x, axis=-1),
    }
    versions["csoftmax"] = f"{cs.__version__} (isa {cs.isa_info()['active']})"
    try:
        import scipy
        import scipy.special as sps
        impls["scipy.special"] = {
            "softmax": lambda x: sps.softmax(x, axis=-1),
            "log_softmax": lambda x: sps.log_softmax(x, axis=-1),
            "logsumexp": lambda x: sps.logsumexp(x, axis=-1),
        }
        versions["scipy"] = scipy.__version__
    except ImportError:
        versions["scipy"] = "not installed"
    impls["NumPy stable by hand"] = _numpy_impl()
    versions["numpy"] = np.__version__
    try:
        import torch
        torch.set_num_threads(1)

        def _t(f):
            return lambda x: f(torch.from_numpy(np.ascontiguousarray(x)), -1).numpy()

        impls["torch (1 thread)"] = {
            "softmax": _t(torch.softmax),
            "log_softmax": _t(torch.log_softmax),
            "logsumexp": _t(torch.logsumexp),
        }
        versions["torch"] = torch.__version__
    except ImportError:
        versions["torch"] = "not installed"
    return impls, versions, cs


# ---------------------------------------------------------------- measurement

class Cell:
    """Running maxima for one (impl, op, dtype, scale)."""

    def __init__(self):
        self.max = 0.0
        self.where = None
        self.sub_max = 0.0       # softmax: exact-subnormal outputs
        self.sub_count = 0
        self.failed = None       # exception text

    def add(self, err, n, mask=None):
        if mask is not None:
            err = err[mask]
        if err.size:
            m = float(err.max())
            if self.where is None or m > self.max:
                self.max, self.where = m, n


def _regrade_subnormal(err, got, x, sub, tcache):
    """Re-grade float64 softmax outputs whose exact value is subnormal and
    whose measured error is 0.5..2.5 spacings, exactly with mpmath. The
    oracle's (hi, lo) pair cannot hold the remainder of a subnormal float64
    (lo is rounded to a multiple of 2^-1074), so there ulp_error is only good
    to +-0.5 spacing: enough for large errors, not near the 1-spacing mark."""
    import mpmath
    from mpmath import mp
    idx = np.argwhere(sub & (err >= 0.5) & (err <= 2.5))
    for r, c in idx:
        r, c = int(r), int(c)
        with mp.workdps(40):
            if r not in tcache:
                xs = x[r].astype(np.float64).tolist()
                j = max(range(len(xs)), key=xs.__getitem__)
                m = mpmath.mpf(xs[j])
                tcache[r] = (xs, m, 1 + mpmath.fsum(
                    mpmath.exp(mpmath.fsub(mpmath.mpf(v), m, exact=True))
                    for i, v in enumerate(xs) if i != j))
            xs, m, S = tcache[r]
            v = mpmath.exp(mpmath.fsub(mpmath.mpf(xs[c]), m, exact=True)) / S
            err[r, c] = float(abs(mpmath.mpf(float(got[r, c])) - v) / mpmath.mpf(2) ** -1074)


def _blocks(dtype, scale, plan, seed):
    for n, rows in plan:
        rng = np.random.default_rng([seed, scale, n, np.dtype(dtype).itemsize])
        yield n, (rng.standard_normal((rows, n)) * scale).astype(dtype)


def measure(plan, seed, oracle, impls, progress):
    cells = {}
    t0 = time.perf_counter()
    combos = [(dt, s) for dt in DTYPES for s in SCALES]
    for ci, (dtype, scale) in enumerate(combos, 1):
        tiny = float(np.finfo(dtype).tiny)
        for n, x in _blocks(dtype, scale, plan, seed):
            exact = {op: oracle.exact_rows(x, op) for op in OPS}
            tcache = {}
            for name, fns in impls.items():
                for op in OPS:
                    cell = cells.setdefault((name, op, dtype, scale), Cell())
                    if cell.failed:
                        continue
                    try:
                        with np.errstate(all="ignore"):
                            got = np.asarray(fns[op](x))
                    except Exception as exc:  # an implementation may refuse a dtype
                        cell.failed = f"{type(exc).__name__}: {exc}"
                        continue
                    hi, lo = exact[op]
                    err = oracle.ulp_error(got.reshape(hi.shape), hi, lo, dtype)
                    if op == "softmax":
                        normal = np.abs(hi) >= tiny
                        cell.add(err, n, normal)
                        sub = ~normal
                        if sub.any() and dtype == np.float64:
                            _regrade_subnormal(err, got.reshape(hi.shape), x, sub, tcache)
                        if sub.any():
                            cell.sub_count += int(sub.sum())
                            cell.sub_max = max(cell.sub_max, float(err[sub].max()))
                    else:
                        cell.add(err, n)
        progress(f"[{ci}/{len(combos)}] {np.dtype(dtype).name} scale {scale} done "
                 f"({time.perf_counter() - t0:.1f} s)")
    return cells


# ---------------------------------------------------------------- output

def _fmt(v):
    if v is None:
        return "-"
    if not np.isfinite(v):
        return "inf/NaN"
    if v >= 1e5:
        return f"{v:.3g}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}"


def _n_txt(n):
    return {1000: "1e3", 100_000: "1e5"}.get(n, str(n))


def render(cells, impls, versions, plan, seed, argv, markdown, elapsed):
    cols = [(dt, s) for dt in DTYPES for s in SCALES]
    head = ["op", "impl"] + [f"{'f32' if dt == np.float32 else 'f64'} s={s}" for dt, s in cols]
    body = []
    for op in OPS:
        for name in impls:
            row = [op, name]
            for dt, s in cols:
                c = cells[(name, op, dt, s)]
                if c.failed:
                    row.append("error")
                    continue
                txt = _fmt(c.max)
                if name == "csoftmax" and markdown:
                    txt = f"**{txt}**"
                row.append(txt)
            body.append(row)
    sub_head = ["impl"] + head[2:]
    sub_body = []
    for name in impls:
        row = [name]
        for dt, s in cols:
            c = cells[(name, "softmax", dt, s)]
            row.append("error" if c.failed else
                       ("-" if c.sub_count == 0 else f"{_fmt(c.sub_max)} ({c.sub_count})"))
        sub_body.append(row)
    nrows = sum(r for _, r in plan)
    nout = sum(n * r for n, r in plan)
    short = [(n, r) for n, r in plan if n <= 67]
    desc = (f"lengths {short[0][0]}..{short[-1][0]} ({short[0][1]} rows each)" if short else "")
    longs = ", ".join(f"{n} ({r} row{'s' if r > 1 else ''})" for n, r in plan if n > 67)
    cmd = "python benchmarks/accuracy_table.py" + ("" if not argv else " " + " ".join(argv))
    lines = []
    if markdown:
        lines.append("Max error in ULP against mpmath (40 digits; tests/_oracle.py) on the same rows "
                     "for every implementation.")
        lines.append("")
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for r in body:
            lines.append("| " + " | ".join(r) + " |")
        lines.append("")
        lines.append("softmax grades outputs whose exact value is normal; log_softmax all outputs "
                     "(including the near-0 entries at the row maximum); logsumexp one value per row.")
        lines.append("")
        lines.append("softmax outputs whose exact value is subnormal: max error in subnormal "
                     "spacings (number of such outputs):")
        lines.append("")
        lines.append("| " + " | ".join(sub_head) + " |")
        lines.append("|" + "---|" * len(sub_head))
        for r in sub_body:
            lines.append("| " + " | ".join(r) + " |")
        lines.append("")
        lines.append(f"Rows: x = scale * standard_normal rounded to the dtype (float32 rows passed as "
                     f"float32); {desc}; {longs}: {nrows} rows, {nout:,} outputs per dtype x scale "
                     f"column; seed {seed}.")
        lines.append("")
        lines.append(f"Command: `{cmd}` ({elapsed:.0f} s). Versions: "
                     + ", ".join(f"{k} {v}" for k, v in versions.items())
                     + f"; Python {platform.python_version()}, {platform.machine()}.")
    else:
        widths = [max(len(str(r[i])) for r in [head] + body) for i in range(len(head))]
        fmt = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths))  # noqa: E731
        lines.append("max ULP error against mpmath (40 digits)")
        lines.append(fmt(head))
        lines.append(fmt(["-" * w for w in widths]))
        prev = None
        for r in body:
            lines.append(fmt([r[0] if r[0] != prev else ""] + r[1:]))
            prev = r[0]
        lines.append("")
        lines.append("softmax outputs whose exact value is subnormal: max error in subnormal "
                     "spacings (count)")
        widths = [max(len(str(r[i])) for r in [sub_head] + sub_body) for i in range(len(sub_head))]
        lines.append(fmt(sub_head))
        for r in sub_body:
            lines.append(fmt(r))
        lines.append("")
        lines.append(f"rows: {desc}; {longs}: {nrows} rows, {nout:,} outputs per column; "
                     f"seed {seed}")
        lines.append(f"command: {cmd} ({elapsed:.0f} s)")
        lines.append("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rows (~15 s)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--seed", type=int, default=20260523)
    args = ap.parse_args(argv)
    if args.quick:
        plan = [(n, 4) for n in range(2, 68)] + [(1000, 2), (100_000, 1)]
    else:
        plan = [(n, 32) for n in range(2, 68)] + [(1000, 16), (100_000, 3)]

    def progress(msg):
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    oracle = _load_oracle()
    impls, versions, _ = _implementations()
    progress(f"implementations: {', '.join(impls)}")
    cells = measure(plan, args.seed, oracle, impls, progress)
    print(render(cells, impls, versions, plan, args.seed, argv, args.markdown,
                 time.perf_counter() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
