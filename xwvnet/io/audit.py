"""Whether a store is complete and sound: :func:`status` counts what is there, :func:`verify` reads every chunk.

Both read one committed snapshot through the store door, so they see what every reader sees; damage is what the
format finds (checksums, manifests, the whole grid), never a bookkeeping file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import schema as S
from . import store as zs
from .storage import Location, locate


@dataclass
class StoreStatus:
    """How complete (and, after :func:`verify`, how sound) one snapshot of a store is.

    ``imagettes`` and ``complete`` rows, ``missing_chunks``, the ``command`` that completes or repairs it, rows per
    stored ``chunk``; :func:`verify` adds the chunks ``checked`` and one ``damage`` error per damaged chunk.
    """

    path: str
    kind: str
    imagettes: int
    complete: int
    missing_chunks: list[int]
    snapshot: str
    last_commit: str
    command: str = ""
    chunk: int = 0
    checked: int | None = None
    damage: list[zs.DamagedChunkError] = field(default_factory=list)

    @property
    def missing(self) -> int:
        """Rows not written (or in chunks missing from the grid)."""
        return self.imagettes - self.complete

    @property
    def ok(self) -> bool:
        """True when no chunk is damaged and no row is missing."""
        return not self.damage and not self.missing

    @property
    def damaged_ids(self) -> list[str]:
        """Ids of every imagette held by a damaged chunk (when readable)."""
        return list(dict.fromkeys(i for d in self.damage for i in (d.ids or [])))

    def summary(self) -> str:
        """A short table for people: one line per figure, one per damaged chunk, then what to run."""
        shown = f" (chunks {self.missing_chunks[:10]}{' ...' if len(self.missing_chunks) > 10 else ''})"
        rows = [("store", self.path), ("kind", self.kind), ("imagettes", self.imagettes),
                ("complete", self.complete), ("missing", f"{self.missing}{shown if self.missing_chunks else ''}"),
                ("snapshot", f"{self.snapshot} ({self.last_commit})")]
        if self.checked is not None:
            rows += [("chunks checked", self.checked), ("damaged chunks", len(self.damage))]
        rows += [("status", "DAMAGED" if self.damage else "INCOMPLETE" if self.missing else "OK")]
        lines = [f"{k:<17}{v}" for k, v in rows] + [f"  {d}" for d in self.damage]
        return "\n".join(lines + ([f"complete it with: {self.command}"] if self.missing else []))


def status(store: str | os.PathLike | Location, *, snapshot: str | None = None,
           storage_options: dict[str, Any] | None = None) -> StoreStatus:
    """How complete a store is: rows written and missing, and the command that completes or repairs it.

    Parameters
    ----------
    store : str, os.PathLike or Location
        An imagette store or an embedding store (path or URL).
    snapshot : str, optional
        A snapshot id or tag; default the newest commit.
    storage_options : dict, optional
        See :func:`xwvnet.open_store`.

    Returns
    -------
    StoreStatus
        Counts, missing chunks (not yet embedded, or absent from the grid), the snapshot and its message.

    Raises
    ------
    NotAStoreError
        If no xwvnet store is there (a ``ValueError``).
    """
    return _status(zs.opened(locate(store, storage_options), snapshot, strict=False))


def _status(snap: zs.Snapshot) -> StoreStatus:
    n, group, holes = snap.size, snap.group, snap.holes()
    if snap.kind is zs.EMBEDDINGS:
        chunk = int(group.attrs.get("chunk", 1))
        rows = zs.complete_rows(n, chunk, np.zeros(0, np.int32) if zs.DONE in holes else snap.done)
    else:
        chunk = next((snap.arrays[v].chunks[0] for v in S.IMAGE_VARS if v in snap.arrays), 1)
        rows = np.ones(n, bool)
    for name, chunks in holes.items():  # a chunk the manifests do not list: its rows are missing
        step = snap.arrays[name].chunks[0] if name != zs.DONE else chunk
        for k in chunks:
            rows[k * step : (k + 1) * step] = False
    missing = sorted({int(k) for k in np.flatnonzero(~rows) // max(1, chunk)})
    attrs = {**group.attrs, "kind": snap.kind.kind}
    command = "" if not missing else zs.completing_command(snap.location, attrs, repair=bool(holes))
    return StoreStatus(str(snap.location), snap.kind.kind, n, int(rows.sum()), missing, snap.id, snap.message,
                       command, chunk)


def verify(store: str | os.PathLike | Location, *, snapshot: str | None = None,
           storage_options: dict[str, Any] | None = None) -> StoreStatus:
    """Read every chunk of a store: list what is missing or damaged, and how complete it is.

    Parameters
    ----------
    store, snapshot, storage_options
        As for :func:`status`.

    Returns
    -------
    StoreStatus
        With ``checked`` and ``damage``; ``ok`` is False when any chunk is damaged or any row is missing.

    Raises
    ------
    NotAStoreError
        If no xwvnet store is there (a ``ValueError``).
    """
    snap = zs.opened(locate(store, storage_options), snapshot, strict=False)
    report = _status(snap)
    report.checked, report.damage = zs.damage(snap)
    return report
