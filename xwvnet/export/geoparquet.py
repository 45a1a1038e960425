"""Embeddings as GeoParquet 1.1: one row per imagette, a WKB footprint polygon, the embedding as a fixed-size list.

GIS and data tools (geopandas, DuckDB, QGIS, pyarrow, TorchGeo) read the file without xwvnet. Written row group by
row group from lazy (dask-backed) inputs, so a store is never loaded whole. Needs the ``export`` extra
(``pip install xwvnet[export]``: pyarrow, geopandas, shapely, pyproj, pystac), imported only here.

Columns: ``id``, ``time`` (UTC), ``latitude``, ``longitude``, every other per-imagette coordinate of the Dataset
(``swath``, ``polarization``, ``mission``, ``orbit``, ``incidence_angle``, ``heading``, ...), ``product`` (the source
product), ``footprint`` (how ``geometry`` was made: ``manifest``, ``square_20km_heading``, ``square_20km_north``, or
``unknown`` for an imagette without a position), ``geometry`` (WKB, EPSG:4326, split in two parts at the antimeridian;
null without a position), ``bbox`` (its bounds, the GeoParquet 1.1 covering column: readers filter row groups by it;
null with the geometry), ``embedding`` (fixed-size list of float32,
float16 or int8; null for rows that are not finite), ``embedding_scale`` (int8 only: per-row float32 step,
``value = code * scale``), per-imagette variables (e.g. ``hs_predicted``), 2-D per-imagette variables as fixed-size
lists (e.g. ``labels``), and ``tags`` (the codes of the tags set, comma-separated, for queries). The file metadata
holds ``geo`` (GeoParquet) and ``xwvnet`` (provenance, the geo-embeddings ``geoemb:`` attributes, the count of rows
without a position, and what :func:`read_geoparquet` needs to give the Dataset back, lazily).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import schema as S
from .._files import local_path, replacing
from .._version import __version__
from ..conventions import geoemb_attrs, merge_geoemb
from ..errors import (
    InputNotFoundError,
    InvalidArgumentError,
    InvalidDataError,
    InvalidFileError,
    InvalidTypeError,
    MissingDependencyError,
    OutputExistsError,
)

GEOPARQUET_VERSION = "1.1.0"
META_KEY = b"xwvnet"
FORMAT = "xwvnet-geoparquet"
VERSION = 1
DTYPES = ("float32", "float16", "int8")
ROW_GROUP = 10_000  # imagettes per row group (at 2048 float32 features: 80 MB)
SIDE_M = 20_000.0  # a WV imagette is about 20 km x 20 km
_METRES_PER_DEGREE = 111_320.0
FOOT_LAT, FOOT_LON = "footprint_latitude", "footprint_longitude"
_RESERVED = {"id", "product", "footprint", "geometry", "bbox", "embedding", "embedding_scale", "tags"}
UNKNOWN = "unknown"  # the footprint of an imagette without a position (its geometry is null)


class DuplicateIdError(InvalidFileError):
    """A GeoParquet file (or the shards of one export) repeats an imagette id: one row per imagette is the rule."""


def _deps() -> tuple[Any, Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
        import shapely
    except ImportError as error:
        raise MissingDependencyError(
            "GeoParquet export needs the export extra: pip install xwvnet[export] (pyarrow, geopandas, "
            "shapely, pyproj, pystac)."
        ) from error
    return pa, pq, shapely


def _crs_projjson() -> dict[str, Any]:
    try:
        from pyproj import CRS
    except ImportError as error:
        raise MissingDependencyError(
            "GeoParquet export needs pyproj for the CRS: pip install xwvnet[export]."
        ) from error
    return CRS.from_epsg(4326).to_json_dict()


# --- footprints -----------------------------------------------------------------------------------------------------
def square_corners(lat: np.ndarray, lon: np.ndarray, heading: np.ndarray | None = None,
                   side: float = SIDE_M) -> np.ndarray:
    """Corners of a ``side``-metre square around each centre, turned by the heading where known.

    Parameters
    ----------
    lat, lon : numpy.ndarray
        Centres in degrees (n,).
    heading : numpy.ndarray, optional
        Platform heading, degrees clockwise from north (n,); NaN or None: the square faces north.
    side : float, optional
        Side in metres.

    Returns
    -------
    numpy.ndarray
        (n, 4, 2) corners as (longitude, latitude), longitudes unwrapped around the centre (may pass +-180).
    """
    lat, lon = np.asarray(lat, np.float64), np.asarray(lon, np.float64)
    h = np.zeros_like(lat) if heading is None else np.nan_to_num(np.asarray(heading, np.float64), nan=0.0)
    half = side / 2
    local = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])  # (east, north) metres
    t = np.deg2rad(h)[:, None]
    east = local[None, :, 0] * np.cos(t) + local[None, :, 1] * np.sin(t)
    north = -local[None, :, 0] * np.sin(t) + local[None, :, 1] * np.cos(t)
    dlat = north / _METRES_PER_DEGREE
    dlon = east / (_METRES_PER_DEGREE * np.maximum(np.cos(np.deg2rad(lat)), 1e-6))[:, None]
    return np.stack([lon[:, None] + dlon, np.clip(lat[:, None] + dlat, -90, 90)], axis=-1)


def _polygons(corners: np.ndarray, shapely: Any) -> np.ndarray:
    """WKB of polygons from (n, 4, 2) corners, unwrapped around the centre; split at the antimeridian.

    Rows with a corner that is not finite (no position) get ``None``: a null geometry. Polygons are built for the
    finite rows only (GEOS refuses rings with NaN).
    """
    from shapely import affinity

    out = np.full(len(corners), None, dtype=object)
    known = np.isfinite(corners).all(axis=(1, 2)) if len(corners) else np.zeros(0, bool)
    if not known.any():
        return out
    rings = np.concatenate([corners[known], corners[known][:, :1]], axis=1)
    world = shapely.box(-180, -90, 180, 90)
    for i, poly, ring in zip(np.flatnonzero(known), shapely.polygons(rings), rings):
        if ring[:, 0].min() < -180 or ring[:, 0].max() > 180:
            parts = [shapely.intersection(affinity.translate(poly, xoff=shift), world)
                     for shift in (-360, 0, 360)]
            parts = [p for p in parts if not p.is_empty and p.area > 0]
            poly = shapely.MultiPolygon([q for p in parts for q in getattr(p, "geoms", [p])])
        out[i] = shapely.to_wkb(poly)
    return out


def _corners(block: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 4, 2) corners (lon, lat), how they were made, and the centre longitudes."""
    lat = np.asarray(block[S.LATITUDE].values, np.float64)
    lon = np.asarray(block[S.LONGITUDE].values, np.float64)
    kind = np.full(len(lat), "square_20km_north", dtype=object)
    heading = block[S.HEADING].values if S.HEADING in block.coords or S.HEADING in block else None
    if heading is not None:
        kind[np.isfinite(np.asarray(heading, np.float64))] = "square_20km_heading"
    corners = square_corners(lat, lon, heading)
    if FOOT_LAT in block and FOOT_LON in block:
        flat = np.asarray(block[FOOT_LAT].values, np.float64)
        flon = np.asarray(block[FOOT_LON].values, np.float64)
        if flat.ndim == 2 and flat.shape[1] == 4:
            known = np.isfinite(flat).all(1) & np.isfinite(flon).all(1)
            corners[known] = np.stack([flon, flat], axis=-1)[known]
            kind[known] = "manifest"
    corners[..., 0] = lon[:, None] + (corners[..., 0] - lon[:, None] + 180) % 360 - 180  # continuous
    unknown = ~(np.isfinite(lat) & np.isfinite(lon)) | ~np.isfinite(corners).all(axis=(1, 2))
    kind[unknown] = UNKNOWN
    corners[unknown] = np.nan
    return corners, kind, lon


