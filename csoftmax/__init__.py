"""csoftmax: accurate, fast, GIL-free softmax, log_softmax and logsumexp.

The kernels are C99 (csoftmax/_src), reached through a thin Cython layer
that releases the GIL around each call. See the README for the special-value
rules, the accuracy bounds and the benchmarks.
"""
import os as _os

__version__ = "0.1.0"


def _installed_extension_dir():
    """A directory holding another copy of this package with a compiled
    extension (the installed one), for a source checkout without an in-place
    build: `python -m csoftmax` run from the checkout puts the source tree
    first on sys.path."""
    import glob
    import sys

    here = _os.path.dirname(_os.path.abspath(__file__))
    for entry in sys.path:
        cand = _os.path.join(_os.path.abspath(entry or "."), "csoftmax")
        if cand != here and glob.glob(_os.path.join(cand, "_core.*")):
            return cand
    return None


try:
    from csoftmax._core import (get_num_threads, isa_info, log_softmax, logsumexp,
                                set_num_threads, softmax)
    from csoftmax._core import cross_entropy, log_softmax_backward, softmax_backward
    from csoftmax._core import LogSumExp
except ImportError as _exc:
    _other = _installed_extension_dir()
    if _other is None:
        raise ImportError(
            "csoftmax's compiled extension (csoftmax._core) is missing: this is the "
            "source tree, not an installed copy. Install with `pip install .`, or build "
            "in place with `python setup.py build_ext --inplace`."
        ) from _exc
    __path__.append(_other)  # noqa: F821 - the package's own __path__
    from csoftmax._core import C_VERSION as _c_version
    if _c_version != __version__:
        raise ImportError(
            f"the installed csoftmax extension in {_other} is version {_c_version}, "
            f"but this source tree is {__version__}: reinstall with `pip install .`"
        ) from _exc
    from csoftmax._core import (get_num_threads, isa_info, log_softmax, logsumexp,
                                set_num_threads, softmax)
    from csoftmax._core import cross_entropy, log_softmax_backward, softmax_backward
    from csoftmax._core import LogSumExp

__all__ = ["softmax", "log_softmax", "logsumexp", "set_num_threads", "get_num_threads",
           "get_include", "isa_info", "__version__"]
__all__ += ["softmax_backward", "log_softmax_backward", "cross_entropy"]  # training (issue 8)
__all__ += ["LogSumExp"]  # streaming logsumexp (issue 8)


def get_include():
    """Directory holding the public C headers ``csoftmax/csoftmax.h`` and
    ``csoftmax/csoftmax_capi.h``.

    Use it as an include directory when building a C or Cython extension that
    calls the csoftmax kernels, e.g. ``Extension(..., include_dirs=[csoftmax.get_include()])``:
    C code includes ``csoftmax/csoftmax_capi.h`` and calls ``csm_import()``;
    Cython code does ``cimport csoftmax`` and ``csoftmax.import_csoftmax()``
    (see the README, "Use from C / Cython").

    Returns
    -------
    str
        The ``include`` directory of the installed package (or of the source
        checkout, for an in-place build).

    Examples
    --------
    >>> import os, csoftmax
    >>> os.path.exists(os.path.join(csoftmax.get_include(), "csoftmax", "csoftmax.h"))
    True
    """
    for pkg in __path__:  # noqa: F821 - the installed copy first, if any
        inc = _os.path.join(pkg, "include")
        if _os.path.isfile(_os.path.join(inc, "csoftmax", "csoftmax.h")):
            return inc
    # in-place build of a source checkout: the top-level include/
    here = _os.path.dirname(_os.path.abspath(__file__))
    return _os.path.join(_os.path.dirname(here), "include")
