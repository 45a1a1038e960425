"""The streaming loader (whole chunks per window, every imagette once per epoch, sharded, resumable) and the public
ImagetteDataset (seeded order, DDP shards of equal length, DataLoader workers that split the work, and images
through the encoder's own transform)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xwvnet
from tests._factories import make_imagettes
from xwvnet import schema as S
from xwvnet.models.encoder import Encoder
from xwvnet.training import ImagetteDataset, loader
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


# --- the public ImagetteDataset ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ragged():
    """30 synthetic imagettes of ragged extent, in dask chunks of 7."""
    return xwvnet.synthetic.imagettes(30, seed=3, size=(48, 56), chunks=7, ragged=True).load().chunk(
        {S.IMAGETTE: 7})


def _order(data) -> list[int]:
    return [item["index"] for item in data]


def test_an_epoch_is_every_imagette_once_in_a_seeded_order(ragged):
    data = ImagetteDataset(ragged, transform=None, shuffle_size=10, seed=1)
    first = _order(data)
    assert sorted(first) == list(range(30)) and len(data) == 30
    assert _order(data) == first  # the same epoch, the same order
    data.set_epoch(1)
    assert sorted(_order(data)) == list(range(30)) and _order(data) != first
    assert _order(ImagetteDataset(ragged, transform=None, shuffle_size=10, seed=2)) != first
    plain = ImagetteDataset(ragged, transform=None, shuffle=False)
    assert _order(plain) == list(range(30))


def test_raw_items_are_the_stored_imagettes(ragged):
    item = next(iter(ImagetteDataset(ragged, transform=None, variables=["hs", "labels"], shuffle=False)))
    assert item["id"] == str(ragged[S.IMAGETTE].values[0])
    np.testing.assert_array_equal(item["image"].numpy(), ragged.quicklook.values[0])
    assert item["valid_lines"] == int(ragged.valid_lines[0]) and item["valid_samples"] == int(ragged.valid_samples[0])
    assert float(item["hs"]) == pytest.approx(float(ragged.hs[0]))
    np.testing.assert_array_equal(item["labels"].numpy(), ragged.labels.values[0])


def test_images_go_through_the_encoders_transform(ragged):
    encoder = Encoder("random", "resnet18", seed=0, transform="imagenet")
    data = ImagetteDataset(ragged, transform=encoder, shuffle_size=7, seed=0)
    items = list(data)[:5]
    index = [it["index"] for it in items]
    ref = encoder.preprocess(ragged.quicklook.values[index], ragged.valid_lines.values[index],
                             ragged.valid_samples.values[index])
    assert torch.equal(torch.stack([it["image"] for it in items]), ref)


def test_ranks_share_an_epoch_in_equal_disjoint_parts(ragged):
    parts = [_order(ImagetteDataset(ragged, transform=None, shuffle_size=7, rank=r, world=3)) for r in range(3)]
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) > 0  # DDP ranks step together
    seen = [i for p in parts for i in p]
    assert len(seen) == len(set(seen))  # no imagette twice
    assert len(ImagetteDataset(ragged, transform=None, shuffle_size=7, rank=1, world=3)) == len(parts[1])


def test_dataloader_workers_split_the_epoch(ragged):
    data = ImagetteDataset(ragged, variables=["hs"], shuffle_size=7, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2)
    batches = list(loader)
    assert batches[0]["image"].shape == (4, 3, 224, 224) and batches[0]["hs"].shape == (4,)
    assert sorted(int(i) for b in batches for i in b["index"]) == list(range(30))


def test_reads_a_store(tmp_path, ragged):
    xwvnet.to_store(ragged, tmp_path / "imagettes.zarr")
    data = ImagetteDataset(tmp_path / "imagettes.zarr", transform=None, shuffle=False)
    ids = [item["id"] for item in data]
    assert sorted(ids) == sorted(map(str, ragged[S.IMAGETTE].values))


def test_refuses_what_it_cannot_serve(ragged):
    with pytest.raises(ValueError, match="not in the data"):
        ImagetteDataset(ragged, variables=["nope"])
    with pytest.raises(ValueError, match="rank"):
        ImagetteDataset(ragged, rank=2, world=2)
    with pytest.raises(TypeError, match="transform"):
        ImagetteDataset(ragged, transform=3)
