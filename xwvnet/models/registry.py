"""Named encoders, their pinned weights, download through pooch, and integrity checks before any use.

``load_encoder("wvnet-resnet50")`` gives the published WV-Net weights (hawaii-ai/WV-Net at a pinned commit, checked
by their git blob id), ``"imagenet-resnet50"`` the paper's ImageNet baseline (torchvision's file, checked by the
SHA-256 prefix its name carries), ``"random-resnet50"`` a seeded random initialisation (the paper's other
baseline), and a path a local torchvision-format state dict. Files are looked up, in order, in the cache
(``cache_dir`` argument, else ``XWVNET_CACHE``, else pooch's OS cache for "xwvnet"), in the ``XWVNET_DATA_DIR``
mirror, and for ImageNet in torch's hub cache; only then downloaded. A file that fails its check, or a state dict
that does not fit the architecture, is refused; nothing half-loaded is returned.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pooch
import torch
from torch import nn

from . import resnet
from .encoder import ARCH_LAYERS, Encoder

WVNET_COMMIT = "7be8a992ff59c5e64a961631351f22497395f95e"


@dataclass(frozen=True)
class WeightsInfo:
    """Where a named encoder's weights come from and how they are checked."""

    name: str
    arch: str
    transform: str
    description: str
    url: str | None = None
    filename: str | None = None
    hash: str | None = None  # "git-sha1:<40 hex>" or "sha256-prefix:<hex>"
    mirror: tuple[str, ...] = ()  # paths relative to XWVNET_DATA_DIR
    seed: int | None = None

    @property
    def embedding_size(self) -> int:
        return 2048 if self.arch == "resnet50" else 512


ENCODERS: dict[str, WeightsInfo] = {
    "wvnet-resnet50": WeightsInfo(
        name="wvnet-resnet50",
        arch="resnet50",
        transform="wvnet",
        description="WV-Net (Glaser et al. 2024): SimCLR ResNet-50 on 1.1M Sentinel-1 WV quicklooks",
        url=f"https://github.com/hawaii-ai/WV-Net/raw/{WVNET_COMMIT}/model_weights/wvnet_resnet50_weights.pt",
        filename="wvnet_resnet50_weights.pt",
        hash="git-sha1:1f2bb01893b41c357e514256681ce682c4003d14",
        mirror=("wvnet_upstream/wvnet_resnet50_weights.pt", "weights/wvnet_resnet50_weights.pt"),
    ),
    "imagenet-resnet50": WeightsInfo(
        name="imagenet-resnet50",
        arch="resnet50",
        transform="imagenet",
        description="torchvision ResNet-50 IMAGENET1K_V1 (supervised ImageNet), the paper's transfer baseline",
        url="https://download.pytorch.org/models/resnet50-0676ba61.pth",
        filename="resnet50-0676ba61.pth",
        hash="sha256-prefix:0676ba61",
        mirror=("weights/resnet50-0676ba61.pth", "imagenet/resnet50-0676ba61.pth"),
    ),
    "random-resnet50": WeightsInfo(
        name="random-resnet50",
        arch="resnet50",
        transform="wvnet",
        description="ResNet-50 with torchvision's random initialisation (seed 0), the paper's untrained baseline",
        seed=0,
    ),
}


class WeightsUnavailableError(FileNotFoundError):
    """Weights are neither cached nor mirrored, and could not be downloaded (offline?)."""


class WeightsIntegrityError(ValueError):
    """A weights file does not match its published hash, or does not fit its architecture."""


# ---- locations ----------------------------------------------------------------------------------------------
def weights_cache(cache_dir: str | os.PathLike | None = None) -> Path:
    """The weights cache: ``cache_dir`` if given, else ``XWVNET_CACHE``, else pooch's OS cache for xwvnet."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    value = os.environ.get("XWVNET_CACHE", "").strip()
    return Path(value).expanduser() if value else Path(pooch.os_cache("xwvnet"))


def _candidates(info: WeightsInfo, cache: Path) -> list[Path]:
    out = [cache / info.filename]
    mirror = os.environ.get("XWVNET_DATA_DIR", "").strip()
    if mirror:
        out += [Path(mirror).expanduser() / rel for rel in info.mirror]
    if info.name.startswith("imagenet"):  # torchvision's own download location
        out.append(Path(torch.hub.get_dir()) / "checkpoints" / info.filename)
    return out


def find_weights(name: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The local file of named weights (cache, mirror, torch hub), or None; never downloads, never verifies."""
    info = _info(name)
    if info.filename is None:
        return None
    return next((p for p in _candidates(info, weights_cache(cache_dir)) if p.is_file()), None)


