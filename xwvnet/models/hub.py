"""Checkpoints as their authors publish them: torch files, safetensors files and Hugging Face hub folders, in the
layouts their ``config.json`` names, read into our parameter names and checked.

:func:`read_checkpoint` is the one reader of a weights file, whatever its layout:

- torch files (``.pt``, ``.pth``, ``.bin``; read with ``weights_only=True``) and safetensors files (no pickle at all);
- a folder as ``transformers``' ``save_pretrained`` and timm's ``save_for_hf`` write it (``config.json`` beside
  ``model.safetensors`` or ``pytorch_model.bin``): give the folder or the weights file in it;
- parameter names of torchvision's and timm's ResNets (ours), of ``transformers``' ``ResNetModel`` /
  ``ResNetForImageClassification`` (``embedder.embedder.convolution.weight``, ``encoder.stages.S.layers.L...``),
  mapped to ours, and of timm's / DINO's ViTs (ours too).

A ``config.json`` beside the weights is read and held against them: its architecture, input channels and every
setting that would change the network must be ones our backbones build exactly, otherwise the checkpoint is refused
with one line naming the setting (never loaded into a network it does not fit). ``transformers``-layout weights need
their ``config.json``: the weights alone do not say where a bottleneck's stride sits.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import resnet, vit
from .weights import WeightsIntegrityError, WeightsUnavailableError, drop_classifier, infer_layout, read_state_dict

__all__ = [
    "CONFIG_NAME",
    "WEIGHT_NAMES",
    "Checkpoint",
    "check_config",
    "check_timm_config",
    "check_transformers_config",
    "from_transformers_resnet",
    "read_checkpoint",
    "read_config",
    "read_safetensors",
    "to_our_names",
    "weights_in",
]

#: the configuration file of a hub folder
CONFIG_NAME = "config.json"
#: the weights files of a hub folder, in the order they are looked for (safetensors first: no pickle)
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
#: ``transformers`` ResNet settings our ResNets build exactly: setting -> the value they must have
_TRANSFORMERS_FIXED: dict[str, object] = {
    "hidden_act": "relu", "embedding_size": 64, "downsample_in_first_stage": False, "downsample_in_bottleneck": False,
}
#: timm ``model_args`` that do not change the network at inference (dropout rates) or that are checked elsewhere
_TIMM_FREE = {"num_classes", "in_chans", "img_size", "global_pool", "drop_rate", "drop_path_rate", "attn_drop_rate",
              "proj_drop_rate", "pos_drop_rate", "patch_drop_rate", "dynamic_img_size", "pretrained_cfg_overlay"}
#: a timm model argument whose value the weights' shapes decide (and that is checked against them)
_FROM_WEIGHTS = object()
#: timm ViT ``model_args`` accepted only with the value our ViTs build
_TIMM_VIT_FIXED: dict[str, object] = {
    "mlp_ratio": 4.0, "qkv_bias": True, "class_token": True, "reg_tokens": 0, "no_embed_class": False,
    "init_values": None, "pre_norm": False, "fc_norm": None, "qk_norm": False, "proj_bias": True,
    "patch_size": _FROM_WEIGHTS, "embed_dim": _FROM_WEIGHTS, "depth": _FROM_WEIGHTS, "num_heads": _FROM_WEIGHTS,
}


@dataclass(frozen=True)
class Checkpoint:
    """A weights file read into our names, with what it is.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        The backbone's weights in our names (torchvision's for ResNets, timm's for ViTs), without a classifier.
    arch : str
        A key of :data:`xwvnet.models.backbones.ARCHITECTURES`.
    in_chans : int
        Input channels.
    img_size : int or None
        The input side a ViT's position embedding was learned for (``None`` for a ResNet).
    layout : str
        ``"torchvision-resnet"``, ``"timm-resnet"``, ``"transformers-resnet"`` or ``"timm-vit"``.
    path : pathlib.Path
        The weights file.
    config : dict or None
        The ``config.json`` beside it, if any.
    """

    state_dict: dict[str, torch.Tensor] = field(repr=False)
    arch: str
    in_chans: int
    img_size: int | None
    layout: str
    path: Path
    config: dict[str, Any] | None = field(default=None, repr=False)


def weights_in(path: str | os.PathLike) -> Path:
    """The weights file a path names: the file itself, or the weights of a hub folder.

    Parameters
    ----------
    path : str or os.PathLike
        A weights file, or a folder holding one of :data:`WEIGHT_NAMES` (as ``save_pretrained`` writes it).

    Returns
    -------
    pathlib.Path
        The weights file.

    Raises
    ------
    WeightsUnavailableError
        If the path does not exist, or the folder holds none of :data:`WEIGHT_NAMES`.
    """
    path = Path(path).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for name in WEIGHT_NAMES:
            if (path / name).is_file():
                return path / name
        raise WeightsUnavailableError(
            f"{path} holds no weights: expected {' or '.join(WEIGHT_NAMES)} there (beside its {CONFIG_NAME})."
        )
    raise WeightsUnavailableError(f"weights file {path} does not exist.")


def read_safetensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, on the CPU (the format holds tensors only: nothing is unpickled).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file.

    Returns
    -------
    dict of str to torch.Tensor

    Raises
    ------
    WeightsIntegrityError
        If the file is not a readable safetensors file.
    """
    from safetensors.torch import load_file

    try:
        return load_file(os.fspath(path), device="cpu")
    except Exception as err:  # safetensors raises its own error type, and OSError, for a damaged file
        raise WeightsIntegrityError(
            f"{path} is not a readable safetensors file ({type(err).__name__}: {err}); download it again."
        ) from err


