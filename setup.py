"""Build of csoftmax: the Cython layer and the C99 kernels in one extension.

The public headers in include/ are shipped inside the package
(csoftmax/include/csoftmax/*.h) so that csoftmax.get_include() finds them in
an installed copy; the C sources in csoftmax/_src ship too, for vendoring.
"""
import glob
import os
import shutil
import sys

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = ["csoftmax/_core.pyx"] + [
    f"csoftmax/_src/{name}.c"
    for name in ("cpu", "dispatch", "precise", "stream", "kern_scalar", "kern_avx2", "kern_avx512", "kern_neon")
]

if sys.platform == "win32":
    extra_compile_args = ["/fp:precise"]
else:
    # no -ffast-math (it breaks inf/NaN and sets FTZ for the whole process);
    # no contraction into FMA, so results are the same on every compiler
    extra_compile_args = ["-ffp-contract=off"]


def openmp_flags():
    """Compile and link flags for OpenMP, or none when the compiler lacks it
    (the kernels then run serially) or CSOFTMAX_OPENMP=0 asks for none."""
    if os.environ.get("CSOFTMAX_OPENMP", "1") == "0":
        return [], []
    flag = "/openmp" if sys.platform == "win32" else "-fopenmp"
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler
    import tempfile
    cc = new_compiler()
    customize_compiler(cc)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            objs = cc.compile([src], output_dir=tmp, extra_postargs=[flag])
            cc.link_executable(objs, os.path.join(tmp, "omp"), extra_postargs=[flag])
        except Exception:  # no OpenMP here: build serial kernels
            print("csoftmax: the compiler has no OpenMP; building serial kernels")
            return [], []
    return [flag], ([] if sys.platform == "win32" else [flag])


OMP_COMPILE, OMP_LINK = openmp_flags()


class BuildPyWithHeaders(build_py):
    """Copies include/csoftmax/*.h into the built package."""

    def run(self):
        super().run()
        src = os.path.join(HERE, "include", "csoftmax")
        dst = os.path.join(self.build_lib, "csoftmax", "include", "csoftmax")
        os.makedirs(dst, exist_ok=True)
        for name in sorted(os.listdir(src)):
            if name.endswith(".h"):
                shutil.copy2(os.path.join(src, name), os.path.join(dst, name))


def build_jobs():
    """C files compiled at once: CSOFTMAX_BUILD_JOBS, else the usable CPUs."""
    env = os.environ.get("CSOFTMAX_BUILD_JOBS", "")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class BuildExtParallel(build_ext):
    """Compiles the extension's C files in parallel (setuptools compiles the
    files of one extension one after the other: 4 minutes on 2 cores instead
    of 2): one compiler call per file, from a pool of threads, the kernel
    files first (a minute each at -O3: one kernel body per instruction set,
    specialized for every operation and dtype)."""

    def build_extension(self, ext):
        jobs = build_jobs()
        if jobs < 2 or len(ext.sources) < 2:
            return super().build_extension(ext)
        serial = self.compiler.compile

        def compile(sources, *args, **kwargs):
            from concurrent.futures import ThreadPoolExecutor
            sources = sorted(sources, key=lambda src: "kern_" not in os.path.basename(src))
            with ThreadPoolExecutor(min(jobs, len(sources))) as pool:
                parts = list(pool.map(lambda src: serial([src], *args, **kwargs), sources))
            return [obj for part in parts for obj in part]

        self.compiler.compile = compile
        try:
            super().build_extension(ext)
        finally:
            del self.compiler.compile    # the class's method again


ext = Extension(
    "csoftmax._core",
    sources=SRC,
    depends=sorted(glob.glob("csoftmax/_src/*.h") + glob.glob("csoftmax/_src/*.inc")
                   + glob.glob("include/csoftmax/*.h")),
    include_dirs=["include", "csoftmax/_src", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=extra_compile_args + OMP_COMPILE,
    extra_link_args=OMP_LINK,
)

setup(
    ext_modules=cythonize([ext], language_level=3),
    cmdclass={"build_py": BuildPyWithHeaders, "build_ext": BuildExtParallel},
)
