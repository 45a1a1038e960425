"""Named encoders: the registry and its pins, weights found, fetched (through pooch) and verified offline and online,
and what load_encoder makes of a name, a file or an Encoder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pooch
import pytest
import torch

from xwvnet.models import zoo
from xwvnet.models.weights import WeightsIntegrityError, WeightsUnavailableError, verify_weights_file
from xwvnet.models.zoo import ENCODERS, fetch_weights, find_weights, load_encoder

torch.set_num_threads(1)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache and mirror, and a network that fails."""
    monkeypatch.setenv("XWVNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XWVNET_DATA_DIR", str(tmp_path / "mirror"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    return tmp_path


def test_registry_names_and_pins():
    assert {"wvnet-resnet50", "imagenet-resnet50", "random-resnet50"} <= set(ENCODERS)
    wv = ENCODERS["wvnet-resnet50"]
    assert "7be8a992ff59c5e64a961631351f22497395f95e" in wv.url and wv.url.endswith("wvnet_resnet50_weights.pt")
    assert wv.hash == "git-sha1:1f2bb01893b41c357e514256681ce682c4003d14" and wv.transform == "wvnet"
    im = ENCODERS["imagenet-resnet50"]
    assert im.url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert im.hash == "sha256-prefix:0676ba61" and im.transform == "imagenet"
    assert all(info.embedding_size == 2048 for info in ENCODERS.values())


def test_offline_error_names_url_and_place(offline):
    with pytest.raises(WeightsUnavailableError) as err:
        load_encoder("wvnet-resnet50")
    message = str(err.value)
    assert ENCODERS["wvnet-resnet50"].url in message
    assert str(offline / "cache" / "wvnet_resnet50_weights.pt") in message


def test_corrupt_download_is_deleted_and_refused(offline, monkeypatch):
    def fake_retrieve(url, known_hash, fname, path, progressbar):
        target = Path(path) / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"<html>rate limited</html>")
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    with pytest.raises(WeightsIntegrityError):
        fetch_weights("imagenet-resnet50")
    assert not (offline / "cache" / "resnet50-0676ba61.pth").exists()


def test_mirror_is_honoured_and_still_verified(offline):
    mirrored = offline / "mirror" / "wvnet_upstream" / "wvnet_resnet50_weights.pt"
    mirrored.parent.mkdir(parents=True)
    mirrored.write_bytes(b"not the published weights")
    assert zoo.find_weights("wvnet-resnet50") == mirrored
    with pytest.raises(WeightsIntegrityError, match="wvnet_upstream"):
        load_encoder("wvnet-resnet50")


def test_random_encoder_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = load_encoder("random-resnet50").build()
    after = torch.rand(1)
    b = load_encoder("random-resnet50").build()
    torch.testing.assert_close(before, after)
    torch.testing.assert_close(a.layer3[2].conv2.weight, b.layer3[2].conv2.weight, rtol=0, atol=0)
    assert load_encoder("random-resnet50").hash == "random-init:seed=0"


def test_load_encoder_passes_encoders_through(r18_file):
    enc = load_encoder(r18_file)
    assert load_encoder(enc) is enc
    other = load_encoder(enc, transform="imagenet")
    assert other.transform == "imagenet" and enc.transform == "wvnet" and other.key != enc.key
    with pytest.raises(ValueError, match="unknown transform"):
        load_encoder(enc, transform="nope")
    with pytest.raises(ValueError, match="known encoder"):
        load_encoder("wvnet-resnet51")


def test_weights_live_in_the_one_registry_with_the_sample_data():
    from xwvnet import datasets

    for info in (ENCODERS["wvnet-resnet50"], ENCODERS["imagenet-resnet50"]):
        assert info.file in datasets.REGISTRY and datasets.URLS[info.file] == info.url
        assert datasets.REGISTRY[info.file] == info.hash
    assert issubclass(WeightsUnavailableError, datasets.DataUnavailableError)  # one family for callers to catch


def test_downloads_go_through_pooch_with_its_known_hash_or_a_check_after(offline, monkeypatch):
    from xwvnet import datasets

    calls = []

    def fake_retrieve(url, known_hash, fname, path, progressbar):
        calls.append((url, known_hash, Path(path) / fname))
        target = Path(path) / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"hello\n")
        return str(target)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    sha = hashlib.sha256(b"hello\n").hexdigest()
    monkeypatch.setitem(datasets.REGISTRY, "wvnet_upstream/sample_data.csv", f"sha256:{sha}")
    got = datasets.fetch("wvnet_upstream/sample_data.csv")
    assert calls[-1][1] == f"sha256:{sha}"  # pooch checks SHA-256 pins itself
    assert got == offline / "cache" / "wvnet_upstream" / "sample_data.csv" == calls[-1][2]
    blob = "git-sha1:ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"
    monkeypatch.setitem(datasets.REGISTRY, datasets.WVNET_WEIGHTS, blob)
    path = fetch_weights("wvnet-resnet50")
    assert calls[-1][1] is None and path == offline / "cache" / "wvnet_resnet50_weights.pt"  # the same cache
    assert verify_weights_file(path, datasets.REGISTRY[datasets.WVNET_WEIGHTS]) == blob  # the git-blob step checked it


def test_misspelt_encoder():
    with pytest.raises(ValueError, match=r"Did you mean 'random-resnet50'\?.*xwvnet\.Encoder\(name, 'resnet18'"):
        load_encoder("random-resnet18")
    with pytest.raises(ValueError, match=r"unknown encoder 'wvnet-resnet5'.*Did you mean 'wvnet-resnet50'"):
        find_weights("wvnet-resnet5")
