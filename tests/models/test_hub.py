"""Hub checkpoints and OceanSAR-1: a transformers-written ResNet-50 stand-in (one channel, random weights) loads
through load_encoder, by folder and through the zoo's own path, and embeds as transformers' forward does; configs of
other networks are refused in one line; offline, "oceansar1-resnet50" fails in one line naming what to download;
the OceanSAR-1 input transform."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pooch
import pytest
import torch

from tests._numpydoc import check_numpydoc
from xwvnet import datasets
from xwvnet.models import hub, transforms
from xwvnet.models.weights import WeightsIntegrityError, WeightsUnavailableError
from xwvnet.models.zoo import ENCODERS, UnpinnedWeightsWarning, load_encoder

torch.set_num_threads(1)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache and mirror, and a network that fails."""
    monkeypatch.setenv("XWVNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XWVNET_DATA_DIR", str(tmp_path / "mirror"))

    def no_network(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    return tmp_path


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """A transformers ResNetModel (ResNet-50, one input channel) with random weights and batch-norm statistics,
    written by transformers' own save_pretrained (config.json + model.safetensors) in a temporary folder."""
    transformers = pytest.importorskip("transformers", reason="transformers is the reference for its own layout")
    pytest.importorskip("safetensors", reason="save_pretrained writes safetensors")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.ResNetModel(transformers.ResNetConfig(num_channels=1)).eval()
        with torch.no_grad():  # trained-looking statistics, so that a misplaced one shows
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.normal_(1, 0.1)
                    m.bias.normal_(0, 0.1)
    folder = tmp_path_factory.mktemp("hub") / "OceanSAR-1-standin"
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture(scope="module")
def imagettes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three uint8 quicklooks of different valid extents (one smaller than the OceanSAR-1 field)."""
    rng = np.random.default_rng(1)
    return (rng.integers(0, 256, (3, 480, 500), dtype=np.uint8), np.array([480, 420, 250]),
            np.array([500, 450, 200]))


def _reference(model, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(x).pooler_output.flatten(1).numpy()


def test_transformers_resnet50_stand_in_loads_and_embeds_as_transformers(standin, imagettes):
    """The checked claim, by folder: config.json + model.safetensors as save_pretrained wrote them."""
    from xwvnet.inference import embed_block

    model, folder = standin
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    enc = load_encoder(folder, transform="oceansar")
    assert (enc.arch, enc.in_chans, enc.embedding_size, enc.name) == ("resnet50", 1, 2048, "OceanSAR-1-standin")
    assert enc.metadata["checkpoint_layout"] == "transformers-resnet"
    # the reference runs on contiguous tensors: so does this embedding (channels-last, the default, sums in another
    # order: equal to float32 rounding at the scale of the features, which reach hundreds with random weights)
    ours = embed_block(*imagettes, encoder=enc, device="cpu", batch_size=2, channels_last=False)
    expected = _reference(model, enc.preprocess(*imagettes))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(embed_block(*imagettes, encoder=enc, device="cpu"), expected, rtol=0, atol=2e-6 * scale)


def test_the_zoo_path_reads_the_stand_in_where_oceansar1_files_go(standin, imagettes, offline, monkeypatch):
    """load_encoder("oceansar1-resnet50") with the stand-in placed where the offline error says, under pins made
    for it (the published pins are data in xwvnet.datasets): verified, transformers' embeddings, no warning."""
    from xwvnet.inference import embed_block

    model, folder = standin
    place = offline / "cache" / "oceansar1"
    place.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (place / name).write_bytes((folder / name).read_bytes())
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        monkeypatch.setitem(datasets.REGISTRY, f"oceansar1/{name}", f"sha256:{digest}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnpinnedWeightsWarning)
        enc = load_encoder("oceansar1-resnet50")
    assert (enc.name, enc.arch, enc.in_chans, enc.transform) == ("oceansar1-resnet50", "resnet50", 1, "oceansar")
    assert enc.hash == "sha256:" + hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    ours = embed_block(*imagettes, encoder=enc, device="cpu", channels_last=False)
    np.testing.assert_allclose(ours, _reference(model, enc.preprocess(*imagettes)), rtol=0, atol=1e-5)
    (place / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightsIntegrityError, match="does not match its registered SHA-256"):
        load_encoder("oceansar1-resnet50")


def _unpinned(monkeypatch):
    """The OceanSAR-1 files unpinned, as they are until their revision and digests are recorded."""
    for key in (datasets.OCEANSAR1_CONFIG, datasets.OCEANSAR1_WEIGHTS):
        monkeypatch.setitem(datasets.REGISTRY, key, datasets.UNPINNED)


def test_unpinned_files_are_used_with_a_warning_and_their_hash_recorded(standin, offline, monkeypatch):
    _unpinned(monkeypatch)
    _, folder = standin
    place = offline / "mirror" / "oceansar1"
    place.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (place / name).write_bytes((folder / name).read_bytes())
    with pytest.warns(UnpinnedWeightsWarning, match="pins no revision or SHA-256"):
        enc = load_encoder("oceansar1-resnet50")
    assert enc.hash == "sha256:" + hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert enc.attrs["encoder_weights_hash"] == enc.hash


def test_offline_oceansar1_fails_in_one_line_naming_the_files_and_the_folder(offline, monkeypatch):
    with pytest.raises(WeightsUnavailableError) as err:
        load_encoder("oceansar1-resnet50")
    message = str(err.value)
    assert "\n" not in message and message.startswith("oceansar1-resnet50: ")
    assert "config.json and model.safetensors" in message
    assert str(offline / "cache" / "oceansar1") in message
    assert (ENCODERS["oceansar1-resnet50"].url or "") in message  # the pinned URL, else the hub page
    assert "huggingface.co/galeio-research/OceanSAR-1" in message
    _unpinned(monkeypatch)
    with pytest.raises(WeightsUnavailableError, match=r"^oceansar1-resnet50: model.safetensors is not here"):
        (offline / "cache" / "oceansar1").mkdir(parents=True)
        (offline / "cache" / "oceansar1" / "config.json").write_text("{}")
        load_encoder("oceansar1-resnet50")


def test_a_hub_config_of_another_network_is_refused_before_the_weights_are_read(standin, offline, monkeypatch):
    _unpinned(monkeypatch)
    _, folder = standin
    place = offline / "cache" / "oceansar1"
    place.mkdir(parents=True)
    (place / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (place / "config.json").write_text(json.dumps({**config, "num_channels": 3}))
    with pytest.raises(WeightsIntegrityError, match="declares in_chans=3, but oceansar1-resnet50 is a resnet50 with 1"):
        load_encoder("oceansar1-resnet50")


@pytest.mark.parametrize(("change", "message"), [
    ({"downsample_in_bottleneck": True}, "downsample_in_bottleneck=True"),
    ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ({"embedding_size": 32}, "embedding_size=32"),
    ({"depths": [3, 4, 23, 3]}, "blocks"),
    ({"num_channels": 3}, "in_chans=3"),
    ({"model_type": "convnext"}, "model_type='convnext'"),
])
def test_transformers_configs_that_build_another_network_are_refused(standin, tmp_path, change, message):
    _, folder = standin
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(WeightsIntegrityError, match=message):
        load_encoder(copy)


def test_transformers_weights_without_their_config_are_refused(standin, tmp_path):
    _, folder = standin
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(WeightsIntegrityError, match="no config.json beside it"):
        load_encoder(tmp_path / "model.safetensors")


def test_classifier_checkpoints_and_torch_files_of_transformers_load(tmp_path, imagettes):
    transformers = pytest.importorskip("transformers", reason="transformers is the reference for its own layout")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        model = transformers.ResNetForImageClassification(
            transformers.ResNetConfig(num_channels=1, depths=[2, 2, 2, 2], layer_type="basic",
                                      hidden_sizes=[64, 128, 256, 512], num_labels=3)).eval()
    model.save_pretrained(tmp_path / "cls")
    enc = load_encoder(tmp_path / "cls", transform="oceansar")
    assert (enc.arch, enc.embedding_size) == ("resnet18", 512)
    x = enc.preprocess(*imagettes)[:2]
    with torch.no_grad():
        expected = model.resnet(x).pooler_output.flatten(1)
        assert (enc.module(x) - expected).abs().max() <= 1e-5
    torch.save(model.state_dict(), tmp_path / "cls" / "pytorch_model.bin")  # weights_only=True reads it too
    (tmp_path / "cls" / "model.safetensors").unlink()
    assert load_encoder(tmp_path / "cls").hash != enc.hash


def test_unknown_keys_are_refused_not_dropped():
    sd = {"embedder.embedder.convolution.weight": torch.zeros(1), "encoder.stages.0.extra.weight": torch.zeros(1)}
    with pytest.raises(WeightsIntegrityError, match="encoder.stages.0.extra.weight"):
        hub.from_transformers_resnet(sd, "w.safetensors")


def test_a_damaged_safetensors_file_and_an_empty_folder_are_clear_errors(tmp_path):
    pytest.importorskip("safetensors", reason="the reader of safetensors files")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(WeightsIntegrityError, match="not a readable safetensors file"):
        load_encoder(tmp_path / "bad.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsUnavailableError, match="holds no weights: expected model.safetensors"):
        load_encoder(tmp_path / "empty")


# ---- the OceanSAR-1 input transform -------------------------------------------------------------------------------
def test_oceansar_transform_shape_scale_and_standardisation(imagettes):
    x = transforms.get_transform("oceansar")(*imagettes, channels=1)
    assert x.shape == (3, 1, 256, 256) and x.dtype == torch.float32
    assert torch.allclose(x.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(1, 2, 3), correction=0), torch.ones(3), atol=1e-4)
    field, side = transforms.TRANSFORM_GEOMETRY["oceansar"]
    assert side == 256 and 41 * field / side >= 48 and 45 * field / side <= 53  # ~50 m from ~41 x 45 m pixels
    # it reads the centre of the imagette, and its output does not depend on the 8-bit stretch's scale and offset
    images, lines, samples = imagettes
    stretched = (images.astype(np.int32) // 2 + 60).astype(np.uint8)
    y = transforms.oceansar_transform(stretched, lines, samples)
    assert (x - y).abs().max() < 0.05
    outside = images.copy()
    outside[0, :50], outside[0, :, :50] = 0, 0  # outside the central 300 x 300 of a 480 x 500 imagette
    assert torch.equal(transforms.oceansar_transform(outside, lines, samples)[0], x[0])
    flat = np.full((1, 40, 40), 7, dtype=np.uint8)
    assert torch.equal(transforms.oceansar_transform(flat, [40], [40]), torch.zeros(1, 1, 256, 256))
    with pytest.raises(ValueError, match="uint8"):
        transforms.oceansar_transform(images.astype(np.float32), lines, samples)


def test_the_zoo_entry_and_its_pins_are_data_in_the_one_registry():
    info = ENCODERS["oceansar1-resnet50"]
    assert (info.arch, info.in_chans, info.transform, info.embedding_size) == ("resnet50", 1, "oceansar", 2048)
    assert info.file == datasets.OCEANSAR1_WEIGHTS and datasets.COMPANIONS[info.file] == (datasets.OCEANSAR1_CONFIG,)
    assert all(key in datasets.REGISTRY for key in (datasets.OCEANSAR1_WEIGHTS, datasets.OCEANSAR1_CONFIG))
    if datasets.OCEANSAR1_REVISION:  # once pinned: resolve URLs at that commit, with SHA-256 digests
        assert all(datasets.is_pinned(k) for k in datasets.OCEANSAR1_SHA256)
        assert info.url == (f"https://huggingface.co/galeio-research/OceanSAR-1/resolve/{datasets.OCEANSAR1_REVISION}"
                            "/model.safetensors")
    else:  # not pinned: nothing is downloaded, and the zoo names the page
        assert info.url == "https://huggingface.co/galeio-research/OceanSAR-1"
        assert datasets.OCEANSAR1_WEIGHTS not in datasets.URLS and datasets.OCEANSAR1_CONFIG not in datasets.URLS


def test_numpydoc():
    check_numpydoc("xwvnet.models.hub")


def test_read_checkpoint_names_the_layout(tmp_path):
    from xwvnet.models.resnet import resnet18

    torch.save(resnet18(in_chans=1).state_dict(), tmp_path / "r.pt")
    ckpt = hub.read_checkpoint(tmp_path / "r.pt")
    assert (ckpt.arch, ckpt.in_chans, ckpt.img_size, ckpt.layout, ckpt.config) == (
        "resnet18", 1, None, "torchvision-resnet", None)
    assert isinstance(ckpt.path, Path)


def test_stac_and_geoemb_describe_the_oceansar_input():
    from xwvnet import conventions

    for name, geometry in transforms.TRANSFORM_GEOMETRY.items():
        assert conventions._TRANSFORM_GEOMETRY.get(name, (conventions.FIELD, conventions.SIZE)) == geometry
    attrs = {"encoder": "oceansar1-resnet50", "encoder_transform": "oceansar", "encoder_weights_hash": "sha256:ab"}
    described = conventions.geoemb_attrs(attrs, dim=2048, in_chans=1)
    assert described["mlm:input"][0]["input"]["shape"] == [-1, 1, 256, 256]
    assert described["geoemb:chip_layout"]["chip_size"] == [300, 300]
    assert described["mlm:input"][0]["pre_processing_function"]["expression"].endswith(":oceansar_transform")
