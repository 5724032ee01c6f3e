"""Training kernels of csoftmax side by side with NumPy and torch (not a test).

    python benchmarks/bench_train.py [--markdown] [--repeat N] [--shape R C] [--axis 0]
    python benchmarks/bench_train.py --ce-layouts [--markdown] [--repeat N]

(after `pip install .`; from a checkout with an in-place build, prefix
`PYTHONPATH=.`)

On (4096, 1024) float32 and float64 (default), one thread everywhere
(csoftmax num_threads=1, torch.set_num_threads(1)):
  softmax_backward      csoftmax | NumPy y * (dy - (dy * y).sum(-1, keepdims=True))
                        | torch._softmax_backward_data
  log_softmax_backward  csoftmax | NumPy dy - exp(logp) * dy.sum(-1, keepdims=True)
                        | torch._log_softmax_backward_data
  cross_entropy         csoftmax (loss) | NumPy log_softmax composition + gather
                        | torch.nn.functional.cross_entropy (mean)
  cross_entropy + grad  csoftmax return_grad=True | NumPy loss + softmax - onehot
                        | torch F.cross_entropy forward + autograd backward
--axis 0: the gradients over the first axis instead (the column kernel;
cross_entropy is left out). --ce-layouts: cross_entropy (loss, and loss +
grad) with the class axis not last, (N, C, H, W) axis=1 as in segmentation
(torch's own layout), with class weights and with probability targets on
(16, 21, 128, 128), and many short rows, (65536, 10) axis=-1; NumPy: the
same composition along the class axis. Every figure is the median over --repeat rounds in which the implementations
run back to back (round-robin).
"""
import argparse
import time

import numpy as np

import csoftmax

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # optional
    torch = None


def np_logsumexp(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def cases(R, C, dtype, axis=-1):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((R, C)) * 3).astype(dtype)
    dy = rng.standard_normal((R, C)).astype(dtype)
    t = rng.integers(0, C, R)
    y = csoftmax.softmax(x, axis=axis)
    lp = csoftmax.log_softmax(x, axis=axis)
    ax = axis
    out = np.empty_like(x)
    rows = np.arange(R)

    def np_ce():
        lsm = x - np_logsumexp(x)
        return -lsm[rows, t].mean()

    def np_ce_grad():
        lse = np_logsumexp(x)
        loss = (lse[:, 0] - x[rows, t]).mean()
        g = np.exp(x - lse)
        g[rows, t] -= 1
        g /= R
        return loss, g

    c = {
        "softmax_backward": {
            "csoftmax": lambda: csoftmax.softmax_backward(y, dy, ax, out=out, num_threads=1),
            "numpy": lambda: y * (dy - (dy * y).sum(axis=ax, keepdims=True)),
        },
        "log_softmax_backward": {
            "csoftmax": lambda: csoftmax.log_softmax_backward(lp, dy, ax, out=out, num_threads=1),
            "numpy": lambda: dy - np.exp(lp) * dy.sum(axis=ax, keepdims=True),
        },
        "cross_entropy": {
            "csoftmax": lambda: csoftmax.cross_entropy(x, t, num_threads=1),
            "numpy": np_ce,
        },
        "cross_entropy + grad": {
            "csoftmax": lambda: csoftmax.cross_entropy(x, t, return_grad=True, num_threads=1),
            "numpy": np_ce_grad,
        },
    }
    if torch is not None:
        yt, dyt, lpt = torch.from_numpy(y), torch.from_numpy(dy), torch.from_numpy(lp)
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)
        tdt = yt.dtype
        c["softmax_backward"]["torch"] = lambda: torch._softmax_backward_data(dyt, yt, ax, tdt)
        c["log_softmax_backward"]["torch"] = \
            lambda: torch._log_softmax_backward_data(dyt, lpt, ax, tdt)

        def t_ce():
            with torch.no_grad():
                return F.cross_entropy(xt, tt)

        def t_ce_grad():
            xg = xt.clone().requires_grad_(True)   # the clone is part of the cost
            loss = F.cross_entropy(xg, tt)
            loss.backward()
            return loss, xg.grad

        c["cross_entropy"]["torch"] = t_ce
        c["cross_entropy + grad"]["torch"] = t_ce_grad
    if axis != -1:  # the class axis of the cross-entropy cases is the last
        del c["cross_entropy"], c["cross_entropy + grad"]
    return c


