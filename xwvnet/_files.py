"""Local files written whole or not at all: the one home of the temporary-file-then-rename rule.

Every file xwvnet writes outside a store (weights, sidecars, checkpoints, indexes, exports, logs) goes through
:func:`replacing`, so a crash or Ctrl-C mid-write leaves the previous file (or none), never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["local_path", "replacing"]

_SUFFIX = ".tmp"


def local_path(path: str | os.PathLike, what: str = "this output") -> Path:
    """``path`` as an absolute local path; a URL is refused in one line, never taken for a path named after it.

    Parameters
    ----------
    path : str or os.PathLike
        A local path, or a ``file://`` URL.
    what : str, default "this output"
        What is read or written there, for the message.

    Returns
    -------
    pathlib.Path
        The absolute local path.

    Raises
    ------
    InvalidArgumentError
        For an object-storage URL (``s3://``, ``gs://``, ``az://``) or a name that looks like one.

    Examples
    --------
    >>> local_path("s3://bucket/probe.json", "a probe")
    Traceback (most recent call last):
    ...
    xwvnet.errors.InvalidArgumentError: s3://bucket/probe.json: a probe is read and written on a local file system \
only; give a local path, and copy it to or from object storage with your storage tools.
    """
    from .errors import InvalidArgumentError
    from .io.storage import locate

    location = locate(path)
    if not location.local:
        raise InvalidArgumentError(f"{location}: {what} is read and written on a local file system only; give a "
                                   "local path, and copy it to or from object storage with your storage tools.")
    return location.path


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it onto ``path``, else delete it.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its folder must exist.

    Yields
    ------
    pathlib.Path
        ``path`` with ``.tmp`` appended, in the same folder (so the rename is atomic on POSIX).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with replacing(f"{folder}/a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(f"{folder}/a.txt").read()
    'done'
    """
    target = local_path(path)
    tmp = target.with_name(target.name + _SUFFIX)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

