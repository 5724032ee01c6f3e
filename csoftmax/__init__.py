"""csoftmax: accurate, fast, GIL-free softmax, log_softmax and logsumexp.

The kernels are C99 (csoftmax/_src), reached through a thin Cython layer
that releases the GIL around each call. See the README for the special-value
rules, the accuracy bounds and the benchmarks.
"""
import os as _os

try:
    from csoftmax._core import isa_info, log_softmax, logsumexp, softmax
except ImportError as _exc:  # pragma: no cover - only without a build
    raise ImportError(
        "csoftmax's compiled extension (csoftmax._core) is missing: this is the "
        "source tree, not an installed copy. Install with `pip install .` and run "
        "from another directory, or build in place with "
        "`python setup.py build_ext --inplace`."
    ) from _exc

__version__ = "0.1.0"
__all__ = ["softmax", "log_softmax", "logsumexp", "get_include", "isa_info", "__version__"]


def get_include():
    """Directory holding the public C header ``csoftmax/csoftmax.h``.

    Use it as an include directory when building a C or Cython extension that
    calls the csoftmax kernels, e.g. ``Extension(..., include_dirs=[csoftmax.get_include()])``.

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
    here = _os.path.dirname(_os.path.abspath(__file__))
    installed = _os.path.join(here, "include")
    if _os.path.isfile(_os.path.join(installed, "csoftmax", "csoftmax.h")):
        return installed
    return _os.path.join(_os.path.dirname(here), "include")
