"""Blockwise inference: imagettes -> ``embedding(imagette, feature)``, lazy over dask chunks.

:func:`embed_block` turns one numpy block of imagettes into embeddings; :func:`embed` maps it over a Dataset with
``xr.apply_ufunc`` (lazy when the input is dask-backed). The model is built once per process and per (encoder,
device, memory format) by :func:`get_model`, never pickled: tasks carry the Encoder's spec only.

Threads: torch's intra-op threads multiply with the tasks dask runs at once. Before each batch,
:func:`embed_block` sets torch's threads (per calling thread) to ``cores // embedding tasks running now in this
process`` (at least 1; in a distributed worker, at least its ``nthreads`` count as running). So one chunk alone gets
every core, and dask's threaded scheduler running k chunks gives each ``cores // k``: dask threads x torch threads
never exceed the cores. ``XWVNET_TORCH_THREADS`` forces the number (set it when several processes share a host;
:mod:`xwvnet.distributed` does).
"""

from __future__ import annotations

import copy
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch
import xarray as xr
from torch import nn

from . import _runtime, radiometry
from . import schema as S
from ._runtime import BATCH_SIZE, LOCAL_THREADS, RunContext, check_count, check_precision, run_context, torch_device
from .errors import InvalidDataError, XWVNetWarning, warn
from .models.encoder import Encoder
from .models.weights import check_finite
from .models.zoo import load_encoder

__all__ = ["EmptyImagetteWarning", "embed", "embed_block", "embed_resolved", "embedding_attrs", "get_model",
           "torch_threads"]


class EmptyImagetteWarning(XWVNetWarning):
    """Some imagettes have no valid pixels; their embeddings are NaN."""


# ---- threads ------------------------------------------------------------------------------------------------
_ACTIVE = 0  # embed_block calls running in this process right now
_ACTIVE_LOCK = threading.Lock()
_FULL_FLOAT32: list = [0, None]  # float32 CUDA blocks running, and cuDNN's TF32 setting before the first of them


@contextmanager
def _full_float32(dev: torch.device, precision: str) -> Iterator[None]:
    """``"float32"`` on a GPU computed in float32: cuDNN's convolutions otherwise use TF32 on Ampere and later (about
    1e-3 relative), PyTorch's default. The setting is process-wide: it is switched off while any float32 CUDA block
    runs here and put back as it was after the last one."""
    if dev.type != "cuda" or precision != "float32":
        yield
        return
    with _ACTIVE_LOCK:
        if _FULL_FLOAT32[0] == 0:
            _FULL_FLOAT32[1] = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
        _FULL_FLOAT32[0] += 1
    try:
        yield
    finally:
        with _ACTIVE_LOCK:
            _FULL_FLOAT32[0] -= 1
            if _FULL_FLOAT32[0] == 0:
                torch.backends.cudnn.allow_tf32 = _FULL_FLOAT32[1]


