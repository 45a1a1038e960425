"""Ingest what users download: WV L1 SLC SAFE products and quicklook files, mixed, into one imagette store.

Quicklook files are read in batches (one file per id, decided before batching; ids already stored are not even
read) and each batch is appended in one commit. ``repair=True`` first reads the whole store (:func:`xwvnet.verify`)
and rewrites damaged chunks from the quicklook files and SAFE products given. :func:`add_labels` sets tags of stored
imagettes from a tag CSV in one commit. SAFE products (and EOPF WV SLC Zarr products, read by the same reader) are
turned into quicklooks (calibrated sigma0, multilooked, stretched: :func:`xwvnet.io.safe.safe_to_imagettes`) one dask
task per imagette, run in parallel by dask (threads here, or the cluster of ``client``), and written with
:func:`xwvnet.io.store.to_store`, which skips ids already stored: a killed run re-run completes it, and only new
imagettes are computed. With ``workers=N`` the imagettes go one by one to a pool of N worker processes started for
the call (:func:`xwvnet.distributed.process_pool`) and come back here, where they are committed in batches, in
order, while the workers compute the next ones. One store holds one set of variables; a batch is conformed to a
store that exists (extra variables dropped and reported, missing ones filled with the data model's missing values).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import numpy as np
import xarray as xr

from . import schema as S
from ._runtime import RunContext, check_count, run_context
from .errors import InvalidArgumentError, StoreMismatchError
from .io import store as zs
from .io.sources import EOPF_SLC, QUICKLOOK, SAFE, resolve
from .io.storage import Location, locate
from .io.store import StoreReport, open_store, store_kind, to_store

if TYPE_CHECKING:
    from .distributed import WorkerMemory

log = logging.getLogger(__name__)
#: Imagettes queued per worker process ahead of the one it computes: enough to keep it busy through a commit here.
QUEUED_PER_WORKER = 4


def conform(ds: xr.Dataset, like: xr.Dataset) -> tuple[xr.Dataset, list[str]]:
    """``ds`` with the variables of the store opened as ``like``: extras dropped, missing ones filled.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes to append.
    like : xarray.Dataset
        The store's imagettes (only its variables' names, dims and dtypes are used; nothing is loaded).

    Returns
    -------
    tuple of (xarray.Dataset, list of str)
        The conformed Dataset and one note per variable dropped or filled.

    Raises
    ------
    ValueError
        If the store has an image variable that ``ds`` lacks, or label codes that differ.
    """
    notes: list[str] = []
    mine, theirs = set(map(str, ds.variables)), set(map(str, like.variables)) - {S.LINE, S.SAMPLE}
    missing_images = [v for v in S.IMAGE_VARS if v in theirs and v not in mine]
    if missing_images:
        raise StoreMismatchError(
            f"the store holds {missing_images} but these imagettes do not; ingest them with the same "
            "variables (e.g. --keep-sigma0) or into another store."
        )
    extra = sorted(mine - theirs - {S.LINE, S.SAMPLE})
    if extra:
        ds = ds.drop_vars(extra)
        notes.append(f"not stored (the store has no such variable): {', '.join(extra)}")
    n = ds.sizes[S.IMAGETTE]
    filled = []
    for name in sorted(theirs - set(map(str, ds.variables))):
        var = like[name]
        if name == S.LABELS:  # tags unknown for these imagettes: -1 under the store's tag codes
            codes = like[S.LABEL].values
            values = np.full((n, codes.size), -1, dtype=np.int8)
            ds = ds.assign_coords({S.LABEL: codes}).assign({S.LABELS: ((S.IMAGETTE, S.LABEL), values, var.attrs)})
            filled.append(name)
            continue
        if var.dims != (S.IMAGETTE,):  # the tag codes come with `labels`; the image frame is the store's
            continue
        kind = var.dtype.kind
        fill = {"f": np.nan, "M": np.datetime64("NaT"), "i": -1, "u": 0, "b": False}.get(kind, "")
        values = np.full(n, fill, dtype=var.dtype if kind in "fMiub" else object)
        if name in like.coords:
            ds = ds.assign_coords({name: (S.IMAGETTE, values, var.attrs)})
        else:
            ds = ds.assign({name: (S.IMAGETTE, values, var.attrs)})
        filled.append(name)
    if filled:
        notes.append(f"filled with missing values (these imagettes have none): {', '.join(filled)}")
    return ds, notes


def _by_id(files: Sequence[Path], report: StoreReport) -> dict[str, Path]:
    """One quicklook file per id, in the order given (decided before batching); the others reported as skipped."""
    first: dict[str, Path] = {}
    for f in files:
        stem = f.name.split(".")[0]
        if stem in first:
            report.skipped.append(f"{f}: DuplicateId: same imagette id {stem!r} as {first[stem]}; rename one to keep "
                                  "both")
        else:
            first[stem] = f
    return first


def _quicklooks(first: dict[str, Path], loc: Location, labels: str | os.PathLike | None, batch: int,
                progress: bool, report: StoreReport) -> None:
    """Read quicklook files (one per id) into the store batch by batch; files whose id is stored are not even read."""
    from tqdm.auto import tqdm

    from .io.quicklook import NoReadableImageError, QuicklookWarning, open_quicklooks

    stored = set(open_store(loc)[S.IMAGETTE].values.tolist()) if store_kind(loc) == zs.IMAGETTES.kind else set()
    seen = set(stored)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuicklookWarning)
        todo = [f for stem, f in first.items() if stem not in stored]
        report.present += len(first) - len(todo)
        bar = tqdm(total=len(todo), desc="ingest", unit="img", disable=not progress)
        for start in range(0, len(todo), batch):
            try:
                ds = open_quicklooks(todo[start : start + batch], labels=labels, duplicates="skip", lazy=False)
            except NoReadableImageError as err:  # a batch with no readable file at all
                report.skipped.extend(err.skipped)
                bar.update(min(batch, len(todo) - start))
                continue
            seen.update(str(i) for i in ds[S.IMAGETTE].values)
            if store_kind(loc) is not None:  # e.g. tags added to the store since: -1 (unknown) for these
                ds, notes = conform(ds, open_store(loc))
                report.warnings.extend(n for n in notes if n not in report.warnings)
            written = to_store(ds, loc, command="ingest")
            report.added += written.added
            report.present += written.present
            report.commits += written.commits
            report.skipped.extend(written.skipped)
            bar.update(min(batch, len(todo) - start))
        bar.close()
    report.warnings[:0] = _summary(caught, seen)


def _summary(caught: list[warnings.WarningMessage], seen: Iterable[str] = ()) -> list[str]:
    """The quicklook reader's warnings, totalled (files skipped are listed in the report already)."""
    from .io.quicklook import SkippedFilesWarning, summarize_warnings

    return summarize_warnings([w for w in caught if not issubclass(w.category, SkippedFilesWarning)], known_ids=seen)


