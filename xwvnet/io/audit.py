"""What a store holds and whether it is sound: :func:`verify` reads every chunk, :func:`status` counts what is there.

Both read a committed snapshot through the store layer (:mod:`xwvnet.io.store`), so they see what every reader
sees. Damage is found by the format itself (zarr's ``crc32c`` codec on every chunk, icechunk's manifests for
missing objects): no bookkeeping file that a user could delete decides what is checked.
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
    """How complete a store is: ``imagettes``, ``complete`` rows, ``missing_chunks``, ``snapshot``, ``last_commit``.

    ``command`` completes it (empty when complete); ``chunk`` is the rows per stored chunk.
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

    @property
    def missing(self) -> int:
        """Rows not written yet."""
        return self.imagettes - self.complete

    def summary(self) -> str:
        """A short table for people, one line per figure."""
        lines = [f"store            {self.path}", f"kind             {self.kind}",
                 f"imagettes        {self.imagettes}", f"complete         {self.complete}",
                 f"missing          {self.missing}" + (f" (chunks {self.missing_chunks[:10]}"
                                                       f"{' ...' if len(self.missing_chunks) > 10 else ''})"
                                                       if self.missing_chunks else ""),
                 f"snapshot         {self.snapshot} ({self.last_commit})",
                 f"status           {'complete' if not self.missing else 'INCOMPLETE'}"]
        if self.missing:
            lines.append(f"complete it with: {self.command}")
        return "\n".join(lines)


@dataclass
class VerifyReport:
    """What :func:`verify` found: the snapshot's ``status``, chunks ``checked``, one ``damage`` error per bad chunk."""

    status: StoreStatus
    checked: int = 0
    damage: list[zs.DamagedChunkError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no chunk is damaged and no row is missing."""
        return not self.damage and not self.status.missing

    @property
    def damaged_ids(self) -> list[str]:
        """Ids of every imagette held by a damaged chunk (when readable)."""
        return list(dict.fromkeys(i for d in self.damage for i in (d.ids or [])))

    def summary(self) -> str:
        """The status table, chunks checked, ``status`` OK / DAMAGED / INCOMPLETE, one line per damaged chunk."""
        state = "DAMAGED" if self.damage else ("INCOMPLETE" if self.status.missing else "OK")
        lines = self.status.summary().splitlines()[:-1 - bool(self.status.missing)]
        lines += [f"chunks checked   {self.checked}", f"damaged chunks   {len(self.damage)}",
                  f"status           {state}"]
        lines += [f"  {d}" for d in self.damage]
        if self.status.missing:
            lines.append(f"complete it with: {self.status.command}")
        return "\n".join(lines)


def status(store: str | os.PathLike | Location, *, snapshot: str | None = None,
           storage_options: dict[str, Any] | None = None) -> StoreStatus:
    """How complete a store is: rows written and missing, and the command that completes it.

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
        Counts, missing chunks, the snapshot read and its message.

    Raises
    ------
    ValueError
        If no xwvnet store is there.

    Examples
    --------
    >>> print(xwvnet.status("embeddings.zarr").summary())  # doctest: +SKIP
    """
    return _status(zs.opened(locate(store, storage_options), snapshot, strict=False))


def _status(snap: zs.Snapshot) -> StoreStatus:
    n, group = snap.size, snap.group
    if snap.kind is zs.EMBEDDINGS:
        chunk = int(group.attrs.get("chunk", 1))
        rows = zs.complete_rows(n, chunk, np.zeros(0, np.int32) if zs.DONE in snap.holes else snap.done)
    else:
        chunk = next((group[v].chunks[0] for v in S.IMAGE_VARS if v in group), 1)
        rows = np.ones(n, bool)
    for name, chunks in snap.holes.items():  # a chunk the manifests do not list: its rows are missing
        step = group[name].chunks[0] if name != zs.DONE else chunk
        for k in chunks:
            rows[k * step : (k + 1) * step] = False
    missing = sorted({int(k) for k in np.flatnonzero(~rows) // max(1, chunk)})
    attrs = {**group.attrs, "kind": snap.kind.kind}
    command = "" if not missing else zs.completing_command(snap.location, attrs, repair=bool(snap.holes))
    return StoreStatus(str(snap.location), snap.kind.kind, n, int(rows.sum()), missing, snap.id, snap.message,
                       command, chunk)


def verify(store: str | os.PathLike | Location, *, snapshot: str | None = None,
           storage_options: dict[str, Any] | None = None) -> VerifyReport:
    """Read every chunk of a store and list what is missing or damaged, and how complete it is.

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
    VerifyReport
        ``ok`` is False when any chunk is damaged or any row is missing; ``summary()`` says what to do.

    Raises
    ------
    ValueError
        If no xwvnet store is there.

    Examples
    --------
    >>> report = xwvnet.verify("imagettes.zarr")  # doctest: +SKIP
    >>> report.ok, report.damaged_ids[:3]  # doctest: +SKIP
    """
    snap = zs.opened(locate(store, storage_options), snapshot, strict=False)
    checked, damage = zs.damage(snap)
    return VerifyReport(_status(snap), checked, damage)
