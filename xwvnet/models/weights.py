"""Weights files: read state dicts safely (``weights_only=True``), verify them, infer their architecture, load strictly.

Nothing here knows the named encoders (that is :mod:`xwvnet.models.zoo`); downloads and hashes belong to the one
registry in :mod:`xwvnet.datasets`. A file that fails its check, or a state dict that does not fit the
architecture, is refused with an error that says what was expected and what was found: nothing half-loaded is
ever returned.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .. import datasets
from .._files import replacing
from ..datasets import DataIntegrityError, DataUnavailableError, check_hash
from ..errors import ModelError
from . import backbones, resnet, vit

__all__ = [
    "WeightsIntegrityError",
    "check_finite",
    "WeightsUnavailableError",
    "build_for",
    "drop_classifier",
    "fetch_file",
    "find_file",
    "infer_arch",
    "infer_layout",
    "load_strict",
    "nonfinite_tensors",
    "read_sidecar",
    "read_state_dict",
    "sidecar_path",
    "verify_weights_file",
    "write_sidecar",
]


class WeightsUnavailableError(DataUnavailableError, FileNotFoundError):
    """Weights are neither cached nor mirrored, and could not be downloaded (offline?)."""


class WeightsIntegrityError(ModelError, ValueError):
    """A weights file does not match its published hash, or does not fit its architecture."""


def verify_weights_file(path: str | os.PathLike, expected: str | None) -> str:
    """Check a weights file against its expected hash and return the hash that embeddings record.

    Parameters
    ----------
    path : str or os.PathLike
        The weights file.
    expected : str or None
        ``"git-sha1:<hex>"``, ``"sha256:<hex>"``, ``"sha256-prefix:<hex>"``, or ``None`` to only hash it.

    Returns
    -------
    str
        ``"git-sha1:<hex>"`` for a git pin, else the full ``"sha256:<hex>"``.

    Raises
    ------
    WeightsIntegrityError
        If the file does not match (the message names the file and both hashes).
    ValueError
        If ``expected`` is of an unknown kind.

    Examples
    --------
    >>> from pathlib import Path
    >>> _ = Path("/tmp/w.bin").write_bytes(b"weights")
    >>> verify_weights_file("/tmp/w.bin", "sha256-prefix:9a1290")[:13]
    'sha256:9a1290'
    """
    try:
        return check_hash(path, expected)
    except DataIntegrityError as err:
        raise WeightsIntegrityError(str(err)) from err


def _search() -> tuple[Path, ...]:
    # torch's own download folder: weights fetched by torchvision elsewhere are found (and checked) there
    return (Path(torch.hub.get_dir()) / "checkpoints",)


def find_file(key: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The local copy of registered weights (mirror, cache, torch's hub folder), or ``None``; never downloads.

    Parameters
    ----------
    key : str
        The weights' key in :data:`xwvnet.datasets.REGISTRY`.
    cache_dir : str or os.PathLike, optional
        The cache (default ``XWVNET_CACHE``, else pooch's per-user cache).

    Returns
    -------
    pathlib.Path or None
        The file, not yet verified.
    """
    return datasets.local_copy(key, cache=cache_dir, search=_search())