def ce_layout_cases(dtype):
    """cross_entropy over (N, C, H, W) axis 1 and over many short rows"""
    out = {}
    for shape, axis in (((16, 21, 128, 128), 1), ((8, 100, 64, 64), 1), ((65536, 10), -1)):
        rng = np.random.default_rng(0)
        x = (rng.standard_normal(shape) * 3).astype(dtype)
        tshape = list(shape)
        del tshape[axis]
        t = rng.integers(0, shape[axis], tshape)
        ti = np.expand_dims(t, axis)

        def np_loss(x=x, ti=ti, axis=axis):
            lse = np_logsumexp(x, axis)
            return (lse - np.take_along_axis(x, ti, axis)).mean(), lse

        def np_grad(x=x, ti=ti, axis=axis):
            loss, lse = np_loss(x, ti, axis)
            g = np.exp(x - lse)
            np.put_along_axis(g, ti, np.take_along_axis(g, ti, axis) - 1, axis)
            g /= ti.size
            return loss, g

        name = f"{shape} axis {axis}"
        out[f"{name} cross_entropy"] = {
            "csoftmax": lambda x=x, t=t, axis=axis: csoftmax.cross_entropy(x, t, axis=axis,
                                                                           num_threads=1),
            "numpy": lambda: np_loss()[0],
        }
        out[f"{name} cross_entropy + grad"] = {
            "csoftmax": lambda x=x, t=t, axis=axis: csoftmax.cross_entropy(
                x, t, axis=axis, return_grad=True, num_threads=1),
            "numpy": np_grad,
        }
        if torch is not None:
            # torch takes the class axis second: the short rows are (N, C) already
            xt, tt = torch.from_numpy(x), torch.from_numpy(t)

            def t_ce(xt=xt, tt=tt):
                with torch.no_grad():
                    return F.cross_entropy(xt, tt)

            def t_ce_grad(xt=xt, tt=tt):
                xg = xt.clone().requires_grad_(True)
                loss = F.cross_entropy(xg, tt)
                loss.backward()
                return loss, xg.grad

            out[f"{name} cross_entropy"]["torch"] = t_ce
            out[f"{name} cross_entropy + grad"]["torch"] = t_ce_grad
        if axis == 1 and shape[1] == 21:   # class weights, as for imbalanced segmentation
            w = np.random.default_rng(1).uniform(0.5, 2.0, shape[1]).astype(dtype)
            wt = w[t]

            def np_wgrad(x=x, ti=ti, axis=axis, w=w, wt=wt):
                lse = np_logsumexp(x, axis)
                nll = np.squeeze(lse - np.take_along_axis(x, ti, axis), axis)
                loss = (wt * nll).sum() / wt.sum()
                g = np.exp(x - lse)
                np.put_along_axis(g, ti, np.take_along_axis(g, ti, axis) - 1, axis)
                g *= np.expand_dims(wt / wt.sum(), axis)
                return loss, g

            key = f"{name} cross_entropy(weight=) + grad"
            out[key] = {
                "csoftmax": lambda x=x, t=t, axis=axis, w=w: csoftmax.cross_entropy(
                    x, t, axis=axis, weight=w, return_grad=True, num_threads=1),
                "numpy": np_wgrad,
            }
            if torch is not None:
                wtt = torch.from_numpy(w)

                def t_wgrad(xt=xt, tt=tt, wtt=wtt):
                    xg = xt.clone().requires_grad_(True)
                    loss = F.cross_entropy(xg, tt, weight=wtt)
                    loss.backward()
                    return loss, xg.grad

                out[key]["torch"] = t_wgrad
            # probability targets (soft labels, as in distillation)
            q = csoftmax.softmax(rng.standard_normal(shape).astype(dtype), axis=axis)

            def np_pgrad(x=x, q=q, axis=axis):
                lse = np_logsumexp(x, axis)
                rows = x.size // x.shape[axis]
                loss = (q * (lse - x)).sum() / rows
                g = (np.exp(x - lse) * q.sum(axis=axis, keepdims=True) - q) / rows
                return loss, g

            key = f"{name} cross_entropy(probabilities) + grad"
            out[key] = {
                "csoftmax": lambda x=x, q=q, axis=axis: csoftmax.cross_entropy(
                    x, q, axis=axis, return_grad=True, num_threads=1),
                "numpy": np_pgrad,
            }
            if torch is not None:
                qt = torch.from_numpy(q)

                def t_pgrad(xt=xt, qt=qt):
                    xg = xt.clone().requires_grad_(True)
                    loss = F.cross_entropy(xg, qt)
                    loss.backward()
                    return loss, xg.grad

                out[key]["torch"] = t_pgrad
    return out


def measure(fns, repeat):
    names = list(fns)
    times = {k: [] for k in names}
    for k in names:
        fns[k]()                                  # warm-up
    for _ in range(repeat):
        for k in names:
            t0 = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--repeat", type=int, default=15, help="rounds (median reported)")
    ap.add_argument("--shape", type=int, nargs=2, default=(4096, 1024), metavar=("R", "C"))
    ap.add_argument("--axis", type=int, default=-1, choices=(-1, 0), help="the reduced axis")
    ap.add_argument("--ce-layouts", action="store_true",
                    help="cross_entropy over (N, C, H, W) axis 1 and many short rows")
    args = ap.parse_args()
    if torch is not None:
        torch.set_num_threads(1)
    R, C = args.shape
    rows = []
    for dtype in (np.float32, np.float64):
        todo = ce_layout_cases(dtype) if args.ce_layouts else cases(R, C, dtype, args.axis)
        for op, fns in todo.items():
            t = measure(fns, args.repeat)
            rows.append((op, np.dtype(dtype).name, t))
    info = csoftmax.isa_info()["active"]
    tv = torch.__version__ if torch is not None else "not installed"
    if args.markdown:
        what = "cross_entropy layouts" if args.ce_layouts else f"({R}, {C}), axis {args.axis}"
        print(f"{what}, one thread, ISA {info}, torch {tv}; median ms of {args.repeat}\n")
        print("| op | dtype | csoftmax | NumPy | torch | vs NumPy | vs torch |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for op, dt, t in rows:
            tt = t.get("torch")
            cs = t["csoftmax"]
            torch_ms = "-" if tt is None else f"{tt * 1e3:.2f}"
            vs_torch = "-" if tt is None else f"{tt / cs:.2f}x"
            print(f"| {op} | {dt} | {cs * 1e3:.2f} | {t['numpy'] * 1e3:.2f} | {torch_ms} | "
                  f"{t['numpy'] / cs:.1f}x | {vs_torch} |")
    else:
        for op, dt, t in rows:
            print(f"{op:22s} {dt:8s} " + "  ".join(f"{k} {v * 1e3:8.2f} ms" for k, v in t.items()))


if __name__ == "__main__":
    main()
