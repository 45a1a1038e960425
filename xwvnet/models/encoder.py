"""``Encoder``: a backbone, the input transform its weights expect, and where the weights come from.

An Encoder is a *recipe*, cheap to send to dask workers: pickling it carries its spec (registry name or file path,
the weights hash, the architecture, the transform), never the weights. Each process builds the model from the spec
once (:func:`xwvnet.inference.get_model` caches it). An Encoder made from a model that exists only in memory (e.g.
right after training) works in the process that holds it, but refuses to be pickled: save it with
:meth:`Encoder.save` first, which returns a file-backed Encoder that travels.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import preprocess
from . import resnet


class Encoder:
    """A backbone plus its transform plus metadata; build the model with :attr:`module`.

    Attributes: ``name`` (registry name, file name or a caller's label), ``arch`` ("resnet18/34/50"),
    ``transform`` (a name in :data:`xwvnet.preprocess.TRANSFORMS` or a picklable callable), ``embedding_size``,
    ``url`` (where the weights are published, or None), ``hash`` (``"git-sha1:..."``, ``"sha256:..."``,
    ``"random-init:seed=N"`` or None for an in-memory model), ``path`` (local weights file or None), ``seed``
    (random initialisation) and ``in_chans``. Use :func:`xwvnet.load_encoder` to make one.
    """

    def __init__(
        self,
        name: str,
        arch: str,
        *,
        transform: str | Callable[..., torch.Tensor] = "wvnet",
        url: str | None = None,
        hash: str | None = None,
        path: str | os.PathLike | None = None,
        registry_name: str | None = None,
        seed: int | None = None,
        in_chans: int = 3,
        module: nn.Module | None = None,
    ) -> None:
        if arch not in resnet.ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(resnet.ARCHITECTURES)}.")
        preprocess.get_transform(transform)  # fail now on an unknown name
        if module is None and path is None and registry_name is None and seed is None:
            raise ValueError("an Encoder needs its weights: a file path, a registry name, a seed or a module.")
        self.name = name
        self.arch = arch
        self.transform = transform
        self.url = url
        self.hash = hash
        self.path = None if path is None else os.fspath(path)
        self.registry_name = registry_name
        self.seed = seed
        self.in_chans = int(in_chans)
        self.embedding_size = int(module.num_features) if module is not None else _num_features(arch)
        self._module = module
        self._in_memory = module is not None and path is None and registry_name is None and seed is None
        self._lock = threading.Lock()

    # ---- identity -------------------------------------------------------------------------------------------
    @property
    def key(self) -> tuple:
        """What identifies the weights and their use; the per-process model cache is keyed on it."""
        transform = self.transform if isinstance(self.transform, str) else _qualname(self.transform)
        source = ("memory", id(self)) if self._in_memory else (self.registry_name, self.path, self.seed)
        return (self.name, self.arch, self.in_chans, transform, self.hash, *source)

    @property
    def in_memory(self) -> bool:
        """True when the weights exist only in this process's memory (such an Encoder cannot be pickled)."""
        return self._in_memory

    def __dask_tokenize__(self) -> tuple:
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
    def attrs(self) -> dict[str, Any]:
        """Metadata to attach to embeddings (netCDF/Zarr-safe: strings and ints only)."""
        out = {
            "encoder": self.name,
            "encoder_arch": self.arch,
            "encoder_weights_hash": self.hash or "unsaved in-memory model",
            "encoder_transform": self.transform if isinstance(self.transform, str) else _qualname(self.transform),
            "embedding_size": self.embedding_size,
        }
        if self.url:
            out["encoder_url"] = self.url
        return out

    # ---- pickling: the spec, never the weights ------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        if self._in_memory:
            raise TypeError(
                f"Encoder {self.name!r} holds an in-memory model with no file behind it, so it cannot be sent to "
                "other processes (weights are never pickled into task graphs). Save it first: "
                "encoder = encoder.save('weights.pt'), then use that encoder (or xwvnet.load_encoder(path))."
            )
        state = self.__dict__.copy()
        state["_module"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
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
        """A fresh backbone from the spec: weights fetched/verified by the registry, loaded strictly."""
        if self._in_memory:
            return copy.deepcopy(self._module).eval()
        from .registry import build_backbone  # registry imports this module

        return build_backbone(self)

    def preprocess(
        self, images: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray, device: Any = None
    ) -> torch.Tensor:
        """Model input ``(n, in_chans, 224, 224)`` for uint8 quicklooks ``(n, line, sample)``."""
        fn = preprocess.get_transform(self.transform)
        return fn(images, valid_lines, valid_samples, device=device, channels=self.in_chans)

    def replace(self, *, transform: str | Callable[..., torch.Tensor]) -> Encoder:
        """The same weights with another input transform (a new Encoder; this one is unchanged)."""
        preprocess.get_transform(transform)
        out = object.__new__(Encoder)  # not copy.copy: that goes through __getstate__, which drops the module
        out.__dict__.update(self.__dict__)
        out.transform = transform
        out._lock = threading.Lock()
        return out

    def save(self, path: str | os.PathLike) -> Encoder:
        """Write the weights as a torchvision-format state dict and return the file-backed Encoder (picklable)."""
        from .registry import load_encoder

        torch.save(self.module.state_dict(), os.fspath(path))
        return load_encoder(path, transform=self.transform)

    @classmethod
    def from_module(
        cls, module: nn.Module, *, name: str = "in-memory", transform: str | Callable[..., torch.Tensor] = "wvnet"
    ) -> Encoder:
        """Wrap a backbone built in this process (e.g. just trained); usable here, :meth:`save` it to share it."""
        if not isinstance(module, resnet.ResNet):
            raise TypeError(f"expected an xwvnet.models.resnet.ResNet backbone, got {type(module).__name__}.")
        if module.num_classes is not None:
            raise ValueError("the backbone has a classifier head; build it with num_classes=None for embeddings.")
        arch = _arch_of(module)
        return cls(name, arch, transform=transform, in_chans=module.in_chans, module=module)


def _num_features(arch: str) -> int:
    return 2048 if arch == "resnet50" else 512


def _arch_of(module: resnet.ResNet) -> str:
    blocks = tuple(len(getattr(module, f"layer{i}")) for i in range(1, 5))
    bottleneck = isinstance(module.layer1[0], resnet.Bottleneck)
    for arch, (kind, layers) in ARCH_LAYERS.items():
        if layers == blocks and (kind == "bottleneck") == bottleneck:
            return arch
    raise ValueError(f"unsupported ResNet layout: blocks {blocks}, bottleneck={bottleneck}.")


def _qualname(fn: Callable) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


ARCH_LAYERS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