def _fresh(files: dict[str, Path], labels: str | os.PathLike | None, products: xr.Dataset | None,
           like: xr.Dataset) -> Callable[[list[str]], list[xr.Dataset] | str]:
    """Imagettes again by id, from their quicklook files and the (lazy) SAFE imagettes given, or why not.

    One chunk may hold imagettes of both kinds: each comes from its own source (a quicklook file first), and the
    parts are fitted to the store together (:func:`xwvnet.io.store.repair`).
    """
    from .io.quicklook import open_quicklooks

    position = {} if products is None else {str(i): k for k, i in enumerate(products[S.IMAGETTE].values)}
    given = " or ".join(k for k, v in (("quicklook files", files), ("SAFE products", position)) if v) or "sources"

    def fresh(ids: list[str]) -> list[xr.Dataset] | str:
        lost = [i for i in ids if i not in files and i not in position]
        if lost:
            return (f"{len(lost)} of these imagettes are not among the {given} given (e.g. {lost[:3]}); ingest "
                    "again with the files or products they came from, or open an earlier snapshot")
        parts = []
        if named := [i for i in ids if i in files]:
            rows = open_quicklooks([files[i] for i in named], labels=labels, duplicates="skip", lazy=False)
            if [str(i) for i in rows[S.IMAGETTE].values] != named:
                return "some of their source files are no longer readable: " + "; ".join(
                    rows.attrs.get("skipped", [])[:3])
            parts.append(conform(rows, like)[0])
        if computed := [position[i] for i in ids if i not in files]:
            parts.append(products.isel({S.IMAGETTE: computed}).load())
        return parts

    return fresh


