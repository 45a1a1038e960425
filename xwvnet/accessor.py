"""The ``ds.wvnet`` accessor: a face over the functional modules, holding no state and no logic.

Each method forwards to the function of the same name (``ds.wvnet.embed(...)`` is ``xwvnet.embed(ds, ...)``),
so the documentation of that function is the documentation of the method. Modules are imported on first use.
"""

from __future__ import annotations

from typing import Any

import xarray as xr


@xr.register_dataset_accessor("wvnet")
class WVNetAccessor:
    """Methods of xwvnet on imagette Datasets; every method returns a new object."""

    def __init__(self, ds: xr.Dataset) -> None:
        self._obj = ds

    def validate(self) -> xr.Dataset:
        """See :func:`xwvnet.schema.validate`."""
        from .schema import validate

        return validate(self._obj)

    def to_store(self, path: Any, **kwargs: Any) -> Any:
        """See :func:`xwvnet.io.store.to_store`."""
        from .io.store import to_store

        return to_store(self._obj, path, **kwargs)

    def embed(self, encoder: Any = "wvnet-resnet50", **kwargs: Any) -> xr.Dataset:
        """See :func:`xwvnet.inference.embed`."""
        from .inference import embed

        return embed(self._obj, encoder, **kwargs)

    def fit_probe(self, target: str, **kwargs: Any) -> Any:
        """See :func:`xwvnet.probe.fit_probe`."""
        from .probe import fit_probe

        return fit_probe(self._obj, target, **kwargs)

    def predict(self, probe: Any, **kwargs: Any) -> xr.Dataset:
        """See :func:`xwvnet.probe.predict`."""
        from .probe import predict

        return predict(self._obj, probe, **kwargs)

    def neighbors(self, k: int = 10, **kwargs: Any) -> xr.Dataset:
        """See :func:`xwvnet.retrieval.neighbors`."""
        from .retrieval import neighbors

        return neighbors(self._obj, k=k, **kwargs)

    def collocate(self, source: Any, **kwargs: Any) -> xr.Dataset:
        """See :func:`xwvnet.collocate.collocate`."""
        from .joins.collocation import collocate

        return collocate(self._obj, source, **kwargs)

    def train(self, **kwargs: Any) -> Any:
        """See :func:`xwvnet.train.train`."""
        from .training import train

        return train(self._obj, **kwargs)
