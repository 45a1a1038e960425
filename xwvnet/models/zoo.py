"""The named encoders: WV-Net's published weights, the paper's two baselines, and OceanSAR-1, by name.

``load_encoder("wvnet-resnet50")`` gives the published WV-Net weights (hawaii-ai/WV-Net at a pinned commit, checked
by their git blob id), ``"imagenet-resnet50"`` the paper's ImageNet baseline (torchvision's file, checked by the
SHA-256 prefix its name carries), ``"random-resnet50"`` a seeded random initialisation (the paper's other
baseline), ``"oceansar1-resnet50"`` OceanSAR-1's DINO ResNet-50 (galeio-research/OceanSAR-1 on the Hugging Face
hub: its ``config.json`` and ``model.safetensors``, read in transformers' layout), and a path a local weights file
or hub folder (see :func:`xwvnet.models.hub.read_checkpoint`; with its JSON sidecar, if any). Where the files come
from (URLs, hashes, cache, mirror) is the one registry of :mod:`xwvnet.datasets`; this module only names them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import datasets
from ..errors import InvalidArgumentError, XWVNetWarning, warn
from ..schema import did_you_mean
from . import backbones, hub
from .encoder import Encoder, Transform
from .weights import WeightsIntegrityError, WeightsUnavailableError, fetch_file, find_file, verify_weights_file

__all__ = ["ENCODERS", "UnpinnedWeightsWarning", "WeightsInfo", "fetch_weights", "find_weights", "load_encoder"]


class UnpinnedWeightsWarning(XWVNetWarning):
    """Named weights were used as found: this xwvnet records no hash of them yet (their own hash is recorded)."""


@dataclass(frozen=True)
class WeightsInfo:
    """A named encoder: its architecture, its transform, and the registered file of its weights.

    Parameters
    ----------
    name : str
        The name users pass to :func:`load_encoder`.
    arch : str
        A key of :data:`xwvnet.models.backbones.ARCHITECTURES`.
    transform : str
        The input transform the weights were trained with.
    description : str
        What the weights are, in a sentence.
    file : str, optional
        The weights' key in :data:`xwvnet.datasets.REGISTRY` (``None`` for a random initialisation).
    seed : int, optional
        The seed of a random initialisation.
    in_chans : int, default 3
        Input channels of the weights.
    page : str, optional
        The page that publishes the weights, where no URL of the file is pinned.
    """

    name: str
    arch: str
    transform: str
    description: str
    file: str | None = None
    seed: int | None = None
    in_chans: int = 3
    page: str | None = None

    @property
    def url(self) -> str | None:
        """The pinned URL of the weights, from the registry, else the page that publishes them (``None`` without
        a file)."""
        return None if self.file is None else datasets.URLS.get(self.file) or self.page

    @property
    def hash(self) -> str | None:
        """The published hash of the weights, from the registry (``None`` without a file)."""
        return None if self.file is None else datasets.REGISTRY[self.file]

    @property
    def embedding_size(self) -> int:
        """Width of the embeddings, from the architecture's layer table."""
        return backbones.feature_width(self.arch)


ENCODERS: dict[str, WeightsInfo] = {
    "wvnet-resnet50": WeightsInfo(
        name="wvnet-resnet50",
        arch="resnet50",
        transform="wvnet",
        description="WV-Net (Glaser et al. 2024): SimCLR ResNet-50 on 1.1M Sentinel-1 WV quicklooks",
        file=datasets.WVNET_WEIGHTS,
    ),
    "imagenet-resnet50": WeightsInfo(
        name="imagenet-resnet50",
        arch="resnet50",
        transform="imagenet",
        description="torchvision ResNet-50 IMAGENET1K_V1 (supervised ImageNet), the paper's transfer baseline",
        file=datasets.IMAGENET_RESNET50,
    ),
    "random-resnet50": WeightsInfo(
        name="random-resnet50",
        arch="resnet50",
        transform="wvnet",
        description="ResNet-50 with torchvision's random initialisation (seed 0), the paper's untrained baseline",
        seed=0,
    ),
    "oceansar1-resnet50": WeightsInfo(
        name="oceansar1-resnet50",
        arch="resnet50",
        transform="oceansar",
        description="OceanSAR-1 (Kerdreux et al. 2025): DINO ResNet-50 on ~12M Sentinel-1 WV imagettes at 50 m, "
                    "single-channel VV",
        file=datasets.OCEANSAR1_WEIGHTS,
        in_chans=1,
        page=f"https://huggingface.co/{datasets.OCEANSAR1_REPO}",
    ),
}


def _info(name: str) -> WeightsInfo:
    if name not in ENCODERS:
        raise InvalidArgumentError(f"unknown encoder {name!r}; expected one of {sorted(ENCODERS)} or a state-dict path."
                                   + did_you_mean(name, ENCODERS))
    return ENCODERS[name]