def _repair(loc: Location, fresh: Callable[[list[str]], list[xr.Dataset] | str], report: StoreReport) -> None:
    """Rewrite the damaged chunks of an imagette store with ``fresh(ids)``, in one pass over the store."""
    from .io.quicklook import QuicklookWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", QuicklookWarning)
        repaired, left = zs.repair(loc, fresh)
    report.repaired += len(repaired)
    report.damaged = left
    report.warnings.extend(_summary(caught))


def add_labels(store: str | os.PathLike | Location, labels: str | os.PathLike, *,
               storage_options: dict | None = None) -> StoreReport:
    """Add or update the tags of imagettes already in a store, from a tag CSV (as published with WV-Net), in one commit.

    Rows of the CSV are matched to stored imagettes by file stem; a stored imagette without a row keeps the tags
    it had (or -1, unknown, when it had none), and a row that matches no stored imagette (e.g. one not yet
    committed by an ingest under way) is not applied but reported. The tag codes must be the store's when it has
    tags already. The tags are computed from one snapshot and committed on top of it: if an ingest appends
    meanwhile, the labels are refused with an error (re-run), never written to the wrong rows or dropped.

    Parameters
    ----------
    store : str, os.PathLike or Location
        The imagette store (path or URL).
    labels : str or os.PathLike
        The tag CSV: a ``filename`` column and one 0/1 column per tag.
    storage_options : dict, optional
        See :func:`xwvnet.open_store`.

    Returns
    -------
    StoreReport
        ``added`` counts the imagettes whose tags were set from the CSV; ``total`` the store's imagettes;
        ``skipped`` has one ``"row for NAME: no such imagette in the store"`` per CSV row that matches none (NAME:
        the file stem), and ``warnings`` one line with their count and the first few names.

    Raises
    ------
    ValueError
        If the CSV's tag codes differ from the store's, no row matches a stored imagette, or imagettes were
        appended while the tags were computed.
    xwvnet.io.quicklook.LabelsFileError
        If the CSV is unreadable or malformed.
    xwvnet.io.store.WriteConflictError
        If another writer committed while the tags were written.
    """
    from .io.quicklook import LabelsFileError, UnmatchedLabelsWarning, read_labels

    loc = locate(store, storage_options)
    ds = open_store(loc)
    ids = [str(i) for i in ds[S.IMAGETTE].values]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # stored imagettes without a row are expected; rows without one reported
        new = read_labels(labels, ids)
    unmatched = [name for w in caught if isinstance(w.message, UnmatchedLabelsWarning) for name in w.message.items]
    matched = (new.values != -1).any(axis=1)
    if not matched.any():
        raise LabelsFileError(f"no row of {labels} names an imagette of {loc}; check the 'filename' column.")
    if S.LABELS in ds:
        codes = [str(c) for c in ds[S.LABEL].values]
        if sorted(codes) != sorted(str(c) for c in new[S.LABEL].values):
            raise StoreMismatchError(f"the tag codes of {labels} ({list(new[S.LABEL].values)}) differ from the store's "
                                     f"({codes}); use a CSV with the store's tags or a new store.")
        old = ds[S.LABELS].load()
        ordered = new.sel({S.LABEL: old[S.LABEL].values}).values
        out = old.copy(data=np.where(ordered != -1, ordered, old.values).astype(np.int8))
    else:
        out = new.assign_coords({S.IMAGETTE: ds[S.IMAGETTE].values})
    zs.add_variables(xr.Dataset({S.LABELS: out}), loc, [S.LABELS], command=f"label from {Path(labels).name}")
    notes = [] if not unmatched else [
        f"{len(unmatched)} row(s) of {Path(labels).name} match no imagette in the store and were not applied, e.g. "
        f"{', '.join(unmatched[:5])}: ingest them (or wait for the ingest under way), then label again."]
    return StoreReport(path=str(loc), added=int(matched.sum()), present=len(ids) - int(matched.sum()),
                       skipped=[f"row for {name}: no such imagette in the store" for name in unmatched],
                       total=len(ids), warnings=notes, commits=1)


@contextlib.contextmanager
def _compute_on(where: RunContext) -> Iterator[None]:
    """dask computes the SAFE imagettes where the run context says: on its cluster, or on its thread pool here."""
    local = {"scheduler": "threads", "num_workers": where.threads}
    with dask.config.set(local if where.client is None else {"scheduler": where.client}):
        yield


