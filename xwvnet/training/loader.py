"""A streaming, chunk-aware, shardable source of training batches from an imagette Dataset or Zarr store.

A Zarr store is read chunk by chunk, so a random permutation of 10 million imagettes would decompress a whole chunk
for every imagette. Instead, each epoch shuffles the *order of the chunks*, groups consecutive chunks into
*windows* of at least ``shuffle_size`` imagettes, and shuffles the imagettes inside each window. A window is the
unit of work: it is read once (whole chunks), cut into batches, and its leftover (fewer than one batch) is left out
of that epoch only (the next epoch groups chunks differently).

Windows are dealt round-robin to DDP ranks, then to the loader workers of each rank; so a worker reads only its own
windows, never the whole store. Torch's DataLoader returns the workers' items in turn, which puts the windows back in
their planned order: the batches are the same whatever ``num_workers`` is. The plan is a pure function of
``(seed, epoch)`` and the chunk layout, so a resumed run can start again at any step without reading anything.
The DataLoader draws its workers' base seed from a generator of its own (seeded from ``(seed, rank)``), never from
torch's global generator, so streaming leaves the training run's RNG state untouched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import dask
import numpy as np
import torch
import xarray as xr

from .. import schema as S
from ..errors import InvalidArgumentError, InvalidDataError, InvalidTypeError
from ..radiometry import sigma0_to_quicklook

__all__ = ["Batch", "ImagetteDataset", "WindowDataset", "chunk_starts", "epoch_windows", "rank_windows", "batches",
           "open_training_data"]

IN_MEMORY_CHUNK = 256  # pseudo-chunk length for numpy-backed Datasets


@dataclass
class Batch:
    """Imagettes of one training step on one rank: uint8 pixels with their valid extents, and their positions.

    Parameters
    ----------
    images : torch.Tensor
        ``(n, lines, samples)`` uint8 quicklook pixels (zero padded).
    valid_lines, valid_samples : torch.Tensor
        ``(n,)`` int32 extents of each imagette inside the padding.
    index : torch.Tensor
        ``(n,)`` int64 positions along ``imagette`` in the source.
    """

    images: torch.Tensor
    valid_lines: torch.Tensor
    valid_samples: torch.Tensor
    index: torch.Tensor

    def to(self, device: torch.device, non_blocking: bool = False) -> Batch:
        """The same batch on ``device``.

        Parameters
        ----------
        device : torch.device
            Where to move the tensors.
        non_blocking : bool, default False
            Asynchronous copy from pinned memory.

        Returns
        -------
        Batch
        """
        return Batch(*(t.to(device, non_blocking=non_blocking) for t in (self.images, self.valid_lines,
                                                                         self.valid_samples, self.index)))


def open_training_data(source: xr.Dataset | str | os.PathLike, var: str | None = None, *,
                       storage_options: dict | None = None) -> tuple[xr.Dataset, str]:
    """The imagette Dataset (lazy for a store) and the name of its image variable, checked for training.

    Parameters
    ----------
    source : xarray.Dataset or str or os.PathLike
        An imagette Dataset or the path of a Zarr imagette store (opened lazily).
    var : str, optional
        The image variable; default ``quicklook``, else ``sigma0``.
    storage_options : dict, optional
        Credentials and endpoint of a store in a bucket (as :func:`xwvnet.open_store` takes them).

    Returns
    -------
    tuple of (xarray.Dataset, str)
        The Dataset and the image variable's name.

    Raises
    ------
    TypeError
        If ``source`` is neither a Dataset nor a path.
    ValueError
        If the image variable does not have dims (imagette, line, sample), or ``valid_lines``/``valid_samples``
        are missing.
    """
    if isinstance(source, (str, os.PathLike)):
        from ..io.store import open_store

        source = open_store(source, storage_options=storage_options)  # a path or a URL
    if not isinstance(source, xr.Dataset):
        raise InvalidTypeError(
            f"expected an imagette Dataset or the path of a Zarr store, got {type(source).__name__}."
        )
    name = S.image_var(source, var)
    if source[name].dims != (S.IMAGETTE, S.LINE, S.SAMPLE):
        raise InvalidDataError(
            f"{name!r} must have dims ({S.IMAGETTE}, {S.LINE}, {S.SAMPLE}), found {source[name].dims}."
        )
    S.require(source, [S.VALID_LINES, S.VALID_SAMPLES], "training")
    return source, name


def chunk_starts(ds: xr.Dataset, var: str) -> np.ndarray:
    """Start of each chunk along ``imagette``, plus the end: the units the loader reads whole.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes.
    var : str
        The image variable whose chunks count (numpy-backed: pseudo-chunks of 256).

    Returns
    -------
    numpy.ndarray
        int64, ``len(chunks) + 1`` positions from 0 to the number of imagettes.

    Examples
    --------
    >>> chunk_starts(ds.chunk({"imagette": 7}), "quicklook")  # doctest: +SKIP
    array([ 0,  7, 14, 21, 28, 35, 42, 49, 50])
    """
    n = ds.sizes[S.IMAGETTE]
    chunks = ds[var].chunks
    sizes = chunks[0] if chunks is not None else [IN_MEMORY_CHUNK] * (n // IN_MEMORY_CHUNK) + (
        [n % IN_MEMORY_CHUNK] if n % IN_MEMORY_CHUNK else [])
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def epoch_windows(starts: np.ndarray, seed: int, epoch: int, min_size: int) -> list[np.ndarray]:
    """The shuffled windows of one epoch: each a shuffled array of whole chunks' imagette positions.

    Parameters
    ----------
    starts : numpy.ndarray
        Chunk starts (see :func:`chunk_starts`).
    seed : int
        Seed of the run.
    epoch : int
        Epoch number; each epoch orders chunks anew.
    min_size : int
        Least number of imagettes in a window (a short tail joins the window before it).

    Returns
    -------
    list of numpy.ndarray
        Together a permutation of all positions.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(starts) - 1)
    windows: list[list[int]] = [[]]
    filled = 0
    for c in order:
        if filled >= min_size:
            windows.append([])
            filled = 0
        windows[-1].append(c)
        filled += int(starts[c + 1] - starts[c])
    if filled < min_size and len(windows) > 1:  # a short tail joins the window before it
        windows[-2].extend(windows.pop())
    out = []
    for chunks in windows:
        idx = np.concatenate([np.arange(starts[c], starts[c + 1]) for c in chunks])
        out.append(idx[rng.permutation(len(idx))])
    return out


