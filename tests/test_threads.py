"""Threads: the GIL is released during the kernels (deterministic check, no
timing of speed-ups), concurrent calls on shared input give the serial
results bit for bit, and in-place calls on disjoint slices do not interfere."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import csoftmax
from conftest import assert_bitwise, ulp_diff

OPS = (csoftmax.softmax, csoftmax.log_softmax, csoftmax.logsumexp)


def _stamps_during(call):
    """Runs call() in a thread while this thread records time stamps.
    Returns (call's result, start, end, stamps as an array)."""
    window = {}
    done = threading.Event()

    def worker():
        window["start"] = time.perf_counter()
        window["result"] = call()
        window["end"] = time.perf_counter()
        done.set()

    stamps = []
    t = threading.Thread(target=worker)
    t.start()
    while not done.is_set():
        stamps.append(time.perf_counter())
    t.join()
    return window["result"], window["start"], window["end"], np.array(stamps)


@pytest.mark.thread_unsafe      # a timing window: alone on the interpreter
def test_gil_released_during_kernel():
    n = 2 ** 27
    x = np.broadcast_to(np.float64(1.0), (n,))    # zero stride: no memory
    result, start, end, stamps = _stamps_during(lambda: csoftmax.logsumexp(x))
    want = np.float64(1.0 + np.log(n))      # logsumexp of n ones = 1 + log(n)
    assert int(ulp_diff(result, want, np.float64)) <= 2, result
    inside = np.count_nonzero((stamps > start) & (stamps < end))
    # the middle half of the call: a call holding the GIL leaves the main
    # thread at most the switch interval at each end of the window
    q = (end - start) / 4
    middle = np.count_nonzero((stamps > start + q) & (stamps < end - q))
    assert inside >= 100 and middle >= 100, (inside, middle, end - start)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_concurrent_calls_bitwise_equal_to_serial(dtype):
    rng = np.random.default_rng(99)
    x = (rng.standard_normal((64, 257)) * 7).astype(dtype)
    x[3, 5] = np.inf
    x[7, :] = -np.inf
    x[9, 100] = np.nan
    x.flags.writeable = False                     # shared, read-only
    views = [(x, -1), (x.T, 0), (x[::-1, ::2], 1), (x, None)]

    def serial_call(op, v, a):
        # into a fresh C-order out, like the threads below (the layout of an
        # allocated result may differ; that is tested elsewhere)
        r = op(v, axis=a)
        if np.ndim(r) == 0:
            return r
        return op(v, axis=a, out=np.empty(np.shape(r), dtype))

    serial = [[serial_call(op, v, a) for op in OPS] for v, a in views]
    nthreads, rounds = 8, 50
    barrier = threading.Barrier(nthreads)

    def work(tid):
        outs = [[np.empty(np.shape(s), dtype) for s in row] for row in serial]
        bad = 0
        barrier.wait()
        for r in range(rounds):
            for (v, a), row, orow in zip(views, serial, outs):
                for op, s, o in zip(OPS, row, orow):
                    if o.ndim == 0:
                        got = op(v, axis=a)           # scalar result
                    else:
                        got = op(v, axis=a, out=o)
                        assert got is o
                    bad += np.asarray(got).tobytes() != np.asarray(s).tobytes()
        return bad

    with ThreadPoolExecutor(nthreads) as ex:
        mismatches = list(ex.map(work, range(nthreads)))
    assert mismatches == [0] * nthreads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [csoftmax.softmax, csoftmax.log_softmax],
                         ids=["softmax", "log_softmax"])
def test_in_place_on_disjoint_slices(op, dtype):
    rng = np.random.default_rng(5)
    base = (rng.standard_normal((96, 301)) * 4).astype(dtype)
    want = op(base)
    want_cols = op(base, axis=0)
    nthreads = 6
    blocks = [slice(b[0], b[-1] + 1) for b in np.array_split(np.arange(base.shape[1]), nthreads)]
    for axis, target in ((-1, want), (0, want_cols)):
        a = base.copy()
        barrier = threading.Barrier(nthreads)

        def work(tid, a=a, axis=axis):
            barrier.wait()
            for _ in range(20):
                if axis == -1:       # rows tid, tid + 6, ...: disjoint strided slices
                    sl = a[tid::nthreads]
                    src = base[tid::nthreads]
                else:                # column blocks
                    sl = a[:, blocks[tid]]
                    src = base[:, blocks[tid]]
                sl[...] = src
                assert op(sl, axis=axis, out=sl) is sl

        with ThreadPoolExecutor(nthreads) as ex:
            list(ex.map(work, range(nthreads)))
        assert_bitwise(a, target)


@pytest.mark.slow
@pytest.mark.thread_unsafe      # a timing window: alone on the interpreter
@pytest.mark.parametrize("kind", ["float16", "byteswapped", "non-contiguous axes"])
def test_gil_released_for_conversions_too(kind):
    """The float16 path (converted to float32 and back) and the copies made
    for byte-swapped input or reduced axes that do not merge run without
    the GIL as well: a Python thread keeps running through every tenth of
    the call."""
    rng = np.random.default_rng(3)
    axis = -1
    if kind == "float16":
        x = rng.standard_normal(2 ** 25).astype(np.float16)
    elif kind == "byteswapped":
        x = rng.standard_normal(2 ** 24).astype(">f8")
    else:                        # axes (0, 2) of a C array: one transposing copy
        x = rng.standard_normal((2 ** 10, 2 ** 4, 2 ** 10)).astype(np.float32)
        axis = (0, 2)
    _, start, end, stamps = _stamps_during(
        lambda: csoftmax.softmax(x, axis=axis, num_threads=1))
    edges = np.linspace(start, end, 11)
    counts, _ = np.histogram(stamps, bins=edges)
    # a phase holding the GIL for a tenth of the call would empty a bin
    assert (counts >= 3).all(), (counts, end - start)
