"""xwvnet: the WV-Net foundation model for Sentinel-1 wave-mode imagettes, in xarray and dask.

Importing xwvnet registers the ``wvnet`` accessor on Datasets. Heavy modules (torch, scikit-learn) load only
when a name that needs them is first used, so ``import xwvnet`` stays fast on every dask worker.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

from . import accessor as _accessor  # noqa: F401  (registers ds.wvnet)
from .schema import validate

try:
    __version__ = version("xwvnet")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

# public name -> module that defines it (PEP 562 lazy loading)
_LAZY = {
    "open_quicklooks": "xwvnet.io.quicklook",
    "open_store": "xwvnet.io.store",
    "to_store": "xwvnet.io.store",
    "open_ocn": "xwvnet.io.ocn",
    "synthetic": "xwvnet.synthetic",
    "datasets": "xwvnet.datasets",
    "Encoder": "xwvnet.models.encoder",
    "load_encoder": "xwvnet.models.registry",
    "embed": "xwvnet.inference",
    "embed_store": "xwvnet.archive",
    "open_embeddings": "xwvnet.archive",
    "Probe": "xwvnet.probe",
    "fit_probe": "xwvnet.probe",
    "predict": "xwvnet.probe",
    "learning_curve": "xwvnet.probe",
    "evaluate": "xwvnet.evaluation.table",
    "neighbors": "xwvnet.retrieval",
    "collocate": "xwvnet.joins.collocation",
    "train": "xwvnet.training.simclr",
}
_SUBMODULES = {"synthetic", "datasets"}

__all__ = ["__version__", "validate", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'xwvnet' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if name in _SUBMODULES else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
