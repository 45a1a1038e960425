"""Embedding Datasets made here: unit vectors around cluster centres (retrieval, indexes, compact embeddings) and
embeddings carrying a known linear signal and tags (probes, metrics, learning curves)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from xwvnet import schema as S


def mixture(n: int, d: int, clusters: int = 40, spread: float = 1.0, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres (a Gaussian mixture)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def as_dataset(x: np.ndarray, start: int = 0, hash_: str = "abc") -> xr.Dataset:
    ids = np.array([f"im{i:06d}" for i in range(start, start + len(x))], dtype=object)
    return xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, {"encoder": "toy", "encoder_weights_hash": hash_})},
                      coords={S.IMAGETTE: ids})


def recall(found: xr.Dataset, exact: xr.Dataset) -> float:
    a, b = found["neighbor"].values, exact["neighbor"].values
    return float(np.mean([len(set(r) & set(s)) / a.shape[1] for r, s in zip(a, b, strict=True)]))


def probe_embeddings(n: int = 300, d: int = 16, noise: float = 0.1, seed: int = 0) -> xr.Dataset:
    """Embeddings x ~ N(0, 1); hs = 2 + x @ w + noise; tags: two separable, one random, one never set."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.uniform(-1, 1, d) / np.sqrt(d)
    hs = 2.0 + x @ w + noise * rng.standard_normal(n)
    tags = np.stack([x[:, 0] > 0, x[:, 1] - x[:, 2] > 0.3, rng.random(n) < 0.5, np.zeros(n, bool)], axis=1)
    ids = np.array([f"im-{i:04d}" for i in range(n)], dtype=object)
    return xr.Dataset(
        {
            S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, {"encoder": "toy-linear"}),
            "hs": (S.IMAGETTE, hs, {"units": "m", "long_name": "significant wave height"}),
            S.LABELS: ((S.IMAGETTE, S.LABEL), tags.astype(np.int8)),
        },
        coords={S.IMAGETTE: ids, S.LABEL: np.array(["SEP", "SEP2", "RND", "NONE"], dtype=object)},
    )
