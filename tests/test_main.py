"""Tests for the ``python -m csoftmax`` report/demo/benchmark program.

The program is run as a subprocess from an empty temporary directory, so the
source tree is not put on sys.path by the working directory; the subprocess
imports the same csoftmax package this test process imports (its parent
directory is put first on PYTHONPATH).
"""

import json
import os
import subprocess
import sys

import pytest

import csoftmax
from csoftmax import __main__ as cli


def _run(args, cwd, tiny=False, timeout=120):
    env = dict(os.environ)
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(csoftmax.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    env.pop("CSOFTMAX_BENCH_TINY", None)
    if tiny:
        env["CSOFTMAX_BENCH_TINY"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "csoftmax"] + list(args),
        cwd=str(cwd), env=env, capture_output=True, text=True,
        timeout=timeout)


def _check_demo(stdout):
    assert "csoftmax %s" % csoftmax.__version__ in stdout
    assert "numpy" in stdout and "python" in stdout and "isa" in stdout
    # logsumexp([0, -40]) and log_softmax([0, -40])[0], exactly
    assert "logsumexp([0, -40])" in stdout
    lines = stdout.splitlines()
    lse = [l for l in lines if l.strip().startswith("logsumexp([0, -40])")][0]
    assert lse.split("=", 1)[1].split()[0] == "4.248354255291589e-18"
    lsm = [l for l in lines
           if l.strip().startswith("log_softmax([0, -40])[0]")][0]
    assert lsm.split("=", 1)[1].split()[0] == "-4.248354255291589e-18"
    sm_big = [l for l in lines
              if l.strip().startswith("softmax([1000., 1000.])")][0]
    assert "[0.5, 0.5]" in sm_big
    one_hot = [l for l in lines if l.strip().startswith("softmax([0, inf, 1])")][0]
    assert "[0.0, 1.0, 0.0]" in one_hot
    in_place = [l for l in lines if "softmax(x, out=x)" in l][0]
    assert "returns x: True" in in_place


def test_help(tmp_path):
    r = _run(["--help"], tmp_path)
    assert r.returncode == 0, r.stderr
    for flag in ("--quick", "--json", "--no-bench", "--repeat"):
        assert flag in r.stdout


def test_demo_only(tmp_path):
    r = _run(["--quick", "--no-bench"], tmp_path)
    assert r.returncode == 0, r.stderr
    _check_demo(r.stdout)
    assert "csoftmax ms" not in r.stdout  # no benchmark table


def test_bad_repeat_is_usage_error(tmp_path):
    r = _run(["--repeat", "0", "--no-bench"], tmp_path)
    assert r.returncode == 2


def test_benchmark_json(tmp_path):
    out = tmp_path / "results.json"
    r = _run(["--quick", "--json", str(out)], tmp_path, tiny=True)
    assert r.returncode == 0, r.stderr
    _check_demo(r.stdout)
    assert "csoftmax ms" in r.stdout and "numpy ms" in r.stdout
    assert "[1/" in r.stderr  # progress goes to stderr

    data = json.loads(out.read_text())
    meta = data["metadata"]
    for key in ("version", "numpy", "python", "cpu", "isa",
                "command_line", "timestamp"):
        assert key in meta, key
    assert meta["version"] == csoftmax.__version__
    assert meta["isa"] == csoftmax.isa_info()["active"]
    assert meta["repeat"] == 3

    results = data["results"]
    # 3 ops x 2 dtypes x 2 tiny shapes
    assert len(results) == 12
    cells = {(r["op"], r["dtype"], tuple(r["shape"])) for r in results}
    assert cells == {(op, dt, sh)
                     for op in ("softmax", "log_softmax", "logsumexp")
                     for dt in ("float32", "float64")
                     for sh in ((10,), (1000,))}
    for rec in results:
        assert set(rec["times_s"]) >= {"csoftmax", "numpy"}
        for name, ts in rec["times_s"].items():
            assert len(ts) == 3
            assert all(t > 0 for t in ts), (rec["op"], name, ts)
            assert rec["median_s"][name] > 0
            assert rec["loops"][name] >= 1
        assert rec["speedup_vs_numpy"] > 0
        assert rec["csoftmax_gbps"] > 0
        assert rec["in_nbytes"] > 0 and rec["out_nbytes"] > 0
        tol = 1e-4 if rec["dtype"] == "float32" else 1e-10
        assert rec["max_abs_diff_vs_float64_numpy"] < tol, rec


# In-process checks of the small helpers (no subprocess, fast).

@pytest.mark.parametrize("seconds, text", [
    (0.0123456, "12.3"), (0.123456, "123"), (0.00123456, "1.23"),
    (1.23456e-5, "0.0123"), (5e-4, "0.500"), (1.0, "1000"),
])
def test_fmt_ms(seconds, text):
    assert cli.fmt_ms(seconds) == text


def test_fmt_speedup_and_shape():
    assert cli.fmt_speedup(4.123) == "4.1x"
    assert cli.fmt_speedup(12.6) == "13x"
    assert cli.fmt_speedup(0.456) == "0.46x"
    assert cli.fmt_shape((10,)) == "(10,)"
    assert cli.fmt_shape((4096, 1024)) == "(4096, 1024)"


def test_numpy_reference_formulas():
    import numpy as np
    x = np.array([[13.0, 31.0, 5.0], [0.0, -1.0, 2.0]])
    sm = cli.numpy_softmax(x)
    np.testing.assert_allclose(sm.sum(axis=-1), 1.0)
    np.testing.assert_allclose(cli.numpy_log_softmax(x), np.log(sm))
    np.testing.assert_allclose(cli.numpy_logsumexp(x),
                               np.log(np.sum(np.exp(x), axis=-1)))
    assert cli.numpy_logsumexp(x).shape == (2,)


def test_main_no_bench_in_process(capsys):
    assert cli.main(["--no-bench"]) == 0
    out = capsys.readouterr().out
    assert "Demo" in out and csoftmax.__version__ in out