def fetch_weights(name: str, cache_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The verified local file of named weights, downloading it into the cache when absent.

    Raises :class:`WeightsUnavailableError` (naming the URL and where to place the file) when offline, and
    :class:`WeightsIntegrityError` when the file does not match its published hash (a download that fails is
    deleted; a file you placed is left for you to replace).
    """
    info = _info(name)
    if info.url is None:
        raise ValueError(f"encoder {name!r} has no weights file (it is {info.description}).")
    cache = weights_cache(cache_dir)
    found = find_weights(name, cache)
    if found is not None:
        verify(found, info.hash)
        return found
    target = cache / info.filename
    if not download:
        raise WeightsUnavailableError(_offline_message(info, target, "downloads are off"))
    try:
        path = Path(pooch.retrieve(info.url, known_hash=None, fname=info.filename, path=cache, progressbar=False))
    except Exception as err:  # network errors come from requests/urllib, with many types
        raise WeightsUnavailableError(_offline_message(info, target, f"{type(err).__name__}: {err}")) from err
    try:
        verify(path, info.hash)
    except WeightsIntegrityError:
        path.unlink(missing_ok=True)
        raise
    return path


def _offline_message(info: WeightsInfo, target: Path, why: str) -> str:
    return (
        f"weights for {info.name!r} are not available offline and could not be downloaded ({why}). Download "
        f"{info.url} and place it at {target} (or set XWVNET_CACHE to its folder, or put it in the "
        f"XWVNET_DATA_DIR mirror as {info.mirror[0]})."
    )


# ---- integrity ----------------------------------------------------------------------------------------------
def git_blob_sha1(path: str | os.PathLike) -> str:
    """Git's blob id of a file: SHA-1 of ``b"blob <size>\\0" + content`` (how GitHub pins a file)."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_VERIFIED: dict[tuple, str] = {}


def verify(path: str | os.PathLike, expected: str | None) -> str:
    """Check ``path`` against ``expected`` ("git-sha1:...", "sha256:...", "sha256-prefix:..."); return its hash.

    The returned string is what embeddings record: the git blob id for "git-sha1", else the full SHA-256.
    Results are remembered per (path, size, mtime) within the process, so workers check each file once.
    """
    path = Path(path)
    stat = path.stat()
    memo_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)
    if memo_key in _VERIFIED:
        return _VERIFIED[memo_key]
    kind, _, value = (expected or "sha256:").partition(":")
    if kind == "git-sha1":
        digest = git_blob_sha1(path)
        ok, recorded = digest == value.lower(), f"git-sha1:{digest}"
    elif kind in ("sha256", "sha256-prefix"):
        digest = file_sha256(path)
        ok = digest.startswith(value.lower()) if kind == "sha256-prefix" else (not value or digest == value.lower())
        recorded = f"sha256:{digest}"
    else:
        raise ValueError(f"unknown hash kind {kind!r} in {expected!r}; expected git-sha1, sha256 or sha256-prefix.")
    if not ok:
        raise WeightsIntegrityError(
            f"{path} fails its integrity check: expected {expected}, found {recorded}. The file is corrupt or not "
            "the published one; delete it and fetch it again (or place the published file there)."
        )
    _VERIFIED[memo_key] = recorded
    return recorded


