"""The published metadata conventions for embeddings, as plain dicts: the Zarr ``geoemb:`` convention and STAC MLM.

- :func:`geoemb_attrs`: the root attributes of the geo-embeddings Zarr convention (v1, prefix ``geoemb:``, registered
  in ``zarr_conventions``), together with the encoder's STAC MLM description (``mlm:`` fields). Every embedding store
  carries them (:func:`xwvnet.embed_store` writes them), and so do plain Zarr copies (``xwvnet export --format zarr``)
  and GeoParquet exports (in their file metadata).
- :func:`mlm_properties`: the encoder as the properties of a STAC MLM (v1.5) Item: name, architecture, tasks,
  framework, input contract (the 450 x 450 field of each imagette, resized to 224 x 224) and output (one
  ``embedding`` vector per imagette).

Pure functions of the provenance attributes of an ``embedding`` variable (see
:func:`xwvnet.inference.embedding_attrs`): no numpy, no I/O, nothing imported from the rest of xwvnet but its version,
so that the embedding writer and the exports build the same description.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._version import __version__

__all__ = ["geoemb_attrs", "merge_geoemb", "mlm_properties", "source_uri"]

#: the geo-embeddings Zarr convention, version 1 (attribute prefix ``geoemb:``)
GEOEMB_UUID = "61c12cc5-0e28-4056-999a-480cf3fb7e4c"
GEOEMB_SCHEMA = "https://raw.githubusercontent.com/geo-embeddings/embeddings-zarr-convention/refs/tags/v1/schema.json"
GEOEMB_SPEC = "https://github.com/geo-embeddings/embeddings-zarr-convention/blob/v1/README.md"
GEOEMB_REGISTRATION = {"schema_url": GEOEMB_SCHEMA, "spec_url": GEOEMB_SPEC, "uuid": GEOEMB_UUID, "name": "geoemb:"}
#: the STAC Machine Learning Model extension used to describe encoders
MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.2/schema.json"

#: the WV-Net and ImageNet transforms read a FIELD x FIELD field of the imagette and resize it to SIZE x SIZE
#: (:data:`xwvnet.models.transforms.CROP` and ``SIZE``; repeated here so that no export imports torch)
FIELD = 450
SIZE = 224
#: named transforms -> (field, side) when not (FIELD, SIZE) (:data:`xwvnet.models.transforms.TRANSFORM_GEOMETRY`)
_TRANSFORM_GEOMETRY = {"oceansar": (300, 256)}
#: named transforms -> their Python entry point (MLM ``pre_processing_function`` of format ``python``)
_TRANSFORM_ENTRY = {"wvnet": "xwvnet.models.transforms:wvnet_transform",
                    "wvnet-reflect": "xwvnet.models.transforms:wvnet_reflect_transform",
                    "imagenet": "xwvnet.models.transforms:imagenet_transform",
                    "oceansar": "xwvnet.models.transforms:oceansar_transform"}
#: storage types of embeddings -> the quantization that made them from float32 (None: stored as computed)
_QUANTIZATION = {
    "float32": None,
    "float16": {"method": "float16_cast", "original_dtype": "float32", "quantized_dtype": "float16"},
    "int8": {"method": "per_row_scale", "original_dtype": "float32", "quantized_dtype": "int8"},
}
UNKNOWN_SOURCE = "urn:xwvnet:source:unrecorded"


def source_uri(location: str) -> str:
    """A store location as a URI: URLs as they are, local paths as absolute ``file://`` URIs.

    What is a local path is decided by :func:`xwvnet.io.storage.locate`, the one reader of store names.

    Parameters
    ----------
    location : str
        A path or a URL (``s3://``, ``gs://``, ``az://``, ``https://``, ``file://`` ...).

    Returns
    -------
    str
        The URI.

    Examples
    --------
    >>> source_uri("s3://bucket/wv.zarr")
    's3://bucket/wv.zarr'
    >>> source_uri("/data/wv.zarr")
    'file:///data/wv.zarr'
    """
    from .io.storage import locate

    text = str(location)
    try:
        where = locate(text)
    except ValueError:  # not a store name (https://, urn:...): a URI already, kept as it is
        return text
    return Path(where.prefix).resolve().as_uri() if where.local else text


def _model_uri(attrs: Mapping[str, Any]) -> str:
    """Where the encoder is: the pinned URL of published weights, else a URN naming the weights by their hash."""
    url = attrs.get("encoder_url")
    if url:
        return str(url)
    name = quote(str(attrs.get("encoder", "unknown")), safe="-_.")
    digest = quote(str(attrs.get("encoder_weights_hash", "unknown")), safe="-_.:")
    return f"urn:xwvnet:encoder:{name}:{digest}"


def _entry_point(transform: str) -> str:
    if transform in _TRANSFORM_ENTRY:
        return _TRANSFORM_ENTRY[transform]
    module, _, name = transform.rpartition(".")
    return f"{module}:{name}" if module else transform


def mlm_properties(attrs: Mapping[str, Any], dim: int, *, in_chans: int = 3) -> dict[str, Any]:
    """The encoder as the ``properties`` of a STAC MLM (v1.5) Item.

    Parameters
    ----------
    attrs : Mapping
        Provenance attributes of an ``embedding`` variable (``encoder``, ``encoder_arch``, ``encoder_transform``,
        ``encoder_weights_hash``, ``encoder_url`` ...), as :func:`xwvnet.inference.embedding_attrs` writes them.
    dim : int
        The embedding width.
    in_chans : int, default 3
        Channels of the model input.

    Returns
    -------
    dict
        ``mlm:name``, ``mlm:architecture``, ``mlm:tasks``, ``mlm:framework``, ``mlm:pretrained``,
        ``mlm:pretrained_source``, ``mlm:input`` (shape, dimension order, data type, resize and the transform's
        Python entry point) and ``mlm:output`` (``[batch, embedding]``).

    Examples
    --------
    >>> p = mlm_properties({"encoder": "wvnet-resnet50", "encoder_arch": "resnet50"}, 2048)
    >>> p["mlm:output"][0]["result"]["dim_order"]
    ['batch', 'embedding']
    """
    name = str(attrs.get("encoder", "unknown"))
    transform = str(attrs.get("encoder_transform", "wvnet"))
    field, size = _TRANSFORM_GEOMETRY.get(transform, (FIELD, SIZE))
    pretrained = not name.startswith("random") and attrs.get("encoder_weights_hash") != "unsaved in-memory model"
    return {
        "mlm:name": name,
        "mlm:architecture": str(attrs.get("encoder_arch", "unknown")),
        "mlm:tasks": ["similarity-search"],
        "mlm:framework": "PyTorch",
        "mlm:pretrained": bool(pretrained),
        "mlm:pretrained_source": str(attrs.get("encoder_url") or name) if pretrained else None,
        "mlm:input": [{
            "name": "imagette",
            "description": (f"one Sentinel-1 wave-mode imagette (8-bit quicklook or calibrated sigma0): its central "
                            f"{field} x {field} pixel field, padded where smaller, resized bilinearly to {size} x "
                            f"{size}, scaled and normalised by the transform {transform!r}"),
            "bands": [],
            "input": {"shape": [-1, int(in_chans), size, size], "dim_order": ["batch", "channel", "height", "width"],
                      "data_type": "float32"},
            "resize_type": "interpolation-linear",
            "pre_processing_function": {"format": "python", "expression": _entry_point(transform)},
        }],
        "mlm:output": [{
            "name": "embedding",
            "description": "the pooled features of the encoder (a ViT's class token), one vector per imagette",
            "tasks": ["similarity-search"],
            "result": {"shape": [-1, int(dim)], "dim_order": ["batch", "embedding"], "data_type": "float32"},
        }],
    }


def geoemb_attrs(
    attrs: Mapping[str, Any],
    *,
    dim: int,
    data_type: str = "float32",
    source_data: Sequence[str] | None = None,
    in_chans: int | None = None,
) -> dict[str, Any]:
    """Root attributes of an embedding group under the geo-embeddings Zarr convention (v1), with the MLM fields.

    Parameters
    ----------
    attrs : Mapping
        Provenance attributes of the ``embedding`` variable (see :func:`mlm_properties`).
    dim : int
        The embedding width.
    data_type : str, default "float32"
        How the embeddings are stored (``float32``; ``float16`` and ``int8`` add ``geoemb:quantization``).
    source_data : sequence of str, optional
        The imagette stores (or other data) embedded, as paths or URIs (default: ``geoemb:source_data`` of
        ``attrs``, else its ``input`` attribute; a URN saying it was not recorded when there is neither).
    in_chans : int, optional
        Channels of the model input (default: that of ``mlm:input`` in ``attrs``, else 3).

    Returns
    -------
    dict
        ``zarr_conventions`` (the convention's registration), ``geoemb:type`` (``chip``: one embedding per
        imagette), ``geoemb:dimensions``, ``geoemb:model`` (the weights' URL, or a URN with their hash),
        ``geoemb:source_data``, ``geoemb:data_type``, ``geoemb:chip_layout`` (the field the encoder reads),
        ``geoemb:quantization`` (float16, int8), ``geoemb:build_version``, and the encoder's ``mlm:`` fields.

    Examples
    --------
    >>> a = geoemb_attrs({"encoder": "toy", "encoder_weights_hash": "sha256:ab"}, dim=64,
    ...                  source_data=["s3://bucket/wv.zarr"])
    >>> a["geoemb:type"], a["geoemb:dimensions"], a["geoemb:model"]
    ('chip', 64, 'urn:xwvnet:encoder:toy:sha256:ab')
    """
    if source_data is None:
        known = attrs.get("geoemb:source_data")
        source_data = [str(s) for s in known] if isinstance(known, (list, tuple)) else \
            ([str(attrs["input"])] if attrs.get("input") else [])
    if in_chans is None:
        try:
            in_chans = int(attrs["mlm:input"][0]["input"]["shape"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            in_chans = 3
    sources = [source_uri(s) for s in source_data] or [UNKNOWN_SOURCE]
    out: dict[str, Any] = {
        "zarr_conventions": [dict(GEOEMB_REGISTRATION)],
        "geoemb:type": "chip",
        "geoemb:dimensions": int(dim),
        "geoemb:model": _model_uri(attrs),
        "geoemb:source_data": sources,
        "geoemb:data_type": data_type,
        "geoemb:chip_layout": {"layout_type": "irregular", "chip_size": [
            _TRANSFORM_GEOMETRY.get(str(attrs.get("encoder_transform", "wvnet")), (FIELD, SIZE))[0]] * 2},
    }
    if _QUANTIZATION.get(data_type) is not None:
        out["geoemb:quantization"] = dict(_QUANTIZATION[data_type])
    out["geoemb:build_version"] = f"xwvnet {__version__}"
    out.update(mlm_properties(attrs, dim, in_chans=in_chans))
    return out


def merge_geoemb(attrs: Mapping[str, Any], geoemb: Mapping[str, Any]) -> dict[str, Any]:
    """``attrs`` with its ``geoemb:`` and ``mlm:`` fields replaced by ``geoemb`` (from :func:`geoemb_attrs`).

    Other conventions registered in ``zarr_conventions`` are kept; the geo-embeddings one appears once.

    Parameters
    ----------
    attrs : Mapping
        Root attributes (of a store or a Dataset).
    geoemb : Mapping
        The new convention attributes.

    Returns
    -------
    dict
        A new dict; ``attrs`` is not changed.

    Examples
    --------
    >>> old = {"kind": "embeddings", "geoemb:data_type": "float16", "geoemb:quantization": {}}
    >>> new = merge_geoemb(old, {"zarr_conventions": [dict(GEOEMB_REGISTRATION)], "geoemb:data_type": "float32"})
    >>> sorted(new)
    ['geoemb:data_type', 'kind', 'zarr_conventions']
    """
    out = {k: v for k, v in attrs.items() if not str(k).startswith(("geoemb:", "mlm:"))}
    others = [c for c in out.get("zarr_conventions", []) or []
              if not (isinstance(c, Mapping) and (c.get("uuid") == GEOEMB_UUID or c.get("name") == "geoemb:"))]
    out.update(geoemb)
    out["zarr_conventions"] = others + [c for c in geoemb.get("zarr_conventions", [])]
    return out
