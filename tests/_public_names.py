"""The public-name checks shared by the package and accessor tests, and by the fresh processes they start."""

from __future__ import annotations

import ast
import inspect
import pkgutil
import types
from pathlib import Path

import xwvnet


def submodules() -> list[str]:
    """Every module of the package, by dotted name."""
    return sorted(info.name for info in pkgutil.walk_packages(xwvnet.__path__, "xwvnet."))


def stub_modules() -> dict[str, str]:
    """Public name -> the module ``xwvnet/__init__.pyi`` (SPEC 1 stub) imports it from."""
    tree = ast.parse(Path(xwvnet.__file__).with_suffix(".pyi").read_text())
    return {alias.asname or alias.name: "xwvnet" + (f".{node.module}" if node.module else "")
            for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names}


def check_names() -> None:
    """Each name of ``xwvnet.__all__`` is a documented function or class of the module the stub names (never a
    module); each submodule of ``xwvnet._SUBMODULES`` is a module."""
    stub = stub_modules()
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
