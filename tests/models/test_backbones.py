"""One table of backbones (ResNets and ViTs): names, widths, building, and Encoders of either family (random,
in memory, saved, pickled and rebuilt elsewhere)."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tests._numpydoc import check_numpydoc
from xwvnet.models import backbones, resnet, vit
from xwvnet.models.encoder import Encoder

torch.set_num_threads(1)


def test_the_table_joins_both_families():
    assert set(backbones.ARCHITECTURES) == set(resnet.ARCHITECTURES) | set(vit.ARCHITECTURES)
    widths = {arch: backbones.feature_width(arch) for arch in backbones.ARCHITECTURES}
    assert widths == {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "vit_small_patch16": 384,
                      "vit_small_patch8": 384, "vit_base_patch16": 768, "vit_base_patch8": 768}
    assert [a for a in backbones.ARCHITECTURES if backbones.is_vit(a)] == list(vit.ARCHITECTURES)
    with pytest.raises(ValueError, match="unknown architecture 'vit_large_patch16'"):
        backbones.check_arch("vit_large_patch16")
    with pytest.raises(TypeError, match="ResNet or VisionTransformer"):
        backbones.backbone_arch(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("arch", ["resnet18", "vit_small_patch16"])
def test_build_like_keeps_the_geometry_and_takes_the_weights(arch):
    torch.manual_seed(0)
    module = backbones.build_backbone(arch, in_chans=1, img_size=128)
    twin = backbones.build_like(module, init_weights=False)
    assert backbones.backbone_arch(twin) == arch and twin.in_chans == 1
    twin.load_state_dict(module.state_dict())  # strict
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.equal(twin.eval()(x), module.eval()(x))
    assert module(x).shape == (2, backbones.feature_width(arch))


def test_a_random_vit_encoder_is_seeded_and_its_width_is_the_vits():
    a, b = Encoder("random-vit", "vit_small_patch8", seed=3), Encoder("random-vit", "vit_small_patch8", seed=3)
    assert a.embedding_size == 384 and a.attrs["encoder_arch"] == "vit_small_patch8"
    state = torch.random.get_rng_state()
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random stream is left alone
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_an_in_memory_vit_is_saved_pickled_and_rebuilt_equal(tmp_path):
    torch.manual_seed(1)
    enc = Encoder.from_module(vit.vit_small_patch16(img_size=64), name="mine")
    assert enc.in_memory and enc.embedding_size == 384
    saved = enc.save(tmp_path / "mine.pt")
    assert saved.arch == "vit_small_patch16" and saved.metadata["arch"] == "vit_small_patch16"
    back = pickle.loads(pickle.dumps(saved))  # the spec travels, the weights do not
    assert back._module is None
    x = torch.randn(2, 3, 224, 224)  # another side than the 64 it was learned for: positions resampled
    with torch.no_grad():
        assert torch.equal(back.module(x), enc.module.eval()(x))


def test_a_hub_folder_encoder_rebuilds_from_its_path_in_another_process(tmp_path):
    pytest.importorskip("safetensors", reason="hub folders hold safetensors")
    import json

    from safetensors.torch import save_file

    from xwvnet.models.zoo import load_encoder

    torch.manual_seed(2)
    module = vit.vit_small_patch16(in_chans=1, img_size=256)
    (tmp_path / "hub").mkdir()
    save_file(module.state_dict(), tmp_path / "hub" / "model.safetensors")
    (tmp_path / "hub" / "config.json").write_text(json.dumps(
        {"architecture": "vit_small_patch16_224", "model_args": {"in_chans": 1, "img_size": [256, 256]}}))
    enc = load_encoder(tmp_path / "hub", transform="oceansar")
    worker = pickle.loads(pickle.dumps(enc)).build()
    images = np.random.default_rng(0).integers(0, 256, (2, 320, 320), dtype=np.uint8)
    x = enc.preprocess(images, np.array([320, 320]), np.array([320, 320]))
    with torch.no_grad():
        assert torch.equal(worker(x), enc.module(x))
    (tmp_path / "hub" / "model.safetensors").write_bytes(b"")  # replaced after the spec was made
    with pytest.raises(ValueError, match="does not match"):
        pickle.loads(pickle.dumps(enc)).build()


def test_the_new_rooms_import_downwards_only():
    folder = Path(vit.__file__).parent
    order = ["resnet", "vit", "backbones", "weights", "hub", "encoder", "zoo"]
    for name in order:
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1
                    for a in ([ast.alias(node.module)] if node.module else node.names)}
        later = imported & set(order[order.index(name):])
        assert not later, f"{name} imports {later}"


@pytest.mark.parametrize("module_name", ["xwvnet.models.backbones"])
def test_numpydoc(module_name):
    check_numpydoc(module_name)
