"""STAC metadata of an embedding export, under the STAC embeddings extension v0.0.1 and MLM v1.5. Uses pystac.

Written beside the GeoParquet shards:

- ``collection.json``: a Collection with the embeddings extension's fields (``emb:type`` = ``chip``: one embedding
  per imagette, ``emb:dimensions``, ``data_type``, ``emb:chip_layout``), its required links (``emb:model`` to the
  encoder's MLM Item, ``emb:source-data`` to the imagettes embedded) and an ``embeddings`` entry in
  ``item_assets``;
- ``model.json``: the encoder as a STAC MLM Item (architecture, input contract, output, the weights as its
  ``mlm:model`` asset with their hash);
- one Item per shard that holds rows (``part-00000/part-00000.json`` ...): time range, bounding box (null geometry
  when no row has a position), ``emb:quantization`` (float16, int8), the shard as its ``embeddings`` asset.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._files import local_path
from ..conventions import FIELD, MLM_SCHEMA, UNKNOWN_SOURCE, geoemb_attrs, mlm_properties
from ..errors import InvalidDataError, MissingDependencyError, OutputLocationError

EMB_SCHEMA = "https://stac-extensions.github.io/embeddings/v0.0.1/schema.json"
TABLE_SCHEMA = "https://stac-extensions.github.io/table/v1.2.0/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
TABLE_MEDIA = "application/vnd.apache.parquet"
WEIGHTS_MEDIA = "application/octet-stream; framework=pytorch"
MODEL_FILE = "model.json"
ASSET = "embeddings"  # the asset key the embeddings extension requires
#: how the stored embeddings were made from the encoder's float32 output (the extension's Quantization Object)
QUANTIZATION = {
    "float16": {"method": "float16_cast", "original_dtype": "float32", "quantized_dtype": "float16"},
    "int8": {"method": "per_row_scale", "original_dtype": "float32", "quantized_dtype": "int8"},
}
#: Sentinel-1A, the first wave-mode imagettes: the start of the encoder's domain in time (open-ended after it)
_S1_FIRST = dt.datetime(2014, 4, 3, tzinfo=dt.timezone.utc)
_OPEN_END = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
_WORLD = [-180.0, -90.0, 180.0, 90.0]


def _pystac() -> Any:
    try:
        import pystac
    except ImportError as error:
        raise MissingDependencyError(
            "STAC metadata needs the export extra: pip install xwvnet[export] (pystac)."
        ) from error
    return pystac


def _replacing_io() -> Any:
    """A pystac ``StacIO`` that writes each local file whole or not at all (through :func:`xwvnet._files.replacing`)."""
    from pystac.stac_io import DefaultStacIO

    from .._files import replacing
    from ..io.storage import locate

    class ReplacingStacIO(DefaultStacIO):
        def write_text_to_href(self, href: str, txt: str) -> None:
            try:
                where = locate(href)
            except ValueError:  # https://... and other URLs that are no storage location
                where = None
            if where is None or not where.local:
                raise OutputLocationError(f"STAC metadata is written to local folders only, not to {href!r}.")
            path = where.path
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp:
                tmp.write_text(txt, encoding="utf-8")

    return ReplacingStacIO()


def _utc(value: Any) -> dt.datetime:
    import pandas as pd

    t = pd.Timestamp(value)
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).to_pydatetime()


def _box_geometry(bbox: list[float]) -> dict[str, Any]:
    west, south, east, north = bbox
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


def _checksum(digest: str) -> str | None:
    """A ``sha256:<hex>`` hash as a multihash (the file extension's ``file:checksum``); None for other kinds."""
    kind, _, hexdigest = digest.partition(":")
    if kind == "sha256" and len(hexdigest) == 64 and all(c in "0123456789abcdef" for c in hexdigest.lower()):
        return "1220" + hexdigest.lower()
    return None


def model_item(meta: dict[str, Any]) -> Any:
    """The encoder of an export as a STAC MLM (v1.5) Item, from the ``xwvnet`` metadata of a shard.

    Parameters
    ----------
    meta : dict
        The metadata of a GeoParquet shard (:func:`xwvnet.export.geoparquet.shard_metadata`).

    Returns
    -------
    pystac.Item
        Properties from :func:`xwvnet.conventions.mlm_properties` (name, architecture, tasks, framework, input
        contract, output), the weights as the ``weights`` asset (roles ``mlm:model`` and ``mlm:weights``,
        ``mlm:artifact_type`` ``torch.save``, the weights' URL or a URN with their hash, ``file:checksum`` for a
        SHA-256), and the whole ocean since Sentinel-1A as the domain it applies to.
    """
    pystac = _pystac()
    attrs = {**meta.get("attrs", {}), **meta.get("embedding_attrs", {})}
    dim = int(meta["dim"])
    described = geoemb_attrs(attrs, dim=dim)
    props = mlm_properties(attrs, dim, in_chans=int(described["mlm:input"][0]["input"]["shape"][1]))
    digest = str(attrs.get("encoder_weights_hash", "unknown"))
    name = props["mlm:name"]
    item = pystac.Item(
        id=name, geometry=_box_geometry(_WORLD), bbox=list(_WORLD), datetime=None, start_datetime=_S1_FIRST,
        end_datetime=_OPEN_END,
        properties={**props, "description": f"The encoder {name!r} ({props['mlm:architecture']}, weights {digest}) "
                                           f"that made {dim}-dimensional embeddings of Sentinel-1 WV imagettes.",
                    "license": "other", "xwvnet:weights_hash": digest,
                    "xwvnet:version": str(meta.get("xwvnet_version"))},
        stac_extensions=[MLM_SCHEMA],
    )
    asset = pystac.Asset(href=described["geoemb:model"], media_type=WEIGHTS_MEDIA,
                         roles=["mlm:model", "mlm:weights", "weights"], title=f"weights of {name}",
                         extra_fields={"mlm:artifact_type": "torch.save"})
    checksum = _checksum(digest)
    if checksum:
        asset.extra_fields["file:checksum"] = checksum
        item.stac_extensions.append(FILE_SCHEMA)
    item.add_asset("weights", asset)
    return item


def _shard_item(pystac: Any, pq: Any, pc: Any, shard: Path, meta: dict[str, Any], sources: list[str]
                ) -> tuple[Any, list[float] | None, list[dt.datetime]]:
    """The Item of one shard with rows (None for an empty shard), its bbox (None without positions), its times."""
    import json

    if int(meta["n"]) == 0:
        return None, None, []
    geo = json.loads(pq.read_schema(shard).metadata[b"geo"])
    bbox = geo["columns"]["geometry"].get("bbox")  # absent: no row has a position
    t = pq.read_table(shard, columns=["time"]).column("time")
    first, last = pc.min(t).as_py(), pc.max(t).as_py()
    times = [_utc(first), _utc(last)] if first is not None else []
    properties: dict[str, Any] = {"table:row_count": int(meta["n"]),
                                  "xwvnet:without_position": int(meta.get("without_position", 0))}
    if meta["dtype"] in QUANTIZATION:
        properties["emb:quantization"] = dict(QUANTIZATION[meta["dtype"]])
    item = pystac.Item(
        id=shard.stem, geometry=_box_geometry(bbox) if bbox else None, bbox=bbox,
        datetime=None if times else dt.datetime.now(dt.timezone.utc),
        start_datetime=times[0] if times else None, end_datetime=times[-1] if times else None,
        properties=properties, stac_extensions=[EMB_SCHEMA, TABLE_SCHEMA])
    item.add_asset(ASSET, pystac.Asset(href=str(Path(shard).resolve()), media_type=TABLE_MEDIA, roles=["data"],
                                       title=f"{meta['n']} imagette embeddings (GeoParquet, {meta['dtype']})"))
    for source in sources:
        item.add_link(pystac.Link("emb:source-data", source, title="the imagettes embedded"))
    return item, bbox, times


def stac_collection(
    shards: list[Path],
    out: str | Path,
    *,
    collection_id: str = "xwvnet-embeddings",
    description: str | None = None,
    license: str = "other",
    source_data: Sequence[str] | None = None,
) -> Path:
    """Write ``collection.json``, the encoder's MLM Item ``model.json``, and one Item per GeoParquet shard.

    Follows the STAC embeddings extension v0.0.1 (Collection: ``emb:type``, ``emb:dimensions``, ``data_type``,
    ``emb:chip_layout``, links ``emb:model`` and ``emb:source-data``; Items: ``emb:quantization`` and the
    ``embeddings`` asset) and, for the encoder, the MLM extension v1.5.

    Parameters
    ----------
    shards : list of pathlib.Path
        GeoParquet files written by :func:`xwvnet.to_geoparquet` (one export: same encoder and dimensions).
    out : str or pathlib.Path
        The folder (the shards should be in it; links and asset hrefs are relative).
    collection_id : str, optional
        The Collection's id.
    description : str, optional
        Its description (default: says which encoder and how many imagettes).
    license : str, default "other"
        The licence of the embeddings (an SPDX identifier, or ``other``).
    source_data : sequence of str, optional
        The data embedded, as paths or URIs, for the ``emb:source-data`` links (default: the imagette store
        recorded in the embeddings' ``geoemb:source_data`` or ``input`` attribute).

    Returns
    -------
    pathlib.Path
        The ``collection.json`` written.

    Raises
    ------
    ValueError
        If ``shards`` is empty or a shard is not an xwvnet GeoParquet file.

    Examples
    --------
    >>> xwvnet.export.stac_collection(sorted(Path("out/parquet").glob("*.parquet")), "out")  # doctest: +SKIP
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .geoparquet import shard_metadata

    pystac = _pystac()
    if not shards:
        raise InvalidDataError("no shards to describe: export some imagettes first.")
    out = local_path(out, "a STAC collection")
    metas = [shard_metadata(pq, shard) for shard in shards]
    first = metas[0]
    attrs = {**first.get("attrs", {}), **first.get("embedding_attrs", {})}
    dim, dtype = int(first["dim"]), str(first["dtype"])
    sources = geoemb_attrs(attrs, dim=dim, source_data=source_data)["geoemb:source_data"]
    items, boxes, times, total, unknown = [], [], [], 0, 0
    for shard, meta in zip(shards, metas):
        item, bbox, span = _shard_item(pystac, pq, pc, Path(shard), meta, sources)
        total += int(meta["n"])
        unknown += int(meta.get("without_position", 0))
        if item is not None:
            items.append(item)
        if bbox:
            boxes.append(bbox)
        times += span
    box = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
           max(b[3] for b in boxes)] if boxes else list(_WORLD)
    model = model_item(first)
    name = model.properties["mlm:name"]
    collection = pystac.Collection(
        id=collection_id,
        description=description or (f"{total} Sentinel-1 WV imagette embeddings ({dim}-d, {dtype}, encoder "
                                     f"{name}), written by xwvnet {first['xwvnet_version']}"
                                     + (f"; {unknown} without a position (null geometry)" if unknown else "")),
        extent=pystac.Extent(pystac.SpatialExtent([box]),
                             pystac.TemporalExtent([[min(times), max(times)] if times else [None, None]])),
        license=license,
        stac_extensions=[EMB_SCHEMA],
        extra_fields={
            "emb:type": "chip", "emb:dimensions": dim, "data_type": dtype,
            # each imagette is one chip; they are not on a grid, and the encoder reads a FIELD x FIELD field of each
            "emb:chip_layout": {"layout_type": "variable_grid", "chip_size": [FIELD, FIELD]},
            "emb:fit_for_use": ["retrieval", "classification", "regression"],
            "item_assets": {ASSET: {"type": TABLE_MEDIA, "roles": ["data"],
                                    "title": "imagette embeddings (GeoParquet)"}},
        },
        summaries=pystac.Summaries({"emb:type": ["chip"], "emb:dimensions": [dim], "data_type": [dtype]}),
    )
    collection.add_link(pystac.Link("emb:model", f"./{MODEL_FILE}", media_type=pystac.MediaType.GEOJSON,
                                    title=f"the encoder {name} (STAC MLM Item)"))
    for source in sources:
        collection.add_link(pystac.Link("emb:source-data", source,
                                        title="the imagettes embedded" if source != UNKNOWN_SOURCE else
                                        "the imagettes embedded (not recorded with the embeddings)"))
    for item in items:
        collection.add_item(item)
    collection.normalize_hrefs(str(out.resolve() / "collection.json"))  # a file: a folder name with a dot is one
    collection.make_all_asset_hrefs_relative()
    io = _replacing_io()
    # the model and the items first, the collection last, each file whole: a failed save leaves no half-written JSON
    model.save_object(include_self_link=False, dest_href=str(out / MODEL_FILE), stac_io=io)
    collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED, stac_io=io)
    return out / "collection.json"
