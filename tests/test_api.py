"""Public surface: versions, header location, ISA info and switching,
__all__, docstrings."""

import inspect
import os
import pathlib
import re

import numpy as np
import pytest

import csoftmax
from csoftmax import _core

ROOT = pathlib.Path(__file__).resolve().parents[1]
PUBLIC_FUNCTIONS = ["softmax", "log_softmax", "logsumexp", "set_num_threads", "get_num_threads",
                    "get_include", "isa_info"]
PUBLIC_FUNCTIONS += ["softmax_backward", "log_softmax_backward", "cross_entropy"]  # training (issue 8)
PUBLIC_FUNCTIONS += ["LogSumExp"]   # issue 8, part 6 (a class)


def _header_version():
    hdr = pathlib.Path(csoftmax.get_include()) / "csoftmax" / "csoftmax.h"
    m = re.search(r'^#define\s+CSM_VERSION_STRING\s+"([^"]+)"', hdr.read_text(), re.M)
    assert m, "CSM_VERSION_STRING not found in the header"
    parts = {k: re.search(rf"^#define\s+CSM_VERSION_{k}\s+(\d+)", hdr.read_text(), re.M)
             for k in ("MAJOR", "MINOR", "PATCH")}
    assert all(parts.values())
    assert m.group(1) == ".".join(parts[k].group(1) for k in ("MAJOR", "MINOR", "PATCH"))
    return m.group(1)


def test_versions_agree():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = re.search(r"^\[project\]$(.*?)^\[", text, re.S | re.M).group(1)
    project_version = re.search(r'^version = "([^"]+)"$', project, re.M).group(1)
    assert csoftmax.__version__ == project_version == _header_version()
    # the version compiled into the extension
    assert _core.C_VERSION == csoftmax.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", csoftmax.__version__)


def test_get_include():
    inc = csoftmax.get_include()
    assert isinstance(inc, str) and os.path.isabs(inc)
    assert os.path.isfile(os.path.join(inc, "csoftmax", "csoftmax.h"))
    text = open(os.path.join(inc, "csoftmax", "csoftmax.h")).read()
    # pure C99: no Python headers
    assert "Python.h" not in text and "csm_softmax_f64" in text


def test_isa_info_structure():
    info = csoftmax.isa_info()
    assert set(info) == {"compiled", "supported", "active", "openmp"}
    assert isinstance(info["compiled"], list) and isinstance(info["supported"], list)
    assert "scalar" in info["compiled"] and "scalar" in info["supported"]
    assert set(info["supported"]) <= set(info["compiled"])
    assert set(info["compiled"]) <= {"scalar", "avx2", "avx512", "neon"}
    assert info["active"] in info["supported"]
    # a fresh dict each time: mutating it changes nothing
    info["compiled"].append("bogus")
    assert "bogus" not in csoftmax.isa_info()["compiled"]


@pytest.mark.thread_unsafe   # switches the process-wide instruction set
def test_set_isa():
    before = csoftmax.isa_info()["active"]
    x = np.random.default_rng(0).standard_normal((7, 37)) * 5
    try:
        results = {}
        for name in csoftmax.isa_info()["supported"]:
            _core._set_isa(name)
            assert csoftmax.isa_info()["active"] == name
            results[name] = [op(x) for op in (csoftmax.softmax, csoftmax.log_softmax,
                                              csoftmax.logsumexp)]
        _core._set_isa("scalar")
        assert csoftmax.isa_info()["active"] == "scalar"
        for name, res in results.items():   # every ISA within the accuracy bounds
            for a, b in zip(res, results["scalar"]):
                np.testing.assert_allclose(a, b, rtol=2e-15, atol=2e-15, err_msg=name)
        for bad in ("nonsense", "", "SCALAR", "avx1024"):
            with pytest.raises(ValueError, match=r"instruction set .* is not available"):
                _core._set_isa(bad)
        assert csoftmax.isa_info()["active"] == "scalar"    # unchanged by the failures
        for name in {"avx2", "avx512", "neon"} - set(csoftmax.isa_info()["supported"]):
            with pytest.raises(ValueError, match="not available"):
                _core._set_isa(name)        # known, but not compiled or not supported
    finally:
        _core._set_isa(before)
    assert csoftmax.isa_info()["active"] == before


def test_all():
    assert sorted(csoftmax.__all__) == sorted(PUBLIC_FUNCTIONS + ["__version__"])
    for name in csoftmax.__all__:
        assert hasattr(csoftmax, name), name
    ns = {}
    exec("from csoftmax import *", ns)
    assert set(PUBLIC_FUNCTIONS) <= set(ns)


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_docstrings(name):
    doc = inspect.getdoc(getattr(csoftmax, name))
    assert doc, name
    for section in ("Parameters", "Returns", "Examples"):
        if section == "Parameters" and name in ("get_include", "isa_info", "get_num_threads"):
            continue    # no parameters to describe
        if section == "Returns" and name in ("set_num_threads", "LogSumExp"):
            continue    # returns nothing (LogSumExp: a class; its methods say)
        assert re.search(rf"^{section}\n-{{3,}}", doc, re.M), (name, section)
    assert ">>> " in doc


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_signature(name):
    sig = inspect.signature(getattr(csoftmax, name))
    params = sig.parameters
    assert list(params)[:2] == ["x", "axis"]
    assert params["axis"].default == -1
    assert params["out"].kind is inspect.Parameter.KEYWORD_ONLY and params["out"].default is None
    assert params["num_threads"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["num_threads"].default is None
    if name == "logsumexp":
        assert params["keepdims"].kind is inspect.Parameter.KEYWORD_ONLY
        assert params["keepdims"].default is False
    else:
        assert "keepdims" not in params
    with pytest.raises(TypeError):
        getattr(csoftmax, name)([1.0, 2.0], -1, None)    # out is keyword-only


@pytest.mark.thread_unsafe   # doctest swaps sys.stdout for the whole process
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "get_include",
                                  "isa_info", "set_num_threads", "get_num_threads",
                                  "LogSumExp"])
def test_docstring_examples_run(name):
    """The Examples sections are true (run as doctests)."""
    import doctest

    fn = getattr(csoftmax, name)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(fn, name, globs={"np": np, "csoftmax": csoftmax})
    assert tests and tests[0].examples, f"{name} has no doctest examples"
    for t in tests:
        runner.run(t)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed"


def test_readme_api_example_runs():
    """The README's API example runs as written and shows true values."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## API\n\n```python\n(.*?)```", text, re.S).group(1)
    ns = {}
    exec(compile(block, "README.md", "exec"), ns)  # noqa: S102 - our own README
    shown = re.findall(r"# (array\(\[.*?\]\)|np\.float64\(.*?\))\n", block)
    assert shown, "README API example lost its shown results"
    assert repr(csoftmax.softmax([13.0, 31.0, 5.0])) == shown[0]
    assert repr(csoftmax.log_softmax([0.0, -40.0])) == shown[1]
    assert repr(csoftmax.logsumexp([0.0, -40.0])) == shown[2]
