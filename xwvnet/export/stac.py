"""STAC metadata of an embedding export: a Collection describing the encoder (MLM extension v1.4) and the
embeddings (draft ``emb:`` fields), one Item per GeoParquet shard (time range, bounding box, asset). Uses pystac.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"
EMB_SCHEMA = "https://stac-extensions.github.io/embeddings/v0.1.0/schema.json"  # draft
TABLE_MEDIA = "application/vnd.apache.parquet"


def _pystac() -> Any:
    try:
        import pystac
    except ImportError as error:
        raise ImportError("STAC metadata needs the export extra: pip install xwvnet[export] (pystac).") from error
    return pystac


def _replacing_io() -> Any:
    """A pystac ``StacIO`` that writes each local file whole or not at all (through :func:`xwvnet._files.replacing`)."""
    from pystac.stac_io import DefaultStacIO

    from .._files import replacing

    class ReplacingStacIO(DefaultStacIO):
        def write_text_to_href(self, href: str, txt: str) -> None:
            if "://" in href and not href.startswith("file://"):
                raise ValueError(f"STAC metadata is written to local folders only, not to {href!r}.")
            path = Path(href.removeprefix("file://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with replacing(path) as tmp:
                tmp.write_text(txt, encoding="utf-8")

    return ReplacingStacIO()


def _utc(value: Any) -> dt.datetime:
    import pandas as pd

    return pd.Timestamp(value).tz_localize("UTC").to_pydatetime() if pd.Timestamp(value).tzinfo is None \
        else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def _mlm_fields(meta: dict[str, Any]) -> dict[str, Any]:
    attrs = {**meta.get("attrs", {}), **meta.get("embedding_attrs", {})}
    dim = int(meta["dim"])
    arch = str(attrs.get("encoder_arch", "resnet50"))
    return {
        "mlm:name": str(attrs.get("encoder", "unknown")),
        "mlm:architecture": arch,
        "mlm:tasks": ["similarity-search"],
        "mlm:framework": "pytorch",
        "mlm:pretrained": True,
        "mlm:pretrained_source": str(attrs.get("encoder_weights", attrs.get("encoder", "unknown"))),
        "mlm:input": [{
            "name": "Sentinel-1 WV imagette",
            "bands": [],
            "input": {"shape": [-1, 3, -1, -1], "dim_order": ["batch", "channel", "height", "width"],
                      "data_type": "float32"},
            "description": "8-bit quicklook (or calibrated sigma0) of one wave-mode imagette",
            "pre_processing_function": {"format": "documentation-link",
                                        "expression": str(attrs.get("encoder_transform", "unknown"))},
        }],
        "mlm:output": [{
            "name": "embedding",
            "tasks": ["similarity-search"],
            "result": {"shape": [-1, dim], "dim_order": ["batch", "embedding"], "data_type": "float32"},
        }],
        "xwvnet:encoder_weights_hash": str(attrs.get("encoder_weights_hash", "unknown")),
        "xwvnet:version": str(meta.get("xwvnet_version")),
    }


def stac_collection(
    shards: list[Path],
    out: str | Path,
    *,
    collection_id: str = "xwvnet-embeddings",
    description: str | None = None,
) -> Path:
    """Write ``collection.json`` and one Item per GeoParquet shard, beside the shards.

    Parameters
    ----------
    shards : list of pathlib.Path
        GeoParquet files written by :func:`xwvnet.to_geoparquet` (one export: same encoder and dimensions).
    out : str or pathlib.Path
        The folder (the shards should be in it; asset links are relative).
    collection_id : str, optional
        The Collection's id.
    description : str, optional
        Its description (default: says which encoder and how many imagettes).

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
    >>> xwvnet.export.stac_collection(sorted(Path("out").glob("*.parquet")), "out")  # doctest: +SKIP
    """
    import json

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from .geoparquet import shard_metadata

    pystac = _pystac()
    if not shards:
        raise ValueError("no shards to describe: export some imagettes first.")
    out = Path(out)
    items, boxes, times, total = [], [], [], 0
    first = None
    for shard in shards:
        meta = shard_metadata(pq, shard)
        first = first or meta
        geo = json.loads(pq.read_schema(shard).metadata[b"geo"])
        bbox = geo["columns"]["geometry"].get("bbox", [-180.0, -90.0, 180.0, 90.0])
        t = pq.read_table(shard, columns=["time"]).column("time")
        start, end = _utc(pc.min(t).as_py()), _utc(pc.max(t).as_py())
        west, south, east, north = bbox
        geometry = {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                        [west, south]]]}
        item = pystac.Item(id=shard.stem, geometry=geometry, bbox=bbox, datetime=None,
                           start_datetime=start, end_datetime=end,
                           properties={"emb:type": "chip", "emb:dimensions": int(meta["dim"]),
                                       "emb:quantization": meta["dtype"], "table:row_count": int(meta["n"])},
                           stac_extensions=[EMB_SCHEMA])
        item.add_asset("data", pystac.Asset(href=str(Path(shard).resolve()), media_type=TABLE_MEDIA,
                                            roles=["data"], title="embeddings (GeoParquet)"))
        items.append(item)
        boxes.append(bbox)
        times += [start, end]
        total += int(meta["n"])
    box = [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
    mlm = _mlm_fields(first)
    collection = pystac.Collection(
        id=collection_id,
        description=description or (f"{total} Sentinel-1 WV imagette embeddings ({first['dim']}-d, "
                                     f"{mlm['mlm:name']}), written by xwvnet {first['xwvnet_version']}"),
        extent=pystac.Extent(pystac.SpatialExtent([box]), pystac.TemporalExtent([[min(times), max(times)]])),
        license="other",
        stac_extensions=[MLM_SCHEMA, EMB_SCHEMA],
        extra_fields={**mlm, "emb:type": "chip", "emb:dimensions": int(first["dim"]),
                      "emb:quantization": first["dtype"], "emb:model": {"name": mlm["mlm:name"],
                                                                        "architecture": mlm["mlm:architecture"]}},
    )
    for item in items:
        collection.add_item(item)
    collection.normalize_hrefs(str(out))
    collection.make_all_asset_hrefs_relative()
    # items first, the collection last, each file whole: a failed save leaves no half-written JSON
    collection.save(catalog_type=pystac.CatalogType.SELF_CONTAINED, stac_io=_replacing_io())
    return out / "collection.json"
