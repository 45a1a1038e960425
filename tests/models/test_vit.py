"""ViTs with timm's names: a timm-written stand-in loads through load_encoder and embeds as timm's own forward does;
layouts that are not ours are refused; embed, neighbours, probes and train(init=...) work with a ViT encoder."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from tests._factories import make_imagettes
from tests._numpydoc import check_numpydoc
from xwvnet.models import vit
from xwvnet.models.weights import WeightsIntegrityError, infer_layout
from xwvnet.models.zoo import load_encoder

torch.set_num_threads(1)


class _Anything(type):
    """A stand-in class whose every attribute is another stand-in class (timm reads enum members at import)."""

    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _Anything(name, (), {})
        setattr(cls, name, value)
        return value


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        value = _Anything(name, (), {})
        setattr(self, name, value)
        return value


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Empty ``torchvision`` modules: timm imports torchvision at import time, for data loaders and frozen batch
    norms that a ViT's forward never uses, and torchvision's wheels do not load with every torch."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision" or fullname.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


@pytest.fixture(scope="module")
def timm():
    """timm, the reference library, imported over a torchvision stub when torchvision itself does not import."""
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or a wheel built for another torch
        sys.modules.pop("torchvision", None)
        finder = _StubFinder()
        sys.meta_path.insert(0, finder)
        try:
            module = pytest.importorskip("timm", reason="timm is the reference implementation of ViTs")
        finally:
            sys.meta_path.remove(finder)
            for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
                del sys.modules[name]  # timm keeps what it took; nobody else sees the stub
        return module
    return pytest.importorskip("timm", reason="timm is the reference implementation of ViTs")


@pytest.fixture(scope="module")
def imagettes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three uint8 quicklooks of different valid extents (one smaller than the fields)."""
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (3, 480, 500), dtype=np.uint8), np.array([480, 400, 250]),
            np.array([500, 450, 200]))


def _random_timm(timm, name: str, seed: int, **kwargs):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False, **kwargs).eval()
        with torch.no_grad():  # a non-trivial class token (timm starts it near zero)
            model.cls_token.normal_(0, 0.5)
    return model


def test_timm_vit_s16_stand_in_loads_through_load_encoder_and_embeds_as_timm(timm, tmp_path, imagettes):
    """The checked claim: a timm-format ViT-S/16 with random weights, written by timm (save_for_hf: config.json and
    model.safetensors), loads through load_encoder and embeds our imagettes as timm's own forward does (<= 1e-5)."""
    pytest.importorskip("safetensors", reason="timm writes its hub folders as safetensors")
    from timm.models import save_for_hf

    model = _random_timm(timm, "vit_small_patch16_224", seed=1, num_classes=0)
    save_for_hf(model, tmp_path / "vits16", safe_serialization=True)
    enc = load_encoder(tmp_path / "vits16")
    assert (enc.arch, enc.in_chans, enc.embedding_size) == ("vit_small_patch16", 3, 384)
    assert enc.metadata["checkpoint_layout"] == "timm-vit" and enc.name == "vits16"
    x = enc.preprocess(*imagettes)
    with torch.no_grad():
        expected = model(x).numpy()
    from xwvnet.inference import embed_block

    ours = embed_block(*imagettes, encoder=enc, device="cpu", batch_size=2, channels_last=False)
    assert ours.shape == (3, 384)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs", "transform"), [
    ("vit_small_patch8_224", {"in_chans": 1, "img_size": 256}, "oceansar"),
    ("vit_base_patch8_224", {}, "wvnet"),
])
def test_other_timm_vits_and_plain_state_dicts_embed_as_timm(timm, tmp_path, imagettes, name, kwargs, transform):
    """ViT-S/8 (one channel, learned at 256) and ViT-B/8, saved by torch.save with timm's classifier head: the head
    is dropped and the class token after the final norm equals timm's pre-logits."""
    model = _random_timm(timm, name, seed=2, num_classes=5, **kwargs)
    torch.save(model.state_dict(), tmp_path / "vit.pth")
    enc = load_encoder(tmp_path / "vit.pth", transform=transform)
    x = enc.preprocess(*imagettes)[:2]
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
        assert (enc.module(x) - expected).abs().max() <= 1e-5
    assert enc.embedding_size == model.num_features == vit.vit_width(enc.arch)


def test_other_input_sides_resample_the_position_embedding_as_timm(timm):
    model = _random_timm(timm, "vit_small_patch16_224", seed=3, num_classes=0, dynamic_img_size=True)
    ours = vit.build_vit("vit_small_patch16", init_weights=False)
    ours.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 192, 160)
    with torch.no_grad():
        assert (ours.eval()(x) - model(x)).abs().max() <= 1e-5


def test_names_shapes_and_sizes_match_timm(timm):
    for arch, name in [("vit_small_patch16", "vit_small_patch16_224"), ("vit_small_patch8", "vit_small_patch8_224"),
                       ("vit_base_patch16", "vit_base_patch16_224"), ("vit_base_patch8", "vit_base_patch8_224")]:
        reference = timm.create_model(name, pretrained=False, num_classes=0).state_dict()
        ours = vit.build_vit(arch, init_weights=False).state_dict()
        assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in reference.items()}