def _compute_imagette(graph: dict, keys: list) -> list[np.ndarray]:
    """In a pool worker: compute ``keys`` (one imagette's blocks) of the dask graph ``graph``, in this thread."""
    from dask.local import get_sync

    return list(get_sync(graph, keys))


class _Rows:
    """The lazy image variables of imagettes, one dask graph optimised once, cut into one small graph per imagette.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes whose image variables are dask arrays.
    """

    def __init__(self, ds: xr.Dataset) -> None:
        self.names = [name for name in ds.data_vars if ds[name].chunks is not None]
        rows = ds[self.names].chunk({S.IMAGETTE: 1, S.LINE: -1, S.SAMPLE: -1})  # one block per imagette (no-op)
        (rows,) = dask.optimize(rows)
        self.graph = dict(rows.__dask_graph__())
        self.keys = [rows[name].data.__dask_keys__() for name in self.names]

    def task(self, k: int) -> tuple[dict, list]:
        """The graph of imagette ``k`` alone, and its keys (one per variable): what a worker computes."""
        from dask.optimization import cull

        keys = []
        for nested in self.keys:  # the one block of row k: its first key along every other dimension
            key = nested[k]
            while isinstance(key, list):
                key = key[0]
            keys.append(key)
        return cull(self.graph, keys)[0], keys


def _with_values(ds: xr.Dataset, lazy: list[str], rows: list[int], values: list[dict[str, np.ndarray]]
                 ) -> xr.Dataset:
    """Rows ``rows`` of ``ds`` with the computed ``values`` of its ``lazy`` variables in their place."""
    part = ds.isel({S.IMAGETTE: rows})
    return part.assign({name: part[name].copy(data=np.concatenate([v[name] for v in values])) for name in lazy})


def _pool_to_store(ds: xr.Dataset, loc: Location, workers: int, per_commit: int, progress: bool) -> StoreReport:
    """Compute the lazy imagettes of ``ds`` in a pool of ``workers`` processes, one imagette per task, and commit
    them here ``per_commit`` at a time, in order, while the workers go on; ids already stored are not computed."""
    from tqdm.auto import tqdm

    from .distributed import in_worker, process_pool, worker_died

    ids = ds[S.IMAGETTE].values.astype(object)
    stored = open_store(loc)[S.IMAGETTE].values.astype(object) if store_kind(loc) == zs.IMAGETTES.kind else []
    todo = iter(np.flatnonzero(~np.isin(ids, stored)).tolist())
    report = StoreReport(path=str(loc), present=int(np.isin(ids, stored).sum()), total=len(stored),
                         skipped=list(ds.attrs.get("skipped", [])))
    lazy = _Rows(ds)
    rows: list[int] = []
    values: list[dict[str, np.ndarray]] = []
    memory: dict[int, WorkerMemory] = {}  # pid -> its latest figures (a high-water mark: its peak)

    def commit() -> None:
        written = to_store(_with_values(ds, lazy.names, rows, values), loc, command="ingest")
        report.added += written.added
        report.present += written.present
        report.commits += written.commits
        report.total = written.total
        rows.clear()
        values.clear()

    with process_pool(workers) as pool, tqdm(total=len(ids) - report.present, desc="ingest", unit="img",
                                             disable=not progress) as bar:
        queued: deque = deque()
        try:
            while True:
                while len(queued) < workers * QUEUED_PER_WORKER and (k := next(todo, None)) is not None:
                    queued.append((k, pool.submit(in_worker, _compute_imagette, *lazy.task(k))))
                if not queued:
                    break
                k, future = queued.popleft()
                blocks, mem = future.result()  # in order: the store's rows follow the sources
                memory[mem.pid] = mem
                rows.append(k)
                values.append(dict(zip(lazy.names, blocks)))
                bar.update(1)
                if len(rows) >= per_commit:
                    commit()
        except BrokenProcessPool as err:
            raise worker_died(err, workers, f"the {report.added} imagettes committed are kept") from err
        if rows:
            commit()
    _log_memory(memory)
    return report


def _log_memory(memory: dict[int, WorkerMemory]) -> None:
    """Log the peak resident memory of each pool worker (INFO, logger ``xwvnet.ingestion``)."""
    from .distributed import start_method

    shared = "; forked, those pages are shared" if start_method() == "fork" else ""
    for m in sorted(memory.values(), key=lambda m: m.pid):
        log.info("ingest worker %d: peak memory %.0f MiB, %.0f MiB above its start (%.0f MiB when it started%s)",
                 m.pid, m.peak / 2**20, m.added / 2**20, m.start / 2**20, shared)


