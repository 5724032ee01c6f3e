"""csoftmax against every peer, as a pytest-benchmark matrix (issue #4).

    pytest benchmarks/ [--benchmark-json FILE] [-k "float32 and 4096x1024"]

Not collected by plain ``pytest`` (testpaths = tests). The full matrix takes
a while (~10-20 min: pytest-benchmark runs >= 5 rounds of every call, and
scipy on (131072, 512) float64 takes seconds per call); select with ``-k``.
``python -m csoftmax bench`` measures the same matrix faster, round-robin, as
one table.

The matrix, the implementations and the machine-limit probes come from
``csoftmax._bench`` (one definition of each peer adapter; see its docstring):
ops softmax / log_softmax / logsumexp x float32 / float64 x the shapes of
``_bench.CASES`` (axis -1, and (4096, 1024) along axis 0), implementations
csoftmax[ISA] for each supported instruction set, numpy-naive, numpy-best,
scipy, torch (1 thread), onnxruntime (1 thread), jax (jit, 1 thread) when
importable, and the probes copy / read / exp / np.exp where they apply to the
cell. Each pytest-benchmark group is one (op, dtype, shape, axis) cell and
holds all of them, so ratios are read inside a group (``--benchmark-group-by``
is not needed). ``extra_info`` carries the bytes moved (for GB/s) and the
result's error against a float64 NumPy reference.
"""
import functools

import pytest

import csoftmax
from csoftmax import _bench as B

pytest.importorskip("pytest_benchmark")

IMPLS = {impl.name: impl for impl in B.implementations()}
NAMES = list(IMPLS) + ["probe:" + p for p in B.PROBE_NAMES]


def _case_id(case):
    shape, axis = case
    return "x".join(map(str, shape)) + ("" if axis == -1 else "-axis%d" % axis)


@functools.lru_cache(maxsize=1)
def _input(shape, dtype):
    B.clear_caches()  # buffers of the previous input
    return B.make_input(shape, dtype)


# dtype outermost, impl innermost: consecutive benchmarks share the input
@pytest.mark.parametrize("impl", NAMES)
@pytest.mark.parametrize("op", B.OPS)
@pytest.mark.parametrize("case", B.CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", B.DTYPES)
def bench_op(benchmark, dtype, case, op, impl):
    shape, axis = case
    x = _input(shape, dtype)
    isa0 = csoftmax.isa_info()["active"]
    if impl.startswith("probe:"):
        if impl[6:] not in B.probe_names(op, x.size):
            pytest.skip("probe does not apply to this cell")
        prepared = B.prepare_probe(impl[6:], x, isa0)
        kind = "probe"
    else:
        reason = IMPLS[impl].unavailable()
        if reason is not None:
            pytest.skip("%s not available: %s" % (impl, reason))
        prepared = IMPLS[impl].prepare(op, x, axis)
        kind = IMPLS[impl].kind
    nin, nout = B.cell_nbytes(op, shape, dtype, axis)
    benchmark.group = "%s %s %s axis=%d" % (op, dtype, B.fmt_shape(shape), axis)
    benchmark.extra_info.update({"op": op, "dtype": dtype, "shape": list(shape),
                                 "axis": axis, "impl": impl, "kind": kind,
                                 "in_nbytes": nin, "out_nbytes": nout})
    try:
        got = prepared.result()  # also the warm-up
        if kind != "probe":
            err = B.result_error(op, got, B.reference(op, x, axis), shape, axis)
            benchmark.extra_info["max_err"] = err
            benchmark.extra_info["check_ok"] = bool(err <= B.ERR_TOL[dtype])
        del got
        if prepared.activate is not None:
            prepared.activate()
        benchmark(prepared.call)
    finally:
        csoftmax._core._set_isa(isa0)