def _footprints(block: xr.Dataset, shapely: Any) -> tuple[np.ndarray, np.ndarray]:
    corners, kind, _ = _corners(block)
    return _polygons(corners, shapely), kind


def _extent(ds: xr.Dataset, block: int) -> tuple[list[float] | None, int]:
    """The bounding box of every footprint and the count of rows without a position, from the coordinates alone
    (no embedding is read), block by block. The box is None when no row has a position."""
    box, unknown = [np.inf, np.inf, -np.inf, -np.inf], 0
    for start in range(0, ds.sizes[S.IMAGETTE], block):
        corners, kind, _ = _corners(ds.isel({S.IMAGETTE: slice(start, start + block)}))
        unknown += int(np.count_nonzero(kind == UNKNOWN))
        c = corners[kind != UNKNOWN]
        if len(c):
            box = [min(box[0], float(c[..., 0].min())), min(box[1], float(c[..., 1].min())),
                   max(box[2], float(c[..., 0].max())), max(box[3], float(c[..., 1].max()))]
    if not np.isfinite(box).all():
        return None, unknown
    if box[0] < -180 or box[2] > 180:  # a footprint crosses 180 degrees: it is split, and the file spans them all
        box[0], box[2] = -180.0, 180.0
    return box, unknown


# --- writing --------------------------------------------------------------------------------------------------------
def _product(block: xr.Dataset) -> np.ndarray:
    if S.SOURCE in block.coords or S.SOURCE in block:
        return np.asarray(block[S.SOURCE].values, dtype=object)
    ids = block[S.IMAGETTE].values.astype(str)
    return np.array([i.split(":", 1)[0] if ":" in i else "" for i in ids], dtype=object)


