"""Tests of the benchmark engine (csoftmax._bench, ``python -m csoftmax bench``).

Fast: one tiny subprocess run of the CLI, and in-process checks that every
implementation the benchmark times computes the same thing (so the benchmark
compares like with like). Peers that are not installed are skipped.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import csoftmax
from csoftmax import _bench as B

# the harness switches the process-wide instruction set and pins thread pools
pytestmark = pytest.mark.thread_unsafe

OPS = B.OPS


def _run_bench(args, cwd, timeout=120):
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(csoftmax.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "csoftmax", "bench"] + list(args),
        cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)


def _impl(name):
    impl = {i.name: i for i in B.implementations()}[name]
    reason = impl.unavailable()
    if reason is not None:
        pytest.skip("%s not installed (%s)" % (name, reason))
    return impl


def _small(shape, dtype, seed=3):
    return B.make_input(shape, dtype, seed=seed)


def _assert_close(got, want, tol, msg=""):
    """max |got - want| / max(1, |want|) <= tol: relative for |values| >= 1,
    absolute below (log_softmax has values near 0 whose relative error is
    not meaningful for a float32 input, nor for the NumPy formulas)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape, msg)
    err = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)), initial=0.0)
    assert err <= tol, "%s: max scaled error %.3g > %.3g" % (msg, err, tol)


CSOFTMAX_NAMES = ["csoftmax[%s]" % isa for isa in csoftmax.isa_info()["supported"]]


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------

