"""Named encoders, weights lookup/download/integrity, state-dict loading, and Encoder pickling."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pooch
import pytest
import torch

from xwvnet.models import registry
from xwvnet.models.encoder import Encoder
from xwvnet.models.registry import (
    ENCODERS,
    WeightsIntegrityError,
    WeightsUnavailableError,
    fetch_weights,
    git_blob_sha1,
    load_encoder,
    verify,
)
from xwvnet.models.resnet import resnet18, resnet50

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


@pytest.fixture(scope="module")
def r18_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "r18.pt"
    torch.save(resnet18().state_dict(), path)
    return path


def test_registry_names_and_pins():
    assert {"wvnet-resnet50", "imagenet-resnet50", "random-resnet50"} <= set(ENCODERS)
    wv = ENCODERS["wvnet-resnet50"]
    assert "7be8a992ff59c5e64a961631351f22497395f95e" in wv.url and wv.url.endswith("wvnet_resnet50_weights.pt")
    assert wv.hash == "git-sha1:1f2bb01893b41c357e514256681ce682c4003d14" and wv.transform == "wvnet"
    im = ENCODERS["imagenet-resnet50"]
    assert im.url == "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    assert im.hash == "sha256-prefix:0676ba61" and im.transform == "imagenet"
    assert all(info.embedding_size == 2048 for info in ENCODERS.values())


def test_git_blob_sha1_is_gits(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"


def test_verify_accepts_good_and_refuses_bad(tmp_path):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    full = hashlib.sha256(b"weights").hexdigest()
    assert verify(path, f"sha256-prefix:{full[:8]}") == f"sha256:{full}"
    assert verify(path, f"git-sha1:{git_blob_sha1(path)}").startswith("git-sha1:")
    with pytest.raises(WeightsIntegrityError, match="integrity"):
        verify(path, "sha256-prefix:00000000")
    with pytest.raises(WeightsIntegrityError, match=str(path)):
        verify(path, "git-sha1:" + "0" * 40)


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
    assert registry.find_weights("wvnet-resnet50") == mirrored
    with pytest.raises(WeightsIntegrityError, match="wvnet_upstream"):
        load_encoder("wvnet-resnet50")


def test_local_state_dict_loads_strictly_with_inferred_arch(r18_file):
    enc = load_encoder(r18_file)
    assert enc.arch == "resnet18" and enc.embedding_size == 512 and enc.transform == "wvnet"
    assert enc.hash == "sha256:" + hashlib.sha256(r18_file.read_bytes()).hexdigest()
    saved = torch.load(r18_file, weights_only=True)
    for k, v in enc.module.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)


def test_classifier_and_wrapped_state_dicts_load(tmp_path):
    torch.manual_seed(0)
    sd = resnet18(num_classes=10).state_dict()
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, path)
    enc = load_encoder(path, transform="imagenet")
    assert enc.arch == "resnet18" and enc.transform == "imagenet"
    torch.testing.assert_close(enc.module.conv1.weight, sd["conv1.weight"])


def test_state_dicts_that_do_not_fit_are_refused(tmp_path):
    sd = resnet18().state_dict()
    del sd["layer2.0.bn1.running_var"]
    path = tmp_path / "missing.pt"
    torch.save(sd, path)
    with pytest.raises(WeightsIntegrityError, match="missing"):
        load_encoder(path)
    sd = resnet18().state_dict()
    sd["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(sd, path)
    with pytest.raises(WeightsIntegrityError, match="does not fit"):
        load_encoder(path)
    torch.save({"not": "a state dict"}, path)
    with pytest.raises(WeightsIntegrityError):
        load_encoder(path)
    with pytest.raises(ValueError, match="neither a known encoder"):
        load_encoder(tmp_path / "absent.pt")


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


def test_pickled_encoder_carries_spec_not_weights(r18_file):
    enc = load_encoder(r18_file)
    assert enc.module is not None  # built: must still not travel
    blob = pickle.dumps(enc)
    assert len(blob) < 4000
    back = pickle.loads(blob)
    assert back == enc and back._module is None
    torch.testing.assert_close(back.module.layer4[1].conv2.weight, enc.module.layer4[1].conv2.weight)


def test_in_memory_encoder_refuses_pickling_until_saved(tmp_path):
    model = resnet18()
    enc = Encoder.from_module(model, name="just-trained")
    assert enc.in_memory and enc.embedding_size == 512
    with pytest.raises(TypeError, match="save"):
        pickle.dumps(enc)
    saved = enc.save(tmp_path / "trained.pt")
    assert not saved.in_memory
    assert pickle.loads(pickle.dumps(saved)) == saved
    with pytest.raises(ValueError, match="classifier"):
        Encoder.from_module(resnet50(num_classes=5))


def test_load_encoder_passes_encoders_through(r18_file):
    enc = load_encoder(r18_file)
    assert load_encoder(enc) is enc
    other = load_encoder(enc, transform="imagenet")
    assert other.transform == "imagenet" and enc.transform == "wvnet" and other.key != enc.key
    with pytest.raises(ValueError, match="unknown transform"):
        load_encoder(enc, transform="nope")
    with pytest.raises(ValueError, match="known encoder"):
        load_encoder("wvnet-resnet51")
