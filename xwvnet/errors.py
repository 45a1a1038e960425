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


def warn(message: str | Warning, category: type[Warning] = XWVNetWarning) -> None:
    """Issue a warning attributed to the first caller outside xwvnet (the user's line, not ours).

    Python 3.12's ``skip_file_prefixes`` does this; on 3.11 the stack level is counted here, so every xwvnet
    warning points at the user's code whatever depth it is raised from.

    Parameters
    ----------
    message : str or Warning
        The warning's text (what happened and what to do), or a warning instance carrying more (then
        ``category`` is its class).
    category : type of Warning, default XWVNetWarning
        Its class (an xwvnet warning class).

    Returns
    -------
    None
    """
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is warn's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
