"""xwvnet: the WV-Net foundation model for Sentinel-1 wave-mode imagettes, in xarray and dask.

Importing xwvnet registers the ``wvnet`` accessor on Datasets. The public names below are functions and classes;
each is imported from its module on first use (PEP 562), so ``import xwvnet`` stays light on every dask worker and
torch or scikit-learn load only when a name that needs them is used. The submodules ``xwvnet.synthetic``,
``xwvnet.datasets`` and ``xwvnet.plot`` are reachable as attributes too.
"""

from __future__ import annotations

import importlib

from . import accessor as _accessor  # noqa: F401  (registers ds.wvnet)
from ._version import __version__
from .schema import validate

# public name -> module that defines it
_LAZY = {
    "open_quicklooks": "xwvnet.io.quicklook",
    "open_store": "xwvnet.io.store",
    "open_stores": "xwvnet.io.store",
    "history": "xwvnet.io.store",
    "verify": "xwvnet.io.audit",
    "status": "xwvnet.io.audit",
    "migrate": "xwvnet.io.conversion",
    "ingest": "xwvnet.ingestion",
    "add_labels": "xwvnet.ingestion",
    "to_store": "xwvnet.io.store",
    "open_ocn": "xwvnet.io.ocn",
    "open_safe": "xwvnet.io.safe",
    "safe_to_imagettes": "xwvnet.radiometry",
    "Encoder": "xwvnet.models.encoder",
    "load_encoder": "xwvnet.models.zoo",
    "embed": "xwvnet.inference",
    "embed_store": "xwvnet.archive",
    "Probe": "xwvnet.probe",
    "fit_probe": "xwvnet.probe",
    "predict": "xwvnet.probe",
    "learning_curve": "xwvnet.evaluation.curves",
    "evaluate": "xwvnet.evaluation.table",
    "neighbors": "xwvnet.retrieval",
    "collocate": "xwvnet.joins.collocation",
    "train": "xwvnet.training",
    "to_geoparquet": "xwvnet.export.geoparquet",
    "read_geoparquet": "xwvnet.export.geoparquet",
}
#: submodules reachable as attributes of the package (not in ``__all__``: they are modules, not functions)
_SUBMODULES = {"synthetic", "datasets", "plot"}

__all__ = ["__version__", "validate", *_LAZY]


def __getattr__(name: str) -> object:
    if name in _SUBMODULES:
        return importlib.import_module(f"xwvnet.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module 'xwvnet' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