def find_weights(name: str, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The local file of a named encoder's weights (mirror, cache, torch's hub folder), or ``None``.

    Never downloads and never verifies: a quick "are the weights here?" (the demo asks it before choosing).

    Parameters
    ----------
    name : str
        A key of :data:`ENCODERS`.
    cache_dir : str or os.PathLike, optional
        The cache (default ``XWVNET_CACHE``, else pooch's per-user cache).

    Returns
    -------
    pathlib.Path or None
        ``None`` also for encoders without a file (random initialisation).

    Raises
    ------
    ValueError
        If ``name`` is not a named encoder.
    """
    info = _info(name)
    return None if info.file is None else find_file(info.file, cache_dir)


def fetch_weights(name: str, cache_dir: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The verified local file of a named encoder's weights, downloading it into the cache when absent.

    Parameters
    ----------
    name : str
        A key of :data:`ENCODERS` that has a file.
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
    ValueError
        If the name is unknown or has no weights file.
    WeightsUnavailableError
        If offline and the file is nowhere here (the message names the URL and where to place the file).
    WeightsIntegrityError
        If the file does not match its published hash.
    """
    info = _info(name)
    if info.file is None:
        raise InvalidArgumentError(f"encoder {name!r} has no weights file (it is {info.description}).")
    try:
        return fetch_file(info.file, cache_dir, download=download)
    except WeightsUnavailableError as err:
        raise WeightsUnavailableError(f"{name}: {err}") from err


def load_encoder(
    name_or_path: str | os.PathLike | Encoder,
    *,
    transform: Transform | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Encoder:
    """An :class:`~xwvnet.Encoder` by name, from a local state-dict file, or the Encoder given.

    Named weights are fetched (or found) and verified now, so an offline machine fails here with one line naming
    the URL (or page) and where to put the files; the model itself is built on first use in each process. A file is
    read now (``weights_only=True``, or safetensors), its layout and architecture inferred from the keys and its
    ``config.json`` if any, and loaded strictly, and the JSON sidecar beside it (``encoder.json`` next to
    ``encoder.pt``) read back: its name, transform and provenance survive.

    Parameters
    ----------
    name_or_path : str, os.PathLike or Encoder
        A key of :data:`ENCODERS` (``"wvnet-resnet50"``, ``"imagenet-resnet50"``, ``"random-resnet50"``,
        ``"oceansar1-resnet50"``); a path to a weights file (torchvision or timm ResNet, timm/DINO ViT, transformers
        ResNet; torch or safetensors) or to a hub folder (``config.json`` beside ``model.safetensors``); or an
        Encoder (returned as is, or with another transform).
    transform : str or callable, optional
        Overrides the transform (default: the named encoder's, the sidecar's, else ``"wvnet"``).
    cache_dir : str or os.PathLike, optional
        Where named weights are cached (default ``XWVNET_CACHE``, else pooch's per-user cache).

    Returns
    -------
    Encoder

    Raises
    ------
    ValueError
        If the argument is neither a named encoder nor an existing file, or the transform is unknown.
    WeightsUnavailableError
        If named weights are not here and cannot be downloaded.
    WeightsIntegrityError
        If a file fails its hash check, does not fit its architecture, or disagrees with its sidecar or its
        ``config.json``.

    Warns
    -----
    UnpinnedWeightsWarning
        When named weights are used whose hash this xwvnet does not pin yet (OceanSAR-1's, for now).

    Examples
    --------
    >>> enc = load_encoder("random-resnet50")
    >>> enc.embedding_size, enc.hash
    (2048, 'random-init:seed=0')
    >>> load_encoder("wvnet-resnet50").attrs["encoder_weights_hash"]  # doctest: +SKIP
    'git-sha1:1f2bb01893b41c357e514256681ce682c4003d14'
    """
    if isinstance(name_or_path, Encoder):
        if transform is None or transform == name_or_path.transform:
            return name_or_path
        return name_or_path.replace(transform=transform)
    if isinstance(name_or_path, str) and name_or_path in ENCODERS:
        info = ENCODERS[name_or_path]
        if info.file is None:  # random initialisation
            return Encoder(
                info.name, info.arch, transform=transform or info.transform, seed=info.seed,
                hash=f"random-init:seed={info.seed}",
            )
        path = fetch_weights(info.name, cache_dir)
        if datasets.COMPANIONS.get(info.file):
            _check_hub_config(info, path)
        digest = verify_weights_file(path, info.hash)
        if not datasets.is_pinned(info.file):
            warn(UnpinnedWeightsWarning(
                f"{info.name}: this xwvnet pins no revision or SHA-256 of its files yet, so the files in {path.parent} "
                f"are used as found (checked for their layout only); their {digest} is recorded as "
                "encoder_weights_hash in the embeddings' attributes."
            ))
        return Encoder(
            info.name, info.arch, transform=transform or info.transform, url=info.url,
            hash=digest, weights_file=info.file, path=path, in_chans=info.in_chans,
        )
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise InvalidArgumentError(
            f"{name_or_path!r} is neither a known encoder ({sorted(ENCODERS)}) nor an existing weights file or hub "
            "folder." + did_you_mean(name_or_path, ENCODERS)
            + " (A random encoder of another architecture is xwvnet.Encoder(name, 'resnet18', seed=0).)"
        )
    return Encoder.from_file(path, transform=transform)


def _check_hub_config(info: WeightsInfo, weights: Path) -> None:
    """Refuse a named hub checkpoint whose ``config.json`` declares another network than the zoo names (cheap: the
    weights are read on first use)."""
    config = hub.read_config(weights)
    source = str(weights.parent / hub.CONFIG_NAME)
    if config is None:
        raise WeightsIntegrityError(f"{info.name}: {source} is missing beside {weights.name}; fetch it again.")
    declared = hub.check_config(config, source)
    expected = {"arch": info.arch, "in_chans": info.in_chans}
    for key, value in declared.items():
        if key in expected and value != expected[key]:
            raise WeightsIntegrityError(
                f"{info.name}: {source} declares {key}={value!r}, but {info.name} is a {info.arch} with "
                f"{info.in_chans} input channels; the files are not the published ones."
            )