def test_bench_cli_json(tmp_path):
    out = tmp_path / "bench.json"
    r = _run_bench(["--quick", "--shapes", "10", "1000", "--impls", "csoftmax",
                    "numpy-naive", "--json", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "[1/12]" in r.stderr and "[12/12]" in r.stderr  # progress on stderr
    assert "vs best peer" in r.stdout and "Issue #4 targets" in r.stdout
    assert "[1/" not in r.stdout

    data = json.loads(out.read_text())
    meta = data["metadata"]
    for key in ("command_line", "timestamp", "versions", "cpu", "isa_info",
                "implementations", "skipped", "settings", "thread_env"):
        assert key in meta, key
    assert meta["isa_info"] == csoftmax.isa_info()
    assert meta["versions"]["csoftmax"] == csoftmax.__version__
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["command_line"][-5:] == ["--impls", "csoftmax", "numpy-naive",
                                         "--json", str(out)]
    assert data["sweep"] == []

    results = data["results"]
    assert [(r["op"], r["dtype"], tuple(r["shape"]), r["axis"]) for r in results] == [
        (op, dt, sh, -1) for op in OPS for dt in ("float32", "float64")
        for sh in ((10,), (1000,))]
    active = "csoftmax[%s]" % csoftmax.isa_info()["active"]
    for rec in results:
        assert set(rec["impls"]) == set(CSOFTMAX_NAMES) | {"numpy-naive"}
        assert rec["rounds"] == B.QUICK_REPEAT
        for name, d in rec["impls"].items():
            assert len(d["times_s"]) == rec["rounds"]
            assert all(t > 0 for t in d["times_s"]), (rec["op"], name)
            assert d["median_s"] > 0 and d["loops"] >= 1 and d["gbps"] > 0
            assert d["check_ok"], (rec["op"], rec["dtype"], name, d["max_err"])
        mem = "read" if rec["op"] == "logsumexp" else "copy"
        assert set(rec["probes"]) == {mem, "exp", "np.exp"}
        for d in rec["probes"].values():
            assert len(d["times_s"]) == rec["rounds"] and d["median_s"] > 0
        assert rec["csoftmax"] == active
        assert rec["best_peer"] == "numpy-naive"
        assert rec["speedup_vs_naive"] == pytest.approx(
            rec["impls"]["numpy-naive"]["median_s"] / rec["impls"][active]["median_s"])
        assert rec["speedup_vs_best_peer"] == pytest.approx(rec["speedup_vs_naive"])
        assert rec["limit_s"] == max(rec["probes"][mem]["median_s"],
                                     rec["probes"]["exp"]["median_s"])
        assert rec["vs_limit"] > 0 and rec["vs_np_exp"] > 0
        assert rec["in_nbytes"] == rec["size"] * np.dtype(rec["dtype"]).itemsize


def test_bench_cli_usage_errors(tmp_path):
    r = _run_bench(["--impls", "no-such-impl", "--quick"], tmp_path)
    assert r.returncode == 2 and "unknown implementation" in r.stderr
    r = _run_bench(["--shapes", "4x4@2"], tmp_path)
    assert r.returncode == 2
    r = _run_bench(["--help"], tmp_path)
    assert r.returncode == 0
    for flag in ("--quick", "--json", "--plot", "--ops", "--dtypes", "--shapes",
                 "--impls", "--repeat", "--markdown"):
        assert flag in r.stdout
    r = _run_bench(["--list"], tmp_path)
    assert r.returncode == 0
    for name in CSOFTMAX_NAMES + list(B.PEER_NAMES):
        assert name in r.stdout


def test_plain_main_mentions_bench():
    from csoftmax import __main__ as cli
    assert "csoftmax bench" in cli.build_parser().format_help()


def test_parse_case():
    assert B.parse_case("10") == ((10,), -1)
    assert B.parse_case("4096x1024") == ((4096, 1024), -1)
    assert B.parse_case("4096,1024@0") == ((4096, 1024), 0)
    for bad in ("0", "x", "4x4@2", "4@-2", "a", "4x4@z"):
        with pytest.raises(Exception):
            B.parse_case(bad)


def test_select_implementations():
    sel, _ = B.select_implementations(["csoftmax", "numpy_naive"])
    assert [i.name for i in sel] == CSOFTMAX_NAMES + ["numpy-naive"]
    with pytest.raises(ValueError):
        B.select_implementations(["numpy"])
    with pytest.raises(ValueError):
        B.select_implementations(["csoftmax[sse9]"])


def test_run_cell_restores_isa_and_tables(tmp_path):
    before = csoftmax.isa_info()["active"]
    impls, _ = B.select_implementations(["csoftmax", "numpy-naive", "numpy-best"])
    recs = B.run_matrix(["softmax", "logsumexp"], ["float32"], [((6, 5), 0)], impls,
                        repeat=1, target=1e-4, budget=None)
    assert csoftmax.isa_info()["active"] == before
    assert [r["op"] for r in recs] == ["softmax", "logsumexp"]
    text = B.format_table(recs)
    assert "csoftmax[%s]" % before in text and "(6, 5)" in text
    md = B.format_table(recs, markdown=True).splitlines()
    assert all(line.startswith("|") and line.endswith("|") for line in md)
    assert len(md) == 2 + len(recs)
    assert "target checks met" in B.format_targets(recs)
    assert "copy" in B.format_probes(recs)


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    impls, _ = B.select_implementations(["csoftmax", "numpy-naive"])
    recs = B.run_sweep(impls, repeat=1, target=1e-4,
                       cases=B.sweep_cases(log2_total=8, ks=(1, 2, 3)))
    assert [r["shape"] for r in recs] == [[128, 2], [64, 4], [32, 8]]
    path = tmp_path / "sweep.png"
    B.plot_sweep(recs, str(path), {"cpu": "test", "isa_info": csoftmax.isa_info()})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------
# like with like: NumPy versions agree with csoftmax
# ---------------------------------------------------------------------------

CASES_SMALL = [((10,), -1), ((7, 33), -1), ((33, 7), 0), ((300, 10), -1),
               ((4, 50), 1), ((3, 200, 5), 1)]


@pytest.mark.parametrize("name", ["numpy-naive", "numpy-best"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", OPS)
def test_numpy_versions_match_csoftmax(name, dtype, op):
    """Relative difference <= 1e-6 (float64: the formulas are exact to a few
    ULP, so far below; float32: inputs of moderate range, a few float32 ULP)."""
    impl = _impl(name)
    for shape, axis in CASES_SMALL:
        x = _small(shape, dtype) / 4  # standard normal: |x - max| stays small
        want = getattr(csoftmax, op)(x, axis)
        got = impl.prepare(op, x, axis).result()
        assert got.shape == want.shape and got.dtype == want.dtype, (shape, axis)
        rtol = 1e-6 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=0,
                                   err_msg="%s %s %s axis=%d" % (op, dtype, shape, axis))


@pytest.mark.parametrize("op", OPS)
def test_numpy_best_block_paths(op):
    """Every code path of numpy-best (blocks of rows, long slices in chunks,
    short rows) against the float64 formula."""
    for shape, axis, block in [((50, 40), -1, 100), ((3, 5000), -1, 64),
                               ((300, 64), 0, 256), ((2, 30, 40), 1, 100),
                               ((200, 3), -1, 64), ((1, 7), -1, 2), ((500, 32), -1, 1000)]:
        x = _small(shape, "float64")
        want = B.NUMPY_IMPLS[op](x, axis)
        got = B.numpy_best_prepare(op, x, axis, block=block)()
        _assert_close(got, want, 1e-13, "%s %s axis=%d block=%d" % (op, shape, axis, block))


def test_naive_is_the_issue_formula():
    x = _small((5, 6), "float64")
    e = np.exp(x - x.max(0, keepdims=True))
    np.testing.assert_array_equal(B.numpy_softmax(x, 0), e / e.sum(0, keepdims=True))


# ---------------------------------------------------------------------------
# every implementation (peers when installed) computes the right thing
# ---------------------------------------------------------------------------

ALL_NAMES = [i.name for i in B.implementations()]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_adapter_results(name):
    impl = _impl(name)
    before = csoftmax.isa_info()["active"]
    try:
        for dtype in ("float32", "float64"):
            for shape, axis in [((10,), -1), ((6, 7), -1), ((6, 7), 0)]:
                x = _small(shape, dtype)
                for op in OPS:
                    got = np.asarray(impl.prepare(op, x, axis).result())
                    want = B.NUMPY_IMPLS[op](x.astype(np.float64), axis)
                    assert got.shape == want.shape, (op, shape, axis, got.shape)
                    assert got.dtype == np.dtype(dtype), (op, dtype, got.dtype)
                    tol = 1e-6 if dtype == "float32" else 1e-13
                    _assert_close(got, want, tol,
                                  "%s %s %s %s axis=%d" % (name, op, dtype, shape, axis))
    finally:
        csoftmax._core._set_isa(before)


@pytest.mark.parametrize("name", ["copy", "read", "exp", "np.exp"])
def test_probes_run(name):
    x = _small((3, 5), "float64")
    before = csoftmax.isa_info()["active"]
    p = B.prepare_probe(name, x)
    p.result()
    if name == "copy":
        np.testing.assert_array_equal(p.result(), x)
    assert csoftmax.isa_info()["active"] == before


def test_exp_probe_counts_every_element(monkeypatch):
    """The exp probe covers exactly x.size elements in cache-sized calls."""
    calls = []
    core = B._core()
    real = core._exp_nonpos
    monkeypatch.setattr(core, "_exp_nonpos", lambda a: calls.append(a.size) or real(a))
    x = np.zeros(B.EXP_CHUNK * 2 + 5)
    B.prepare_probe("exp", x).call()
    assert sum(calls) == x.size and max(calls) <= B.EXP_CHUNK
