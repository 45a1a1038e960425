"""Read 8-bit quicklooks (PNG/JPEG/TIFF) into an imagette Dataset, pixels exactly as in the files.

Imagettes keep their size: each is padded with 0 to the largest size among the files and its extent is kept in
``valid_lines``/``valid_samples``. Metadata comes from Sentinel-1 file names (:mod:`xwvnet.io.names`); tags from a
CSV. Files that cannot be read, are larger than a size limit, or are decompression bombs are skipped and reported,
never fatal for the rest. Every warning is a :class:`QuicklookWarning` subclass that carries the files it is
about (``items``), so a caller reading many batches (``xwvnet ingest``) can record them and show one summary
(:func:`summarize_warnings`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from PIL import Image

from .. import schema as S
from ..errors import (
    InputChangedError,
    InputNotFoundError,
    InvalidArgumentError,
    InvalidFileError,
    XWVNetWarning,
    warn,
)
from .names import imagette_key, parse_name
from .sources import QUICKLOOK, resolve

LAZY_ABOVE = 64  # with chunks=None, more files than this are read lazily
CHUNK_BYTES = 8 * 2**20  # a few MB of pixels per chunk along `imagette`
MISSING_INT = -1  # orbit / imagette_number when the file name does not carry them
#: Largest image read by default, in pixels (lines x samples): WV-Net quicklooks are about 500 x 570, so this is
#: far above any WV quicklook and far below what would fill memory when a batch is padded to one frame.
MAX_PIXELS = 4096 * 4096
#: Longest side read by default, in pixels: bounds the padded frame that every imagette of a batch is padded to.
MAX_SIDE = 4096
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")  # CSV suffixes pandas decompresses itself
_LABELS_HINT = ("Give a UTF-8 CSV with a header row: a 'filename' column and one 0/1 column per tag, one row per "
                "file (the layout of the WV-Net sample_data.csv).")


class QuicklookWarning(XWVNetWarning):
    """Something about a quicklook was unexpected, but the rest of the batch was still read.

    Raised as a warning, not an error, so that one bad file in a folder of thousands never stops the others.
    Each kind of event has its own subclass, and every instance carries what it is about, so a caller that reads
    many batches can record the warnings (``warnings.catch_warnings(record=True)``) and report them once
    (:func:`summarize_warnings`) instead of losing them.

    Parameters
    ----------
    message : str
        The message people read.
    items : sequence of str, optional
        What the warning is about: files, imagette ids or CSV rows (see each subclass).
    source : str, optional
        The file the warning is about as a whole (the labels CSV), or ``""``.

    Attributes
    ----------
    items : list of str
        As given.
    source : str
        As given.
    """

    def __init__(self, message: str, items: Sequence[str] = (), source: str = "") -> None:
        super().__init__(message)
        self.items = [str(i) for i in items]
        self.source = str(source)


class SkippedFilesWarning(QuicklookWarning):
    """Files were skipped: unreadable, not 8-bit, beyond the size limit, a decompression bomb, or a repeated id.

    ``items`` holds one ``"<path>: <error type>: <reason>"`` entry per file, as ``ds.attrs["skipped"]`` does.
    """


class ColourConvertedWarning(QuicklookWarning):
    """Quicklooks that are not greyscale were converted to greyscale (ITU-R 601-2 luma); ``items``: file names."""


class UnknownNameWarning(QuicklookWarning):
    """File names that are not Sentinel-1 WV names: time is NaT, mission/swath/orbit unknown; ``items``: file names."""


class UnlabelledWarning(QuicklookWarning):
    """Imagettes with no row in the labels CSV: their labels are -1 (unknown); ``items``: ids, ``source``: the CSV."""


class UnmatchedLabelsWarning(QuicklookWarning):
    """Rows of the labels CSV that match no imagette read; ``items``: the rows' file stems, ``source``: the CSV."""


class LabelsFileError(InvalidFileError):
    """A labels CSV cannot be used as it is; the message names the file and what to fix.

    A ``ValueError``: the file is empty, binary or not a CSV, has no ``filename`` column, names a file on two
    rows, or holds a tag that is not 0 or 1.
    """


