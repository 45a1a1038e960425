"""The ``ds.wvnet`` accessor: its methods stay callable whatever was used first, and show the functions' parameters."""

from __future__ import annotations

import inspect

import xarray as xr

from tests._public_names import check_names


def test_names_used_through_the_accessor_first_stay_callable():
    ds = xr.Dataset()
    for method in ("embed", "collocate", "train", "fit_probe", "predict", "neighbors", "to_store"):
        assert callable(getattr(ds.wvnet, method))
    check_names()


def test_accessor_methods_show_the_functions_parameters():
    from xwvnet.accessor import WVNetAccessor

    for name, method in inspect.getmembers(WVNetAccessor, inspect.isfunction):
        if name.startswith("_"):
            continue
        doc = inspect.getdoc(method) or ""
        assert "Parameters\n----------" in doc, f"ds.wvnet.{name} has no Parameters section"
        params = list(inspect.signature(method).parameters)
        assert params[0] == "self" and "kwargs" not in params, f"ds.wvnet.{name}{inspect.signature(method)}"
