"""csoftmax against NumPy (and scipy.special, torch when installed), one run.

    pytest benchmarks/bench_ops.py --benchmark-group-by=param:op,param:dtype,param:shape

Each benchmark group holds the implementations of one (op, dtype, shape) cell,
so their ratios are measured side by side in the same run.
"""
import numpy as np
import pytest

import csoftmax

SHAPES = [(10,), (1000,), (4096, 1024), (65536, 10), (1, 1_000_000)]
DTYPES = ["float32", "float64"]
OPS = ["softmax", "log_softmax", "logsumexp"]


def numpy_naive(op, x):
    m = x.max(-1, keepdims=True)
    if op == "softmax":
        e = np.exp(x - m)
        return e / e.sum(-1, keepdims=True)
    s = np.log(np.sum(np.exp(x - m), -1, keepdims=True))
    return (x - m) - s if op == "log_softmax" else (m + s)[..., 0]


def _impls():
    impls = {
        "csoftmax": lambda op, x, out: getattr(csoftmax, op)(x, out=out),
        "numpy_naive": lambda op, x, out: numpy_naive(op, x),
    }
    try:
        import scipy.special as sp

        impls["scipy"] = lambda op, x, out: getattr(sp, op)(x, axis=-1)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)

        def torch_impl(op, x, out):
            t = torch.from_numpy(x)
            return getattr(torch, op)(t, -1) if op != "logsumexp" else torch.logsumexp(t, -1)

        impls["torch"] = torch_impl
    except ImportError:
        pass
    return impls


IMPLS = _impls()


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def bench_op(benchmark, rng, op, dtype, shape, impl):
    x = rng.standard_normal(shape).astype(dtype)
    out = np.empty(shape[:-1], dtype) if op == "logsumexp" else np.empty_like(x)
    fn = IMPLS[impl]
    benchmark.group = f"{op} {dtype} {'x'.join(map(str, shape))}"
    benchmark(fn, op, x, out)
