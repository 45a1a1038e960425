"""xwvnet: the WV-Net foundation model for Sentinel-1 wave-mode imagettes, in xarray and dask.

Importing xwvnet registers the ``wvnet`` accessor on Datasets. The public names are functions and classes, each
imported from its module on first use (scientific Python's SPEC 1: ``lazy_loader`` reads them from
``__init__.pyi``, which editors and type checkers follow too), so ``import xwvnet`` stays light on every dask
worker and torch or scikit-learn load only when a name that needs them is used. The submodules
``xwvnet.synthetic``, ``xwvnet.datasets`` and ``xwvnet.plot`` are reachable as attributes too.
"""

from __future__ import annotations

import lazy_loader as _lazy

from . import accessor as _accessor  # noqa: F401  (registers ds.wvnet)
from ._version import __version__
from .schema import validate

__getattr__, _dir, _names = _lazy.attach_stub(__name__, __file__)
#: submodules reachable as attributes of the package (not in ``__all__``: they are modules, not functions)
_SUBMODULES = {"synthetic", "datasets", "plot"}
#: the public functions and classes named in ``__init__.pyi``
__all__ = ["__version__", "validate", *(n for n in _names if n not in {"__version__", "validate", *_SUBMODULES})]


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
