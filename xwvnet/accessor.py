"""The ``ds.wvnet`` accessor: a face over the functional modules, holding no state and no logic.

Each method *is* its function with the Dataset bound as the first argument: ``ds.wvnet.embed(...)`` calls
``xwvnet.embed(ds, ...)``, and ``help(ds.wvnet.embed)`` (or Shift-Tab in Jupyter) shows that function's signature
and numpydoc docstring. The functions' modules are imported on first use of a method, so ``import xwvnet`` does not
pull in torch or scikit-learn.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

import xarray as xr


class _Forward:
    """A method that forwards to ``module.name(ds, ...)``, imported on first access, with its signature and docs."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        self._wrapper: Callable[..., Any] | None = None

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def _build(self) -> Callable[..., Any]:
        func = getattr(importlib.import_module(self.module), self.name)

        @functools.wraps(func)
        def method(self: WVNetAccessor, *args: Any, **kwargs: Any) -> Any:
            return func(self._obj, *args, **kwargs)

        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        this = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        method.__signature__ = signature.replace(parameters=[this, *params[1:]])  # type: ignore[attr-defined]
        method.__qualname__ = f"{WVNetAccessor.__name__}.{self.attr}"
        method.__wrapped__ = func
        return method

    def __get__(self, obj: WVNetAccessor | None, owner: type | None = None) -> Any:
        if self._wrapper is None:
            self._wrapper = self._build()
        return self._wrapper if obj is None else types.MethodType(self._wrapper, obj)


@xr.register_dataset_accessor("wvnet")
class WVNetAccessor:
    """xwvnet's methods on imagette Datasets (``ds.wvnet.<method>``); every method returns a new object.

    Parameters
    ----------
    ds : xarray.Dataset
        The imagette Dataset the methods work on (see ``docs/data-model.md``).

    Examples
    --------
    >>> import xwvnet
    >>> ds = xwvnet.synthetic.imagettes(4, seed=0, size=(64, 64))
    >>> ds.wvnet.validate() is ds
    True
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self._obj = ds

    validate = _Forward("xwvnet.schema", "validate")
    to_store = _Forward("xwvnet.io.store", "to_store")
    embed = _Forward("xwvnet.inference", "embed")
    fit_probe = _Forward("xwvnet.probe", "fit_probe")
    predict = _Forward("xwvnet.probe", "predict")
    fit_head = _Forward("xwvnet.heads", "fit_head")
    evaluate = _Forward("xwvnet.evaluation.table", "evaluate")
    learning_curve = _Forward("xwvnet.evaluation.curves", "learning_curve")
    neighbors = _Forward("xwvnet.retrieval", "neighbors")
    collocate = _Forward("xwvnet.joins.collocation", "collocate")
    train = _Forward("xwvnet.training", "train")
    to_geoparquet = _Forward("xwvnet.export.geoparquet", "to_geoparquet")
