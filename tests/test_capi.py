"""Embedding (issue 6): the C API of csoftmax, proven by building its users.

* the capsule ``csoftmax._core._C_API`` holds the ``csm_api`` table of
  csoftmax.h, filled with the dispatched public entry points (read with
  ctypes: no compiler needed);
* a C extension (tests/embed/csm_embed_c.c, built by the README's setup.py,
  tests/embed/setup_c.py) imports it with csm_import() and runs the kernels
  with the GIL released: bitwise equal to the Python functions, under every
  instruction set;
* a Cython extension (tests/embed/csm_embed_cy.pyx, setup_cy.py) that
  ``cimport csoftmax`` does the same in ``with nogil:`` blocks;
* a plain C program (tests/embed/vendor_main.c) compiled from the vendored
  sources ``csoftmax/_src/*.c`` with no Python headers: every kernel and
  csm_get_api(), checked against exact values from mpmath;
* csm_import() refuses, with ImportError naming both sides, an extension
  built against headers of another ABI version, a larger table, or a capsule
  name that does not exist;
* the headers, the .pxd and the C sources are in the installed package and
  in the sdist; the README's recipes are the files built here.

The builds (a few seconds each) happen once per session, in a temporary
directory, against the csoftmax being tested. They are skipped only when no
C compiler is available. The vendored build (the C core at -O2, the longest)
and the packaging checks are skipped when CSOFTMAX_ISA is set: CI reruns the
suite per instruction set for the kernels, and these do not depend on it.
"""

import concurrent.futures
import ctypes
import importlib.util
import os
import pathlib
import re
import shlex
import shutil
import struct
import subprocess
import sys
import sysconfig
import tarfile

import numpy as np
import pytest

import _checks
import csoftmax
from conftest import assert_bitwise
from csoftmax import _core

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
EMBED = ROOT / "tests" / "embed"
PKG = pathlib.Path(csoftmax.__file__).resolve().parent   # the csoftmax under test
INCLUDE = pathlib.Path(csoftmax.get_include())
OPS = ("softmax", "log_softmax", "logsumexp")
CAPSULE = "csoftmax._core._C_API"
# the README's vendoring line: these flags, -Iinclude, the program, csoftmax/_src/*.c, -lm
VENDOR_FLAGS = ["-std=c99", "-O2", "-ffp-contract=off"]
# the glue code of the test extensions is compiled fast (it only calls
# through the table; the kernels are csoftmax's own build)
FAST_CFLAGS = "-O0 -g0"
PER_ISA_RUN = bool(os.environ.get("CSOFTMAX_ISA"))


