"""The public ImagetteDataset: every imagette once per epoch, whole chunks, seeded order, DDP shards of equal
length, DataLoader workers that split the work, and images through the encoder's own transform."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import xwvnet
from xwvnet import schema as S
from xwvnet.models.encoder import Encoder
from xwvnet.training import ImagetteDataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def waves():
    return xwvnet.synthetic.imagettes(30, seed=3, size=(48, 56), chunks=7, ragged=True).load().chunk(
        {S.IMAGETTE: 7})


def _order(data) -> list[int]:
    return [item["index"] for item in data]


def test_an_epoch_is_every_imagette_once_in_a_seeded_order(waves):
    data = ImagetteDataset(waves, transform=None, shuffle_size=10, seed=1)
    first = _order(data)
    assert sorted(first) == list(range(30)) and len(data) == 30
    assert _order(data) == first  # the same epoch, the same order
    data.set_epoch(1)
    assert sorted(_order(data)) == list(range(30)) and _order(data) != first
    assert _order(ImagetteDataset(waves, transform=None, shuffle_size=10, seed=2)) != first
    plain = ImagetteDataset(waves, transform=None, shuffle=False)
    assert _order(plain) == list(range(30))


def test_raw_items_are_the_stored_imagettes(waves):
    item = next(iter(ImagetteDataset(waves, transform=None, variables=["hs", "labels"], shuffle=False)))
    assert item["id"] == str(waves[S.IMAGETTE].values[0])
    np.testing.assert_array_equal(item["image"].numpy(), waves.quicklook.values[0])
    assert item["valid_lines"] == int(waves.valid_lines[0]) and item["valid_samples"] == int(waves.valid_samples[0])
    assert float(item["hs"]) == pytest.approx(float(waves.hs[0]))
    np.testing.assert_array_equal(item["labels"].numpy(), waves.labels.values[0])


def test_images_go_through_the_encoders_transform(waves):
    encoder = Encoder("random", "resnet18", seed=0, transform="imagenet")
    data = ImagetteDataset(waves, transform=encoder, shuffle_size=7, seed=0)
    items = list(data)[:5]
    index = [it["index"] for it in items]
    ref = encoder.preprocess(waves.quicklook.values[index], waves.valid_lines.values[index],
                             waves.valid_samples.values[index])
    assert torch.equal(torch.stack([it["image"] for it in items]), ref)


def test_ranks_share_an_epoch_in_equal_disjoint_parts(waves):
    parts = [_order(ImagetteDataset(waves, transform=None, shuffle_size=7, rank=r, world=3)) for r in range(3)]
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) > 0  # DDP ranks step together
    seen = [i for p in parts for i in p]
    assert len(seen) == len(set(seen))  # no imagette twice
    assert len(ImagetteDataset(waves, transform=None, shuffle_size=7, rank=1, world=3)) == len(parts[1])


def test_dataloader_workers_split_the_epoch(waves):
    data = ImagetteDataset(waves, variables=["hs"], shuffle_size=7, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2)
    batches = list(loader)
    assert batches[0]["image"].shape == (4, 3, 224, 224) and batches[0]["hs"].shape == (4,)
    assert sorted(int(i) for b in batches for i in b["index"]) == list(range(30))


def test_reads_a_store(tmp_path, waves):
    xwvnet.to_store(waves, tmp_path / "imagettes.zarr")
    data = ImagetteDataset(tmp_path / "imagettes.zarr", transform=None, shuffle=False)
    ids = [item["id"] for item in data]
    assert sorted(ids) == sorted(map(str, waves[S.IMAGETTE].values))


def test_refuses_what_it_cannot_serve(waves):
    with pytest.raises(ValueError, match="not in the data"):
        ImagetteDataset(waves, variables=["nope"])
    with pytest.raises(ValueError, match="rank"):
        ImagetteDataset(waves, rank=2, world=2)
    with pytest.raises(TypeError, match="transform"):
        ImagetteDataset(waves, transform=3)