def read_config(weights: str | os.PathLike) -> dict[str, Any] | None:
    """The ``config.json`` beside a weights file (as hub folders hold it), or ``None`` when there is none.

    Parameters
    ----------
    weights : str or os.PathLike
        The weights file.

    Returns
    -------
    dict or None

    Raises
    ------
    WeightsIntegrityError
        If the file is not a JSON object.
    """
    path = Path(weights).parent / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsIntegrityError(f"{path} (the configuration of {Path(weights).name}) is not JSON ({err}).") from err
    if not isinstance(config, dict):
        raise WeightsIntegrityError(f"{path} must hold a JSON object, found {type(config).__name__}.")
    return config


def _strip(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Without a prefix that some keys carry (a classifier model's backbone attribute)."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def _is_transformers_resnet(state_dict: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith(("embedder.embedder.", "resnet.embedder.embedder.")) for k in state_dict)


_TRANSFORMERS_KEYS = (
    (re.compile(r"embedder\.embedder\.convolution\.weight"), lambda m: "conv1.weight"),
    (re.compile(r"embedder\.embedder\.normalization\.(\w+)"), lambda m: f"bn1.{m[1]}"),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\.weight"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.0.weight"),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\.(\w+)"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.downsample.1.{m[3]}"),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\.weight"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.conv{int(m[3]) + 1}.weight"),
    (re.compile(r"encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\.(\w+)"),
     lambda m: f"layer{int(m[1]) + 1}.{m[2]}.bn{int(m[3]) + 1}.{m[4]}"),
)


def check_transformers_config(config: Mapping[str, Any] | None, source: str) -> dict[str, object]:
    """Check that a ``transformers`` ResNet configuration is one our ResNets build exactly; say what it declares.

    Parameters
    ----------
    config : mapping or None
        The ``config.json`` beside the weights.
    source : str
        The weights file, for error messages.

    Returns
    -------
    dict
        ``{"in_chans": ..., "bottleneck": ..., "depths": ...}`` as the configuration declares them.

    Raises
    ------
    WeightsIntegrityError
        Without a configuration (the weights alone do not say where a bottleneck's stride sits), or on any setting
        that would build another network (model type, block kind, activation, stem width, strides, widths).
    """
    if config is None:
        raise WeightsIntegrityError(
            f"{source} holds transformers-format ResNet weights but no {CONFIG_NAME} beside it: put the config.json "
            "published with it in the same folder (it says where each stride sits)."
        )
    if config.get("model_type") != "resnet":
        raise WeightsIntegrityError(
            f"{source}: its {CONFIG_NAME} has model_type={config.get('model_type')!r}; transformers-format weights are "
            "read for model_type 'resnet' (ResNetModel, ResNetForImageClassification) only."
        )
    layer_type = config.get("layer_type", "bottleneck")
    if layer_type not in ("bottleneck", "basic"):
        raise WeightsIntegrityError(f"{source}: layer_type={layer_type!r} in its {CONFIG_NAME} is not supported.")
    for key, value in _TRANSFORMERS_FIXED.items():
        if config.get(key, value) != value:
            raise WeightsIntegrityError(
                f"{source}: {key}={config[key]!r} in its {CONFIG_NAME} builds another ResNet than torchvision's "
                f"(expected {key}={value!r}); such weights are not supported."
            )
    expansion = 4 if layer_type == "bottleneck" else 1
    standard = [64 * expansion * 2**i for i in range(4)]
    if list(config.get("hidden_sizes", standard)) != standard:
        raise WeightsIntegrityError(
            f"{source}: hidden_sizes={config['hidden_sizes']} in its {CONFIG_NAME}; expected {standard} for "
            f"{layer_type} blocks."
        )
    return {"in_chans": int(config.get("num_channels", 3)), "bottleneck": layer_type == "bottleneck",
            "depths": tuple(int(d) for d in config.get("depths", (3, 4, 6, 3)))}


