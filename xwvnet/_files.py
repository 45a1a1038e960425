"""Local files written whole or not at all: the one home of the temporary-file-then-rename rule.

Every file xwvnet writes outside a store (weights, sidecars, checkpoints, indexes, exports, logs) goes through
:func:`replacing`, so a crash or Ctrl-C mid-write leaves the previous file (or none), never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replacing"]

_SUFFIX = ".tmp"


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
    target = Path(path)
    tmp = target.with_name(target.name + _SUFFIX)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