def _compiler():
    """The C compiler setuptools would use ($CC, else Python's own), or None."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        return None
    return cc


CC = _compiler()
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler available")
not_per_isa = pytest.mark.skipif(
    PER_ISA_RUN, reason="CSOFTMAX_ISA is set: the per-ISA rerun checks kernels, not embedding")


def _env():
    """Environment of the build subprocesses: the csoftmax under test first
    (so get_include() and `cimport csoftmax` find its files), fast glue."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG.parent)] + (
        [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["CFLAGS"] = (env.get("CFLAGS", "") + " " + FAST_CFLAGS).strip()
    return env


def _run(cmd, cwd, env=None):
    proc = subprocess.run(cmd, cwd=cwd, env=env or _env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}) in {cwd}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def _load(name, directory):
    """Import the extension module `name` built in `directory` (by path:
    several builds of one module name coexist)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    path = pathlib.Path(directory) / (name + suffix)
    assert path.is_file(), sorted(os.listdir(directory))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build_recipe(tmp, setup_name, sources):
    """Copy a README recipe (setup script + sources) and build it in place."""
    tmp.mkdir(parents=True, exist_ok=True)
    for f in (setup_name, *sources):
        shutil.copy(EMBED / f, tmp / f)
    _run([sys.executable, setup_name, "-q", "build_ext", "--inplace"], cwd=tmp)
    return tmp


# --------------------------------------------------------------------------
# session builds
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def c_ext(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler available")
    d = _build_recipe(tmp_path_factory.mktemp("embed_c"), "setup_c.py", ["csm_embed_c.c"])
    return _load("csm_embed_c", d)


@pytest.fixture(scope="session")
def cy_ext(tmp_path_factory):
    if CC is None:
        pytest.skip("no C compiler available")
    d = _build_recipe(tmp_path_factory.mktemp("embed_cy"), "setup_cy.py", ["csm_embed_cy.pyx"])
    return _load("csm_embed_cy", d)


def _header(name):
    return (INCLUDE / "csoftmax" / name).read_text(encoding="utf-8")


def _abi_version():
    m = re.search(r"^#define CSM_ABI_VERSION (\d+)$", _header("csoftmax.h"), re.M)
    assert m, "CSM_ABI_VERSION not found in csoftmax.h"
    return int(m.group(1))


def _variant_headers(kind):
    """(csoftmax.h, csoftmax_capi.h) of the installed headers, changed as a
    mismatched extension would see them."""
    h, capi = _header("csoftmax.h"), _header("csoftmax_capi.h")
    if kind == "abi":      # built against another ABI version
        h, k = re.subn(r"^#define CSM_ABI_VERSION \d+$",
                       f"#define CSM_ABI_VERSION {_abi_version() + 1}", h, flags=re.M)
    elif kind == "size":   # built against a newer header: one more member at the end
        h, k = re.subn(r"^\} csm_api;$", "    void *csm_test_appended;\n} csm_api;", h, flags=re.M)
    elif kind == "name":   # a capsule that does not exist
        capi, k = re.subn(r'^#define CSM_CAPSULE_NAME "csoftmax\._core\._C_API"$',
                          '#define CSM_CAPSULE_NAME "csoftmax._core._C_API_absent"', capi,
                          flags=re.M)
    assert k == 1, f"the {kind} edit did not apply: the headers changed?"
    return h, capi


MISMATCH_KINDS = ("abi", "size", "name")
_MISMATCH_DRIVER = """\
import sys
from setuptools import Extension, setup
setup(name="csm-embed-mismatch", script_args=["-q", "build_ext", "--inplace"],
      ext_modules=[Extension(kind + ".csm_embed_c", ["csm_embed_c.c"],
                             include_dirs=[kind + "/include"]) for kind in sys.argv[1:]])
