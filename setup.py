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
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = ["csoftmax/_core.pyx"] + [
    f"csoftmax/_src/{name}.c"
    for name in ("cpu", "dispatch", "precise", "kern_scalar", "kern_avx2", "kern_avx512", "kern_neon")
]

if sys.platform == "win32":
    extra_compile_args = ["/fp:precise"]
else:
    # no -ffast-math (it breaks inf/NaN and sets FTZ for the whole process);
    # no contraction into FMA, so results are the same on every compiler
    extra_compile_args = ["-ffp-contract=off"]


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


ext = Extension(
    "csoftmax._core",
    sources=SRC,
    depends=sorted(glob.glob("csoftmax/_src/*.h") + glob.glob("csoftmax/_src/*.inc")
                   + glob.glob("include/csoftmax/*.h")),
    include_dirs=["include", "csoftmax/_src", np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=extra_compile_args,
)

setup(
    ext_modules=cythonize([ext], language_level=3),
    cmdclass={"build_py": BuildPyWithHeaders},
)
