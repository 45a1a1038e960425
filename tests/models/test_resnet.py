"""ResNets with torchvision's names: the expected keys are written here by rule from torchvision's architecture."""

from __future__ import annotations

import pytest
import torch

from xwvnet.models.resnet import resnet18, resnet34, resnet50

torch.set_num_threads(1)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def torchvision_keys(blocks: tuple[int, ...], bottleneck: bool, fc: bool) -> set[str]:
    """torchvision's resnet state-dict keys, by its rules: stem, 4 stages, downsample on each stage's first block
    when the shape changes (always for bottlenecks; from stage 2 on for basic blocks), optional fc."""
    keys = {"conv1.weight", *(f"bn1.{p}" for p in BN)}
    convs = 3 if bottleneck else 2
    for stage, n in enumerate(blocks, start=1):
        for b in range(n):
            prefix = f"layer{stage}.{b}."
            for c in range(1, convs + 1):
                keys.add(prefix + f"conv{c}.weight")
                keys.update(prefix + f"bn{c}.{p}" for p in BN)
            if b == 0 and (bottleneck or stage > 1):
                keys.add(prefix + "downsample.0.weight")
                keys.update(prefix + f"downsample.1.{p}" for p in BN)
    if fc:
        keys.update({"fc.weight", "fc.bias"})
    return keys


@pytest.mark.parametrize(
    "make, blocks, bottleneck, n_params",
    [
        (resnet18, (2, 2, 2, 2), False, 11_689_512),  # torchvision's published parameter counts (with fc)
        (resnet34, (3, 4, 6, 3), False, 21_797_672),
        (resnet50, (3, 4, 6, 3), True, 25_557_032),
    ],
)
def test_names_and_sizes_match_torchvision(make, blocks, bottleneck, n_params):
    with_fc = make(num_classes=1000)
    assert set(with_fc.state_dict()) == torchvision_keys(blocks, bottleneck, fc=True)
    assert sum(p.numel() for p in with_fc.parameters()) == n_params
    headless = make()
    assert set(headless.state_dict()) == torchvision_keys(blocks, bottleneck, fc=False)
    assert headless.num_features == (2048 if bottleneck else 512)


def test_resnet50_shapes_match_torchvision():
    sd = resnet50(num_classes=1000).state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["layer1.0.conv1.weight"].shape == (64, 64, 1, 1)
    assert sd["layer1.0.conv2.weight"].shape == (64, 64, 3, 3)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd["layer2.0.conv2.weight"].shape == (128, 128, 3, 3)
    assert sd["layer2.0.downsample.0.weight"].shape == (512, 256, 1, 1)
    assert sd["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert sd["fc.weight"].shape == (1000, 2048)


def test_strict_load_of_torchvision_format_state_dict_with_and_without_fc():
    torch.manual_seed(1)
    source = resnet50(num_classes=1000)
    sd = {k: v.clone() for k, v in source.state_dict().items()}
    headless = resnet50()
    headless.load_state_dict({k: v for k, v in sd.items() if not k.startswith("fc.")}, strict=True)
    classifier = resnet50(num_classes=1000)
    classifier.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = headless.eval()(x)
        logits = classifier.eval()(x)
    assert feats.shape == (1, 2048) and logits.shape == (1, 1000)
    torch.testing.assert_close(logits, torch.nn.functional.linear(feats, sd["fc.weight"], sd["fc.bias"]))
    with pytest.raises(RuntimeError):
        resnet50().load_state_dict(sd, strict=True)  # fc keys are unexpected without a head


def test_forward_returns_pooled_features_and_in_chans():
    model = resnet18(in_chans=1).eval()
    assert model.conv1.weight.shape[1] == 1
    with torch.no_grad():
        y = model(torch.randn(2, 1, 64, 64))
    assert y.shape == (2, 512)
    assert torch.isfinite(y).all() and (y >= 0).all()  # after ReLU and average pooling


def test_stride_sits_on_the_3x3_conv_of_bottlenecks():
    """torchvision's ResNet v1.5: the downsampling stride is on conv2, not conv1."""
    model = resnet50()
    assert model.layer2[0].conv1.stride == (1, 1)
    assert model.layer2[0].conv2.stride == (2, 2)
    assert model.layer2[0].downsample[0].stride == (2, 2)


def test_embedding_size_comes_from_the_layer_table():
    from xwvnet.models import resnet

    for arch, make in resnet.ARCHITECTURES.items():
        assert resnet.embedding_size(arch) == make().num_features == resnet.embedding_size(resnet.arch_of(make()))
    with pytest.raises(ValueError, match="unknown architecture"):
        resnet.embedding_size("resnet101")
