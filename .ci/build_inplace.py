"""`python setup.py build_ext --inplace --force`, with the C files of the one
extension compiled BUILD_JOBS at a time (default: all cores); setuptools
compiles them one after the other. Used by .ci/harden.sh for its sanitizer
and plain builds in copies of the tree (CFLAGS/LDFLAGS from the environment
are appended to Python's, as for setup.py)."""
import os
import runpy
import sys
from concurrent.futures import ThreadPoolExecutor

import setuptools  # noqa: F401  (before distutils: setuptools' own copy)
from distutils import ccompiler

JOBS = int(os.environ.get("BUILD_JOBS") or os.cpu_count() or 1)


def _parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None,
                      debug=0, extra_preargs=None, extra_postargs=None, depends=None):
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        if obj in build:
            src, ext = build[obj]
            self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    with ThreadPoolExecutor(JOBS) as ex:
        list(ex.map(one, objects))
    return objects


if JOBS > 1 and hasattr(ccompiler.CCompiler, "_setup_compile"):
    ccompiler.CCompiler.compile = _parallel_compile
sys.argv = ["setup.py", "build_ext", "--inplace", "--force"]
runpy.run_path("setup.py", run_name="__main__")
