"""Threads inside one call: num_threads=, set_num_threads/get_num_threads, the
OpenMP defaults (OMP_NUM_THREADS, affinity mask, threadpoolctl), and results
bitwise identical to the serial ones for every thread count."""

import os
import subprocess
import sys

import numpy as np
import pytest

import csoftmax
from csoftmax import _core
from conftest import assert_bitwise

OPS = (csoftmax.softmax, csoftmax.log_softmax, csoftmax.logsumexp)
OPENMP = csoftmax.isa_info()["openmp"] > 0
needs_openmp = pytest.mark.skipif(not OPENMP, reason="built without OpenMP: calls are serial")
GRAIN = 32768          # CSM_GRAIN in kernels.inc: elements per thread at least
CHUNK = 8192           # CSM_CHUNK: chunk of a row split among threads
ROUND = 256 * CHUNK    # CSM_ROUND chunks: one round of a split row


def _long_row(n, dtype, seed):
    """A row whose maximum, special values and tiny entries sit in
    different chunks (and rounds) of the split."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * 30).astype(dtype)
    x[n // 3] = 200.0                 # the maximum, in a middle chunk
    x[min(5 * CHUNK + 7, n - 5)] = -np.inf
    x[n - 3] = -1e4                   # exp underflows: tiny/subnormal paths
    return x


def _layouts(dtype):
    rng = np.random.default_rng(7)
    wide = (rng.standard_normal((300, 1500)) * 8).astype(dtype)
    return {
        "one long row": (_long_row(9 * CHUNK + 123, dtype, 1)[None, :], -1),
        "two rounds": (_long_row(ROUND + 5 * CHUNK + 3, dtype, 2)[None, :], -1),
        "three rows": (_long_row(9 * CHUNK, dtype, 3).reshape(3, -1), -1),
        "strided row": (_long_row(24 * CHUNK, dtype, 4)[::-3][None, :], -1),
        "many rows": (wide, -1),
        "columns": (wide, 0),
        "short rows": ((rng.standard_normal((20000, 7)) * 8).astype(dtype), -1),
        "batched cols": ((rng.standard_normal((4, 300, 200)) * 8).astype(dtype), 1),
        "all": (wide, None),
    }


@needs_openmp
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS, ids=lambda f: f.__name__)
def test_any_thread_count_gives_the_serial_bits(op, dtype):
    for name, (x, axis) in _layouts(dtype).items():
        want = op(x, axis=axis, num_threads=1)
        assert _core._last_team() == 1, name
        teams = set()
        for nt in (2, 3, 5):
            got = op(x, axis=axis, num_threads=nt)
            teams.add(_core._last_team())
            assert_bitwise(got, want, f"{name}, num_threads={nt}")
        assert max(teams) > 1, (name, teams)       # the split did happen


@needs_openmp
@pytest.mark.parametrize("op", [csoftmax.softmax, csoftmax.log_softmax],
                         ids=lambda f: f.__name__)
def test_threads_in_place_and_into_out(op):
    x = _long_row(8 * CHUNK, np.float64, 9)
    want = op(x, num_threads=1)
    out = np.full_like(x, 7.0)
    assert op(x, out=out, num_threads=2) is out
    assert _core._last_team() == 2
    assert_bitwise(out, want)
    y = x.copy()
    assert op(y, out=y, num_threads=2) is y
    assert_bitwise(y, want)


@needs_openmp
def test_special_rows_split_among_threads():
    n = 16 * CHUNK
    for special, expect in ((np.nan, "nan"), (np.inf, "onehot")):
        x = np.zeros(n)
        x[3 * CHUNK + 1] = special
        got = csoftmax.softmax(x, num_threads=4)
        assert_bitwise(got, csoftmax.softmax(x, num_threads=1))
        if expect == "nan":
            assert np.isnan(got).all()
        else:
            assert got[3 * CHUNK + 1] == 1.0 and np.count_nonzero(got) == 1


def test_small_calls_stay_serial():
    for shape in [(10,), (1000,), (GRAIN,), (64, 64)]:
        x = np.ones(shape)
        for op in OPS:
            op(x, num_threads=8)
            assert _core._last_team() == 1, (op.__name__, shape)


@needs_openmp
def test_threads_grow_with_the_size():
    x = np.zeros((1, 3 * GRAIN))       # three grains: three threads at most
    csoftmax.softmax(x, num_threads=8)
    assert _core._last_team() == 3
    x = np.zeros((1, 2 * GRAIN - 1))   # under two grains: serial
    csoftmax.softmax(x, num_threads=8)
    assert _core._last_team() == 1


def test_num_threads_validation():
    x = np.zeros(4)
    for bad, exc in ((0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError),
                     ("2", TypeError), (np.float64(2), TypeError)):
        for op in OPS:
            with pytest.raises(exc, match="num_threads"):
                op(x, num_threads=bad)
        with pytest.raises(exc, match="num_threads"):
            csoftmax.set_num_threads(bad)
    for op in OPS:                         # numpy integers are integers
        op(x, num_threads=np.int64(2))
        op(x, num_threads=10 ** 6)         # capped, not refused


@pytest.mark.thread_unsafe   # changes the process-wide default
def test_set_and_get_num_threads():
    auto = csoftmax.get_num_threads()
    assert auto >= 1
    try:
        csoftmax.set_num_threads(3)
        assert csoftmax.get_num_threads() == 3
        if OPENMP:
            csoftmax.softmax(np.zeros((1, 8 * GRAIN)))
            assert _core._last_team() == 3
            csoftmax.softmax(np.zeros((1, 8 * GRAIN)), num_threads=1)   # the call wins
            assert _core._last_team() == 1
    finally:
        csoftmax.set_num_threads(None)
    assert csoftmax.get_num_threads() == auto


def _run_child(code, env=None):
    e = dict(os.environ)
    e.pop("OMP_NUM_THREADS", None)
    e.update(env or {})
    r = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True,
                       timeout=120, cwd=os.path.dirname(os.path.dirname(csoftmax.__file__)))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@needs_openmp
def test_default_follows_omp_num_threads():
    code = "import csoftmax; print(csoftmax.get_num_threads())"
    assert _run_child(code, {"OMP_NUM_THREADS": "1"}) == "1"
    assert _run_child(code, {"OMP_NUM_THREADS": "3"}) == "3"


@needs_openmp
@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs an affinity mask of two CPUs or more")
def test_default_follows_the_affinity_mask():
    cpu = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{cpu}}}); import csoftmax, numpy as np; "
            "csoftmax.softmax(np.zeros((1, 1 << 20))); "
            "print(csoftmax.get_num_threads(), csoftmax._core._last_team())")
    assert _run_child(code) == "1 1"


@needs_openmp
@pytest.mark.thread_unsafe   # threadpoolctl changes OpenMP's process-wide setting
def test_threadpool_limits_make_calls_serial():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.zeros((1, 8 * GRAIN))
    csoftmax.softmax(x, num_threads=2)
    assert _core._last_team() == 2
    with threadpoolctl.threadpool_limits(1):
        assert csoftmax.get_num_threads() == 1
        csoftmax.softmax(x)
        assert _core._last_team() == 1
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        assert csoftmax.get_num_threads() == 2
        csoftmax.softmax(x)
        assert _core._last_team() == 2
    libs = {d["internal_api"] for d in threadpoolctl.threadpool_info()
            if d["filepath"] and "gomp" in os.path.basename(d["filepath"])}
    assert libs == {"openmp"}


def test_isa_info_reports_openmp():
    info = csoftmax.isa_info()
    assert isinstance(info["openmp"], int) and info["openmp"] >= 0
    if not OPENMP:
        assert csoftmax.get_num_threads() == 1