"""


@pytest.fixture(scope="session")
def mismatch_dirs(tmp_path_factory):
    """csm_embed_c.c built against each variant of the headers (one build)."""
    if CC is None:
        pytest.skip("no C compiler available")
    d = tmp_path_factory.mktemp("embed_mismatch")
    shutil.copy(EMBED / "csm_embed_c.c", d)
    for kind in MISMATCH_KINDS:
        inc = d / kind / "include" / "csoftmax"
        inc.mkdir(parents=True)
        h, capi = _variant_headers(kind)
        (inc / "csoftmax.h").write_text(h, encoding="utf-8")
        (inc / "csoftmax_capi.h").write_text(capi, encoding="utf-8")
    _run([sys.executable, "-c", _MISMATCH_DRIVER, *MISMATCH_KINDS], cwd=d)
    return {kind: d / kind for kind in MISMATCH_KINDS}


@pytest.fixture(scope="session")
def vendor_exe(tmp_path_factory):
    """tests/embed/vendor_main.c + csoftmax/_src/*.c of the package under test,
    compiled with the README's flags (the core in two parallel jobs)."""
    if CC is None:
        pytest.skip("no C compiler available")
    d = tmp_path_factory.mktemp("embed_vendor")
    sources = sorted((PKG / "_src").glob("*.c"))
    assert sources, f"no C sources in {PKG / '_src'}"
    flags = VENDOR_FLAGS + [f"-I{INCLUDE}"]

    def compile_one(src):
        obj = d / (src.stem + ".o")
        _run(CC + flags + ["-c", str(src), "-o", str(obj)], cwd=d)
        return str(obj)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        objs = list(pool.map(compile_one, sources))
    exe = d / "vendor_main"
    _run(CC + flags + [str(EMBED / "vendor_main.c"), *objs, "-lm", "-o", str(exe)], cwd=d)
    return exe


# --------------------------------------------------------------------------
# inputs and the Python results
# --------------------------------------------------------------------------

def _rows(dtype, n=37):
    """Random rows at several scales plus the special-value rows of csoftmax.h."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((9, n)) * np.array([1, 10, 100, 1000, 1, 1, 1, 1, 1])[:, None]
    x[4, ::3] = -np.inf            # some -inf
    x[5, n // 2] = np.inf          # one +inf
    x[6, [0, n - 1]] = np.inf      # two +inf (n >= 2)
    x[7, n // 3] = np.nan          # a NaN
    x[8, :] = -np.inf              # all -inf
    return np.ascontiguousarray(x, dtype=dtype)


def _tname(dtype):
    return "f32" if np.dtype(dtype) == np.float32 else "f64"


def _python(op, x, **kw):
    return getattr(csoftmax, op)(x, **kw)


def _via_c_ext(ext, op, x):
    y = np.empty(x.shape[0] if op == "logsumexp" else x.shape, x.dtype)
    assert ext.compute(op, x, y) == 0
    return y


# --------------------------------------------------------------------------
# the capsule (no compiler needed)
# --------------------------------------------------------------------------

class _Layout(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in ("outer", "n", "inner")] + [
        (f, ctypes.c_ssize_t) for f in ("x_outer", "x_n", "x_inner", "y_outer", "y_n", "y_inner")]


_KERNELS = [f"{op}_{t}" for op in OPS for t in ("f32", "f64")]


class _Api(ctypes.Structure):
    """The members of csm_api that ABI version 1 guarantees, in order."""
    _fields_ = ([("abi_version", ctypes.c_uint32), ("struct_size", ctypes.c_uint32)]
                + [(k, ctypes.c_void_p) for k in _KERNELS]
                + [("active_isa", ctypes.c_void_p), ("isa_name", ctypes.c_void_p)]
                + [(k + "_mt", ctypes.c_void_p) for k in _KERNELS]
                + [("default_threads", ctypes.c_void_p)]
                + [(k + "_ex", ctypes.c_void_p) for k in _KERNELS])


class _Operand(ctypes.Structure):
    _fields_ = [("p", ctypes.c_void_p)] + [(f, ctypes.c_ssize_t) for f in ("outer", "n", "inner")]


class _Options(ctypes.Structure):
    _fields_ = [("temperature", ctypes.c_double), ("mask", _Operand)]


def _capsule_table():
    cap = _core._C_API
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype, get_ptr.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    name = get_name(cap)
    return name, _Api.from_address(get_ptr(cap, name))


def test_capsule_is_the_library_table():
    name, api = _capsule_table()
    assert name == CAPSULE.encode()
    assert re.search(rf'^#define CSM_CAPSULE_NAME "{re.escape(CAPSULE)}"$',
                     _header("csoftmax_capi.h"), re.M)
    assert api.abi_version == _abi_version() == _core.ABI_VERSION
    assert api.struct_size >= ctypes.sizeof(_Api)
    assert api.struct_size % ctypes.sizeof(ctypes.c_void_p) == 0
    # the members are the exported public entry points (which dispatch)
    lib = ctypes.CDLL(_core.__file__)
    get_api = lib.csm_get_api
    get_api.restype = ctypes.c_void_p
    assert get_api() == ctypes.addressof(api)
    for member in _KERNELS + ["active_isa", "isa_name"] + [k + "_mt" for k in _KERNELS] \
            + ["default_threads"] + [k + "_ex" for k in _KERNELS]:
        symbol = "csm_" + member
        assert getattr(api, member) == ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value, (
            member)
    isa_name = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_int)(api.isa_name)
    active = ctypes.CFUNCTYPE(ctypes.c_int)(api.active_isa)
    assert isa_name(active()).decode() == csoftmax.isa_info()["active"]
    default_threads = ctypes.CFUNCTYPE(ctypes.c_int)(api.default_threads)
    assert default_threads() == csoftmax.get_num_threads()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", OPS)
def test_capsule_kernels_via_ctypes(op, dtype):
    """Calling the table's members (no compiler: ctypes) gives the bits of
    the Python functions, in every layout kind: rows and columns."""
    _, api = _capsule_table()
    ct = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ct), ctypes.POINTER(ct),
                          ctypes.POINTER(_Layout))(getattr(api, f"{op}_{_tname(dtype)}"))
    x = _rows(dtype)
    rows, n = x.shape
    for axis in (1, 0):
        want = _python(op, x, axis=axis)
        y = np.empty_like(want)
        if axis == 1:       # rows: outer = rows, n
            L = _Layout(rows, n, 1, n, 1, 0, 1 if op == "logsumexp" else n, 1, 0)
        else:               # columns: one block of n columns of length rows
            L = _Layout(1, rows, n, 0, n, 1, 0, 0 if op == "logsumexp" else n, 1)
        rc = fn(x.ctypes.data_as(ctypes.POINTER(ct)), y.ctypes.data_as(ctypes.POINTER(ct)),
                ctypes.byref(L))
        assert rc == 0
        assert_bitwise(y, want, f"{op} axis={axis}")
    # the documented refusal: NULL x with a non-empty array
    L = _Layout(1, 3, 1, 3, 1, 0, 3, 1, 0)
    y = np.full(3, 7, dtype)
    assert fn(None, y.ctypes.data_as(ctypes.POINTER(ct)), ctypes.byref(L)) == -1   # CSM_EINVAL
    assert (y == 7).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", OPS)
def test_capsule_ex_kernels_with_mask_and_temperature(op, dtype):
    """The _ex members with a csm_options (a broadcast column mask: stride 0
    along the rows, and a temperature) give the bits of the Python call;
    a temperature out of range is refused with nothing written."""
    _, api = _capsule_table()
    ct = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ct), ctypes.POINTER(ct),
                          ctypes.POINTER(_Layout), ctypes.POINTER(_Options),
                          ctypes.c_int)(getattr(api, f"{op}_{_tname(dtype)}_ex"))
    x = _rows(dtype)
    rows, n = x.shape
    keep = (np.arange(n) % 3 != 1)
    want = _python(op, x, where=keep, temperature=0.3)
    y = np.empty_like(want)
    L = _Layout(rows, n, 1, n, 1, 0, 1 if op == "logsumexp" else n, 1, 0)
    opt = _Options(0.3, _Operand(keep.ctypes.data, 0, 1, 0))
    args = (x.ctypes.data_as(ctypes.POINTER(ct)), y.ctypes.data_as(ctypes.POINTER(ct)),
            ctypes.byref(L))
    assert fn(*args, ctypes.byref(opt), 2) == 0
    assert_bitwise(y, want)
    y[...] = 7
    for bad in (0.0, -1.0, float("nan"), 2.0 ** 1001):
        opt.temperature = bad
        assert fn(*args, ctypes.byref(opt), 1) == -1            # CSM_EINVAL
    assert (y == 7).all()
    assert fn(*args, None, 1) == 0                               # NULL: no options
    assert_bitwise(y, _python(op, x))


# --------------------------------------------------------------------------
# 1. the C extension
# --------------------------------------------------------------------------

@needs_cc
def test_c_extension_table(c_ext):
    info = c_ext.api_info()
    _, api = _capsule_table()
    assert info["table"] == ctypes.addressof(api)          # the capsule's table itself
    assert info["abi_version"] == info["header_abi_version"] == _abi_version()
    assert info["struct_size"] == info["header_struct_size"] == api.struct_size
    assert info["active_isa"] == csoftmax.isa_info()["active"]


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("op", OPS)
def test_c_extension_bitwise(c_ext, op, dtype):
    for n in (1, 2, 37, 1000):
        x = _rows(dtype, n) if n > 1 else _rows(dtype)[:, :1].copy()
        assert_bitwise(_via_c_ext(c_ext, op, x), _python(op, x), f"{op} n={n}")
    # the kernel ran with the GIL released (PyGILState_Check() inside the block)
    assert c_ext.api_info()["gil_held_in_kernel"] == 0
    # in place (y is x)
    x = _rows(dtype)
    if op != "logsumexp":
        want = _python(op, x)
        assert c_ext.compute(op, x, x) == 0
        assert_bitwise(x, want, "in place")


@needs_cc
@pytest.mark.thread_unsafe   # switches the process-wide instruction set
def test_c_extension_follows_the_active_isa(c_ext):
    """The table's kernels dispatch: switching the instruction set switches
    them too (same bits as the Python functions under each)."""
    before = csoftmax.isa_info()["active"]
    x = _rows(np.float64, 1000)
    try:
        for isa in csoftmax.isa_info()["supported"]:
            _core._set_isa(isa)
            assert c_ext.api_info()["active_isa"] == isa
            for op in OPS:
                assert_bitwise(_via_c_ext(c_ext, op, x), _python(op, x), f"{op} {isa}")
    finally:
        _core._set_isa(before)


@needs_cc
def test_c_extension_threads(c_ext):
    """Calls from several threads at once (the GIL released) stay exact."""
    xs = [_rows(np.float64, 2000) * (k + 1) for k in range(4)]
    want = [_python("softmax", x) for x in xs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: _via_c_ext(c_ext, "softmax", x), xs * 3))
    for k, g in enumerate(got):
        assert_bitwise(g, want[k % 4])


# --------------------------------------------------------------------------
# 2. the Cython extension
# --------------------------------------------------------------------------

@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cython_extension_bitwise(cy_ext, dtype):
    for n in (1, 37, 1000):
        x = _rows(dtype, n) if n > 1 else _rows(dtype)[:, :1].copy()
        y = np.empty_like(x)
        assert cy_ext.log_softmax(x, y) == 0
        assert_bitwise(y, _python("log_softmax", x), f"log_softmax n={n}")
        s = np.empty(x.shape[0], dtype)
        assert cy_ext.logsumexp(x, s) == 0
        assert_bitwise(s, _python("logsumexp", x), f"logsumexp n={n}")
        y = np.empty_like(x)
        assert cy_ext.softmax_columns(x, y) == 0          # a hand-made csm_layout
        assert_bitwise(y, _python("softmax", x, axis=0), f"softmax axis=0 n={n}")
    # read-only input is fine (const memoryviews)
    x = _rows(dtype)
    x.flags.writeable = False
    s = np.empty(x.shape[0], dtype)
    assert cy_ext.logsumexp(x, s) == 0
    assert_bitwise(s, _python("logsumexp", x))


def _members(decls, fn_ptr):
    """The member names of a list of declarations (C or Cython)."""
    names = []
    for d in decls:
        m = re.search(r"\(\*\s*(\w+)\s*\)", d) if fn_ptr in d else None
        names += [m.group(1)] if m else re.findall(r"(\w+)\s*(?:,|$)", d.strip())
    return names


def test_pxd_table_is_the_header_table():
    """csoftmax/__init__.pxd declares every member of csm_api, in the
    header's order (Cython reads the members by name, so an omission or a
    swap would not show in a build: this keeps the two in step), and wraps
    every kernel member in a function of the same name."""
    body = re.search(r"typedef struct csm_api \{(.*?)\} csm_api;", _header("csoftmax.h"),
                     re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    header = _members([d for d in body.split(";") if d.strip()], "(*")
    pxd = (PKG / "__init__.pxd").read_text(encoding="utf-8")
    block = re.search(r"^    ctypedef struct csm_api:\n(.*?)\n\n", pxd, re.S | re.M).group(1)
    decls = []
    for line in block.splitlines():
        line = line.split("#")[0].rstrip()
        if re.match(r"^ {8}\S", line):
            decls.append(line)
        elif line.strip():
            decls[-1] += " " + line.strip()
    declared = _members(decls, "(*")
    assert declared == header
    wrapped = set(re.findall(r"^cdef inline \w+(?: \*)? ?(\w+)\(", pxd, re.M))
    kernels = [m for m in header if m not in ("abi_version", "struct_size", "active_isa",
                                               "isa_name")]
    assert [m for m in kernels if m not in wrapped] == []


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cython_extension_cross_entropy(cy_ext, dtype):
    """cross_entropy_f32/f64 of the .pxd (class indices with ignored rows,
    and probabilities; every reduction, label smoothing): the per-row
    losses, the total and the gradient are the bits of
    csoftmax.cross_entropy; an index out of range is CSM_ERANGE, nothing
    written."""
    for name, code in (("NONE", 0), ("MEAN", 1), ("SUM", 2)):
        assert re.search(rf"^#define CSM_REDUCE_{name} {code}$", _header("csoftmax.h"), re.M)
    rng = np.random.default_rng(8)
    x = _rows(dtype)
    rows, n = x.shape
    t = rng.integers(0, n, rows).astype(np.int64)
    t[::4] = -100
    p = rng.random(x.shape).astype(dtype)
    p /= p.sum(axis=1, keepdims=True)
    wbig = np.zeros(2 * n, dtype)
    wbig[::2] = rng.random(n) * 2                        # class weights, stride 2
    for reduction, code in (("none", 0), ("mean", 1), ("sum", 2)):
        for eps, w in ((0.0, None), (0.25, None), (0.0, wbig[::2]), (0.25, wbig[::2])):
            for target in (t, p):
                loss = np.full(rows, 7, dtype)
                grad = np.full_like(x, 7)
                if target is t:
                    rc, total = cy_ext.cross_entropy(x, t, loss, grad, code, eps, -100, w)
                else:
                    rc, total = cy_ext.cross_entropy_probs(x, p, loss, grad, code, eps, w)
                what = (f"{reduction} eps={eps} {'indices' if target is t else 'probs'} "
                        f"weight={w is not None}")
                assert rc == 0, what
                kw = dict(label_smoothing=eps, return_grad=True, weight=w)
                want_rows, _ = csoftmax.cross_entropy(x, target, reduction="none", **kw)
                want, want_grad = csoftmax.cross_entropy(x, target, reduction=reduction, **kw)
                assert_bitwise(loss, want_rows, what)
                assert_bitwise(grad, want_grad, what)
                if reduction != "none":
                    assert_bitwise(np.asarray(dtype(total)), np.asarray(want), what)
    bad = t.copy()
    bad[1] = n                                           # neither in [0, n) nor ignored
    loss = np.full(rows, 7, dtype)
    grad = np.full_like(x, 7)
    rc, _ = cy_ext.cross_entropy(x, bad, loss, grad, 1, 0.0, -100)
    assert rc == -3                                      # CSM_ERANGE
    assert (loss == 7).all() and (grad == 7).all()


@needs_cc
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_cython_extension_weighted_and_streaming(cy_ext, dtype):
    """logsumexp_weighted_* and the streaming state (logsumexp_state_*,
    lse_state_merge, lse_state_finish) of the .pxd give the bits of
    csoftmax.logsumexp(b=, return_sign=) and of csoftmax.LogSumExp."""
    x = _rows(dtype)
    rows, n = x.shape
    b = np.random.default_rng(9).standard_normal(x.shape).astype(dtype)
    y = np.full(rows, 7, dtype)
    sign = np.full(rows, 7, dtype)
    assert cy_ext.logsumexp_weighted(x, b, y, sign) == 0
    want, want_sign = csoftmax.logsumexp(x, axis=-1, b=b, return_sign=True)
    assert_bitwise(y, want)
    assert_bitwise(sign, want_sign)
    a, c = np.ascontiguousarray(x[:, :n // 3]), np.ascontiguousarray(x[:, n // 3:])
    y = np.full(rows, 7, np.float64)
    assert cy_ext.logsumexp_two_chunks(a, c, y) == 0
    stream = csoftmax.LogSumExp(axis=-1).update(a).update(c)
    assert_bitwise(y.astype(dtype), stream.value)


@needs_cc
@pytest.mark.thread_unsafe   # switches the process-wide instruction set
def test_cython_extension_table(cy_ext):
    assert cy_ext.active_isa() == csoftmax.isa_info()["active"]
    # before a successful import: CSM_ENOAPI, nothing written (not a crash)
    status, y = cy_ext._status_without_table()
    assert status == -100 and y == 7.0
    assert re.search(r"^#define CSM_ENOAPI \(-100\)", _header("csoftmax_capi.h"), re.M)
    before = csoftmax.isa_info()["active"]
    x = _rows(np.float32, 500)
    try:
        for isa in csoftmax.isa_info()["supported"]:
            _core._set_isa(isa)
            assert cy_ext.active_isa() == isa
            y = np.empty_like(x)
            assert cy_ext.log_softmax(x, y) == 0
            assert_bitwise(y, _python("log_softmax", x), isa)
    finally:
        _core._set_isa(before)


# --------------------------------------------------------------------------
# 3. the vendored C core, no Python
# --------------------------------------------------------------------------

VENDOR_X = [[13.0, 31.0, 5.0], [0.0, -40.0, 1e-3]]   # as in tests/embed/vendor_main.c


def _exact(op, row):
    """op of one row (exact inputs), to 40 digits, with mpmath."""
    import mpmath

    import _oracle

    with _oracle.workdps(60):
        v = [mpmath.mpf(float(a)) for a in row]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(a) for a in v))
        if op == "logsumexp":
            return [lse]
        if op == "log_softmax":
            return [a - lse for a in v]
        return [mpmath.exp(a - lse) for a in v]


@needs_cc
@not_per_isa
def test_vendored_program(vendor_exe):
    proc = subprocess.run([str(vendor_exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "ok"
    isa_lines = [ln.split()[1] for ln in lines if ln.startswith("isa ")]
    assert len(isa_lines) == 1
    isa = isa_lines[0]
    assert isa in csoftmax.isa_info()["supported"]
    got = {}
    for line in lines[:-1]:
        if not line.startswith("isa "):
            name, r, i, val = line.split()
            got.setdefault(name, {})[(int(r), int(i))] = float.fromhex(val)
    # the README's example is row 0 of softmax_f64
    assert got.pop("example") == {(0, i): got["softmax_f64"][0, i] for i in range(3)}
    assert sorted(got) == sorted(_KERNELS)
    for kernel, values in got.items():
        op, t = kernel.rsplit("_", 1)
        dtype = np.float32 if t == "f32" else np.float64
        x = np.array(VENDOR_X, dtype)
        nout = 1 if op == "logsumexp" else 3
        assert sorted(values) == [(r, i) for r in range(2) for i in range(nout)], kernel
        y = np.array([[values[r, i] for i in range(nout)] for r in range(2)], dtype)
        assert np.all(y.astype(np.float64) == [[values[r, i] for i in range(nout)]
                                               for r in range(2)]), f"{kernel}: not {dtype}"
        want = np.array([[float(e) for e in _exact(op, x[r])] for r in range(2)], dtype)
        d = _checks.ulp_diff(y, want, dtype)
        assert d.max() <= _checks.ulp_bound(op, dtype), (kernel, y, want, d)
        # the same kernels as the package: the same bits when on the same ISA
        if isa == csoftmax.isa_info()["active"]:
            py = _python(op, x).reshape(2, nout)
            assert_bitwise(y, py, kernel)


# --------------------------------------------------------------------------
# 4. ABI mismatch
# --------------------------------------------------------------------------

@needs_cc
def test_abi_version_mismatch(mismatch_dirs):
    v = _abi_version()
    with pytest.raises(ImportError) as info:
        _load("csm_embed_c", mismatch_dirs["abi"])
    msg = str(info.value)
    assert f"compiled against csoftmax ABI version {v + 1}" in msg, msg
    assert f"provides ABI version {v};" in msg, msg
    assert f"installed csoftmax {_core.C_VERSION} " in msg, msg
    assert "rebuild the extension" in msg


@needs_cc
def test_table_smaller_than_header(mismatch_dirs, c_ext):
    size = c_ext.api_info()["struct_size"]
    bigger = c_ext.api_info()["header_struct_size"] + struct.calcsize("P")
    with pytest.raises(ImportError) as info:
        _load("csm_embed_c", mismatch_dirs["size"])
    msg = str(info.value)
    assert f"function table of {size} bytes, smaller than the {bigger} bytes" in msg, msg
    assert "upgrade csoftmax" in msg


@needs_cc
def test_missing_capsule(mismatch_dirs):
    with pytest.raises(ImportError) as info:
        _load("csm_embed_c", mismatch_dirs["name"])
    msg = str(info.value)
    assert "cannot get the function table, capsule csoftmax._core._C_API_absent" in msg, msg
    assert isinstance(info.value.__cause__, AttributeError)


# --------------------------------------------------------------------------
# headers compile cleanly (cheap: syntax only)
# --------------------------------------------------------------------------

@needs_cc
@pytest.mark.parametrize("lang", ["c99", "c++"])
def test_headers_compile_warning_free(tmp_path, lang):
    """Both headers, included and unused, give no warning (the static table
    pointer and csm_import are marked unused), in C99 and in C++."""
    if lang == "c++":
        cxx = shlex.split(sysconfig.get_config_var("CXX") or "c++")
        if shutil.which(cxx[0]) is None:
            pytest.skip("no C++ compiler")
        cmd, src = cxx + ["-x", "c++"], "t.cpp"
    else:
        cmd, src = CC + ["-std=c99"], "t.c"
    (tmp_path / src).write_text('#include "csoftmax/csoftmax_capi.h"\n'
                                'int f(void) { return csm_rows(2, 3).n == 3; }\n')
    pyinc = sysconfig.get_paths()["include"]
    proc = subprocess.run(cmd + ["-fsyntax-only", "-Wall", "-Wextra", "-Werror", f"-I{INCLUDE}",
                                 "-isystem", pyinc, src], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    # csoftmax.h alone needs no Python at all
    (tmp_path / "u.c").write_text('#include "csoftmax/csoftmax.h"\n'
                                  "#ifdef Py_PYTHON_H\n#error Python.h included\n#endif\n"
                                  "int g(void) { return CSM_ABI_VERSION; }\n")
    proc = subprocess.run(CC + ["-std=c99", "-pedantic", "-fsyntax-only", "-Wall", "-Wextra",
                                "-Werror", f"-I{INCLUDE}", "u.c"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# packaging: the files that the wheel and the sdist ship
# --------------------------------------------------------------------------

HEADERS = ["csoftmax.h", "csoftmax_capi.h"]
SRC_FILES = sorted(p.name for p in (ROOT / "csoftmax" / "_src").iterdir()
                   if p.suffix in (".c", ".h", ".inc"))


def _check_package_dir(pkg, include=None):
    """pkg: an installed (or built) csoftmax package directory; include: its
    header directory (default: pkg/include, where the wheel puts them)."""
    include = pathlib.Path(include or pkg / "include")
    for h in HEADERS:
        assert (include / "csoftmax" / h).is_file(), h
        assert (include / "csoftmax" / h).read_bytes() == \
            (ROOT / "include" / "csoftmax" / h).read_bytes(), f"{h} differs from the source"
    assert (pkg / "__init__.pxd").is_file()
    assert "kernels.inc" in SRC_FILES and "dispatch.c" in SRC_FILES
    assert sorted(p.name for p in (pkg / "_src").iterdir()
                  if p.suffix in (".c", ".h", ".inc")) == SRC_FILES


def test_get_include_has_both_headers():
    for h in HEADERS:
        assert (INCLUDE / "csoftmax" / h).is_file(), h
    # csoftmax.h is pure C; csoftmax_capi.h is the one that includes Python.h
    assert "#include <Python.h>" not in _header("csoftmax.h")
    assert "#include <Python.h>" in _header("csoftmax_capi.h")


def test_installed_package_files():
    """The csoftmax under test holds the headers, the .pxd and the C sources.
    In CI it is the installed copy (pip install .: from the wheel), with the
    headers inside the package; from a checkout with an in-place build,
    get_include() is the checkout's include/ (test_build_py_and_sdist
    checks what a wheel and the sdist ship)."""
    if PKG == ROOT / "csoftmax":
        assert INCLUDE == ROOT / "include" or INCLUDE == PKG / "include"
    else:
        assert INCLUDE == PKG / "include", "an installed copy has its headers inside"
    _check_package_dir(PKG, INCLUDE)


@not_per_isa
def test_build_py_and_sdist(tmp_path):
    """What setuptools puts in a wheel (build_py: everything but the compiled
    extension) and in the sdist, built from a copy of the checkout (nothing
    is compiled)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", ".venv*", "*.so", "*.egg-info", "__pycache__",
        ".pytest_cache", ".hypothesis", ".benchmarks"))
    out = tmp_path / "out"
    _run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(out / "lib"),
          "egg_info", "--egg-base", str(out), "sdist", "--dist-dir", str(out)], cwd=src,
         env=dict(os.environ))
    _check_package_dir(out / "lib" / "csoftmax")
    tars = list(out.glob("csoftmax-*.tar.gz"))
    assert len(tars) == 1, list(out.iterdir())
    with tarfile.open(tars[0]) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
    want = ({f"include/csoftmax/{h}" for h in HEADERS} | {"csoftmax/__init__.pxd"}
            | {f"csoftmax/_src/{f}" for f in SRC_FILES}
            | {f"tests/embed/{p.name}" for p in EMBED.iterdir() if p.is_file()})
    assert want <= names, sorted(want - names)
    assert "csoftmax/_core.c" not in names


# --------------------------------------------------------------------------
# the README's recipes are the files built above
# --------------------------------------------------------------------------

def _readme_section():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Use from C / Cython\n(.*?)^## ", text, re.S | re.M)
    assert m, "README lost its section 'Use from C / Cython'"
    return m.group(1)


def test_readme_recipes_are_the_tested_files():
    """Each README block marked <!-- file: F --> is F; each marked
    <!-- excerpt: F --> is made of paragraphs of F, in F's order."""
    sec = _readme_section()
    blocks = re.findall(r"^<!-- (file|excerpt): (tests/embed/[\w.]+) -->\n```\w*\n(.*?)^```",
                        sec, re.S | re.M)
    assert len(blocks) >= 7, "README recipes lost their <!-- file/excerpt --> markers"
    for kind, name, body in blocks:
        text = (ROOT / name).read_text(encoding="utf-8")
        if kind == "file":
            assert body == text, f"README copy of {name} differs from the file"
            continue
        pos = 0
        for para in body.strip("\n").split("\n\n"):
            i = text.find(para, pos)
            assert i >= 0, f"README excerpt of {name}: not in the file (or out of order):\n{para}"
            pos = i + len(para)
    shown = {name for _, name, _ in blocks}
    assert shown == {f"tests/embed/{f}" for f in
                     ("csm_embed_c.c", "setup_c.py", "csm_embed_cy.pyx", "setup_cy.py",
                      "vendor_main.c")}, shown
    # the vendoring line: the flags the test builds with
    line = "cc " + " ".join(VENDOR_FLAGS) + " -Iinclude vendor_main.c csoftmax/_src/*.c -lm"
    assert line in sec
