"""The roots of every exception and warning xwvnet raises, so that one ``except`` (or one filter) catches them all.

Every xwvnet exception class derives from :class:`XWVNetError` *and* keeps its builtin parent (``ValueError``,
``OSError``, ``RuntimeError`` ...), so existing ``except ValueError:`` clauses still work; every xwvnet warning class
derives from :class:`XWVNetWarning` (a ``UserWarning``). The ``xwvnet`` command prints an :class:`XWVNetError` as one
line and exits 1.

Examples
--------
>>> import warnings
>>> from xwvnet.errors import XWVNetWarning
>>> warnings.simplefilter("error", XWVNetWarning)  # doctest: +SKIP
"""

from __future__ import annotations


class XWVNetError(Exception):
    """The root of every xwvnet exception (subclasses also derive from a builtin exception)."""


class XWVNetWarning(UserWarning):
    """The root of every xwvnet warning."""