def from_transformers_resnet(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """``transformers`` ResNet weights in torchvision's names, without the classifier.

    Reads ``ResNetModel`` weights, and the ``resnet.`` part of ``ResNetForImageClassification``'s.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Keys like ``embedder.embedder.convolution.weight``, ``encoder.stages.0.layers.0.shortcut.convolution.weight``,
        ``encoder.stages.0.layers.0.layer.1.normalization.running_mean``.
    source : str
        The weights file, for error messages.

    Returns
    -------
    dict of str to torch.Tensor
        Keys like ``conv1.weight``, ``layer1.0.downsample.0.weight``, ``layer1.0.bn2.running_mean``.

    Raises
    ------
    WeightsIntegrityError
        If a key is of neither layout (nothing is silently dropped but the classifier).

    Examples
    --------
    >>> sorted(from_transformers_resnet({"embedder.embedder.convolution.weight": torch.zeros(1)}, "w"))
    ['conv1.weight']
    """
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in _strip(state_dict, "resnet.").items():
        if key.startswith("classifier."):
            continue
        for pattern, rename in _TRANSFORMERS_KEYS:
            if m := pattern.fullmatch(key):
                out[rename(m)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise WeightsIntegrityError(
            f"{source}: {len(unknown)} keys of no transformers ResNet layer, e.g. {sorted(unknown)[:3]}; refused."
        )
    return out


def _timm_size(value: object) -> int | None:
    """A timm ``img_size`` (an int or a square ``[h, w]``) as one side, or ``None`` when it is not square."""
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and value[0] == value[1]:
        return int(value[0])
    return None


def check_timm_config(config: Mapping[str, Any], source: str) -> dict[str, object]:
    """Check that a timm ``config.json`` (``architecture``, ``model_args``) names a network ours build exactly.

    Parameters
    ----------
    config : mapping
        timm's hub configuration (as ``timm.models.save_for_hf`` writes it).
    source : str
        The weights file, for error messages.

    Returns
    -------
    dict
        What it declares: ``arch`` (our name), and where given ``in_chans`` and ``img_size``.

    Raises
    ------
    WeightsIntegrityError
        On an architecture outside our tables (``resnet50d``, ``vit_large_...``), a pooling other than the class
        token for a ViT, or a model argument that builds another network.
    """
    name = str(config.get("architecture", ""))
    args = dict(config.get("model_args") or {})
    if m := re.fullmatch(r"(resnet(?:18|34|50))(?:\.\w+)?", name):
        declared: dict[str, object] = {"arch": m[1]}
        pools = ("avg", "", None)
    elif m := re.fullmatch(r"(vit_(?:small|base)_patch(?:8|16))_(\d+)(?:\.\w+)?", name):
        declared = {"arch": m[1], "img_size": int(m[2])}
        pools = ("token",)
    else:
        raise WeightsIntegrityError(
            f"{source}: its {CONFIG_NAME} names timm architecture {name!r}; supported: resnet18/34/50 and "
            "vit_small_patch16/8, vit_base_patch16/8 (any input size and tag)."
        )
    for pool in (config.get("global_pool", pools[0]), args.get("global_pool", pools[0])):
        if pool not in pools:
            raise WeightsIntegrityError(
                f"{source}: global_pool={pool!r} in its {CONFIG_NAME}; a {declared['arch']} embeds with "
                f"{pools[0]!r} pooling here (the DINO embedding is the class token)."
            )
    for key, value in args.items():
        expected = _TIMM_VIT_FIXED.get(key, ...) if pools == ("token",) else ...
        if key in _TIMM_FREE or expected is _FROM_WEIGHTS or (expected is not ... and expected == value):
            continue
        raise WeightsIntegrityError(
            f"{source}: model_args {key}={value!r} in its {CONFIG_NAME} builds another network than ours; refused."
        )
    if "in_chans" in args:
        declared["in_chans"] = int(args["in_chans"])
    if "img_size" in args and "img_size" in declared:
        size = _timm_size(args["img_size"])
        if size is None:
            raise WeightsIntegrityError(f"{source}: img_size={args['img_size']!r} is not square; refused.")
        declared["img_size"] = size
    heads = vit.vit_width(str(declared["arch"])) // vit.HEAD_WIDTH if pools == ("token",) else None
    if heads is not None and args.get("num_heads", heads) != heads:
        raise WeightsIntegrityError(f"{source}: num_heads={args['num_heads']} is not width // 64; refused.")
    return declared


def check_config(config: Mapping[str, Any], source: str) -> dict[str, object]:
    """What a hub ``config.json`` (``transformers`` or timm) declares, checked to be a network ours build exactly.

    Cheap (no weights read): :func:`xwvnet.load_encoder` calls it on a named hub checkpoint before anything else.

    Parameters
    ----------
    config : mapping
        The configuration.
    source : str
        Its file, for error messages.

    Returns
    -------
    dict
        ``arch`` (our name, where the configuration names one) and ``in_chans``, where given.

    Raises
    ------
    WeightsIntegrityError
        If it is of neither library, or declares a network ours do not build exactly.
    """
    if "architecture" in config:
        return check_timm_config(config, source)
    declared = check_transformers_config(config, source)
    arch = resnet.find_arch(bool(declared["bottleneck"]), tuple(declared["depths"]))  # type: ignore[arg-type]
    if arch is None:
        raise WeightsIntegrityError(f"{source}: depths {declared['depths']} are not a ResNet-18/34/50's; refused.")
    return {"arch": arch, "in_chans": declared["in_chans"]}


def to_our_names(state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any] | None,
                 source: str) -> tuple[dict[str, torch.Tensor], str, dict[str, object]]:
    """Weights of any supported layout in our names, the layout's name, and what its configuration declares.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        As read from the file (a uniform ``module.`` prefix already removed).
    config : mapping or None
        The ``config.json`` beside the file.
    source : str
        The weights file, for error messages.

    Returns
    -------
    tuple
        ``(state_dict, layout, declared)``: the weights in our names without a classifier; ``"torchvision-resnet"``,
        ``"timm-resnet"``, ``"transformers-resnet"`` or ``"timm-vit"``; and ``arch`` / ``in_chans`` / ``img_size``
        as the configuration states them (empty without one), to hold against the weights.

    Raises
    ------
    WeightsIntegrityError
        On a configuration of another network (see :func:`check_transformers_config`, :func:`check_timm_config`).
    """
    if _is_transformers_resnet(state_dict):
        declared = check_transformers_config(config, source)
        return from_transformers_resnet(state_dict, source), "transformers-resnet", declared
    family = "vit" if vit.is_vit_state_dict(state_dict) else "resnet"
    if config is not None and "architecture" in config:
        return drop_classifier(state_dict), f"timm-{family}", check_timm_config(config, source)
    if config is not None and config.get("model_type") is not None:
        raise WeightsIntegrityError(
            f"{source}: its {CONFIG_NAME} is a transformers configuration (model_type="
            f"{config.get('model_type')!r}) but the weights are not in transformers' ResNet layout; refused."
        )
    return drop_classifier(state_dict), "timm-vit" if family == "vit" else "torchvision-resnet", {}


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a weights file (or hub folder) of any supported layout into our names, checked against its config.

    Parameters
    ----------
    path : str or os.PathLike
        A torch or safetensors weights file, or a folder holding ``config.json`` and ``model.safetensors`` (or
        ``pytorch_model.bin``).

    Returns
    -------
    Checkpoint
        The weights in our names, the architecture, channels and learned input side they describe, the layout.

    Raises
    ------
    WeightsUnavailableError
        If the file or folder does not exist or holds no weights.
    MissingDependencyError
        For a safetensors file without the ``safetensors`` package.
    WeightsIntegrityError
        If the file is not readable, its layout is unknown, or its configuration declares another network than its
        weights or one our backbones do not build exactly.

    Examples
    --------
    >>> from xwvnet.models import resnet
    >>> torch.save(resnet.resnet18(in_chans=1).state_dict(), "/tmp/r18.pt")
    >>> ckpt = read_checkpoint("/tmp/r18.pt")
    >>> ckpt.arch, ckpt.in_chans, ckpt.layout
    ('resnet18', 1, 'torchvision-resnet')
    """
    weights = weights_in(path)
    source = str(weights)
    if weights.suffix == ".safetensors":
        raw = read_safetensors(weights)
        if raw and all(k.startswith("module.") for k in raw):
            raw = {k[len("module."):]: v for k, v in raw.items()}
    else:
        raw = read_state_dict(weights)  # weights_only=True; keeps transformers' names (its classifier is not fc)
    config = read_config(weights)
    state, layout, declared = to_our_names(raw, config, source)
    arch, in_chans, img_size = infer_layout(state)
    if layout == "transformers-resnet":
        depths = declared.pop("depths")
        bottleneck = declared.pop("bottleneck")
        if (resnet.LAYERS[arch][0] is resnet.Bottleneck) != bottleneck or resnet.LAYERS[arch][1] != depths:
            raise WeightsIntegrityError(
                f"{source}: its {CONFIG_NAME} declares {'bottleneck' if bottleneck else 'basic'} blocks {depths} but "
                f"the weights are a {arch}; refused."
            )
    found = {"arch": arch, "in_chans": in_chans, "img_size": img_size}
    for key, value in declared.items():
        if found[key] != value:
            raise WeightsIntegrityError(
                f"{source}: its {CONFIG_NAME} says {key}={value!r} but the weights hold {key}={found[key]!r}; refused."
            )
    return Checkpoint(state, arch, in_chans, img_size, layout, weights, config)

