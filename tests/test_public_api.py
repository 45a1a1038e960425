"""The public names: each is the documented function or class, whatever was imported or called before."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import xarray as xr

import xwvnet


def _submodules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(xwvnet.__path__, "xwvnet."))


def _stub_modules() -> dict[str, str]:
    """Public name -> the module ``xwvnet/__init__.pyi`` (SPEC 1 stub) imports it from."""
    tree = ast.parse(Path(xwvnet.__file__).with_suffix(".pyi").read_text())
    return {alias.asname or alias.name: "xwvnet" + (f".{node.module}" if node.module else "")
            for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names}


def _check_names() -> None:
    stub = _stub_modules()
    for name in xwvnet.__all__:
        value = getattr(xwvnet, name)
        if name == "__version__":
            assert isinstance(value, str)
            continue
        assert not isinstance(value, types.ModuleType), f"xwvnet.{name} is a module"
        assert inspect.isfunction(value) or inspect.isclass(value), f"xwvnet.{name} is {type(value)}"
        assert value.__name__ == name, f"xwvnet.{name} is {value.__name__}"
        assert value.__module__.startswith(stub[name]), f"{name}: {value.__module__} but the stub says {stub[name]}"
        assert value.__doc__ and value.__doc__.strip(), f"xwvnet.{name} has no docstring"
    for name in xwvnet._SUBMODULES:
        assert isinstance(getattr(xwvnet, name), types.ModuleType)


def test_no_module_replaces_its_own_class():
    for name in _submodules():
        module = importlib.import_module(name)
        assert type(module) is types.ModuleType, f"{name} swapped its module class to {type(module)}"


def test_every_public_name_is_the_function_after_importing_every_submodule():
    for name in _submodules():
        importlib.import_module(name)
    _check_names()


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_public_names_in_a_fresh_process_whatever_the_import_order(order):
    code = (
        "import importlib, pkgutil, sys\n"
        "import xwvnet\n"
        "names = sorted(i.name for i in pkgutil.walk_packages(xwvnet.__path__, 'xwvnet.'))\n"
        f"names = names[::-1] if {order!r} == 'reverse' else names\n"
        "for n in names: importlib.import_module(n)\n"
        "sys.path.insert(0, {tests!r})\n"
        "from test_public_api import _check_names\n"
        "_check_names()\n"
    ).replace("{tests!r}", repr(str(__import__("pathlib").Path(__file__).parent)))
    subprocess.run([sys.executable, "-c", code], check=True)


def test_names_used_through_the_accessor_first_stay_callable():
    ds = xr.Dataset()
    for method in ("embed", "collocate", "train", "fit_probe", "predict", "neighbors", "to_store"):
        assert callable(getattr(ds.wvnet, method))
    _check_names()


def test_accessor_methods_show_the_functions_parameters():
    from xwvnet.accessor import WVNetAccessor

    for name, method in inspect.getmembers(WVNetAccessor, inspect.isfunction):
        if name.startswith("_"):
            continue
        doc = inspect.getdoc(method) or ""
        assert "Parameters\n----------" in doc, f"ds.wvnet.{name} has no Parameters section"
        params = list(inspect.signature(method).parameters)
        assert params[0] == "self" and "kwargs" not in params, f"ds.wvnet.{name}{inspect.signature(method)}"


def test_public_functions_have_numpydoc_sections():
    for name in xwvnet.__all__:
        value = getattr(xwvnet, name)
        if inspect.isfunction(value):
            doc = inspect.getdoc(value) or ""
            assert "Parameters\n----------" in doc, f"xwvnet.{name} has no Parameters section"
            assert "Returns\n-------" in doc, f"xwvnet.{name} has no Returns section"


def test_the_stub_names_exactly_the_public_api():
    """Editors follow __init__.pyi: it must list every name of __all__ and nothing else (modules aside)."""
    names = set(_stub_modules()) - {"datasets", "plot", "synthetic"}
    assert names == set(xwvnet.__all__)


def test_warnings_point_at_the_callers_line():
    import warnings

    from xwvnet.errors import XWVNetWarning, warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("look here", XWVNetWarning)
    assert caught[0].filename == __file__
    assert caught[0].category is XWVNetWarning


# Public functions defined under the same name in two modules: each entry names the rooms. ``main`` is the entry
# point of each command (``xwvnet`` and ``python -m xwvnet.training.recipe``), as Python's convention names it.
_KNOWN_CLASHES = {
    "main": {"xwvnet.cli", "xwvnet.training.recipe"},
}


def _public_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    """The functions a module defines itself among its public names (``__all__``, else every non-underscore name)."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return {n: v for n in names if inspect.isfunction(v := getattr(module, n, None))
            and v.__module__ == module.__name__}


def test_no_two_modules_define_a_public_function_of_the_same_name():
    homes: dict[str, set[str]] = {}
    for name in ["xwvnet", *_submodules()]:
        for function in _public_functions(importlib.import_module(name)):
            homes.setdefault(function, set()).add(name)
    clashes = {f: m for f, m in homes.items() if len(m) > 1}
    unexpected = {f: sorted(m) for f, m in clashes.items() if _KNOWN_CLASHES.get(f) != m}
    assert not unexpected, f"public functions of the same name in several modules: {unexpected}"
    stale = sorted(set(_KNOWN_CLASHES) - set(clashes))
    assert not stale, f"{stale} no longer clash: remove them from _KNOWN_CLASHES"
    # re-exports are not definitions: xwvnet.collocate is joins.collocation.collocate, counted once
    assert homes["collocate"] == {"xwvnet.joins.collocation"}


def test_every_warning_goes_through_errors_warn():
    """One home for warning: errors.warn attributes it to the user's line and xwvnet warns only its own classes."""
    import pathlib
    import re

    package = pathlib.Path(xwvnet.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.strip()
            if code.startswith((">>>", "...", "#")):
                continue
            if re.search(r"\bwarnings\.warn\(", code) or re.search(r"\bwarn\([^)]*\bUserWarning\b", code):
                offenders.append(f"{path.relative_to(package)}:{number}")
    assert not offenders, f"use xwvnet.errors.warn with an xwvnet warning class: {offenders}"