def _worker_threads() -> int:
    """The distributed worker's task slots (it may run that many embedding tasks at once), else 1."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def torch_threads(concurrent: int = 1) -> int:
    """Intra-op threads for one of ``concurrent`` embedding tasks, so that tasks x threads never exceed the cores.

    Parameters
    ----------
    concurrent : int, default 1
        Embedding tasks running at once in this process (in a distributed worker, at least its ``nthreads``).

    Returns
    -------
    int
        ``XWVNET_TORCH_THREADS`` when set (:mod:`xwvnet.distributed` sets it when several worker processes share a
        host), else ``cores // concurrent``, at least 1.

    Examples
    --------
    >>> torch_threads(10**6)
    1
    """
    forced = _runtime.forced_threads()
    if forced is not None:
        return forced
    return _runtime.threads_per_task(_runtime.cores(), max(1, int(concurrent), _worker_threads()))


def _set_threads() -> None:
    # torch's OpenMP thread count is per calling thread, so every task thread sets its own
    n = torch_threads(_ACTIVE)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


# ---- per-process model cache --------------------------------------------------------------------------------
_MODELS: dict[tuple, nn.Module] = {}
_MODELS_LOCK = threading.Lock()


def get_model(
    encoder: str | os.PathLike | Encoder,
    device: str | torch.device = "cpu",
    precision: str = "float32",
    channels_last: bool = False,
) -> nn.Module:
    """The encoder's backbone on ``device`` in eval mode, built once per process and reused across chunks.

    Tasks carry the Encoder's spec only; this cache is why a worker builds each model once, not once per chunk.

    Parameters
    ----------
    encoder : str, os.PathLike or Encoder
        Anything :func:`xwvnet.load_encoder` takes.
    device : str or torch.device, default "cpu"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, of this machine (resolved by
        :func:`xwvnet._runtime.run_context`).
    precision : str, default "float32"
        One of :data:`xwvnet._runtime.PRECISIONS`; checked here but applied by autocast at call time, so one model
        serves every precision.
    channels_last : bool, default False
        Whether the model's weights use the channels-last memory format.

    Returns
    -------
    torch.nn.Module
        Keyed by the encoder's spec (name, weights hash, path/seed, transform), the device and the memory format.

    Raises
    ------
    ValueError
        On an unknown precision, or CUDA asked for on a machine without a GPU.
    xwvnet.models.weights.WeightsIntegrityError
        If the weights hold NaN or infinite values.
    """
    check_precision(precision)
    here = run_context(LOCAL_THREADS, device)  # the model lives in this process
    return _model(load_encoder(encoder), torch_device(here.device), bool(channels_last))


def _model(encoder: Encoder, device: torch.device, channels_last: bool) -> nn.Module:
    """:func:`get_model` on resolved values: the cache itself."""
    key = (encoder.key, str(device), bool(channels_last))
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            # never move the Encoder's own module: a copy (or a fresh build) goes to the device
            source = encoder._module
            model = copy.deepcopy(source) if source is not None else encoder.build()
            check_finite(model.state_dict(), f"encoder {encoder.name!r}")  # an in-memory model too: no NaN output
            model = model.to(device).eval().requires_grad_(False)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            _MODELS[key] = model
            if encoder.in_memory:  # its key holds id(encoder): forget the model with the encoder
                weakref.finalize(encoder, _MODELS.pop, key, None)
        return model


_WARNED_BF16 = False


def _warn_slow_bf16() -> None:
    global _WARNED_BF16
    if not _WARNED_BF16 and not _runtime.cpu_has_bf16():
        _WARNED_BF16 = True
        warn("precision='bfloat16' on a CPU without native bfloat16 (AVX512-BF16/AMX) is emulated and much slower "
             "than float32 here; use precision='float32' on this machine.", RuntimeWarning)


#: the default memory format of model inputs: channels-last speeds up ResNet convolutions on CPUs with oneDNN and
#: on GPUs with tensor cores
CHANNELS_LAST = True


def _channels_last(channels_last: bool | None) -> bool:
    return CHANNELS_LAST if channels_last is None else bool(channels_last)


# ---- the block function -------------------------------------------------------------------------------------
def embed_block(
    images: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    encoder: str | os.PathLike | Encoder,
    batch_size: int = BATCH_SIZE,
    device: str | torch.device = "auto",
    precision: str = "float32",
    var: str = S.QUICKLOOK,
    channels_last: bool | None = None,
) -> np.ndarray:
    """Embeddings of one numpy block of imagettes: the function :func:`embed` maps over dask chunks.

    Results do not depend on how imagettes are split into blocks or batches.

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, line, sample)``: uint8 quicklooks, or float sigma0 (``var="sigma0"`` or a float dtype), which is
        converted with :func:`xwvnet.radiometry.sigma0_to_quicklook` first.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette (``n`` values each).
    encoder : str, os.PathLike or Encoder
        Anything :func:`xwvnet.load_encoder` takes.
    batch_size : int, default :data:`xwvnet._runtime.BATCH_SIZE` (64)
        Imagettes per forward pass.
    device : str or torch.device, default "auto"
        ``"auto"`` (this machine's GPU when it has one), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    precision : str, default "float32"
        ``"float32"``, ``"bfloat16"`` or ``"float16"`` (autocast).
    var : str, default "quicklook"
        The image variable the block comes from (``"sigma0"`` is stretched to quicklooks).
    channels_last : bool, optional
        Channels-last memory format (default on: faster ResNet convolutions).

    Returns
    -------
    numpy.ndarray
        float32 ``(n, embedding_size)``; NaN rows for imagettes without valid pixels.

    Raises
    ------
    ValueError
        On a bad batch size, precision, device, dtype or shape.

    Warns
    -----
    EmptyImagetteWarning
        When some imagettes have no valid pixels.
    """
    here = run_context(LOCAL_THREADS, device)  # the block is embedded in this process
    return embed_resolved(images, valid_lines, valid_samples, encoder=load_encoder(encoder),
                          batch_size=check_count(batch_size, "batch_size"), device=here.device,
                          precision=check_precision(precision), var=var, channels_last=_channels_last(channels_last))


def embed_resolved(
    images: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    encoder: Encoder,
    batch_size: int,
    device: str,
    precision: str,
    var: str,
    channels_last: bool,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """:func:`embed_block` on values checked at the public edge: what each task runs, with no check repeated.

    Parameters
    ----------
    images, valid_lines, valid_samples : numpy.ndarray
        As for :func:`embed_block` (their shapes and dtype are the data's, checked here).
    encoder : Encoder
        A loaded encoder.
    batch_size : int
        A positive batch size.
    device : str
        The device of the call's :class:`~xwvnet._runtime.RunContext` (resolved at the edge); turned into a
        ``torch.device`` here, where the task runs.
    precision : str
        One of :data:`xwvnet._runtime.PRECISIONS`.
    var : str
        The image variable.
    channels_last : bool
        Channels-last memory format.
    on_batch : callable, optional
        Called with the number of imagettes of each batch once it is embedded (progress bars).

    Returns
    -------
    numpy.ndarray
        float32 ``(n, embedding_size)``; NaN rows for imagettes without valid pixels.

    Raises
    ------
    ValueError
        If the shapes of ``images`` and the extents disagree, or the images are neither uint8 nor float.
    """
    images = np.asarray(images)
    vl = np.asarray(valid_lines).reshape(-1).astype(np.int64)
    vs = np.asarray(valid_samples).reshape(-1).astype(np.int64)
    if images.ndim != 3 or vl.shape[0] != images.shape[0] or vs.shape[0] != images.shape[0]:
        raise InvalidDataError(
            f"expected images (n, line, sample) with n valid_lines and valid_samples; found shapes {images.shape}, "
            f"{vl.shape}, {vs.shape}."
        )
    empty = (vl <= 0) | (vs <= 0)
    if var == S.SIGMA0 or images.dtype.kind == "f":
        inside = (np.arange(images.shape[1])[None, :, None] < vl[:, None, None]) & (
            np.arange(images.shape[2])[None, None, :] < vs[:, None, None]
        )
        empty |= ~(np.isfinite(images) & inside).any(axis=(1, 2))
        images = radiometry.sigma0_to_quicklook(images, vl, vs)
    elif images.dtype != np.uint8:
        raise InvalidDataError(f"expected uint8 quicklooks or float sigma0, found dtype {images.dtype} for {var!r}.")
    out = np.full((images.shape[0], encoder.embedding_size), np.nan, dtype=np.float32)
    if empty.any():
        warn(f"{int(empty.sum())} of {images.shape[0]} imagettes have no valid pixels; their embeddings are NaN.",
             EmptyImagetteWarning)
        if on_batch is not None:
            on_batch(int(empty.sum()))
    todo = np.flatnonzero(~empty)
    if todo.size == 0:
        return out
    dev = torch_device(device)
    if dev.type == "cpu" and precision == "bfloat16":
        _warn_slow_bf16()
    cl = channels_last
    model = _model(encoder, dev, cl)
    autocast = precision != "float32"
    global _ACTIVE
    with _ACTIVE_LOCK:
        _ACTIVE += 1
    batches = [todo[start : start + batch_size] for start in range(0, todo.size, batch_size)]

    def prepare(idx: np.ndarray) -> torch.Tensor:  # in the prefetch thread, while the model runs the batch before
        x = encoder.preprocess(images[idx], vl[idx], vs[idx], device=dev)
        return x.contiguous(memory_format=torch.channels_last) if cl else x

    results = []
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="xwvnet-prefetch") as prefetch, torch.inference_mode(), \
                torch.autocast(dev.type, dtype=_runtime.torch_dtype(precision), enabled=autocast), \
                _full_float32(dev, precision):
            coming = prefetch.submit(prepare, batches[0])
            for i, idx in enumerate(batches):
                x = coming.result()
                if i + 1 < len(batches):
                    coming = prefetch.submit(prepare, batches[i + 1])
                if dev.type == "cpu":
                    _set_threads()
                results.append(model(x))  # on a GPU: queued; the host goes on to the next batch
                if on_batch is not None:
                    on_batch(int(idx.size))
            out[todo] = torch.cat(results).float().cpu().numpy()  # one synchronisation per block
    finally:
        with _ACTIVE_LOCK:
            _ACTIVE -= 1
    return out


# ---- the Dataset function -----------------------------------------------------------------------------------
def _image(ds: xr.Dataset, var: str | None) -> xr.DataArray:
    if not isinstance(ds, xr.Dataset):
        raise InvalidDataError(f"expected an xarray.Dataset of imagettes, got {type(ds).__name__}.")
    if S.IMAGETTE not in ds.dims:
        raise InvalidDataError(
            f"not an imagette Dataset: no {S.IMAGETTE!r} dimension (found dims {sorted(map(str, ds.dims))}). "
            "Open imagettes with xwvnet.open_quicklooks, xwvnet.open_store or xwvnet.synthetic.imagettes."
        )
    name = S.image_var(ds, var)
    image = ds[name]
    if set(image.dims) != {S.IMAGETTE, S.LINE, S.SAMPLE}:
        raise InvalidDataError(
            f"image variable {name!r} must have dims ({S.IMAGETTE}, {S.LINE}, {S.SAMPLE}), found {image.dims}."
        )
    S.require(ds, [S.VALID_LINES, S.VALID_SAMPLES], f"embedding {name!r} (the valid extent of each imagette)")
    return image.transpose(S.IMAGETTE, S.LINE, S.SAMPLE)


def embed(
    ds: xr.Dataset,
    encoder: str | os.PathLike | Encoder = "wvnet-resnet50",
    *,
    var: str | None = None,
    batch_size: int = BATCH_SIZE,
    device: str = "auto",
    precision: str = "float32",
    channels_last: bool | None = None,
    progress: bool = False,
) -> xr.Dataset:
    """The input Dataset plus ``embedding(imagette, feature)`` float32 from an encoder, lazily over dask chunks.

    Lazy when the image is dask-backed: nothing runs until ``.compute()``/``.to_zarr()``, one task per chunk of
    imagettes (image dims are merged into one chunk); each process builds the model once. Every imagette
    coordinate is kept and the input is not modified. Every argument is checked here, before any task exists.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes (dimension ``imagette``) with an image variable and ``valid_lines``/``valid_samples``.
    encoder : str, os.PathLike or Encoder, default "wvnet-resnet50"
        A named encoder (``"wvnet-resnet50"``, ``"imagenet-resnet50"``, ``"random-resnet50"``), a state-dict
        path (its ``.json`` sidecar is read too), or an :class:`~xwvnet.Encoder`.
    var : str, optional
        The image variable (default ``quicklook``, else ``sigma0``, which is stretched to 8 bits first).
    batch_size : int, default :data:`xwvnet._runtime.BATCH_SIZE` (64)
        Imagettes per forward pass (results do not depend on it).
    device : str, default "auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``, resolved here, once, where the tasks will run (see
        :func:`xwvnet._runtime.run_context`): a numpy-backed ``ds`` is embedded in this process, so ``"auto"`` is
        this machine's GPU when it has one; a dask-backed one where it is computed: under an active
        dask.distributed client on its workers (``"auto"``: the GPU workers when some declare a ``GPU``
        resource, else each worker's own GPU if it has one), else in this process.
    precision : str, default "float32"
        ``"float32"`` reproduces the published numbers; ``"bfloat16"`` / ``"float16"`` run under autocast (2-3x
        faster on CPUs with AVX-512 BF16 and on GPUs).
    channels_last : bool, optional
        Memory format of the model input (default on: faster ResNet convolutions).
    progress : bool, default False
        Show a tqdm bar of imagettes, moving per batch, while embedding a numpy-backed ``ds`` (which is embedded
        here, eagerly). A dask-backed ``ds`` is embedded when the result is computed, so this asks for nothing
        here and warns: wrap the compute in ``dask.diagnostics.ProgressBar()`` (or ``distributed.progress`` under
        a client), as for any dask computation.

    Returns
    -------
    xarray.Dataset
        ``ds`` plus ``embedding(imagette, feature)``, whose attrs name the encoder, its weights hash, transform,
        provenance, the precision and xwvnet's version (see :func:`embedding_attrs`).

    Raises
    ------
    ValueError
        If ``ds`` is not an imagette Dataset, or on a bad batch size, precision, or device (``"cuda"`` where no
        GPU would run the tasks).
    WeightsUnavailableError
        If named weights are not here and cannot be downloaded.

    Warns
    -----
    EmptyImagetteWarning
        Imagettes without valid pixels get NaN embeddings.

    Examples
    --------
    >>> import xwvnet
    >>> from xwvnet.synthetic import imagettes  # doctest: +SKIP
    >>> ds = imagettes(8, seed=0).chunk({"imagette": 4})  # doctest: +SKIP
    >>> out = xwvnet.embed(ds, "random-resnet50")  # doctest: +SKIP
    >>> out.embedding.shape  # doctest: +SKIP
    (8, 2048)
    """
    image = _image(ds, var)
    _check_spacing(ds, str(image.name))
    batch_size = check_count(batch_size, "batch_size")
    precision = check_precision(precision)
    # work on bare Variables: no coordinates to align or (for dask-backed object coords) to peek into
    pixels = image.variable
    lazy = pixels.chunks is not None
    # numpy: embedded here; dask: computed later, on the active client's workers if there is one, else here
    where = run_context(None if lazy else LOCAL_THREADS, device)
    enc = load_encoder(encoder)
    bar = None
    if lazy:
        pixels = pixels.copy(data=pixels.data.rechunk({1: -1, 2: -1}), deep=False)
        if progress:
            warn("embed(progress=True) on dask-backed imagettes: nothing is computed here, so no bar is shown; "
                 "wrap the compute in `with dask.diagnostics.ProgressBar():` (or distributed.progress under a "
                 "client).", XWVNetWarning)
    elif progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=int(pixels.shape[0]), desc="embed", unit="img")
    try:
        emb = _apply(pixels, ds, enc, batch_size, where, precision, str(image.name), _channels_last(channels_last),
                     None if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    emb.attrs = embedding_attrs(enc, str(image.name), precision)
    return ds.assign({S.EMBEDDING: emb.transpose(S.IMAGETTE, S.FEATURE)})


def _apply(pixels: xr.Variable, ds: xr.Dataset, enc: Encoder, batch_size: int, where: RunContext,
           precision: str, var: str, channels_last: bool, on_batch: Callable[[int], None] | None) -> xr.Variable:
    """:func:`embed_resolved` mapped over the imagettes (lazily when ``pixels`` is dask-backed)."""
    return xr.apply_ufunc(
        embed_resolved,
        pixels,
        ds[S.VALID_LINES].variable,
        ds[S.VALID_SAMPLES].variable,
        input_core_dims=[[S.LINE, S.SAMPLE], [], []],
        output_core_dims=[[S.FEATURE]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {S.FEATURE: enc.embedding_size}},
        kwargs={
            "encoder": enc,
            "batch_size": batch_size,
            "device": where.device,
            "precision": precision,
            "var": var,
            "channels_last": channels_last,
            "on_batch": on_batch,
        },
        keep_attrs=False,
    )


#: finest pixel spacing (m) WV-Net inputs can have: its quicklooks are ~41 x 45 m; full-resolution SLC is ~4 m
MIN_INPUT_SPACING = 20.0


def _check_spacing(ds: xr.Dataset, var: str) -> None:
    """Refuse full-resolution sigma0 (e.g. from :func:`xwvnet.open_safe`): WV-Net saw ~41 x 45 m quicklooks."""
    spacing = [float(np.nanmin(ds[name].values)) for name in ("line_spacing", "sample_spacing")
               if name in ds.variables and ds[name].size]
    if var == S.SIGMA0 and spacing and min(spacing) < MIN_INPUT_SPACING:
        raise InvalidDataError(
            f"{var} has {min(spacing):.1f} m pixels, but WV-Net embeds quicklooks of about 41 x 45 m pixels: "
            "average it first with xwvnet.safe_to_imagettes(paths) (or `xwvnet ingest` of the SAFE products), or "
            "xwvnet.radiometry.multilook."
        )


def embedding_attrs(encoder: Encoder, image_variable: str, precision: str) -> dict[str, str | int]:
    """The provenance attributes of an ``embedding`` variable, the same for :func:`embed` and whole-store runs.

    Parameters
    ----------
    encoder : Encoder
        The encoder that made the embeddings.
    image_variable : str
        The image variable it read (``quicklook`` or ``sigma0``).
    precision : str
        The inference precision (``float32``, ``bfloat16`` or ``float16``).

    Returns
    -------
    dict
        netCDF/Zarr-safe attributes: the encoder's name, architecture, weights hash and transform, the embedding
        size, ``precision``, ``image_variable``, ``long_name`` and ``xwvnet_version``.
    """
    from ._version import __version__

    return {
        **encoder.attrs,
        "long_name": f"{encoder.name} embedding of {image_variable}",
        "precision": precision,
        "image_variable": image_variable,
        "xwvnet_version": __version__,
    }
