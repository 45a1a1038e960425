"""Read 8-bit quicklooks (PNG/JPEG/TIFF) into an imagette Dataset, pixels exactly as in the files.

Imagettes keep their size: each is padded with 0 to the largest size among the files and its extent is kept in
``valid_lines``/``valid_samples``. Metadata comes from Sentinel-1 file names (:mod:`xwvnet.io.names`); tags from a
CSV. Files that cannot be read are skipped and reported, never fatal for the rest.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image, UnidentifiedImageError

from .. import schema as S
from .names import imagette_key, parse_name

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
LAZY_ABOVE = 64  # with chunks=None, more files than this are read lazily
CHUNK_BYTES = 8 * 2**20  # a few MB of pixels per chunk along `imagette`
MISSING_INT = -1  # orbit / imagette_number when the file name does not carry them


class QuicklookWarning(UserWarning):
    """Something about a quicklook was unexpected, but the rest of the batch was still read.

    Raised as a warning, not an error, so that one bad file in a folder of thousands never stops the others:
    unreadable files (skipped), colour files (converted to greyscale), names that are not Sentinel-1 WV names
    (metadata unknown), and tag rows that match no imagette or imagettes without a tag row.
    """


class NoReadableImageError(ValueError):
    """None of the files given could be read as an 8-bit image.

    A ``ValueError`` (the input is wrong, not the machine) that keeps the reason of each file, so a caller or
    the CLI can show why every file was refused.

    Parameters
    ----------
    message : str
        The error message, listing the files and their reasons.
    skipped : list of str
        One ``"<path>: <error type>: <reason>"`` entry per file given.

    Attributes
    ----------
    skipped : list of str
        As given.
    """

    def __init__(self, message: str, skipped: list[str]) -> None:
        super().__init__(message)
        self.skipped = skipped


@dataclass(frozen=True)
class _Header:
    path: Path
    lines: int
    samples: int
    mode: str


def resolve_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Expand what a user passes as quicklooks into a sorted list of files, each once.

    Folders, glob patterns and lists are all common ways to name a batch; resolving them in one place gives every
    reader the same, reproducible order (sorted within each item, items in the order given).

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        A folder (its files with an image suffix, not recursive), a glob pattern (``**`` recurses), a file, or a
        list of any of these. ``~`` is expanded. Files are not checked here: a missing one is reported when read.

    Returns
    -------
    list of pathlib.Path
        The files, duplicates removed (first occurrence kept).

    Raises
    ------
    ValueError
        If nothing at all is found (an empty folder, a glob with no match, an empty list).
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    found: list[Path] = []
    for item in items:
        text = os.fspath(item)
        path = Path(text).expanduser()
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        elif glob.has_magic(text):
            found.extend(sorted(Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)))
        else:
            found.append(path)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise ValueError(
            f"no quicklook files found in {paths!r}: give a folder of {'/'.join(IMAGE_SUFFIXES)} files, a glob "
            "pattern such as 'data/*.png', or a list of files."
        )
    return unique


def chunk_length(bytes_per_imagette: int, target: int = CHUNK_BYTES) -> int:
    """Count how many imagettes make a dask chunk of about ``target`` bytes.

    A few MB per chunk keeps the task graph small for large folders while each task stays cheap to read.

    Parameters
    ----------
    bytes_per_imagette : int
        Size of one (padded) imagette in bytes.
    target : int, default CHUNK_BYTES
        Wanted chunk size in bytes.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> chunk_length(500 * 500, target=8 * 2**20)
    33
    """
    return max(1, int(target // max(1, bytes_per_imagette)))


def _header(path: Path) -> _Header:
    """Check a file is a readable image (size, mode, PNG/TIFF checksums) without decoding its pixels."""
    with Image.open(path) as img:
        size, mode = img.size, img.mode
        img.verify()
    if mode not in ("L", "P", "LA", "RGB", "RGBA", "1"):
        raise ValueError(f"pixel mode {mode!r} is not 8-bit (expected 8-bit greyscale)")
    return _Header(path, lines=size[1], samples=size[0], mode=mode)


def _pixels(header: _Header) -> np.ndarray:
    with Image.open(header.path) as img:
        if img.mode != "L":
            img = img.convert("L")
        return np.asarray(img, dtype=np.uint8)


def _read_block(headers: Sequence[_Header], lines: int, samples: int) -> np.ndarray:
    block = np.zeros((len(headers), lines, samples), dtype=np.uint8)
    for i, header in enumerate(headers):
        pixels = _pixels(header)
        if pixels.shape != (header.lines, header.samples):
            raise OSError(f"{header.path} changed since it was opened: shape {pixels.shape}")
        block[i, : header.lines, : header.samples] = pixels
    return block


def _metadata(paths: Sequence[Path]) -> tuple[dict[str, np.ndarray], list[Path]]:
    """Per-imagette coordinates from file names, and the files whose names are not Sentinel-1 WV names."""
    fields: dict[str, list] = {k: [] for k in (S.TIME, S.MISSION, S.SWATH, S.POLARIZATION, S.ORBIT, S.DATATAKE,
                                               S.NUMBER, "imagette_key")}
    unnamed = []
    for path in paths:
        info = parse_name(path)
        if info is None:
            unnamed.append(path)
            values = (np.datetime64("NaT", "ns"), "", "", "", MISSING_INT, "", MISSING_INT, "")
        else:
            values = (info["time"], info["mission"], info["swath"], info["polarization"], info["orbit"],
                      info["datatake"], info["imagette_number"], imagette_key(info))
        for key, value in zip(fields, values):
            fields[key].append(value)
    coords = {
        S.TIME: np.array(fields[S.TIME], dtype="datetime64[ns]"),
        S.LATITUDE: np.full(len(paths), np.nan),
        S.LONGITUDE: np.full(len(paths), np.nan),
        S.ORBIT: np.array(fields[S.ORBIT], dtype=np.int64),
        S.NUMBER: np.array(fields[S.NUMBER], dtype=np.int64),
    }
    for key in (S.MISSION, S.SWATH, S.POLARIZATION, S.DATATAKE, "imagette_key"):
        coords[key] = np.array(fields[key], dtype=object)
    coords[S.SOURCE] = np.array([p.name for p in paths], dtype=object)
    return coords, unnamed


def read_labels(csv: str | os.PathLike, ids: Sequence[str]) -> xr.DataArray:
    """Read tags from a CSV (a ``filename`` column and one 0/1 column per tag) as ``labels(imagette, label)``.

    This is the layout of the WV-Net sample's ``sample_data.csv``. Rows are matched to imagettes by file stem, so
    the CSV may name files with or without folder and extension. Imagettes absent from the CSV get -1 (unknown)
    rather than 0, so that a missing row is never read as "no such phenomenon".

    Parameters
    ----------
    csv : str or os.PathLike
        The tag table.
    ids : sequence of str
        Imagette ids (file stems), in the order of the Dataset the labels are for.

    Returns
    -------
    xarray.DataArray
        ``int8`` of dims ``(imagette, label)``: 1 tagged, 0 not tagged, -1 unknown; the ``label`` coordinate holds
        the tag codes (the CSV's column names, in its order).

    Raises
    ------
    ValueError
        If the CSV has no ``filename`` column, or a tag column holds anything other than 0 or 1.

    Warns
    -----
    QuicklookWarning
        If some imagettes have no row (their labels are -1), or some rows match no imagette.
    """
    table = pd.read_csv(csv)
    if "filename" not in table.columns:
        raise ValueError(f"{csv}: expected a 'filename' column and one 0/1 column per tag, found {list(table.columns)}")
    table.index = [Path(str(name)).name.split(".")[0] for name in table.pop("filename")]
    bad = [c for c in table.columns if not table[c].isin([0, 1]).all()]
    if bad:
        raise ValueError(f"{csv}: tag columns must hold only 0 or 1; columns {bad} hold other values")
    missing = [i for i in ids if i not in table.index]
    if missing:
        warnings.warn(f"{len(missing)} imagette(s) have no row in {csv}: their labels are -1 (unknown), "
                      f"e.g. {missing[:3]}", QuicklookWarning, stacklevel=3)
    unused = sorted(set(table.index) - set(ids))
    if unused:
        warnings.warn(f"{len(unused)} row(s) of {csv} match no imagette read, e.g. {unused[:3]}",
                      QuicklookWarning, stacklevel=3)
    values = table.reindex(list(ids)).fillna(-1).to_numpy(dtype=np.int8)
    return xr.DataArray(values, dims=(S.IMAGETTE, S.LABEL), coords={S.LABEL: np.array(table.columns, dtype=object)},
                        attrs={"long_name": "tags", "flag_values": [0, 1], "missing_value_meaning": "-1: unknown"})


def open_quicklooks(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    labels: str | os.PathLike | None = None,
    chunks: int | None = None,
) -> xr.Dataset:
    """Open 8-bit greyscale quicklooks (PNG, JPEG, TIFF) as an imagette Dataset, pixels exactly as in the files.

    This is how WV-Net's published quicklooks enter xwvnet: the pixels are what the model was trained on, so they
    are neither cropped nor resampled. Imagettes of different sizes are padded with 0 to the largest one, and
    their extent is kept in ``valid_lines``/``valid_samples``. Only the headers are read up front (size, mode,
    checksums), so a large folder opens lazily. Metadata come from the Sentinel-1 file names; latitude and
    longitude are unknown (NaN) because quicklook files do not carry them.

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        A folder (its image files), a glob pattern, a file, or a list of any of these (see :func:`resolve_paths`).
    labels : str or os.PathLike, optional
        A tag CSV (a ``filename`` column and one 0/1 column per tag) read into ``labels(imagette, label)``.
    chunks : int, optional
        Imagettes per dask chunk. ``None`` reads up to ``LAZY_ABOVE`` files at once into numpy, and more lazily in
        chunks of a few MB; any number reads lazily in chunks of that many.

    Returns
    -------
    xarray.Dataset
        ``quicklook(imagette, line, sample)`` (uint8), ``valid_lines``, ``valid_samples``, and ``labels`` when
        asked; ids are the file stems; coordinates ``time``, ``mission``, ``swath``, ``polarization``,
        ``orbit``, ``datatake``, ``imagette_number``, ``imagette_key`` (to join with SLC and OCN products),
        ``source`` (file name), ``latitude``/``longitude`` (NaN). ``attrs["skipped"]`` lists the files skipped
        and why.

    Raises
    ------
    ValueError
        If ``paths`` names no file, or two files share a stem (the imagette id).
    NoReadableImageError
        If none of the files is a readable 8-bit image (a ``ValueError`` too).

    Warns
    -----
    QuicklookWarning
        For each batch of files skipped as unreadable, converted from colour, or with names that are not
        Sentinel-1 WV names, and for tag rows that do not match (see :func:`read_labels`).

    See Also
    --------
    xwvnet.validate : check the result against the imagette data model.
    xwvnet.to_store : write it to a Zarr store for archive-scale work.

    Examples
    --------
    >>> import xwvnet
    >>> from xwvnet import datasets
    >>> sample = datasets.wvnet_sample()  # the 15 published WV-Net quicklooks and their tags
    >>> ds = xwvnet.open_quicklooks(sample["quicklooks"], labels=sample["labels"])
    >>> dict(ds.sizes)
    {'imagette': 15, 'line': 492, 'sample': 569, 'label': 21}
    >>> str(ds.mission.values[0]), str(ds.swath.values[0]), int(ds.orbit.values[0])
    ('s1a', 'wv1', 25911)
    """
    files = resolve_paths(paths)
    headers: list[_Header] = []
    skipped: list[str] = []
    for path in files:
        try:
            headers.append(_header(path))
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
            skipped.append(f"{path}: {type(err).__name__}: {err}")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable file(s):\n  " + "\n  ".join(skipped),
                      QuicklookWarning, stacklevel=2)
    if not headers:
        raise NoReadableImageError(
            f"none of the {len(files)} file(s) given is a readable 8-bit image:\n  " + "\n  ".join(skipped), skipped
        )
    colour = [h.path.name for h in headers if h.mode not in ("L", "1")]
    if colour:
        warnings.warn(f"{len(colour)} quicklook(s) are not greyscale and were converted to greyscale "
                      f"(ITU-R 601-2 luma), e.g. {colour[:3]}", QuicklookWarning, stacklevel=2)
    ids = [h.path.name.split(".")[0] for h in headers]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ValueError(f"several files share the imagette id (file stem) {dup[:3]}; give each file once.")

    lines = max(h.lines for h in headers)
    samples = max(h.samples for h in headers)
    lazy = chunks is not None or len(headers) > LAZY_ABOVE
    if lazy:
        step = chunks or chunk_length(lines * samples)
        blocks = [
            da.from_delayed(dask.delayed(_read_block)(headers[i : i + step], lines, samples),
                            shape=(len(headers[i : i + step]), lines, samples), dtype=np.uint8)
            for i in range(0, len(headers), step)
        ]
        pixels = da.concatenate(blocks, axis=0)
    else:
        pixels = _read_block(headers, lines, samples)

    coords, unnamed = _metadata([h.path for h in headers])
    if unnamed:
        warnings.warn(f"{len(unnamed)} file name(s) are not Sentinel-1 WV names: their time, mission, swath, "
                      f"orbit are unknown, e.g. {[p.name for p in unnamed[:3]]}", QuicklookWarning, stacklevel=2)
    ds = xr.Dataset(
        {
            S.QUICKLOOK: ((S.IMAGETTE, S.LINE, S.SAMPLE), pixels,
                          {"long_name": "8-bit stretched SAR intensity (quicklook)", "valid_range": [0, 255]}),
            S.VALID_LINES: (S.IMAGETTE, np.array([h.lines for h in headers], dtype=np.int32)),
            S.VALID_SAMPLES: (S.IMAGETTE, np.array([h.samples for h in headers], dtype=np.int32)),
        },
        coords={S.IMAGETTE: np.array(ids, dtype=object), **{k: (S.IMAGETTE, v) for k, v in coords.items()}},
        attrs={"skipped": skipped, "title": "Sentinel-1 WV imagettes (quicklooks)"},
    )
    ds[S.ORBIT].attrs["missing_value_meaning"] = f"{MISSING_INT}: unknown"
    ds[S.LATITUDE].attrs.update(units="degrees_north", standard_name="latitude")
    ds[S.LONGITUDE].attrs.update(units="degrees_east", standard_name="longitude")
    if labels is not None:
        ds[S.LABELS] = read_labels(labels, ids)
    return ds
