"""Ingest what users download: WV L1 SLC SAFE products and quicklook files, mixed, into one imagette store.

Quicklook files go through :func:`xwvnet.io.store.ingest` (batches, duplicates, repairs). SAFE products are turned
into quicklooks (calibrated sigma0, multilooked, stretched: :func:`xwvnet.preprocess.safe_to_imagettes`) one dask
task per imagette, run in parallel by dask (threads, or ``workers`` processes), and written with
:func:`xwvnet.io.store.to_store`, which skips ids already stored: a killed run re-run completes it, and only new
imagettes are computed. One store holds one set of variables; a batch is conformed to a store that exists (extra
variables dropped and reported, missing ones filled with the data model's missing values).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from . import schema as S
from .io.store import StoreReport, open_store, store_kind, to_store
from .io.store import ingest as ingest_quicklooks

#: file names and suffixes that mark a Sentinel-1 SAFE product
SAFE_SUFFIXES = (".safe", ".zip")


def is_safe_product(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a SAFE product: a ``*.SAFE`` folder, its ``manifest.safe``, or a zipped product.

    Parameters
    ----------
    path : str or os.PathLike
        A path given to ingest.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_safe_product("S1A_WV_SLC__1SSV_20190213T130655_20190213T131155_025911_02E29D_ABCD.SAFE")
    True
    >>> is_safe_product("s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png")
    False
    """
    name = Path(path).name.lower()
    return name == "manifest.safe" or name.endswith(SAFE_SUFFIXES)


def split_sources(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """SAFE products and the rest (quicklook files, folders, globs), in the order given.

    Parameters
    ----------
    sources : str, os.PathLike or iterable of them
        What the user passed to ingest.

    Returns
    -------
    tuple of (list of pathlib.Path, list of str)
        The SAFE products, then every other source unchanged. A folder holding ``*.SAFE`` products or zips is
        expanded into them (and into its other files, left to the quicklook reader).
    """
    items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
    safe, other = [], []
    for item in items:
        path = Path(item).expanduser()
        if is_safe_product(path):
            safe.append(path)
        elif path.is_dir() and any(is_safe_product(p) for p in path.iterdir()):
            children = sorted(path.iterdir())
            safe += [p for p in children if is_safe_product(p)]
            other += [str(p) for p in children if p.is_file() and not is_safe_product(p)]
        else:
            other.append(str(item))
    return safe, other


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
        raise ValueError(f"the store holds {missing_images} but these imagettes do not; ingest them with the same "
                         "variables (e.g. --keep-sigma0) or into another store.")
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


def ingest(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    store: str | os.PathLike,
    *,
    labels: str | os.PathLike | None = None,
    batch: int = 256,
    spacing: float | Sequence[float] | None = None,
    keep_sigma0: bool = False,
    denoise: bool = False,
    workers: int | None = None,
    progress: bool = False,
    wait: float = 0.0,
) -> StoreReport:
    """Ingest SAFE products and quicklook files, mixed, into an imagette store; resumable, without duplicates.

    Parameters
    ----------
    sources : str, os.PathLike or iterable of them
        WV L1 SLC SAFE folders, their ``manifest.safe``, zipped products, quicklook files, folders or globs.
    store : str or os.PathLike
        The imagette store to create or extend.
    labels : str or os.PathLike, optional
        A tag CSV for the quicklook files (as published with WV-Net).
    batch : int, default 256
        Quicklook files read and written per step.
    spacing : float or sequence of float, optional
        Pixel spacing in metres of the quicklooks made from SAFE products: one value, or (azimuth, range) (default
        :data:`xwvnet.preprocess.DEFAULT_SPACING`, which reproduces the published sizes).
    keep_sigma0 : bool, default False
        Also store the multilooked calibrated ``sigma0`` of SAFE imagettes.
    denoise : bool, default False
        Subtract the thermal-noise LUT before calibrating.
    workers : int, optional
        Processes that read and calibrate SAFE imagettes in parallel (default: dask's threads in this process).
    progress : bool, default False
        Show progress bars.
    wait : float, default 0.0
        Seconds to wait for another writer of the store.

    Returns
    -------
    StoreReport
        Added, already present, skipped (unreadable files, damaged imagettes or products, with reasons), warnings
        and the store's total, for both kinds of source together.

    Raises
    ------
    ValueError
        If nothing to ingest is named, ``workers`` is below 1, or the imagettes do not fit the store.
    xwvnet.io.lease.StoreBusyError
        If another writer holds the store.

    Examples
    --------
    >>> report = xwvnet.ingestion.ingest(["S1A_WV_SLC__1SSV_...SAFE", "quicklooks/"], "wv.zarr")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
    """
    from .io.slc import SafeWarning
    from .preprocess import DEFAULT_SPACING, safe_to_imagettes

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be a positive number of processes, found {workers!r}.")
    safe, other = split_sources(sources)
    if not safe and not other:
        raise ValueError("nothing to ingest: give SAFE products, quicklook files, folders or glob patterns.")
    store = Path(store)
    report = StoreReport(path=store)
    if other:
        report = ingest_quicklooks(other, store, labels=labels, batch=batch, progress=progress, wait=wait)
    if not safe:
        return report
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if spacing is not None and not isinstance(spacing, (int, float)):
            spacing = float(spacing[0]) if len(spacing) == 1 else (float(spacing[0]), float(spacing[1]))
        ds = safe_to_imagettes(safe, spacing=DEFAULT_SPACING if spacing is None else spacing,
                               keep_sigma0=keep_sigma0, denoise=denoise)
    report.skipped.extend(str(s) for s in ds.attrs.get("skipped", []))
    # skipped imagettes are listed in report.skipped already: only other warnings are added
    report.warnings.extend(sorted({str(w.message).splitlines()[0] for w in caught
                                   if not issubclass(w.category, SafeWarning)}))
    if ds.sizes[S.IMAGETTE] == 0:
        return report
    if store_kind(store) is not None:
        ds, notes = conform(ds, open_store(store))
        report.warnings.extend(notes)
    scheduler = {"scheduler": "processes", "num_workers": workers} if workers and workers > 1 else {}
    with dask.config.set(**scheduler):
        written = to_store(ds, store, progress=progress, wait=wait)
    report.added += written.added
    report.present += written.present
    report.skipped.extend(s for s in written.skipped if s not in report.skipped)
    report.total = written.total
    return report