class NoReadableImageError(InvalidFileError):
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


class ImageTooLargeError(InvalidFileError):
    """An image is larger than the size limit of :func:`open_quicklooks` (its file is skipped, not read)."""


def _header(path: Path, max_pixels: int, max_side: int) -> _Header:
    """Check a file is a readable image of acceptable size (and PNG/TIFF checksums) without decoding its pixels.

    The size is checked from the header before anything else, so an image too large for the limit (or a
    decompression bomb: a tiny file whose header claims a huge image) costs nothing. PIL's own bomb check
    (``Image.MAX_IMAGE_PIXELS``) runs first inside ``Image.open``; its warning is turned into an error here so
    that such a file is skipped like any other, never read.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            size, mode = img.size, img.mode
            samples, lines = size
            if lines * samples > max_pixels or max(lines, samples) > max_side:
                raise ImageTooLargeError(
                    f"{samples} x {lines} pixels is beyond the size limit (max_pixels={max_pixels}, "
                    f"max_side={max_side}); not a WV quicklook? Raise max_pixels/max_side to read it."
                )
            img.verify()
    if mode not in ("L", "P", "LA", "RGB", "RGBA", "1"):
        raise InvalidFileError(f"pixel mode {mode!r} is not 8-bit (expected 8-bit greyscale)")
    return _Header(path, lines=size[1], samples=size[0], mode=mode)


def _pixels(header: _Header) -> np.ndarray:
    """Decode one file's pixels as uint8 greyscale, checking they are the size its header promised."""
    with Image.open(header.path) as img:
        if img.mode != "L":
            img = img.convert("L")
        pixels = np.asarray(img, dtype=np.uint8)
    if pixels.shape != (header.lines, header.samples):
        raise InputChangedError(f"changed since it was opened: shape {pixels.shape}, header said "
                                f"{(header.lines, header.samples)}")
    return pixels


def _read_block(headers: Sequence[_Header], lines: int, samples: int) -> np.ndarray:
    """Decode files into one zero-padded block; a file that fails now raises an error naming it."""
    block = np.zeros((len(headers), lines, samples), dtype=np.uint8)
    for i, header in enumerate(headers):
        try:
            pixels = _pixels(header)
        except Exception as err:  # PIL raises many types on damaged data: name the file whatever it was
            raise InputChangedError(
                f"{header.path}: its pixels cannot be decoded ({type(err).__name__}: {err}), although its header "
                "was read when the batch was opened. Remove or replace the file and re-run."
            ) from err
        block[i, : header.lines, : header.samples] = pixels
    return block


def _read_each(headers: Sequence[_Header]) -> tuple[list[_Header], list[np.ndarray], list[str]]:
    """Decode every file now; files whose pixels cannot be decoded are left out with their reason."""
    kept, arrays, skipped = [], [], []
    for header in headers:
        try:
            arrays.append(_pixels(header))
        except Exception as err:  # one damaged file never stops the batch: it is reported instead
            skipped.append(f"{header.path}: {type(err).__name__}: pixels cannot be decoded: {err}")
        else:
            kept.append(header)
    return kept, arrays, skipped


def _pad(arrays: Sequence[np.ndarray], lines: int, samples: int) -> np.ndarray:
    block = np.zeros((len(arrays), lines, samples), dtype=np.uint8)
    for i, pixels in enumerate(arrays):
        block[i, : pixels.shape[0], : pixels.shape[1]] = pixels
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


def _stem(name: str) -> str:
    """The imagette id a CSV names: folder (``/`` or ``\\``) and every extension dropped."""
    return re.split(r"[\\/]", name.strip())[-1].split(".")[0]