def test_layout_from_the_shapes_and_refusals():
    sd = vit.build_vit("vit_base_patch8", 1, 128, init_weights=False).state_dict()
    assert infer_layout(sd) == ("vit_base_patch8", 1, 128)
    assert vit.find_vit(16, 384, 12) == "vit_small_patch16" and vit.find_vit(14, 384, 12) is None
    registers = {**sd, "reg_token": torch.zeros(1, 4, 768)}
    with pytest.raises(WeightsIntegrityError, match="reg_token"):
        infer_layout(registers)
    deeper = {**sd, **{k.replace("blocks.0.", "blocks.12."): v for k, v in sd.items() if k.startswith("blocks.0.")}}
    with pytest.raises(WeightsIntegrityError, match="13 blocks"):
        infer_layout(deeper)
    not_square = {**sd, "pos_embed": torch.zeros(1, 1 + 16 * 8, 768)}
    with pytest.raises(WeightsIntegrityError, match="square grid"):
        infer_layout(not_square)
    with pytest.raises(ValueError, match="multiples of 8"):
        vit.build_vit("vit_base_patch8", init_weights=False)(torch.zeros(1, 3, 100, 100))
    with pytest.raises(ValueError, match="multiple of the patch"):
        vit.vit_small_patch16(img_size=100)


def test_a_state_dict_that_does_not_fit_is_refused_in_one_line(tmp_path):
    sd = vit.build_vit("vit_small_patch16", init_weights=False).state_dict()
    del sd["blocks.3.mlp.fc1.bias"]
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(WeightsIntegrityError, match=r"missing keys \['blocks.3.mlp.fc1.bias'\].*timm-format ViT"):
        load_encoder(tmp_path / "broken.pt")


def test_timm_configs_that_build_another_network_are_refused(timm, tmp_path):
    pytest.importorskip("safetensors", reason="timm writes its hub folders as safetensors")
    import json

    from timm.models import save_for_hf

    save_for_hf(_random_timm(timm, "vit_small_patch16_224", seed=4, num_classes=0), tmp_path / "v",
                safe_serialization=True)
    config_path = tmp_path / "v" / "config.json"
    config = json.loads(config_path.read_text())
    for change, message in [({"global_pool": "avg"}, "global_pool='avg'"),
                            ({"architecture": "vit_large_patch16_224"}, "vit_large_patch16_224"),
                            ({"model_args": {**config["model_args"], "init_values": 1e-5}}, "init_values"),
                            ({"model_args": {**config["model_args"], "in_chans": 1}}, "in_chans=1"),
                            ({"architecture": "vit_small_patch8_224"}, "arch='vit_small_patch8'")]:
        config_path.write_text(json.dumps({**config, **change}))
        with pytest.raises(WeightsIntegrityError, match=message.replace("(", r"\(")):
            load_encoder(tmp_path / "v")


def test_timm_resnet_hub_folders_load_too(timm, tmp_path, imagettes):
    """timm's ResNets share torchvision's names: its hub folder (config.json names the architecture) loads."""
    pytest.importorskip("safetensors", reason="timm writes its hub folders as safetensors")
    from timm.models import save_for_hf

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(6)
        model = timm.create_model("resnet18", pretrained=False, num_classes=0, in_chans=1).eval()
    save_for_hf(model, tmp_path / "r18", safe_serialization=True)
    enc = load_encoder(tmp_path / "r18", transform="oceansar")
    assert (enc.arch, enc.in_chans, enc.metadata["checkpoint_layout"]) == ("resnet18", 1, "timm-resnet")
    x = enc.preprocess(*imagettes)[:2]
    with torch.no_grad():
        assert (enc.module(x) - model(x)).abs().max() <= 1e-5


# ---- the rest of the package with a ViT ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vit_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vit") / "vits16.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(vit.vit_small_patch16().state_dict(), path)
    return path


def test_embed_neighbours_and_probes_follow_the_encoder_width(vit_file):
    import xwvnet

    ds = make_imagettes(n=10, lines=64, samples=64, seed=1)
    ds["hs"] = ("imagette", np.random.default_rng(0).normal(2.0, 1.0, 10))
    out = ds.wvnet.embed(str(vit_file), device="cpu")
    assert out.embedding.shape == (10, 384) and out.sizes["feature"] == 384
    assert out.embedding.attrs["encoder_arch"] == "vit_small_patch16" and out.embedding.attrs["embedding_size"] == 384
    assert np.isfinite(out.embedding.values).all()
    assert xwvnet.neighbors(out, k=3).neighbor.shape == (10, 3)
    assert np.isfinite(xwvnet.predict(out, xwvnet.fit_probe(out, "hs", cv=2))["hs_predicted"].values).all()


def test_embed_store_with_a_vit_equals_embed(vit_file, tmp_path):
    import xwvnet

    ds = make_imagettes(n=6, lines=48, samples=48, seed=2)
    xwvnet.to_store(ds, tmp_path / "in.zarr", chunk_size=4)
    xwvnet.embed_store(tmp_path / "in.zarr", tmp_path / "emb.zarr", str(vit_file), device="cpu")
    stored = xwvnet.open_store(tmp_path / "emb.zarr").embedding
    direct = ds.wvnet.embed(str(vit_file), device="cpu").embedding
    np.testing.assert_allclose(stored.sel(imagette=direct.imagette).values, direct.values, rtol=0, atol=1e-5)


def test_train_continues_a_vit_and_its_encoder_reloads(vit_file, tmp_path):
    import xwvnet

    ds = make_imagettes(n=8, lines=48, samples=48, seed=3)
    path = xwvnet.train(ds, tmp_path / "run", init=str(vit_file), image_size=32, batch_size=4, steps=1,
                        progress=False)
    enc = xwvnet.load_encoder(path)
    assert (enc.arch, enc.embedding_size) == ("vit_small_patch16", 384)
    assert enc.metadata["batch_norm"]["statistics"] == "none (no batch norm)"
    assert ds.wvnet.embed(enc, device="cpu").embedding.shape == (8, 384)
    with pytest.raises(ValueError, match="multiple of the 16-pixel patches"):
        xwvnet.train(ds, tmp_path / "other", init=str(vit_file), image_size=40, batch_size=4, steps=1,
                     progress=False)


def test_numpydoc():
    check_numpydoc("xwvnet.models.vit")
