"""The fuzz harness (tests/fuzz/fuzz_csoftmax.py) under plain pytest,
without atheris: every input kept in tests/fuzz/corpus/ (seeds, and the
reproducer of every crash the fuzzer finds, named after what it found), and
seeded random inputs. Also the fuzzer's two accuracy findings, both fixed,
as regression tests."""

import importlib.util
import pathlib

import numpy as np
import pytest

from conftest import ulp_diff

HERE = pathlib.Path(__file__).resolve().parent / "fuzz"
_spec = importlib.util.spec_from_file_location("fuzz_csoftmax", HERE / "fuzz_csoftmax.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

CORPUS = sorted(p for p in (HERE / "corpus").iterdir() if p.is_file())


def test_corpus_is_there():
    assert len(CORPUS) >= 10, CORPUS


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_corpus_input(path):
    fuzz.run_one(path.read_bytes())


def test_random_inputs():
    """2000 random byte strings: every check of the harness, both outcomes."""
    before = dict(fuzz.STATS)
    rng = np.random.default_rng(20240607)
    for _ in range(2000):
        fuzz.run_one(rng.integers(0, 256, rng.integers(0, 160)).astype(np.uint8).tobytes())
    ok = fuzz.STATS["ok"] - before["ok"]
    err = fuzz.STATS["errors"] - before["errors"]
    assert ok > 1000 and err > 1000, (ok, err)


def test_random_inputs_large_enough_for_threads():
    """40 random inputs with one axis of 16385 to 100003 elements (the last
    byte 0xFF): their calls with num_threads 2, 3, 5 or None are split among
    threads and must give the serial result bit for bit."""
    before = dict(fuzz.STATS)
    rng = np.random.default_rng(20261201)
    for _ in range(40):
        data = rng.integers(0, 256, rng.integers(40, 160)).astype(np.uint8)
        data[-1] = 0xFF
        fuzz.run_one(data.tobytes())
    big = fuzz.STATS["big"] - before["big"]
    ok = fuzz.STATS["ok"] - before["ok"]
    assert big >= 25 and ok >= 20, (big, ok)


def test_harness_catches_wrong_behaviour(monkeypatch):
    """The harness is not vacuous: a softmax whose result depends on the
    layout, one 6 ULP off everywhere, and one that writes out before
    raising are each reported."""
    real = fuzz.FUNCS

    def layout_dependent(x, **kw):
        r = real[0](x, **kw)
        a = np.asarray(r)
        if not np.asarray(x).flags.c_contiguous and a.dtype == np.float64 and a.size \
                and np.isfinite(a.flat[0]) and a.flat[0] > 0:
            a.flat[0] = np.nextafter(a.flat[0], 2.0)
        return r

    def six_ulp_off(x, **kw):
        r = real[0](x, **kw)
        a = np.asarray(r)
        if a.dtype == np.float64 and a.size and np.isfinite(a.flat[0]) and a.flat[0] > 0.01:
            for _ in range(6):
                a.flat[0] = np.nextafter(a.flat[0], 2.0)
        return r

    def writes_then_raises(x, **kw):
        out = kw.get("out")
        if isinstance(out, np.ndarray) and out.flags.writeable and out.size:
            out.flat[0] = 12345.0
        return real[0](x, **kw)

    for bad, what in ((layout_dependent, "not bitwise equal"), (six_ulp_off, "ULP >"),
                      (writes_then_raises, "out written by a failed call")):
        monkeypatch.setattr(fuzz, "FUNCS", (bad,) + real[1:])
        rng = np.random.default_rng(1)
        found = []
        for _ in range(3000):
            try:
                fuzz.run_one(rng.integers(0, 256, 120).astype(np.uint8).tobytes())
            except AssertionError as e:
                found.append(str(e))
                if what in str(e):
                    break
        assert any(what in m for m in found), (what, found[:3])
    monkeypatch.setattr(fuzz, "FUNCS", real)


# --------------------------------------------------------------------------
# the fuzzer's accuracy findings (see the issue 7 report)
# --------------------------------------------------------------------------

def _exact(x, what):
    mpmath = pytest.importorskip("mpmath")
    from _oracle import workdps             # mpmath's precision is process-wide: locked
    with workdps(800):
        v = [mpmath.mpf(float(t)) for t in x]
        L = mpmath.log(mpmath.fsum([mpmath.exp(t) for t in v]))
        return float(L if what == "logsumexp" else v[0] - L)


@pytest.mark.parametrize("what", ["log_softmax", "logsumexp"])
@pytest.mark.parametrize("k, d", [(100, -712.0), (895, -716.0), (1000, -714.0), (3, -745.0)])
def test_sum_of_subnormal_terms(what, k, d):
    """Fuzz finding, fixed: float64 results made of exp terms below 2**-1022
    were 23 to 405 ULP off (the terms rounded on the subnormal grid before
    the sum); now summed as scaled normal numbers (precise.c). Rows, columns
    (the strip kernel) and every instruction set give the same bits."""
    import csoftmax
    x = np.array([0.0] + [d] * k)
    cols = np.ascontiguousarray(np.tile(x, (130, 1)).T)        # > one strip of columns
    want = _exact(x, what)
    if what == "log_softmax":
        got = [csoftmax.log_softmax(x)[0], csoftmax.log_softmax(cols, axis=0)[0]]
    else:
        got = [csoftmax.logsumexp(x), csoftmax.logsumexp(cols, axis=0)]
    for g in got:
        assert int(np.max(ulp_diff(g, want, np.float64))) <= 2, (g, want)
    assert np.all(np.asarray(got[1]) == got[0])


@pytest.mark.parametrize("x", [
    [-1.80586275e-306, -704.0],                        # the fuzzer's input
    [-3.6117255027045336e-306, -704.0, -704.0, -745.5, -750.0] + [-746.2] * 300,  # 15
    [-3.6117255027045336e-306, -704.0, -704.0, -745.5, -750.0],                   # -36
    [-5e-324, -745.0, -744.5],
    [-3.4e-306, -704.0, -704.1, -800.0],
    [-1e-310, -744.0, -744.0, -744.0],
], ids=["fuzz", "many", "many-less-300", "min-subnormal", "three", "subnormal-max"])
def test_cancellation_at_the_bottom_of_the_range(x):
    """Fuzz finding, fixed: logsumexp = m + T cancelling with T below 2**-1000
    (the maximum m tiny and negative, the other entries near -704..-750) was
    64 subnormal spacings off, the double-double path's terms and low parts
    being subnormal; now redone scaled by 2**600 (precise.c), terms below
    -746 included (300 of exp(-746.2) make 51 spacings: the results are 15
    and -36 spacings with and without them). Rows and columns (the strip
    kernel) agree."""
    import csoftmax
    x = np.array(x)
    want = _exact(x, "logsumexp")
    cols = np.ascontiguousarray(np.tile(x, (130, 1)).T)
    got = [csoftmax.logsumexp(x), *csoftmax.logsumexp(cols, axis=0)]
    assert np.all(np.array(got) == got[0]), got
    assert int(ulp_diff(got[0], want, np.float64)) <= 2, (got[0], want)
