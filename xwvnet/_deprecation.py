"""Renamed arguments keep working for one release, with a ``FutureWarning`` that names the new name."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import warn

__all__ = ["renamed_arguments"]

F = TypeVar("F", bound=Callable[..., Any])


def renamed_arguments(**old_to_new: str) -> Callable[[F], F]:
    """Accept each old keyword of a function under its new name, warning once per call.

    Parameters
    ----------
    **old_to_new : str
        ``old="new"`` pairs: a call with ``old=`` runs as ``new=`` and issues a ``FutureWarning`` (pointing at the
        caller's line) that says the old name goes away in the next release.

    Returns
    -------
    callable
        A decorator; the decorated function keeps its signature and docstring (``functools.wraps``).

    Raises
    ------
    TypeError
        From the decorated function, when a call passes both the old and the new name.

    Examples
    --------
    >>> @renamed_arguments(chunk="chunk_size")
    ... def write(*, chunk_size=1):
    ...     return chunk_size
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     write(chunk=4)
    4
    """
    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__name__}() got both {old}= and its new name {new}=; "
                                        f"pass {new}= only.")
                    warn(f"{func.__name__}({old}=...) is renamed {func.__name__}({new}=...); "
                         f"{old}= goes away in the next release.", FutureWarning)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
