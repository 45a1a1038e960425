"""The installed version of xwvnet, in one place that no other module has to import the package for."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("xwvnet")
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "0+unknown"