def ingest(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    out: str | os.PathLike | Location,
    *,
    labels: str | os.PathLike | None = None,
    batch: int = 256,
    spacing: float | Sequence[float] | None = None,
    keep_sigma0: bool = False,
    denoise: bool = False,
    client: str | object | None = None,
    workers: int | None = None,
    progress: bool = False,
    repair: bool = False,
    storage_options: dict | None = None,
) -> StoreReport:
    """Ingest SAFE products and quicklook files, mixed, into an imagette store; resumable, without duplicates.

    Every batch is one commit, so a killed run keeps what it committed and the same call completes it (ids already
    stored are skipped, quicklook files of stored ids are not even read). Another ingest into the same store at
    the same time is fine: each batch commits on top of the other's, without duplicates. Files sharing a name (one
    imagette id) in several folders are kept once: the first, in the order ``sources`` resolve to
    (:func:`xwvnet.io.sources.resolve`); the others are reported as skipped, whatever ``batch`` is.

    Parameters
    ----------
    sources : str, os.PathLike or iterable of them
        WV L1 SLC SAFE folders, their ``manifest.safe``, zipped products, EOPF WV SLC products
        (``S01SWVSLC_*.zarr``, zipped or not), quicklook files, folders holding any of these, or glob patterns
        (:func:`xwvnet.io.sources.resolve`); SAFE and EOPF products may be ``s3://``, ``gs://``, ``az://`` URLs.
        Files of other kinds named explicitly are reported as skipped.
    out : str, os.PathLike or Location
        The imagette store to create or extend (path or URL).
    labels : str or os.PathLike, optional
        A tag CSV for the quicklook files (as published with WV-Net).
    batch : int, default 256
        Quicklook files read and written per step (and per commit); with ``workers``, SAFE imagettes per commit too.
    spacing : float or sequence of float, optional
        Pixel spacing in metres of the quicklooks made from SAFE products: one value, or (azimuth, range) (default
        :data:`xwvnet.radiometry.DEFAULT_LOOKS`, 10 x 10 SLC pixels, which reproduces the published sizes).
    keep_sigma0 : bool, default False
        Also store the multilooked calibrated ``sigma0`` of SAFE imagettes.
    denoise : bool, default False
        Subtract the thermal-noise LUT before calibrating.
    client : distributed.Client or str, optional
        Where SAFE imagettes are read and calibrated: a ``Client`` (left open) or a dask.distributed scheduler
        address or file (``"tcp://host:8786"``, connected and closed at the end), one task per imagette (a few tens
        of MB each), the store written from here. Default: the dask.distributed client active in this process, else
        a thread pool here (a thread per core); ``"threads"``: that pool even while a client is active. Decided by
        :func:`xwvnet._runtime.run_context` when SAFE products are to be computed.
    workers : int, optional
        Compute SAFE imagettes in a pool of this many worker processes on this machine, started for the call
        (forked on Linux: milliseconds; :func:`xwvnet.distributed.process_pool`): one imagette per task, so the
        imagettes of one product are shared out; they come back here and are committed ``batch`` at a time, in
        order, while the workers compute the next ones. Each worker runs one thread; the peak memory of each is
        logged (INFO, logger ``xwvnet.ingestion``). Not with ``client``.
    progress : bool, default False
        Show tqdm bars of imagettes: quicklook files move it per batch read, SAFE imagettes per batch written (with
        ``workers``, per imagette computed).
    repair : bool, default False
        First read every chunk of the store (:func:`xwvnet.verify`) and rewrite the damaged ones from the quicklook
        files and SAFE products given (a chunk may hold imagettes of both kinds: each comes from its own source);
        damage they cannot rewrite (an imagette none of them holds) is listed in ``report.damaged``.
    storage_options : dict, optional
        Credentials and endpoint of what is on object storage: the store and the SAFE products given as URLs (the
        names of :data:`xwvnet.io.storage.OPTIONS`, checked for each URL's scheme; see :func:`xwvnet.open_store`).
        Default: the standard environment.

    Returns
    -------
    StoreReport
        Added, already present, skipped (unreadable files, damaged imagettes or products, with reasons), chunks
        repaired, damage left, warnings, commits and the store's total, for both kinds of source together.

    Raises
    ------
    xwvnet.errors.InputNotFoundError
        If ``sources`` names nothing to ingest (a ``FileNotFoundError``).
    ValueError
        If ``batch`` or ``workers`` is not a positive integer, ``client`` and ``workers`` are both given, a source
        URL is not a SAFE product's, storage options do not fit, the store holds something else, or the imagettes
        do not fit the store.
    xwvnet.io.store.DamagedChunkError
        With ``repair=True``, when the store's ids themselves are damaged.
    xwvnet.distributed.WorkerDiedError
        If a worker process died (e.g. killed for memory); the batches committed are kept.

    Examples
    --------
    >>> report = xwvnet.ingest(["S1A_WV_SLC__1SSV_...SAFE", "quicklooks/"], "s3://bucket/wv.zarr")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    batch = check_count(batch, "batch", "files")
    if workers is not None:
        workers = check_count(workers, "workers", "worker processes")
        if client is not None:
            raise InvalidArgumentError("give client (where dask computes) or workers (processes started here), not "
                                       "both.")
    loc = locate(out)
    if storage_options and not loc.local:
        loc = locate(loc, storage_options)
    zs.check_target(loc, zs.IMAGETTES)  # before any source is read
    found = resolve(sources, storage_options, kinds=(QUICKLOOK, SAFE, EOPF_SLC))
    if storage_options and loc.local and all(s.location.local for s in found):
        locate(loc, storage_options)  # nothing here is on object storage: one line naming the options refused
    safe = [s.location for s in found if s.kind in (SAFE, EOPF_SLC)]  # both read by the one SAFE reader
    other = [s.path for s in found if s.kind not in (SAFE, EOPF_SLC)]  # the quicklook reader names what it skips
    with contextlib.ExitStack() as stack:  # where SAFE imagettes are computed (repair included), decided first
        if safe and workers is None:
            stack.enter_context(_compute_on(stack.enter_context(run_context(client, "cpu"))))
        return _ingest(loc, other, safe, labels, batch, spacing, keep_sigma0, denoise, workers, progress,
                       repair)


def _ingest(loc: Location, other: list[Path], safe: list[Location], labels: str | os.PathLike | None, batch: int,
            spacing: float | Sequence[float] | None, keep_sigma0: bool, denoise: bool, workers: int | None,
            progress: bool, repair: bool) -> StoreReport:
    """:func:`ingest` with its arguments checked and its sources resolved, where its run context says."""
    from .io.safe import SafeWarning, safe_to_imagettes

    report = StoreReport(path=str(loc))
    first = _by_id(other, report)
    ds, safe_skipped, safe_warnings = None, [], []
    if safe:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if spacing is not None and not isinstance(spacing, (int, float)):
                spacing = float(spacing[0]) if len(spacing) == 1 else (float(spacing[0]), float(spacing[1]))
            ds = safe_to_imagettes(safe, spacing=spacing, keep_sigma0=keep_sigma0, denoise=denoise)
        safe_skipped = [str(s) for s in ds.attrs.get("skipped", [])]
        # skipped imagettes are listed in report.skipped already: only other warnings are added
        safe_warnings = sorted({str(w.message).splitlines()[0] for w in caught
                                if not issubclass(w.category, SafeWarning)})
        ds = ds if ds.sizes[S.IMAGETTE] else None
    if repair and store_kind(loc) == zs.IMAGETTES.kind:  # one pass: a chunk may hold imagettes of both kinds
        like = open_store(loc)
        _repair(loc, _fresh(first, labels, None if ds is None else conform(ds, like)[0], like), report)
    if first:
        _quicklooks(first, loc, labels, batch, progress, report)
    report.skipped.extend(safe_skipped)
    report.warnings.extend(safe_warnings)
    if ds is None:
        report.total = len(open_store(loc)[S.IMAGETTE]) if store_kind(loc) else 0
        return report
    if store_kind(loc) is not None:
        ds, notes = conform(ds, open_store(loc))
        report.warnings.extend(notes)
    if workers is not None:
        written = _pool_to_store(ds, loc, workers, batch, progress)
    else:
        written = to_store(ds, loc, progress=progress, command="ingest")
    report.added += written.added
    report.present += written.present
    report.commits += written.commits
    report.skipped.extend(s for s in written.skipped if s not in report.skipped)
    report.total = written.total
    return report
