# setup.py of a Cython extension that cimports csoftmax (csm_embed_cy.pyx)
import csoftmax
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    name="csm-embed-cy",
    ext_modules=cythonize([Extension("csm_embed_cy", ["csm_embed_cy.pyx"],
                                     include_dirs=[csoftmax.get_include()])]),
)