def rank_windows(
    starts: np.ndarray, *, seed: int, batch_size: int, min_size: int, rank: int = 0, world: int = 1,
    start_step: int = 0,
) -> Iterator[tuple[int, np.ndarray, int]]:
    """Endless ``(k, window, skip)`` for one rank: its k-th window and how many of its first batches to skip.

    Windows of successive epochs are numbered globally and dealt ``g % world == rank``; ``skip`` is non-zero only
    for the window in which ``start_step`` falls (a resumed run).

    Parameters
    ----------
    starts : numpy.ndarray
        Chunk starts (see :func:`chunk_starts`).
    seed : int
        Seed of the run.
    batch_size : int
        Imagettes per batch on this rank; a window's leftover is left out.
    min_size : int
        Least window size (see :func:`epoch_windows`).
    rank, world : int
        This rank and the number of ranks.
    start_step : int, default 0
        The first batch wanted (windows before it are skipped without reading).

    Yields
    ------
    tuple of (int, numpy.ndarray, int)
        The window's number on this rank, its positions (a whole number of batches), and batches to skip.

    Raises
    ------
    ValueError
        If the data hold fewer imagettes than one global batch.
    """
    n = int(starts[-1])
    if n < batch_size * world:
        raise InvalidArgumentError(
            f"training needs at least batch_size={batch_size * world} imagettes, the data has {n}; "
            "use a smaller batch_size or more imagettes."
        )
    g = k = step = 0
    epoch = 0
    while True:
        for window in epoch_windows(starts, seed, epoch, min_size):
            mine = g % world == rank
            g += 1
            if not mine:
                continue
            count = len(window) // batch_size
            if step + count > start_step:
                yield k, window[: count * batch_size], max(0, start_step - step)
            step += count
            k += 1
        epoch += 1


