"""``Encoder``: a backbone, the input transform its weights expect, and where the weights come from.

An Encoder is a *recipe*, cheap to send to dask workers: pickling it carries its spec (registry file or file path,
the weights hash, the architecture, the transform, the metadata), never the weights. Each process builds the model
from the spec once (:func:`xwvnet.inference.get_model` caches it). An Encoder made from a model that exists only in
memory (e.g. right after training) works in the process that holds it, but refuses to be pickled: save it with
:meth:`Encoder.save` first, which returns a file-backed Encoder that travels.

This module knows files and specs only; the named encoders live in :mod:`xwvnet.models.zoo`, which imports this
one (never the other way round).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import types
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pooch
import torch
from torch import nn

from .._files import local_path, replacing
from ..errors import InvalidArgumentError, InvalidTypeError, ModelMismatchError, ModelStateError, OutputExistsError
from . import backbones, hub, resnet, vit
from . import transforms as _transforms
from .weights import (
    WeightsIntegrityError,
    WeightsUnavailableError,
    check_finite,
    fetch_file,
    load_strict,
    read_sidecar,
    sidecar_path,
    verify_weights_file,
    write_sidecar,
)

Transform = str | Callable[..., torch.Tensor]
#: the ``format`` record of an encoder sidecar (``encoder.json``), as :func:`xwvnet.train` and :meth:`Encoder.save`
#: write it.
ENCODER_SIDECAR_FORMAT = "xwvnet-encoder"


class Encoder:
    """A backbone plus its input transform plus metadata; the model itself is built on first use.

    Use :func:`xwvnet.load_encoder` to make one by name or from a file, and :meth:`from_module` to wrap a network
    built in this process.

    Parameters
    ----------
    name : str
        Registry name, file name, or the name a sidecar or a caller gives.
    arch : str
        A key of :data:`xwvnet.models.backbones.ARCHITECTURES`: ``"resnet18"``, ``"resnet34"``, ``"resnet50"``,
        ``"vit_small_patch16"``, ``"vit_small_patch8"``, ``"vit_base_patch16"`` or ``"vit_base_patch8"``.
    transform : str or callable, default "wvnet"
        A name in :data:`xwvnet.models.transforms.TRANSFORMS` or a picklable callable with the same signature.
    url : str, optional
        Where the weights are published.
    hash : str, optional
        ``"git-sha1:..."``, ``"sha256:..."``, ``"random-init:seed=N"``; ``None`` for an in-memory model.
    path : str or os.PathLike, optional
        The local weights file.
    weights_file : str, optional
        The weights' key in :data:`xwvnet.datasets.REGISTRY`, fetched where ``path`` does not exist (a worker on
        another machine).
    seed : int, optional
        Seed of a random initialisation (no file).
    in_chans : int, default 3
        Input channels of the first convolution.
    module : torch.nn.Module, optional
        An already built backbone (in-memory when nothing else locates the weights).
    metadata : mapping, optional
        Provenance read from the weights' JSON sidecar; kept read-only as :attr:`metadata`.

    Raises
    ------
    ValueError
        On an unknown architecture or transform, or when nothing says where the weights are.

    Examples
    --------
    >>> enc = Encoder("random", "resnet18", seed=0)
    >>> enc.embedding_size, enc.attrs["encoder_arch"]
    (512, 'resnet18')
    """

    def __init__(
        self,
        name: str,
        arch: str,
        *,
        transform: Transform = "wvnet",
        url: str | None = None,
        hash: str | None = None,
        path: str | os.PathLike | None = None,
        weights_file: str | None = None,
        seed: int | None = None,
        in_chans: int = 3,
        module: nn.Module | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> None:
        backbones.check_arch(arch)
        _transforms.get_transform(transform)  # fail now on an unknown name
        if module is None and path is None and weights_file is None and seed is None:
            raise InvalidArgumentError(
                "an Encoder needs its weights: a file path, a registry file, a seed or a module."
            )
        self.name = name
        self.arch = arch
        self.transform = transform
        self.url = url
        self.hash = hash
        self.path = None if path is None else os.fspath(path)
        self.weights_file = weights_file
        self.seed = seed
        self.in_chans = int(in_chans)
        self.embedding_size = int(module.num_features) if module is not None else backbones.feature_width(arch)
        self._metadata = types.MappingProxyType(copy.deepcopy(dict(metadata or {})))
        self._module = module
        self._in_memory = module is not None and path is None and weights_file is None and seed is None
        self._lock = threading.Lock()

    # ---- identity -------------------------------------------------------------------------------------------
    @property
    def key(self) -> tuple[object, ...]:
        """What identifies the weights and their use; the per-process model cache is keyed on it."""
        source = ("memory", id(self)) if self._in_memory else (self.weights_file, self.path, self.seed)
        return (self.name, self.arch, self.in_chans, _transform_name(self.transform), self.hash, *source)

    @property
    def in_memory(self) -> bool:
        """True when the weights exist only in this process's memory (such an Encoder cannot be pickled)."""
        return self._in_memory

    @property
    def metadata(self) -> Mapping[str, object]:
        """Provenance from the weights' JSON sidecar (e.g. ``encoder.json`` of a training run), read-only."""
        return self._metadata

    def __dask_tokenize__(self) -> tuple[object, ...]:
        """dask's token: the spec, so equal specs share graph keys and the weights are never hashed."""
        return ("xwvnet.Encoder", *self.key)

    def __repr__(self) -> str:
        return (
            f"Encoder(name={self.name!r}, arch={self.arch!r}, embedding_size={self.embedding_size}, "
            f"transform={self.transform!r}, hash={self.hash!r})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Encoder) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def attrs(self) -> dict[str, str | int]:
        """Metadata to attach to embeddings (netCDF/Zarr-safe: strings and ints only).

        The encoder's name, architecture, weights hash, transform and embedding size; its URL when published; and
        ``encoder_provenance``, the sidecar metadata as compact JSON, when there is one.
        """
        out: dict[str, str | int] = {
            "encoder": self.name,
            "encoder_arch": self.arch,
            "encoder_weights_hash": self.hash or "unsaved in-memory model",
            "encoder_transform": _transform_name(self.transform),
            "embedding_size": self.embedding_size,
        }
        if self.url:
            out["encoder_url"] = self.url
        if self._metadata:
            out["encoder_provenance"] = json.dumps(
                dict(self._metadata), separators=(",", ":"), sort_keys=True, default=str
            )
        return out

    # ---- pickling: the spec, never the weights ------------------------------------------------------------
    def __getstate__(self) -> dict[str, object]:
        """The spec to pickle, without the model.

        Raises
        ------
        TypeError
            For an in-memory model with no file behind it.
        """
        if self._in_memory:
            raise ModelStateError(
                f"Encoder {self.name!r} holds an in-memory model with no file behind it, so it cannot be sent to "
                "other processes (weights are never pickled into task graphs). Save it first: "
                "encoder = encoder.save('weights.pt'), then use that encoder (or xwvnet.load_encoder(path))."
            )
        state = self.__dict__.copy()
        state["_module"] = None
        state["_metadata"] = dict(self._metadata)  # a mappingproxy does not pickle
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Restore a pickled spec (the model is rebuilt on first use)."""
        self.__dict__.update(state)
        self._metadata = types.MappingProxyType(dict(state.get("_metadata") or {}))
        self._lock = threading.Lock()

    # ---- the model ----------------------------------------------------------------------------------------
    @property
    def module(self) -> nn.Module:
        """The backbone on the CPU in eval mode, built from the spec on first use (verified weights)."""
        with self._lock:
            if self._module is None:
                self._module = self.build()
            return self._module

    def build(self) -> nn.Module:
        """A fresh backbone from the spec: weights found or fetched, verified, loaded strictly.

        Returns
        -------
        torch.nn.Module
            The backbone on the CPU in eval mode.

        Raises
        ------
        WeightsUnavailableError
            If the weights file is not here and cannot be fetched.
        WeightsIntegrityError
            If the file here differs from the one the spec recorded, or does not fit the architecture.
        """
        if self._in_memory:
            return copy.deepcopy(self._module).eval()
        if self.seed is not None and self.path is None:
            with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
                torch.manual_seed(self.seed)
                return backbones.build_backbone(self.arch, self.in_chans).eval()
        if self.path is not None and Path(self.path).is_file():
            path = Path(self.path)
        elif self.weights_file is not None:
            path = fetch_file(self.weights_file)
        else:
            raise WeightsUnavailableError(f"weights file {self.path} of encoder {self.name!r} does not exist here.")
        verify_weights_file(path, self.hash)
        return _module_of(hub.read_checkpoint(path), self.arch, self.in_chans)

    def preprocess(
        self,
        images: np.ndarray,
        valid_lines: np.ndarray,
        valid_samples: np.ndarray,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Model input for a batch of uint8 quicklooks, through this encoder's transform.

        Parameters
        ----------
        images : numpy.ndarray
            uint8 ``(n, line, sample)``, padded.
        valid_lines, valid_samples : numpy.ndarray
            The valid extent of each imagette.
        device : torch.device or str, optional
            Where the float work happens.

        Returns
        -------
        torch.Tensor
            float32 ``(n, in_chans, side, side)``: 224 for the WV-Net and ImageNet transforms, 256 for OceanSAR-1's.
        """
        fn = _transforms.get_transform(self.transform)
        return fn(images, valid_lines, valid_samples, device=device, channels=self.in_chans)

    def replace(self, *, transform: Transform) -> Encoder:
        """The same weights with another input transform (a new Encoder; this one is unchanged).

        Parameters
        ----------
        transform : str or callable
            A name in :data:`xwvnet.models.transforms.TRANSFORMS` or a callable.

        Returns
        -------
        Encoder

        Raises
        ------
        ValueError
            On an unknown transform name.
        """
        _transforms.get_transform(transform)
        out = object.__new__(Encoder)  # not copy.copy: that goes through __getstate__, which drops the module
        out.__dict__.update(self.__dict__)
        out.transform = transform
        out._lock = threading.Lock()
        return out

    def save(self, path: str | os.PathLike) -> Encoder:
        """Write the weights as a torchvision-format state dict with a JSON sidecar; return the file-backed Encoder.

        The sidecar (``path`` with ``.json``, as :func:`xwvnet.train` writes ``encoder.json``) records the name,
        architecture, input channels, transform and the SHA-256 of the file, which :func:`xwvnet.load_encoder`
        checks on every load; this encoder's own metadata is kept under it. Both files are written atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write.

        Returns
        -------
        Encoder
            Read back from ``path`` with this encoder's transform (picklable).

        Raises
        ------
        FileExistsError
            If the sidecar's path holds a JSON file that is not an encoder sidecar (it is never overwritten).
        WeightsIntegrityError
            If the weights hold NaN or infinite values.

        Examples
        --------
        >>> enc = Encoder("random", "resnet18", seed=0).save("/tmp/r18.pt")
        >>> enc.hash == "sha256:" + enc.metadata["weights_sha256"]
        True
        """
        path = local_path(path, "an encoder")
        meta_path = sidecar_path(path)
        if meta_path == path:
            raise InvalidArgumentError(
                f"cannot save weights as {path}: the name is that of its JSON sidecar; use a .pt name."
            )
        existing = read_sidecar(path) if meta_path.is_file() else None
        if meta_path.is_file() and (existing or {}).get("format") != ENCODER_SIDECAR_FORMAT:
            raise OutputExistsError(
                f"{meta_path} exists and is not an xwvnet encoder sidecar; saving {path.name} would overwrite it. "
                "Save the weights under another name, or move that file."
            )
        state = self.module.state_dict()
        check_finite(state, f"encoder {self.name!r}")
        with replacing(path) as tmp:  # the weights renamed into place after their sidecar, as before
            torch.save(state, tmp)
            digest = pooch.file_hash(os.fspath(tmp), alg="sha256")  # verify_weights_file memoises by size, mtime
            meta = {
                **dict(self._metadata),
                "format": ENCODER_SIDECAR_FORMAT,
                "version": 1,
                "name": self.name,
                "weights": path.name,
                "arch": self.arch,
                "in_chans": self.in_chans,
                "embedding_size": self.embedding_size,
                "weights_sha256": digest,
            }
            if isinstance(self.transform, str):
                meta["transform"] = self.transform
            else:
                meta.pop("transform", None)
            write_sidecar(path, meta)
        return Encoder.from_file(path, transform=self.transform)

    @classmethod
    def from_file(cls, path: str | os.PathLike, *, transform: Transform | None = None) -> Encoder:
        """An Encoder from a local weights file (or hub folder) and the JSON sidecar beside it, if any.

        The file is read now (``weights_only=True``, or safetensors), its layout and architecture inferred from the
        keys and its ``config.json`` if any (see :func:`xwvnet.models.hub.read_checkpoint`), and loaded strictly;
        its SHA-256 becomes the Encoder's hash. A sidecar ``path.with_suffix(".json")`` (``encoder.json`` next to
        ``encoder.pt``, as :func:`xwvnet.train` writes it) gives the ``name``, ``transform`` and expected ``arch``
        / ``in_chans``; the whole of it is kept as :attr:`metadata` and reaches the embeddings' attrs. A hub
        checkpoint without a sidecar keeps its layout and ``config.json`` as metadata instead.

        Parameters
        ----------
        path : str or os.PathLike
            A state dict in torchvision's (ResNet) or timm's (ViT) names, a safetensors file, or a folder as
            ``transformers``' ``save_pretrained`` or timm's ``save_for_hf`` write it.
        transform : str or callable, optional
            Overrides the sidecar's transform (default: the sidecar's, else ``"wvnet"``).

        Returns
        -------
        Encoder
            File-backed, with its model already built.

        Raises
        ------
        WeightsUnavailableError
            If the file does not exist.
        WeightsIntegrityError
            If it is not a fitting ResNet state dict, or the sidecar disagrees with it (architecture, input
            channels, or the SHA-256 of the weights it describes).
        """
        given = Path(path).expanduser()
        path = hub.weights_in(given)
        meta = read_sidecar(path) or {}
        digest = verify_weights_file(path, None)
        where = f"{sidecar_path(path)} (the metadata of {path.name})"
        described = meta.get("weights_sha256")
        if described is not None and f"sha256:{str(described).lower()}" != digest:
            raise WeightsIntegrityError(
                f"{path} does not match the SHA-256 its sidecar records: {where} describes other weights (expected "
                f"sha256:{described}, found {digest}). The file is damaged or was replaced: restore it from its "
                "source (a training run rewrites it with train(..., resume=True)), or delete the sidecar only if "
                "you trust the file."
            )
        checkpoint = hub.read_checkpoint(path)
        arch, in_chans = checkpoint.arch, checkpoint.in_chans
        if not meta and checkpoint.config is not None:
            meta = {"checkpoint_layout": checkpoint.layout, "checkpoint_config": checkpoint.config}
        for field, found in (("arch", arch), ("in_chans", in_chans)):
            if meta.get(field) is not None and meta[field] != found:
                raise WeightsIntegrityError(
                    f"{where} says {field}={meta[field]!r} but {path} holds {field}={found!r}; fix or delete it."
                )
        if transform is None:
            transform = meta.get("transform", "wvnet")
            if not isinstance(transform, str):
                raise WeightsIntegrityError(f"{where} has transform={transform!r}; expected a transform name.")
        model = _module_of(checkpoint, arch, in_chans)
        encoder = cls(
            str(meta.get("name") or given.name), arch, transform=transform, hash=digest, path=path.resolve(),
            in_chans=in_chans, metadata=meta,
        )
        encoder._module = model  # already built and verified: first use in this process needs no reload
        return encoder

    @classmethod
    def from_module(cls, module: nn.Module, *, name: str = "in-memory", transform: Transform = "wvnet") -> Encoder:
        """Wrap a backbone built in this process (e.g. just trained); usable here, :meth:`save` it to share it.

        Parameters
        ----------
        module : torch.nn.Module
            An :class:`xwvnet.models.resnet.ResNet` without a classifier head, or an
            :class:`xwvnet.models.vit.VisionTransformer`.
        name : str, default "in-memory"
            The name embeddings will carry.
        transform : str or callable, default "wvnet"
            The input transform.

        Returns
        -------
        Encoder
            In-memory: it refuses to be pickled until saved.

        Raises
        ------
        TypeError
            If ``module`` is neither an xwvnet ResNet nor an xwvnet ViT.
        ValueError
            If it has a classifier head, or a layout outside its family's table.
        """
        if not isinstance(module, (resnet.ResNet, vit.VisionTransformer)):
            raise InvalidTypeError(
                f"expected an xwvnet.models.resnet.ResNet or xwvnet.models.vit.VisionTransformer backbone, got "
                f"{type(module).__name__}."
            )
        if getattr(module, "num_classes", None) is not None:
            raise ModelMismatchError(
                "the backbone has a classifier head; build it with num_classes=None for embeddings."
            )
        return cls(name, backbones.backbone_arch(module), transform=transform, in_chans=module.in_chans, module=module)


def _module_of(checkpoint: hub.Checkpoint, arch: str, in_chans: int) -> nn.Module:
    """The backbone of a checkpoint, built for its geometry and loaded strictly, if it is the one expected."""
    if (checkpoint.arch, checkpoint.in_chans) != (arch, in_chans):
        raise WeightsIntegrityError(
            f"{checkpoint.path} holds a {checkpoint.arch} with {checkpoint.in_chans} input channels, but the encoder "
            f"expects a {arch} with {in_chans}; the file was replaced, or is not the published one."
        )
    with torch.random.fork_rng(devices=[]):  # building draws initial weights: the caller's random stream stays
        module = backbones.build_backbone(arch, in_chans, checkpoint.img_size, init_weights=False)
    return load_strict(module, checkpoint.state_dict, str(checkpoint.path)).eval()


def _transform_name(transform: Transform) -> str:
    if isinstance(transform, str):
        return transform
    return f"{getattr(transform, '__module__', '?')}.{getattr(transform, '__qualname__', repr(transform))}"
