# setup.py of a C extension that calls csoftmax's kernels (csm_embed_c.c)
import csoftmax
from setuptools import Extension, setup

setup(
    name="csm-embed-c",
    ext_modules=[Extension("csm_embed_c", ["csm_embed_c.c"],
                           include_dirs=[csoftmax.get_include()])],
)