def read_imagettes(ds: xr.Dataset, var: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 quicklook pixels and valid extents of the imagettes at ``index``, read in sorted order.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes (lazy or in memory).
    var : str
        The image variable; a ``sigma0`` variable is stretched to a quicklook as embedding does.
    index : numpy.ndarray
        Positions along ``imagette``, in any order (whole chunks are read once each).

    Returns
    -------
    tuple of numpy.ndarray
        ``(images, valid_lines, valid_samples)`` in the order of ``index``.
    """
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    sub = ds[[var, S.VALID_LINES, S.VALID_SAMPLES]].isel({S.IMAGETTE: sorted_index})
    with dask.config.set(scheduler="synchronous"):  # safe inside forked loader workers
        sub = sub.compute()
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    images = np.asarray(sub[var].values)[back]
    lines, samples = np.asarray(sub[S.VALID_LINES].values)[back], np.asarray(sub[S.VALID_SAMPLES].values)[back]
    if images.dtype != np.uint8:  # a store with sigma0 only: the quicklook stretch that embedding uses too
        images = sigma0_to_quicklook(images, lines, samples)
    return images, lines, samples


class WindowDataset(torch.utils.data.IterableDataset):
    """The windows of one rank, read by the DataLoader workers in turn (worker w takes windows k % workers == w).

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes.
    var : str
        The image variable.
    seed, batch_size, min_size, rank, world, start_step
        As in :func:`rank_windows`.
    """

    def __init__(self, ds: xr.Dataset, var: str, *, seed: int, batch_size: int, min_size: int, rank: int,
                 world: int, start_step: int) -> None:
        self.ds, self.var = ds, var
        self.kw = dict(seed=seed, batch_size=batch_size, min_size=min_size, rank=rank, world=world,
                       start_step=start_step)
        self.starts = chunk_starts(ds, var)

    def __iter__(self) -> Iterator[dict]:
        """The windows of this DataLoader worker (of the whole rank without workers), read from the source.

        Yields
        ------
        dict
            ``images``, ``valid_lines``, ``valid_samples`` and ``index`` tensors of one window, and ``skip``: how
            many of its first batches to leave out (resuming).
        """
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        first = None
        for k, window, skip in rank_windows(self.starts, **self.kw):
            first = k if first is None else first
            if (k - first) % workers != worker:
                continue
            images, lines, samples = read_imagettes(self.ds, self.var, window)
            yield {"images": torch.from_numpy(images), "valid_lines": torch.from_numpy(lines.astype(np.int32)),
                   "valid_samples": torch.from_numpy(samples.astype(np.int32)),
                   "index": torch.from_numpy(window.astype(np.int64)), "skip": skip}


def batches(
    source: xr.Dataset | str | os.PathLike,
    *,
    batch_size: int,
    seed: int = 0,
    rank: int = 0,
    world: int = 1,
    num_workers: int = 0,
    start_step: int = 0,
    shuffle_size: int | None = None,
    var: str | None = None,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Endless batches of ``batch_size`` imagettes for one rank, from batch ``start_step`` of its stream on.

    Parameters
    ----------
    source : xarray.Dataset or str or os.PathLike
        Imagettes, or the path of a Zarr store.
    batch_size : int
        Imagettes per batch on this rank.
    seed : int, default 0
        Fixes the order (a pure function of seed, epoch and chunk layout).
    rank, world : int, default 0 and 1
        This DDP rank and the number of ranks.
    num_workers : int, default 0
        DataLoader worker processes; the batches are the same whatever their number.
    start_step : int, default 0
        First batch to yield (resuming a run).
    shuffle_size : int, optional
        Least number of imagettes shuffled together (default 4 batches); larger mixes better and holds more in
        memory (per worker, times the DataLoader's prefetch).
    var : str, optional
        The image variable (see :func:`open_training_data`).
    pin_memory : bool, default False
        Pin the batches' memory (faster copies to a GPU).

    Yields
    ------
    Batch

    Raises
    ------
    ValueError
        If the data hold fewer imagettes than one global batch (raised at the first batch).

    Examples
    --------
    >>> stream = batches(ds, batch_size=8, seed=0)  # doctest: +SKIP
    >>> next(stream).images.shape  # doctest: +SKIP
    torch.Size([8, 6, 5])
    """
    ds, var = open_training_data(source, var)
    min_size = max(shuffle_size or 4 * batch_size, batch_size)
    dataset = WindowDataset(ds, var, seed=seed, batch_size=batch_size, min_size=min_size, rank=rank, world=world,
                            start_step=start_step)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=False, prefetch_factor=2 if num_workers else None,
        # forked workers of a process that has read an icechunk store hang (its runtime's threads do not fork)
        multiprocessing_context="forkserver" if num_workers else None,
        generator=torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])),
    )
    for item in loader:
        for b in range(item["skip"], len(item["index"]) // batch_size):
            part = slice(b * batch_size, (b + 1) * batch_size)
            yield Batch(item["images"][part], item["valid_lines"][part], item["valid_samples"][part],
                        item["index"][part])


# --- a public Dataset for your own loop ------------------------------------------------------------------------------
class ImagetteDataset(torch.utils.data.IterableDataset):
    """Imagettes of a store (or Dataset) as a torch ``IterableDataset``: streamed by chunks, shuffled, sharded.

    For your own PyTorch or Lightning loop (fine-tuning, a head on frozen embeddings, another method): each item
    is one imagette through an encoder's input transform, with its position, its id and the variables you ask for.
    Nothing is loaded whole: every epoch reads each chunk of the store once, in the chunk-window order of
    :func:`epoch_windows` (the order of chunks shuffled, the imagettes shuffled inside windows of at least
    ``shuffle_size``), dealt round-robin to DDP ranks and then to the DataLoader's workers, so each worker reads
    only its own chunks. The order is a pure function of ``(seed, epoch)`` and the chunk layout: call
    :meth:`set_epoch` before each epoch, as with torch's ``DistributedSampler``.

    Parameters
    ----------
    source : xarray.Dataset or str or os.PathLike
        An imagette Dataset, or the path of a store (opened lazily with :func:`xwvnet.open_store`).
    transform : str, Encoder, callable or None, default "wvnet"
        The model input: a transform name (``"wvnet"``, ``"imagenet"``), an :class:`~xwvnet.models.encoder.Encoder`
        (its transform and input channels: ``xwvnet.load_encoder("runs/r18/encoder.pt")`` gives a trained
        encoder's own), a callable ``fn(quicklooks, valid_lines, valid_samples, *, device, channels)``, or
        ``None`` for the raw padded uint8 image with ``valid_lines`` and ``valid_samples``.
    variables : sequence of str, default ()
        Variables along ``imagette`` to return with each image (targets such as ``"hs"``, or ``"labels"``).
    shuffle : bool, default True
        Shuffle as described above; ``False`` streams the imagettes in store order (evaluation, inference).
    shuffle_size : int, default 1024
        Least number of imagettes shuffled together (whole chunks; memory is about one window per worker).
    seed : int, default 0
        Seed of the order.
    rank, world : int, optional
        This DDP rank and the number of ranks; default from ``torch.distributed`` when it is initialised, else 0
        and 1. Every rank yields the same number of imagettes per epoch (the longest shares are cut to the
        shortest), so that DDP ranks step together; an epoch has whole windows only, so keep ``shuffle_size``
        well under the imagettes per rank.
    var : str, optional
        The image variable; default ``quicklook``, else ``sigma0`` (stretched to a quicklook as embedding does).
    channels : int, optional
        Channels of the transformed image; default the Encoder's ``in_chans``, else 3.
    storage_options : dict, optional
        Credentials and endpoint when ``source`` is a store in a bucket (as :func:`xwvnet.open_store` takes them).

    Raises
    ------
    TypeError
        If ``source`` is neither a Dataset nor a path, or ``transform`` is not one of the kinds above.
    ValueError
        If a variable is missing or not along ``imagette``, or ``shuffle_size`` < 1, or ``rank`` is not in
        ``[0, world)``.

    Examples
    --------
    >>> data = ImagetteDataset("imagettes.zarr", transform=xwvnet.load_encoder("random-resnet50"),
    ...                        variables=["hs"], seed=0)  # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(data, batch_size=32, num_workers=4)  # doctest: +SKIP
    >>> for epoch in range(10):  # doctest: +SKIP
    ...     data.set_epoch(epoch)
    ...     for batch in loader:
    ...         loss = criterion(head(backbone(batch["image"])), batch["hs"])
    """

    #: imagettes transformed at a time inside a worker (bounds the float memory of one step)
    TRANSFORM_BATCH = 64

    def __init__(
        self,
        source: xr.Dataset | str | os.PathLike,
        *,
        transform: str | Callable[..., torch.Tensor] | None = "wvnet",
        variables: Sequence[str] = (),
        shuffle: bool = True,
        shuffle_size: int = 1024,
        seed: int = 0,
        rank: int | None = None,
        world: int | None = None,
        var: str | None = None,
        channels: int | None = None,
        storage_options: dict | None = None,
    ) -> None:
        from ..models.encoder import Encoder
        from ..models.transforms import get_transform

        ds, self.var = open_training_data(source, var, storage_options=storage_options)
        if isinstance(variables, str):
            variables = [variables]
        self.variables = tuple(variables)
        for name in self.variables:
            if name not in ds.variables or S.IMAGETTE not in ds[name].dims or ds[name].dims[0] != S.IMAGETTE:
                raise InvalidDataError(f"variable {name!r} is not in the data along {S.IMAGETTE!r}; found variables "
                                       f"{sorted(map(str, ds.data_vars))}.")
        if isinstance(transform, Encoder):
            self.channels = transform.in_chans if channels is None else int(channels)
            transform = transform.transform
        else:
            self.channels = 3 if channels is None else int(channels)
        if transform is not None and not (isinstance(transform, str) or callable(transform)):
            raise InvalidTypeError(f"transform must be a transform name, an Encoder, a callable or None; got "
                                   f"{type(transform).__name__}.")
        self.transform = None if transform is None else get_transform(transform)
        if not (isinstance(shuffle_size, (int, np.integer)) and shuffle_size >= 1):
            raise InvalidArgumentError(f"shuffle_size={shuffle_size!r} is not allowed: it must be an integer >= 1.")
        if rank is None or world is None:
            import torch.distributed as dist

            on = dist.is_available() and dist.is_initialized()
            rank = (dist.get_rank() if on else 0) if rank is None else rank
            world = (dist.get_world_size() if on else 1) if world is None else world
        if not 0 <= rank < world:
            raise InvalidArgumentError(f"rank={rank} is not in [0, world={world}).")
        self.ds = ds[[self.var, S.VALID_LINES, S.VALID_SAMPLES, *self.variables]]
        self.shuffle, self.shuffle_size, self.seed = bool(shuffle), int(shuffle_size), int(seed)
        self.rank, self.world, self.epoch = int(rank), int(world), 0
        self.starts = chunk_starts(ds, self.var)

    def set_epoch(self, epoch: int) -> None:
        """Order the next iteration as epoch ``epoch`` (the same epoch gives the same order).

        Parameters
        ----------
        epoch : int
            The epoch number.
        """
        self.epoch = int(epoch)

    def _plan(self) -> list[np.ndarray]:
        """This rank's share of the epoch: its windows, each cut so that every rank has the same total."""
        if self.shuffle:
            windows = epoch_windows(self.starts, self.seed, self.epoch, self.shuffle_size)
        else:
            windows = [np.arange(a, b) for a, b in zip(self.starts[:-1], self.starts[1:])]
        totals = [sum(len(w) for w in windows[r::self.world]) for r in range(self.world)]
        left, mine = min(totals), []
        for window in windows[self.rank::self.world]:
            mine.append(window[:left])
            left -= len(mine[-1])
        return mine

    def __len__(self) -> int:
        """Imagettes this rank yields per epoch (all its DataLoader workers together)."""
        return int(sum(len(w) for w in self._plan()))

    def __iter__(self) -> Iterator[dict]:
        """The imagettes of this rank and DataLoader worker, one dict each.

        Yields
        ------
        dict
            ``image`` (float32 ``(channels, 224, 224)`` through the transform, or the padded uint8 image with
            ``valid_lines`` and ``valid_samples`` when ``transform=None``), ``index`` (position along
            ``imagette``), ``id`` (the imagette id) and each of ``variables`` as a tensor.
        """
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for k, window in enumerate(self._plan()):
            if k % workers != worker or not len(window):
                continue
            order = np.argsort(window, kind="stable")
            with dask.config.set(scheduler="synchronous"):  # safe inside forked loader workers
                sub = self.ds.isel({S.IMAGETTE: window[order]}).compute()
            back = np.empty_like(order)
            back[order] = np.arange(len(order))
            sub = sub.isel({S.IMAGETTE: back})
            images = np.asarray(sub[self.var].values)
            lines, samples = np.asarray(sub[S.VALID_LINES].values), np.asarray(sub[S.VALID_SAMPLES].values)
            if images.dtype != np.uint8:
                images = sigma0_to_quicklook(images, lines, samples)
            ids = sub[S.IMAGETTE].values
            extra = {name: torch.as_tensor(np.asarray(sub[name].values)) for name in self.variables}
            for a in range(0, len(window), self.TRANSFORM_BATCH):
                part = slice(a, a + self.TRANSFORM_BATCH)
                if self.transform is None:
                    pixels = torch.from_numpy(np.ascontiguousarray(images[part]))
                else:
                    pixels = self.transform(images[part], lines[part], samples[part], device="cpu",
                                            channels=self.channels)
                for j in range(pixels.shape[0]):
                    i = a + j
                    item = {"image": pixels[j].clone() if self.transform is not None else pixels[j],
                            "index": int(window[i]), "id": str(ids[i])}
                    if self.transform is None:
                        item["valid_lines"], item["valid_samples"] = int(lines[i]), int(samples[i])
                    item.update({name: value[i] for name, value in extra.items()})
                    yield item