def _read_table(csv: Path) -> pd.DataFrame:
    """The labels CSV as text cells, header row as column names; every way it can be unusable is a clear error."""
    if not csv.is_file():
        raise InputNotFoundError(f"no labels CSV at {csv}" + (" (a folder)" if csv.is_dir() else "") + ". "
                                 + _LABELS_HINT)
    if csv.suffix.lower() not in _COMPRESSED:
        with open(csv, "rb") as fh:
            head = fh.read(8192)
        if not head.strip():
            raise LabelsFileError(f"the labels CSV {csv} is empty. {_LABELS_HINT}")
        if b"\x00" in head:
            raise LabelsFileError(f"the labels CSV {csv} is a binary file (or UTF-16 text), not a CSV. {_LABELS_HINT}")
    try:
        table = pd.read_csv(csv, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as err:
        raise LabelsFileError(f"the labels CSV {csv} is empty. {_LABELS_HINT}") from err
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as err:
        raise LabelsFileError(f"the labels CSV {csv} cannot be read as a CSV ({type(err).__name__}: "
                              f"{str(err).strip()}). {_LABELS_HINT}") from err
    columns = [str(c).strip() for c in table.iloc[0]]
    table = table.iloc[1:].set_axis(columns, axis=1)
    table.index = range(2, len(table) + 2)  # row numbers as a spreadsheet shows them (header is row 1)
    return table


def read_labels(csv: str | os.PathLike, ids: Sequence[str]) -> xr.DataArray:
    """Read tags from a CSV (a ``filename`` column and one 0/1 column per tag) as ``labels(imagette, label)``.

    This is the layout of the WV-Net sample's ``sample_data.csv``. Rows are matched to imagettes by file stem, so
    the CSV may name files with or without folder and extension. Imagettes absent from the CSV get -1 (unknown)
    rather than 0, so that a missing row is never read as "no such phenomenon".

    Parameters
    ----------
    csv : str or os.PathLike
        The tag table: UTF-8 text (a byte-order mark is fine), a header row, one row per file.
    ids : sequence of str
        Imagette ids (file stems), in the order of the Dataset the labels are for.

    Returns
    -------
    xarray.DataArray
        ``int8`` of dims ``(imagette, label)``: 1 tagged, 0 not tagged, -1 unknown; the ``label`` coordinate holds
        the tag codes (the CSV's column names, in its order).

    Raises
    ------
    FileNotFoundError
        If there is no file at ``csv``.
    LabelsFileError
        A ``ValueError`` naming ``csv`` and what to fix, if the file is empty, binary or not parseable as a CSV;
        has no ``filename`` column, no tag column or a column name twice; names one file on several rows or a row
        without a file name; or a tag cell holds anything other than 0 or 1.

    Warns
    -----
    UnlabelledWarning
        If some imagettes have no row (their labels are -1); it says how many.
    UnmatchedLabelsWarning
        If some rows match no imagette.

    Examples
    --------
    >>> import pandas as pd
    >>> from xwvnet import datasets
    >>> sample = datasets.wvnet_sample()
    >>> ids = [name.split(".")[0] for name in pd.read_csv(sample["labels"])["filename"]]
    >>> tags = read_labels(sample["labels"], ids)
    >>> tags.dims, tags.dtype.name, dict(tags.sizes), int(tags.min())
    (('imagette', 'label'), 'int8', {'imagette': 15, 'label': 21}, 0)
    """
    csv = Path(csv)
    table = _read_table(csv)
    columns = list(table.columns)
    if "filename" not in columns:
        raise LabelsFileError(f"the labels CSV {csv} has no 'filename' column: its header row is {columns[:8]}. "
                              + _LABELS_HINT)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise LabelsFileError(f"the labels CSV {csv} names the column(s) {repeated} more than once: give each tag "
                              "one column.")
    if len(columns) < 2:
        raise LabelsFileError(f"the labels CSV {csv} has a 'filename' column but no tag column. {_LABELS_HINT}")
    names = table.pop("filename").fillna("").astype(str)
    blank = names.index[names.str.strip() == ""].tolist()
    if blank:
        raise LabelsFileError(f"the labels CSV {csv} has {len(blank)} row(s) without a file name (rows {blank[:5]}): "
                              "fill in the file name or delete the row.")
    stems = names.map(_stem)
    twice = stems[stems.duplicated(keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        raise LabelsFileError(
            f"the labels CSV {csv} has {twice.nunique()} file(s) on more than one row, e.g. {first!r} on rows "
            f"{twice.index[twice == first].tolist()}: keep one row per file."
        )
    values = table.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    bad = [c for c in values.columns if not values[c].isin([0, 1]).all()]
    if bad:
        row = values.index[~values[bad[0]].isin([0, 1])][0]
        raise LabelsFileError(
            f"the labels CSV {csv}: tag columns must hold only 0 or 1; columns {bad} hold other values (e.g. row "
            f"{row}, {bad[0]!r}: {table.at[row, bad[0]]!r}). Write 1 (tagged) or 0 (not tagged) in every cell."
        )
    values.index = stems.to_numpy()
    missing = [i for i in ids if i not in values.index]
    if missing:
        warn(UnlabelledWarning(
            f"{len(missing)} imagette(s) have no row in {csv}: their labels are -1 (unknown), e.g. {missing[:3]}",
            missing, source=str(csv)))
    unused = sorted(set(values.index) - set(ids))
    if unused:
        warn(UnmatchedLabelsWarning(f"{len(unused)} row(s) of {csv} match no imagette read, e.g. {unused[:3]}",
                                             unused, source=str(csv)))
    out = values.reindex(list(ids)).fillna(-1).to_numpy(dtype=np.int8)
    return xr.DataArray(out, dims=(S.IMAGETTE, S.LABEL), coords={S.LABEL: np.array(values.columns, dtype=object)},
                        attrs={"long_name": "tags", "flag_values": [0, 1], "missing_value_meaning": "-1: unknown"})


def open_quicklooks(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    labels: str | os.PathLike | None = None,
    chunks: int | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
    duplicates: str = "raise",
    lazy: bool | None = None,
) -> xr.Dataset:
    """Open 8-bit greyscale quicklooks (PNG, JPEG, TIFF) as an imagette Dataset, pixels exactly as in the files.

    This is how WV-Net's published quicklooks enter xwvnet: the pixels are what the model was trained on, so they
    are neither cropped nor resampled. Imagettes of different sizes are padded with 0 to the largest one, and
    their extent is kept in ``valid_lines``/``valid_samples``. Only the headers are read up front (size, mode,
    checksums), so a large folder opens lazily. Metadata come from the Sentinel-1 file names; latitude and
    longitude are unknown (NaN) because quicklook files do not carry them.

    A file that cannot be used is skipped and reported (``attrs["skipped"]`` and a :class:`SkippedFilesWarning`),
    and the rest of the batch is read: unreadable or damaged files, images that are not 8-bit, images beyond the
    size limit, and decompression bombs (a small file whose header claims a huge image, refused from its header
    before any pixel is decoded, whatever PIL's own ``Image.MAX_IMAGE_PIXELS`` says).

    Parameters
    ----------
    paths : str, os.PathLike or iterable of them
        A folder (its image files, not recursive), a glob pattern (``**`` recurses), a file, or a list of any of
        these, read by the input door :func:`xwvnet.io.sources.resolve` (files sorted within each item, items in the
        order given, each file once). Quicklooks are read from a local disk.
    labels : str or os.PathLike, optional
        A tag CSV (a ``filename`` column and one 0/1 column per tag) read into ``labels(imagette, label)``.
    chunks : int, optional
        Imagettes per dask chunk. ``None`` reads up to ``LAZY_ABOVE`` files at once into numpy, and more lazily in
        chunks of a few MB; any number reads lazily in chunks of that many.
    max_pixels : int, default MAX_PIXELS (4096 x 4096)
        Images with more pixels (lines x samples) are skipped. Files beyond PIL's ``Image.MAX_IMAGE_PIXELS`` are
        skipped too (raise both to read larger images).
    max_side : int, default MAX_SIDE (4096)
        Images with more lines or more samples are skipped: this bounds the frame every imagette is padded to.
    duplicates : {"raise", "skip"}, default "raise"
        Files sharing a stem (the imagette id): ``"raise"`` a ``ValueError``; ``"skip"`` keeps the first (in the
        order of ``paths``) and reports the others as skipped.
    lazy : bool, optional
        ``False`` decodes every file now, so that a file whose pixel data is damaged is skipped and reported (a
        batch writer wants this); ``True`` reads lazily with dask; ``None`` (default) decides from ``chunks`` and
        the number of files, as described there.

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
    xwvnet.errors.InputNotFoundError
        If ``paths`` names no file (an empty list, a folder without image files, a pattern that matches none); a
        ``FileNotFoundError``.
    ValueError
        If a path is a URL (quicklooks are read from a local disk), two files share a stem (with
        ``duplicates="raise"``), or a limit is not a positive integer.
    NoReadableImageError
        If none of the files is a readable 8-bit image within the limits (a ``ValueError`` too).
    LabelsFileError
        If the labels CSV cannot be used (see :func:`read_labels`).
    OSError
        When lazily read pixels cannot be decoded at compute time; the error names the file. Files decoded at once
        (``lazy=False``, or few files) are checked here and skipped instead.

    Warns
    -----
    SkippedFilesWarning
        For the files skipped, each with its reason.
    ColourConvertedWarning
        For colour files converted to greyscale.
    UnknownNameWarning
        For names that are not Sentinel-1 WV names: their time is NaT, mission, swath and orbit unknown.
    UnlabelledWarning, UnmatchedLabelsWarning
        For tag rows that do not match (see :func:`read_labels`).

    See Also
    --------
    summarize_warnings : one summary of the warnings of many batches.
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
    for name, limit in (("max_pixels", max_pixels), ("max_side", max_side)):
        if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
            raise InvalidArgumentError(f"{name} must be a positive whole number of pixels, got {limit!r}")
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, int | np.integer) or chunks < 1):
        raise InvalidArgumentError(f"chunks must be a positive number of imagettes per chunk (or None), got {chunks!r}")
    if lazy is False and chunks is not None:
        raise InvalidArgumentError(f"chunks={chunks} asks for lazy reading but lazy=False: give one or the other.")
    if duplicates not in ("raise", "skip"):
        raise InvalidArgumentError(f"duplicates must be 'raise' or 'skip', got {duplicates!r}")
    files = [source.path for source in resolve(paths, kinds=(QUICKLOOK,))]
    headers: list[_Header] = []
    skipped: list[str] = []
    first: dict[str, Path] = {}
    for path in files:
        stem = path.name.split(".")[0]
        if duplicates == "skip" and stem in first:
            skipped.append(f"{path}: DuplicateId: same imagette id {stem!r} as {first[stem]}; rename one to keep both")
            continue
        try:
            headers.append(_header(path, int(max_pixels), int(max_side)))
        except Exception as err:  # any failure of one file (PIL raises many types) skips it, never the batch
            skipped.append(f"{path}: {type(err).__name__}: {err}")
        else:
            first.setdefault(stem, path)
    ids = [h.path.name.split(".")[0] for h in headers]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InvalidArgumentError(
            f"several files share the imagette id (file stem) {dup[:3]}; give each file once, or pass "
            "duplicates='skip' to keep the first."
        )
    if lazy is None:
        lazy = chunks is not None or len(headers) > LAZY_ABOVE
    arrays: list[np.ndarray] = []
    if not lazy:  # pixels are decoded now: a file whose data is damaged is skipped like an unreadable one
        headers, arrays, failed = _read_each(headers)
        skipped.extend(failed)
    if skipped:
        warn(SkippedFilesWarning(f"skipped {len(skipped)} unreadable file(s):\n  " + "\n  ".join(skipped),
                                          skipped))
    if not headers:
        raise NoReadableImageError(
            f"none of the {len(files)} file(s) given is a readable 8-bit image within the size limits:\n  "
            + "\n  ".join(skipped), skipped
        )
    colour = [h.path.name for h in headers if h.mode not in ("L", "1")]
    if colour:
        warn(ColourConvertedWarning(f"{len(colour)} quicklook(s) are not greyscale and were converted to "
                                             f"greyscale (ITU-R 601-2 luma), e.g. {colour[:3]}", colour))
    ids = [h.path.name.split(".")[0] for h in headers]

    lines = max(h.lines for h in headers)
    samples = max(h.samples for h in headers)
    if lazy:
        step = chunks or chunk_length(lines * samples)
        blocks = [
            da.from_delayed(dask.delayed(_read_block)(headers[i : i + step], lines, samples),
                            shape=(len(headers[i : i + step]), lines, samples), dtype=np.uint8)
            for i in range(0, len(headers), step)
        ]
        pixels = da.concatenate(blocks, axis=0)
    else:
        pixels = _pad(arrays, lines, samples)

    coords, unnamed = _metadata([h.path for h in headers])
    if unnamed:
        names = [p.name for p in unnamed]
        warn(UnknownNameWarning(
            f"{len(unnamed)} file name(s) are not Sentinel-1 WV names: their time is unknown (NaT), their position "
            f"unknown (NaN) and mission, swath, orbit unknown, e.g. {names[:3]}", names))
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


def summarize_warnings(
    caught: Iterable[Warning | warnings.WarningMessage],
    *,
    known_ids: Iterable[str] = (),
) -> list[str]:
    """One line per kind of warning, totalled over batches, for a person to read at the end of a long job.

    ``xwvnet ingest`` reads quicklooks batch by batch; each batch warns on its own (files skipped, names that are
    not Sentinel-1 names, imagettes without a tag row...). Recorded with ``warnings.catch_warnings(record=True)``
    and passed here, they become a short summary that says how many files each event touched, so no warning is
    lost and none is repeated per batch. Warnings of other kinds (from any library) are kept, each text once.

    Parameters
    ----------
    caught : iterable of Warning or warnings.WarningMessage
        The recorded warnings (``WarningMessage`` as ``catch_warnings(record=True)`` gives them, or instances).
    known_ids : iterable of str, optional
        Every imagette id of the whole job (for an ingest: the store's ids once it is done). A batch whose
        imagettes match every CSV row does not warn, so without these ids a row matched only by such a batch, or
        by an imagette stored by an earlier run, could be reported as matching nothing.

    Returns
    -------
    list of str
        Lines such as ``"3 file name(s) are not Sentinel-1 WV names: ..."``; empty if nothing was caught.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn(UnknownNameWarning("batch 1", ["a.png", "b.png"]))
    ...     warnings.warn(UnknownNameWarning("batch 2", ["c.png"]))
    >>> summarize_warnings(caught)
    ["3 file name(s) are not Sentinel-1 WV names: their time is NaT and position, mission, swath, orbit unknown, \
e.g. ['a.png', 'b.png', 'c.png']"]
    """
    def _union(items: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(items))

    found: dict[type, list[QuicklookWarning]] = {}
    others: list[str] = []
    for record in caught:
        message = record.message if isinstance(record, warnings.WarningMessage) else record
        if isinstance(message, QuicklookWarning):
            found.setdefault(type(message), []).append(message)
        else:
            category = type(message).__name__ if isinstance(message, Warning) else record.category.__name__
            others.append(f"{category}: {message}")
    lines = []
    if SkippedFilesWarning in found:
        items = _union(i for w in found[SkippedFilesWarning] for i in w.items)
        lines.append(f"{len(items)} file(s) skipped (unreadable, not 8-bit, too large or a repeated id):")
        lines += [f"  {i}" for i in items]
    if ColourConvertedWarning in found:
        items = _union(i for w in found[ColourConvertedWarning] for i in w.items)
        lines.append(f"{len(items)} colour quicklook(s) converted to greyscale, e.g. {items[:3]}")
    if UnknownNameWarning in found:
        items = _union(i for w in found[UnknownNameWarning] for i in w.items)
        lines.append(f"{len(items)} file name(s) are not Sentinel-1 WV names: their time is NaT and position, "
                     f"mission, swath, orbit unknown, e.g. {items[:3]}")
    for source in _union(w.source for w in found.get(UnlabelledWarning, [])):
        items = _union(i for w in found[UnlabelledWarning] if w.source == source for i in w.items)
        lines.append(f"{len(items)} imagette(s) have no row in {source}: their labels are -1 (unknown), "
                     f"e.g. {items[:3]}")
    skip = set(known_ids)
    for source in _union(w.source for w in found.get(UnmatchedLabelsWarning, [])):
        batches = [set(w.items) for w in found[UnmatchedLabelsWarning] if w.source == source]
        items = sorted(set.intersection(*batches) - skip)  # a row matched in any batch was used
        if items:
            lines.append(f"{len(items)} row(s) of {source} match no imagette read, e.g. {items[:3]}")
    lines += _union(others)
    return lines