def fetch_file(key: str, cache_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The verified local file of registered weights, downloading it into the cache when absent.

    Parameters
    ----------
    key : str
        The weights' key in :data:`xwvnet.datasets.REGISTRY`.
    cache_dir : str or os.PathLike, optional
        The cache (default ``XWVNET_CACHE``, else pooch's per-user cache).
    download : bool, default True
        Whether to download weights that are not here.

    Returns
    -------
    pathlib.Path
        The file, checked against its published hash.

    Raises
    ------
    WeightsUnavailableError
        If offline (or ``download=False``) and the file is nowhere here; the message names the URL and where to
        place the file (for weights that come with companion files, such as a hub checkpoint's ``config.json``,
        one line names every missing file and the folder they go in).
    WeightsIntegrityError
        If the file does not match its published hash (a failed download is deleted; a file you placed is left
        for you to replace).
    """
    try:
        if datasets.COMPANIONS.get(key):  # files that only work together (a hub config and its weights)
            return datasets.fetch_all((*datasets.COMPANIONS[key], key), cache=cache_dir, download=download)[-1]
        return datasets.fetch(key, cache=cache_dir, search=_search(), download=download)
    except DataIntegrityError as err:
        raise WeightsIntegrityError(str(err)) from err
    except DataUnavailableError as err:
        raise WeightsUnavailableError(str(err)) from err


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a torch file, read with ``weights_only=True``, minus any classifier ``fc.*`` or ``head.*``.

    Accepts a bare state dict, or one under a ``"state_dict"`` key, with an optional uniform ``"module."`` prefix
    (as DataParallel writes). The classifier (torchvision's ``fc``, timm's ViT ``head``) is dropped because encoders
    return pooled features. Other layouts and safetensors files are read by
    :func:`xwvnet.models.hub.read_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``torch.save(model.state_dict(), path)``.

    Returns
    -------
    dict of str to torch.Tensor
        The backbone's tensors, on the CPU.

    Raises
    ------
    WeightsIntegrityError
        If the file is not a loadable state dict of tensors.
    """
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a bad or unsafe file
        raise WeightsIntegrityError(
            f"{path} is not a loadable torch state dict ({type(err).__name__}: {err}); expected a file written by "
            "torch.save(model.state_dict(), path)."
        ) from err
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsIntegrityError(f"{path} does not hold a state dict of tensors (found {type(obj).__name__}).")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return drop_classifier(obj)


def drop_classifier(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict without its classifier: torchvision's ResNet ``fc.*``, or timm's ViT ``head.*``.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Weights in torchvision's or timm's names.

    Returns
    -------
    dict of str to torch.Tensor
        The backbone's tensors.

    Examples
    --------
    >>> sorted(drop_classifier({"fc.weight": torch.ones(1), "conv1.weight": torch.ones(1)}))
    ['conv1.weight']
    """
    vit_keys = vit.is_vit_state_dict(state_dict)
    return {k: v for k, v in state_dict.items() if not k.startswith("head." if vit_keys else "fc.")}


def infer_arch(state_dict: dict[str, torch.Tensor]) -> tuple[str, int]:
    """The architecture and input channels of a state dict in our names, from its keys and shapes.

    Our names are torchvision's for ResNets and timm's (DINO's) for ViTs; other published layouts are mapped to them
    by :func:`xwvnet.models.hub.read_checkpoint`.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        As :func:`read_state_dict` returns it.

    Returns
    -------
    tuple of (str, int)
        ``(arch, in_chans)``, ``arch`` a key of :data:`xwvnet.models.backbones.ARCHITECTURES`.

    Raises
    ------
    WeightsIntegrityError
        If the keys are neither a ResNet's nor a ViT's, or the layout is not in its family's table.

    Examples
    --------
    >>> infer_arch(resnet.resnet18(in_chans=1).state_dict())
    ('resnet18', 1)
    """
    arch, in_chans, _ = infer_layout(state_dict)
    return arch, in_chans


def infer_layout(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int, int | None]:
    """The architecture, input channels and (for a ViT) learned input side of a state dict in our names.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Weights in torchvision's ResNet names or timm's ViT names.

    Returns
    -------
    tuple of (str, int, int or None)
        ``(arch, in_chans, img_size)``; ``img_size`` is ``None`` for a ResNet (it takes any size).

    Raises
    ------
    WeightsIntegrityError
        If the keys are neither a ResNet's nor a ViT's, or the layout is not in its family's table.

    Examples
    --------
    >>> infer_layout(vit.vit_small_patch16(img_size=256).state_dict())
    ('vit_small_patch16', 3, 256)
    """
    if vit.is_vit_state_dict(state_dict):
        try:
            return vit.vit_layout(state_dict)
        except ValueError as err:
            raise WeightsIntegrityError(str(err)) from err
    if "conv1.weight" not in state_dict:
        raise WeightsIntegrityError(
            "neither a torchvision-format ResNet state dict (no 'conv1.weight') nor a timm-format ViT (no "
            f"'patch_embed.proj.weight' and 'cls_token'): found keys like {sorted(state_dict)[:5]}."
        )
    blocks = []
    for i in range(1, 5):
        idx = {int(m.group(1)) for k in state_dict if (m := re.match(rf"layer{i}\.(\d+)\.", k))}
        blocks.append(max(idx) + 1 if idx else 0)
    bottleneck = "layer1.0.conv3.weight" in state_dict
    arch = resnet.find_arch(bottleneck, tuple(blocks))
    if arch is None:
        known = {name: (block.__name__, layers) for name, (block, layers) in resnet.LAYERS.items()}
        raise WeightsIntegrityError(
            f"unsupported ResNet layout ({'bottleneck' if bottleneck else 'basic'} blocks {tuple(blocks)}); "
            f"expected one of {known}."
        )
    return arch, int(state_dict["conv1.weight"].shape[1]), None


def build_for(state_dict: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """The backbone a state dict in our names describes, built and loaded strictly, in eval mode.

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        Weights in torchvision's ResNet names or timm's ViT names (no classifier).
    source : str
        Where the weights come from, for error messages.

    Returns
    -------
    torch.nn.Module
        A ResNet or ViT with these weights.

    Raises
    ------
    WeightsIntegrityError
        If the layout is unknown, a key is missing or unexpected, a shape differs, or a value is not finite.
    """
    arch, in_chans, img_size = infer_layout(state_dict)
    with torch.random.fork_rng(devices=[]):  # building draws initial weights: the caller's random stream stays
        module = backbones.build_backbone(arch, in_chans, img_size, init_weights=False)
    return load_strict(module, dict(state_dict), source).eval()


def nonfinite_tensors(tree: object, prefix: str = "") -> dict[str, int]:
    """The floating-point tensors holding NaN or infinite values, with how many each holds.

    Walks nested dicts, lists and tuples (a state dict, an optimizer state), so one call checks a whole checkpoint.

    Parameters
    ----------
    tree : object
        A tensor, or a nested structure of dicts, lists and tuples with tensors among its leaves (other leaves are
        ignored).
    prefix : str, default ""
        Prepended to the dotted names of the tensors found.

    Returns
    -------
    dict of str to int
        ``{dotted name: number of non-finite values}``; empty when every value is finite.

    Examples
    --------
    >>> nonfinite_tensors({"a": torch.zeros(2), "b": {"c": torch.tensor([1.0, float("nan")])}})
    {'b.c': 1}
    """
    if isinstance(tree, torch.Tensor):
        if not (tree.is_floating_point() or tree.is_complex()) or tree.numel() == 0:
            return {}
        bad = int((~torch.isfinite(tree)).sum())
        return {prefix or "<tensor>": bad} if bad else {}
    if isinstance(tree, float):
        return {} if math.isfinite(tree) else {prefix or "<value>": 1}
    items = tree.items() if isinstance(tree, Mapping) else enumerate(tree) if isinstance(tree, (list, tuple)) else ()
    found: dict[str, int] = {}
    for key, value in items:
        found.update(nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def check_finite(state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Refuse weights that hold NaN or infinite values (they would give NaN embeddings without a word).

    Parameters
    ----------
    state_dict : mapping of str to torch.Tensor
        The weights.
    source : str
        Where the weights come from, for the error message.

    Returns
    -------
    None

    Raises
    ------
    WeightsIntegrityError
        Naming the file, how many tensors are affected and the first few of them.

    Examples
    --------
    >>> check_finite({"w": torch.ones(3)}, "w.pt")
    """
    bad = nonfinite_tensors(dict(state_dict))
    if bad:
        shown = ", ".join(f"{k} ({n} values)" for k, n in list(bad.items())[:5])
        raise WeightsIntegrityError(
            f"{source} holds non-finite weights (NaN or infinite) in {len(bad)} of {len(state_dict)} tensors: {shown}"
            f"{', ...' if len(bad) > 5 else ''}. The file is damaged or training diverged: use another weights "
            "file, or an earlier checkpoint of the run."
        )


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load a state dict into a model strictly, with an error that lists what does not fit.

    Weights holding NaN or infinite values are refused too (see :func:`check_finite`), before anything is loaded.

    Parameters
    ----------
    model : torch.nn.Module
        The freshly built network.
    state_dict : dict of str to torch.Tensor
        Its weights.
    source : str
        Where the weights come from, for the error message.

    Returns
    -------
    torch.nn.Module
        ``model``, loaded.

    Raises
    ------
    WeightsIntegrityError
        If keys are missing or unexpected, a shape differs, or a value is NaN or infinite.
    """
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        names = "timm-format ViT" if isinstance(model, vit.VisionTransformer) else "torchvision-format ResNet"
        raise WeightsIntegrityError(
            f"{source} does not fit a {type(model).__name__}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}. Expected a {names} state dict."
        )
    check_finite(state_dict, source)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:  # shape mismatches
        raise WeightsIntegrityError(f"{source} does not fit the architecture: {err}") from err
    return model


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar that describes a weights file: its name with ``.json`` (``encoder.pt`` -> ``encoder.json``).

    Parameters
    ----------
    path : str or os.PathLike
        The weights file.

    Returns
    -------
    pathlib.Path
        The sidecar's path (it may not exist).
    """
    return Path(path).with_suffix(".json")


def read_sidecar(path: str | os.PathLike) -> dict[str, object] | None:
    """The metadata written beside a weights file (as :func:`xwvnet.train` writes ``encoder.json``), if any.

    Parameters
    ----------
    path : str or os.PathLike
        The weights file (not the sidecar).

    Returns
    -------
    dict or None
        The parsed JSON object, or ``None`` when there is no sidecar.

    Raises
    ------
    WeightsIntegrityError
        If the sidecar is not a JSON object.
    """
    meta_path = sidecar_path(path)
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsIntegrityError(
            f"{meta_path} (the metadata of {Path(path).name}) is not readable JSON ({err}); fix or delete it."
        ) from err
    if not isinstance(meta, dict):
        raise WeightsIntegrityError(f"{meta_path} must hold a JSON object, found {type(meta).__name__}.")
    return meta


def write_sidecar(path: str | os.PathLike, meta: Mapping[str, object]) -> Path:
    """Write the JSON sidecar of a weights or checkpoint file atomically (a temporary file renamed over it).

    Parameters
    ----------
    path : str or os.PathLike
        The weights file (not the sidecar): ``encoder.pt`` gets ``encoder.json``, see :func:`sidecar_path`.
    meta : mapping
        JSON-serialisable metadata; values JSON cannot hold are written as strings.

    Returns
    -------
    pathlib.Path
        The sidecar written.

    Examples
    --------
    >>> write_sidecar("/tmp/w.bin", {"weights_sha256": "9a12..."}).name
    'w.json'
    """
    target = sidecar_path(path)
    with replacing(target) as tmp:
        tmp.write_text(json.dumps(dict(meta), indent=2, default=str))
    return target