# ---- state dicts ------------------------------------------------------------------------------------------
def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A torchvision-format state dict from a file (``weights_only=True``), minus any classifier ``fc.*``.

    Accepts a bare state dict, or one under a "state_dict" key, with an optional uniform "module." prefix (as
    DataParallel writes). The ``fc`` head is dropped: encoders return pooled features.
    """
    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except Exception as err:
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
    return {k: v for k, v in obj.items() if not k.startswith("fc.")}


def infer_arch(state_dict: dict[str, torch.Tensor]) -> tuple[str, int]:
    """``(arch, in_chans)`` of a torchvision-format ResNet state dict, from its key layout."""
    if "conv1.weight" not in state_dict:
        raise WeightsIntegrityError(
            "not a torchvision-format ResNet state dict: no 'conv1.weight' (found keys like "
            f"{sorted(state_dict)[:5]})."
        )
    blocks = []
    for i in range(1, 5):
        idx = {int(m.group(1)) for k in state_dict if (m := re.match(rf"layer{i}\.(\d+)\.", k))}
        blocks.append(max(idx) + 1 if idx else 0)
    kind = "bottleneck" if "layer1.0.conv3.weight" in state_dict else "basic"
    for arch, layout in ARCH_LAYERS.items():
        if layout == (kind, tuple(blocks)):
            return arch, int(state_dict["conv1.weight"].shape[1])
    raise WeightsIntegrityError(
        f"unsupported ResNet layout ({kind} blocks {tuple(blocks)}); expected one of {ARCH_LAYERS}."
    )


def load_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state_dict`` into ``model`` strictly, with an error that lists what does not fit."""
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unexpected:
        raise WeightsIntegrityError(
            f"{source} does not fit a {type(model).__name__}: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}. Expected a torchvision-format ResNet state dict."
        )
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:  # shape mismatches
        raise WeightsIntegrityError(f"{source} does not fit the architecture: {err}") from err
    return model


def build_backbone(encoder: Encoder) -> nn.Module:
    """The backbone an Encoder describes, on the CPU in eval mode (weights verified first, loaded strictly)."""
    make = resnet.ARCHITECTURES[encoder.arch]
    if encoder.seed is not None and encoder.path is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(encoder.seed)
            return make(in_chans=encoder.in_chans).eval()
    if encoder.registry_name is not None:  # the file found at load time, else this process's cache or mirror
        known = encoder.path is not None and Path(encoder.path).is_file()
        path = Path(encoder.path) if known else fetch_weights(encoder.registry_name)
        expected = ENCODERS[encoder.registry_name].hash
    else:
        path, expected = Path(encoder.path), encoder.hash
        if not path.is_file():
            raise WeightsUnavailableError(f"weights file {path} of encoder {encoder.name!r} does not exist here.")
    verify(path, expected)
    model = make(in_chans=encoder.in_chans)
    return load_strict(model, read_state_dict(path), str(path)).eval()


# ---- the entry point --------------------------------------------------------------------------------------
def _info(name: str) -> WeightsInfo:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; expected one of {sorted(ENCODERS)} or a state-dict path.")
    return ENCODERS[name]


def load_encoder(
    name_or_path: str | os.PathLike | Encoder,
    *,
    transform: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Encoder:
    """An :class:`Encoder` by registry name, from a local state-dict file, or the Encoder given.

    Named weights are fetched (or found) and verified now, so an offline machine fails here with a message
    naming the URL and where to put the file; the model itself is built on first use in each process. A path is
    read now (``weights_only=True``), its architecture inferred from the keys and loaded strictly; its SHA-256
    becomes the Encoder's hash. ``transform`` overrides the transform ("wvnet" is the default for files).
    """
    if isinstance(name_or_path, Encoder):
        if transform is None or transform == name_or_path.transform:
            return name_or_path
        return name_or_path.replace(transform=transform)
    if isinstance(name_or_path, str) and name_or_path in ENCODERS:
        info = ENCODERS[name_or_path]
        if info.url is None:  # random initialisation
            return Encoder(
                info.name, info.arch, transform=transform or info.transform, seed=info.seed,
                hash=f"random-init:seed={info.seed}",
            )
        path = fetch_weights(info.name, cache_dir)
        return Encoder(
            info.name, info.arch, transform=transform or info.transform, url=info.url,
            hash=verify(path, info.hash), registry_name=info.name, path=path,
        )
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ValueError(
            f"{name_or_path!r} is neither a known encoder ({sorted(ENCODERS)}) nor an existing state-dict file."
        )
    digest = verify(path, None)
    state_dict = read_state_dict(path)
    arch, in_chans = infer_arch(state_dict)
    model = load_strict(resnet.ARCHITECTURES[arch](in_chans=in_chans), state_dict, str(path)).eval()
    encoder = Encoder(path.name, arch, transform=transform or "wvnet", hash=digest, path=path.resolve(),
                      in_chans=in_chans)
    encoder._module = model  # already built and verified: first use in this process needs no reload
    return encoder