def _encode(x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Codes, per-row scale (int8) and the mask of finite rows."""
    finite = np.isfinite(x).all(axis=1)
    x = np.where(finite[:, None], x, 0).astype(np.float32)
    if dtype == "float32":
        return x, None, finite
    if dtype == "float16":
        top = float(np.abs(x).max()) if x.size else 0.0
        if top > float(np.finfo(np.float16).max):
            raise InvalidArgumentError(
                f"embeddings reach {top:.3g}, beyond float16's 65504: use dtype='int8' or 'float32'."
            )
        return x.astype(np.float16), None, finite
    scale = (np.abs(x).max(axis=1) / np.float32(127)).astype(np.float32)
    scale = np.where(scale > 0, scale, np.float32(1)).astype(np.float32)
    code = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return code, scale, finite


def _per_imagette(ds: xr.Dataset, features: str) -> tuple[list[str], list[str]]:
    """Names of 1-D and 2-D per-imagette variables/coordinates written as columns (besides the fixed ones)."""
    one, two = [], []
    for name, var in {**ds.coords, **ds.data_vars}.items():
        name = str(name)
        if name in (S.IMAGETTE, features, f"{features}_scale") or var.dims[:1] != (S.IMAGETTE,):
            continue
        if name in _RESERVED:
            raise InvalidDataError(f"{name!r} is a column name of the GeoParquet layout; rename that variable first.")
        if var.ndim == 1:
            one.append(name)
        elif var.ndim == 2 and var.dtype.kind in "biuf" and ds.sizes[var.dims[1]] <= 4096:
            two.append(name)
    return one, two


def _arrow_column(values: np.ndarray, pa: Any) -> Any:
    if values.dtype.kind == "M":
        return pa.array(values.astype("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC"))
    if values.dtype.kind in "OUS":
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    return pa.array(values)


def _fixed_list(flat: np.ndarray, width: int, valid: np.ndarray | None, pa: Any) -> Any:
    child = pa.array(np.ascontiguousarray(flat).reshape(-1))
    mask = None if valid is None or valid.all() else pa.array(~valid)
    return pa.FixedSizeListArray.from_arrays(child, width, mask=mask)


def _table(block: xr.Dataset, features: str, dtype: str, one: list[str], two: list[str], pa: Any,
           shapely: Any) -> Any:
    x = np.asarray(block[features].transpose(S.IMAGETTE, S.FEATURE).values, dtype=np.float32)
    code, scale, finite = _encode(x, dtype)
    wkb, kind = _footprints(block, shapely)
    cols: dict[str, Any] = {"id": pa.array(block[S.IMAGETTE].values.astype(str), type=pa.string())}
    for name in one:
        cols[name] = _arrow_column(np.asarray(block[name].values), pa)
    cols["product"] = _arrow_column(_product(block), pa)
    cols["footprint"] = pa.array(kind.astype(str), type=pa.string())
    cols["geometry"] = pa.array(list(wkb), type=pa.binary())  # None: a null geometry (no position)
    box = shapely.bounds(shapely.from_wkb(list(wkb))).reshape(len(wkb), 4)  # the GeoParquet 1.1 covering column
    null = pa.array(kind == UNKNOWN, type=pa.bool_())
    cols["bbox"] = pa.StructArray.from_arrays(
        [pa.array(box[:, i].astype(np.float64), mask=kind == UNKNOWN) for i in range(4)],
        names=["xmin", "ymin", "xmax", "ymax"], mask=null)
    cols["embedding"] = _fixed_list(code, x.shape[1], finite, pa)
    if scale is not None:
        cols["embedding_scale"] = pa.array(np.where(finite, scale, np.nan).astype(np.float32))
    for name in two:
        values = np.asarray(block[name].values)
        cols[name] = _fixed_list(values, values.shape[1], None, pa)
    if S.LABELS in block and S.LABEL in block.coords:
        codes = block[S.LABEL].values.astype(str)
        on = np.asarray(block[S.LABELS].values) == 1
        cols["tags"] = pa.array([",".join(codes[r]) for r in on], type=pa.string())
    return pa.table(cols)


def _jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in attrs.items():
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        try:
            json.dumps(value)
        except TypeError:
            value = str(value)
        out[str(key)] = value
    return out


def _dataset_attrs(attrs: dict[str, Any], embedding_attrs: dict[str, Any], dim: int) -> dict[str, Any]:
    """The Dataset's attributes, JSON-safe, with the ``geoemb:`` convention describing float32 embeddings of width
    ``dim`` (what :func:`read_geoparquet` gives back), made from the embedding's provenance."""
    attrs = _jsonable(dict(attrs))
    return merge_geoemb(attrs, geoemb_attrs({**attrs, **embedding_attrs}, dim=dim, data_type="float32"))


@contextmanager
def _folder(folder: Path) -> Iterator[None]:
    """Make ``folder`` (and missing parents); if the body fails, remove those made here that are still empty."""
    made = [p for p in [folder, *folder.parents] if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for p in made:  # deepest first
            with suppress(OSError):
                p.rmdir()
        raise


def _check(ds: xr.Dataset, features: str, dtype: str, row_group_size: int) -> None:
    if not isinstance(ds, xr.Dataset):
        raise InvalidTypeError(f"expected an xarray.Dataset of embeddings, got {type(ds).__name__}.")
    if dtype not in DTYPES:
        raise InvalidArgumentError(f"dtype must be one of {DTYPES}, got {dtype!r}.")
    if isinstance(row_group_size, bool) or not isinstance(row_group_size, (int, np.integer)) or row_group_size < 1:
        raise InvalidArgumentError(f"row_group_size must be a positive integer, got {row_group_size!r}.")
    if features not in ds.data_vars:
        raise InvalidDataError(f"no {features!r} variable to export: found {sorted(map(str, ds.data_vars))}; embed the "
                               "imagettes first (xwvnet.embed or xwvnet.embed_store).")
    if set(ds[features].dims) != {S.IMAGETTE, S.FEATURE}:
        raise InvalidDataError(f"{features!r} must have dims ({S.IMAGETTE}, {S.FEATURE}), found {ds[features].dims}.")
    if S.COMPACT_DTYPE in ds[features].attrs:
        raise InvalidDataError(f"{features!r} is stored compactly ({ds[features].attrs[S.COMPACT_DTYPE]}): decode it "
                               "first (xwvnet.retrieval.decode_embeddings) and choose the file's dtype= here.")
    missing = [c for c in (S.TIME, S.LATITUDE, S.LONGITUDE) if c not in ds.coords and c not in ds]
    if missing:
        raise InvalidDataError(
            f"the embeddings have no {missing} coordinates: a GeoParquet row needs a time and a place. "
            "Open the embedding store with its imagette coordinates (xwvnet.open_store of an "
            "embedding store has them; xwvnet.open_stores joins imagettes and embeddings)."
        )


def to_geoparquet(
    ds: xr.Dataset,
    path: str | os.PathLike,
    *,
    dtype: str = "float32",
    row_group_size: int = ROW_GROUP,
    features: str = S.EMBEDDING,
    compression: str = "zstd",
    overwrite: bool = False,
) -> Path:
    """Write embeddings as a GeoParquet file, one row per imagette, row group by row group.

    Every imagette is a row: one without a position (latitude or longitude NaN, as for the published quicklooks)
    gets a null geometry and ``footprint = "unknown"`` (counted in the file's ``xwvnet`` metadata as
    ``without_position``). The file is written beside ``path`` and renamed when whole; a failure leaves the
    previous file (or none) and no folder made for it. 0 imagettes give a valid file with no rows.

    Parameters
    ----------
    ds : xarray.Dataset
        ``features(imagette, feature)`` with the imagette coordinates (time, latitude, longitude, ...); in memory or
        dask-backed (e.g. :func:`xwvnet.open_store` of an embedding store, on a disk or object storage). Only
        ``row_group_size`` imagettes are loaded at a time.
    path : str or os.PathLike
        The ``.parquet`` file written (local).
    dtype : {"float32", "float16", "int8"}, default "float32"
        Type of the ``embedding`` list. int8 stores ``round(x / scale)`` with a per-row float32 ``embedding_scale``
        (``max |x| / 127`` of the row): a quarter of the bytes, error at most half a step.
    row_group_size : int, default 10000
        Imagettes per Parquet row group (and per read of the input).
    features : str, default "embedding"
        The variable written as the ``embedding`` column.
    compression : str, default "zstd"
        Parquet compression codec.
    overwrite : bool, default False
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ImportError
        Without the export extra (``pip install xwvnet[export]``).
    ValueError
        If ``features`` or the time/position coordinates are missing, ``dtype`` is unknown, a float16 file would
        overflow, or the file exists and ``overwrite`` is False.

    Examples
    --------
    >>> emb = xwvnet.open_store("embeddings.zarr")  # doctest: +SKIP
    >>> emb.wvnet.to_geoparquet("embeddings.parquet", dtype="int8")  # doctest: +SKIP
    """
    pa, pq, shapely = _deps()
    _check(ds, features, dtype, row_group_size)
    path = local_path(path, "a GeoParquet file")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists: pass overwrite=True to replace it.")
    ds = ds.transpose(S.IMAGETTE, ...)
    one, two = _per_imagette(ds, features)
    n, dim = ds.sizes[S.IMAGETTE], ds.sizes[S.FEATURE]
    emb_attrs = _jsonable(dict(ds[features].attrs))
    bbox, unknown = _extent(ds, int(row_group_size))
    meta = {
        "format": FORMAT, "version": VERSION, "xwvnet_version": __version__, "dtype": dtype, "dim": dim,
        "features": features, "n": n, "without_position": unknown, "attrs": _dataset_attrs(ds.attrs, emb_attrs, dim),
        "embedding_attrs": emb_attrs,
        "provenance": {k: emb_attrs.get(k, ds.attrs.get(k)) for k in
                       ("encoder", "encoder_weights_hash", "encoder_arch", "encoder_transform")
                       if k in emb_attrs or k in ds.attrs},
        "columns": {name: {"dims": list(map(str, ds[name].dims)), "coord": name in ds.coords,
                           "attrs": _jsonable(dict(ds[name].attrs))} for name in one + two},
        "dim_coords": {str(d): np.asarray(ds[d].values).tolist() for name in two for d in ds[name].dims[1:]
                       if d in ds.coords},
        "feature_coord": np.asarray(ds[S.FEATURE].values).tolist() if S.FEATURE in ds.coords else None,
    }
    geo = {"version": GEOPARQUET_VERSION, "primary_column": "geometry",
           "columns": {"geometry": {"encoding": "WKB", "geometry_types": ["Polygon", "MultiPolygon"],
                                    "crs": _crs_projjson(), "edges": "planar",
                                    "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}}}}
    if bbox is not None:  # no row with a position: no bbox (every geometry is null)
        geo["columns"]["geometry"]["bbox"] = bbox
    metadata = {b"geo": json.dumps(geo).encode(), META_KEY: json.dumps(meta).encode()}
    with _folder(path.parent):  # a folder made here and left empty by a failure is removed again
        writer = None
        with replacing(path) as tmp:  # the whole file or none: a failed write leaves the previous one
            try:
                for start in range(0, max(n, 1), int(row_group_size)):  # 0 rows: one empty table, the schema
                    block = ds.isel({S.IMAGETTE: slice(start, start + int(row_group_size))}).load()
                    table = _table(block, features, dtype, one, two, pa, shapely)
                    table = table.replace_schema_metadata(metadata)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema, compression=compression)
                    writer.write_table(table, row_group_size=int(row_group_size))
            finally:
                if writer is not None:
                    writer.close()
    return path


# --- reading --------------------------------------------------------------------------------------------------------
def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("*.parquet")) or sorted((path / "parquet").glob("*.parquet"))
        if not files:
            raise InputNotFoundError(f"no .parquet files in {path}.")
        return files
    if not path.is_file():
        raise InputNotFoundError(f"no GeoParquet file at {path}.")
    return [path]


def shard_metadata(pq: Any, file: Path) -> dict[str, Any]:
    """The xwvnet file metadata of a GeoParquet shard written by :func:`to_geoparquet`, checked.

    Parameters
    ----------
    pq : module
        ``pyarrow.parquet`` (imported by the caller, an optional dependency).
    file : pathlib.Path
        The shard.

    Returns
    -------
    dict
        The metadata (format, version, dimension, dtype, count, encoder, xwvnet version...).

    Raises
    ------
    ValueError
        If the file holds no xwvnet metadata, metadata of another format, or a newer layout.
    """
    raw = pq.read_schema(file).metadata or {}
    if META_KEY not in raw:
        raise InvalidFileError(f"{file} was not written by xwvnet.to_geoparquet (no 'xwvnet' file metadata): read it "
                               "with geopandas or pyarrow instead.")
    meta = json.loads(raw[META_KEY])
    if meta.get("format") != FORMAT:
        raise InvalidFileError(f"{file}: 'xwvnet' file metadata of another format ({meta.get('format')!r}).")
    if int(meta.get("version", 0)) > VERSION:
        raise InvalidFileError(f"{file} was written by a newer xwvnet (layout {meta.get('version')}): upgrade xwvnet.")
    return meta


def _list_values(column: Any, width: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = column.combine_chunks()
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(arr.values.to_numpy(zero_copy_only=False), dtype=dtype).reshape(len(arr), width)
    return values, valid


def _read_embedding(file: str, group: int, dim: int, dtype: str) -> np.ndarray:
    """The embeddings of one row group of one file, decoded to float32 (null rows: NaN): one dask chunk."""
    _, pq, _ = _deps()
    columns = ["embedding", "embedding_scale"] if dtype == "int8" else ["embedding"]
    table = pq.ParquetFile(file).read_row_group(group, columns=columns)
    codes, valid = _list_values(table.column("embedding"), dim, np.float32)
    if dtype == "int8":
        scale = np.asarray(table.column("embedding_scale").to_numpy(zero_copy_only=False), dtype=np.float32)
        codes = codes * scale[:, None]
    return np.where(valid[:, None], codes, np.nan).astype(np.float32)


def _lazy_embedding(files: list[Path], pq: Any, dim: int, dtype: str) -> Any:
    """A dask array of every file's embeddings, one chunk per row group (nothing is read until computed)."""
    import dask
    import dask.array as da
    from dask.base import tokenize

    blocks = []
    for file in files:
        info = pq.ParquetFile(file).metadata
        stat = file.stat()
        for group in range(info.num_row_groups):
            rows = info.row_group(group).num_rows
            if rows == 0:
                continue
            key = f"read_geoparquet-{tokenize(str(file.resolve()), stat.st_mtime_ns, stat.st_size, group, dtype)}"
            block = dask.delayed(_read_embedding, pure=True)(str(file), group, dim, dtype, dask_key_name=key)
            blocks.append(da.from_delayed(block, shape=(rows, dim), dtype=np.float32))
    if not blocks:
        return da.zeros((0, dim), dtype=np.float32, chunks=((0,), (dim,)))
    return da.concatenate(blocks, axis=0)


def _refuse_repeats(ids: np.ndarray, where: Path) -> None:
    import pandas as pd

    index = pd.Index(ids)
    if index.is_unique:
        return
    repeated = index[index.duplicated()].unique()
    shown = ", ".join(repr(str(i)) for i in repeated[:3]) + (", ..." if len(repeated) > 3 else "")
    raise DuplicateIdError(f"{where}: {len(repeated)} imagette id(s) appear more than once ({shown}); a GeoParquet "
                           "export holds one row per imagette: drop the repeated rows, or export the store again.")


def read_geoparquet(path: str | os.PathLike) -> xr.Dataset:
    """Read a GeoParquet file (or a folder of shards) written by :func:`to_geoparquet` back as a Dataset, lazily.

    The per-imagette columns (ids, time, position, ...) are read now; the embeddings stay on disk as a dask array
    with one chunk per Parquet row group, so a file larger than memory can be probed and searched chunk by chunk.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.parquet`` file, or a folder of them (read in name order), or the folder written by ``xwvnet export``
        (its ``parquet/`` shards).

    Returns
    -------
    xarray.Dataset
        ``embedding(imagette, feature)`` float32, dask-backed (int8 and float16 decoded; rows written as null are
        NaN), the imagette coordinates and per-imagette variables with their attributes, and the Dataset's attrs:
        the provenance and the geo-embeddings convention (``geoemb:`` and ``mlm:`` fields). An export of 0 rows
        gives a Dataset of 0 imagettes.

    Raises
    ------
    ImportError
        Without the export extra.
    FileNotFoundError
        If there is no file.
    DuplicateIdError
        If an imagette id appears in more than one row (a ``ValueError``).
    ValueError
        If a file was not written by xwvnet, or the shards of a folder differ in encoder or dimensions.

    Examples
    --------
    >>> emb = xwvnet.read_geoparquet("embeddings.parquet")  # doctest: +SKIP
    >>> near = emb.wvnet.neighbors(k=5)  # doctest: +SKIP
    """
    pa, pq, _ = _deps()
    where = Path(path)
    files = _files(where)
    metas = [shard_metadata(pq, f) for f in files]
    first = metas[0]
    for file, meta in zip(files[1:], metas[1:]):
        for key in ("dim", "features", "provenance", "columns", "dtype"):
            if meta.get(key) != first.get(key):
                raise InvalidFileError(f"{file} differs from {files[0]} in {key!r}: shards of one export only.")
    names = list(first["columns"])
    table = pa.concat_tables([pq.read_table(f, columns=["id", *names]).replace_schema_metadata(None)
                              for f in files])
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)
    _refuse_repeats(ids, where)
    dim, features = int(first["dim"]), first["features"]
    x = _lazy_embedding(files, pq, dim, first["dtype"])
    if x.shape[0] != len(ids):
        raise InvalidFileError(
            f"{where}: {len(ids)} ids but {x.shape[0]} embedding rows; the file is damaged, export again."
        )
    emb_attrs = first.get("embedding_attrs", {})
    coords: dict[str, Any] = {S.IMAGETTE: ids}
    data: dict[str, Any] = {features: ((S.IMAGETTE, S.FEATURE), x, emb_attrs)}
    for name, info in first["columns"].items():
        dims, attrs = tuple(info["dims"]), info.get("attrs", {})
        column = table.column(name)
        if len(dims) == 2:
            values, _ = _list_values(column, column.type.list_size, None)
        elif pa.types.is_timestamp(column.type):
            values = np.asarray(column.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False), "datetime64[ns]")
        elif pa.types.is_string(column.type):
            values = np.asarray(column.to_pylist(), dtype=object)
        else:
            values = column.to_numpy()
        (coords if info.get("coord") else data)[name] = (dims, values, attrs)
    for d, values in first.get("dim_coords", {}).items():
        coords[d] = np.asarray(values, dtype=object if values and isinstance(values[0], str) else None)
    if first.get("feature_coord") is not None:
        coords[S.FEATURE] = np.asarray(first["feature_coord"])
    return xr.Dataset(data, coords=coords, attrs=_dataset_attrs(first.get("attrs", {}), emb_attrs, dim))
