"""The streaming loader: whole chunks per window, every imagette once per epoch, sharded, resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests._factories import make_imagettes
from xwvnet import schema as S
from xwvnet.training import loader
from xwvnet.training.loader import batches, chunk_starts, epoch_windows, rank_windows

torch.set_num_threads(1)


def _chunked(n: int = 50, chunk: int = 7, seed: int = 0):
    ds = make_imagettes(n, lines=6, samples=5, seed=seed)
    ds[S.QUICKLOOK] = ds[S.QUICKLOOK].copy(data=np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 6, 5),
                                                                                                     np.uint8))
    return ds.chunk({S.IMAGETTE: chunk})


def test_chunk_starts_follow_dask_chunks_or_fixed_pseudo_chunks():
    assert chunk_starts(_chunked(50, 7), S.QUICKLOOK).tolist() == [0, 7, 14, 21, 28, 35, 42, 49, 50]
    plain = make_imagettes(600, lines=2, samples=2)
    assert chunk_starts(plain, S.QUICKLOOK).tolist() == [0, 256, 512, 600]


def test_an_epoch_is_a_permutation_of_whole_chunks():
    starts = chunk_starts(_chunked(50, 7), S.QUICKLOOK)
    windows = epoch_windows(starts, seed=1, epoch=0, min_size=12)
    allidx = np.concatenate(windows)
    assert sorted(allidx.tolist()) == list(range(50))
    chunk_of = np.searchsorted(starts, np.arange(50), side="right") - 1
    for w in windows:
        assert len(w) >= 12
        chunks = set(chunk_of[w].tolist())  # a window holds its chunks whole
        assert len(w) == sum(int(starts[c + 1] - starts[c]) for c in chunks)
    other = np.concatenate(epoch_windows(starts, seed=1, epoch=1, min_size=12))
    assert not np.array_equal(allidx, other)  # each epoch shuffles anew
    assert np.array_equal(allidx, np.concatenate(epoch_windows(starts, seed=1, epoch=0, min_size=12)))


def test_batches_hold_the_right_pixels_and_cover_the_data():
    ds = _chunked(50, 7)
    stream = batches(ds, batch_size=8, seed=0)
    seen = []
    for _ in range(5):
        b = next(stream)
        assert b.images.shape == (8, 6, 5) and b.images.dtype == torch.uint8
        np.testing.assert_array_equal(b.images[:, 0, 0].numpy(), b.index.numpy())  # pixel value = position
        seen.extend(b.index.tolist())
    stream.close()
    assert len(set(seen)) == len(seen)  # no repeats within an epoch


def test_start_step_resumes_the_same_stream():
    ds = _chunked(50, 7)
    full = batches(ds, batch_size=4, seed=3)
    reference = [next(full).index.tolist() for _ in range(12)]
    full.close()
    resumed = batches(ds, batch_size=4, seed=3, start_step=7)
    assert [next(resumed).index.tolist() for _ in range(5)] == reference[7:]
    resumed.close()


def test_ranks_get_disjoint_windows():
    starts = chunk_starts(_chunked(60, 5), S.QUICKLOOK)
    per_rank = []
    for rank in range(2):
        it = rank_windows(starts, seed=0, batch_size=5, min_size=10, rank=rank, world=2)
        per_rank.append(np.concatenate([next(it)[1] for _ in range(3)]))  # 6 windows of 10 = one epoch
    assert not set(per_rank[0]) & set(per_rank[1])
    assert sorted(np.concatenate(per_rank).tolist()) == list(range(60))


def test_each_worker_reads_only_its_windows(monkeypatch):
    ds = _chunked(60, 5)
    read = {0: [], 1: []}
    real = loader.read_imagettes
    dataset = loader.WindowDataset(ds, S.QUICKLOOK, seed=0, batch_size=5, min_size=10, rank=0, world=1,
                                   start_step=0)
    for worker in (0, 1):
        info = type("Info", (), {"id": worker, "num_workers": 2})()
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        monkeypatch.setattr(loader, "read_imagettes",
                            lambda d, v, idx, w=worker: (read[w].append(idx), real(d, v, idx))[1])
        it = iter(dataset)
        for _ in range(3):
            next(it)
    a, b = (set(np.concatenate(read[w]).tolist()) for w in (0, 1))
    assert not a & b and len(a | b) == 60  # together one epoch, each half of it


def test_worker_count_does_not_change_the_batches():
    ds = _chunked(40, 5)
    runs = []
    for workers in (0, 2):
        stream = batches(ds, batch_size=5, seed=4, num_workers=workers)
        runs.append([next(stream).index.tolist() for _ in range(9)])
        stream.close()
    assert runs[0] == runs[1]


def test_reads_a_zarr_store(tmp_path):
    from xwvnet.io.store import to_store

    ds = make_imagettes(20, lines=6, samples=5, seed=2)
    to_store(ds, tmp_path / "s.zarr")
    stream = batches(tmp_path / "s.zarr", batch_size=4, seed=0)
    b = next(stream)
    stream.close()
    np.testing.assert_array_equal(b.images.numpy(), ds[S.QUICKLOOK].values[b.index.numpy()])


@pytest.mark.timeout(180)
def test_loader_workers_read_a_store_this_process_has_read(tmp_path):
    """Forked workers of a process that read an icechunk store hung; the workers start by forkserver."""
    from xwvnet.io.store import to_store

    ds = make_imagettes(20, lines=6, samples=5, seed=2)
    to_store(ds, tmp_path / "s.zarr")
    runs = []
    for workers in (0, 2):
        stream = batches(tmp_path / "s.zarr", batch_size=4, seed=0, num_workers=workers)
        runs.append([next(stream).index.tolist() for _ in range(4)])
        stream.close()
    assert runs[0] == runs[1]


def test_too_little_data_is_refused():
    with pytest.raises(ValueError, match="at least batch_size"):
        next(batches(make_imagettes(6, 4, 4), batch_size=8))
