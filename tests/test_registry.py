"""Named encoders, weights lookup/download/integrity, state-dict loading, and Encoder pickling."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pooch
import pytest
import torch

from xwvnet.datasets import git_blob_sha1
from xwvnet.models import zoo
from xwvnet.models.encoder import Encoder
from xwvnet.models.resnet import resnet18, resnet50
from xwvnet.models.weights import WeightsIntegrityError, WeightsUnavailableError, verify_weights_file
from xwvnet.models.zoo import ENCODERS, fetch_weights, load_encoder

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
    assert verify_weights_file(path, f"sha256-prefix:{full[:8]}") == f"sha256:{full}"
    assert verify_weights_file(path, f"git-sha1:{git_blob_sha1(path)}").startswith("git-sha1:")
    with pytest.raises(WeightsIntegrityError, match="integrity"):
        verify_weights_file(path, "sha256-prefix:00000000")
    with pytest.raises(WeightsIntegrityError, match=str(path)):
        verify_weights_file(path, "git-sha1:" + "0" * 40)


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


# ---- one registry, one cache, pooch's own checks ----------------------------------------------------------------
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


def test_embedding_size_comes_from_the_layer_table():
    from xwvnet.models import resnet

    for arch, make in resnet.ARCHITECTURES.items():
        assert resnet.embedding_size(arch) == make().num_features == resnet.embedding_size(resnet.arch_of(make()))
    with pytest.raises(ValueError, match="unknown architecture"):
        resnet.embedding_size("resnet101")


def test_models_rooms_import_each_other_without_a_circle():
    import ast

    import xwvnet.models

    folder = Path(xwvnet.models.__file__).parent
    imports = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module] if node.module else [a.name for a in node.names])
        imports[path.stem] = found & {"resnet", "weights", "encoder", "zoo"}
    assert not (folder / "registry.py").exists()
    assert imports["encoder"] <= {"resnet", "weights"} and imports["resnet"] == set()
    assert imports["weights"] <= {"resnet"} and "zoo" not in set().union(*imports.values())

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in imports.get(start, ()))

    assert not any(reaches(room, room) for room in imports)


# ---- the JSON sidecar round trip -----------------------------------------------------------------------------
@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A small trained-looking encoder: resnet18 weights plus an encoder.json as training writes it."""
    import json

    torch.manual_seed(3)
    path = tmp_path / "encoder.pt"
    torch.save(resnet18().state_dict(), path)
    meta = {"format": "xwvnet-encoder", "name": "my-run", "arch": "resnet18", "transform": "imagenet",
            "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "steps_done": 7,
            "config": {"seed": 0, "lr": 0.002}}
    (tmp_path / "encoder.json").write_text(json.dumps(meta))
    return tmp_path


def test_sidecar_is_read_back_and_reaches_the_embeddings(run_dir):
    import json

    from tests._factories import make_imagettes
    from xwvnet import schema as S
    from xwvnet.inference import embed

    enc = load_encoder(run_dir / "encoder.pt")
    assert enc.name == "my-run" and enc.transform == "imagenet" and enc.arch == "resnet18"
    assert enc.metadata["steps_done"] == 7 and enc.metadata["config"] == {"seed": 0, "lr": 0.002}
    with pytest.raises(TypeError):
        enc.metadata["name"] = "changed"  # read-only
    back = pickle.loads(pickle.dumps(enc))
    assert back.metadata == enc.metadata and back.name == "my-run"
    emb = embed(make_imagettes(n=2, lines=40, samples=40, seed=1), enc)[S.EMBEDDING]
    assert emb.attrs["encoder"] == "my-run" and emb.attrs["encoder_transform"] == "imagenet"
    assert json.loads(emb.attrs["encoder_provenance"]) == json.loads((run_dir / "encoder.json").read_text())
    assert load_encoder(run_dir / "encoder.pt", transform="wvnet").transform == "wvnet"  # the argument wins


def test_a_sidecar_that_disagrees_with_its_weights_is_refused(run_dir):
    import json

    meta_path = run_dir / "encoder.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "arch": "resnet50"}))
    with pytest.raises(WeightsIntegrityError, match="arch='resnet50'.*resnet18"):
        load_encoder(run_dir / "encoder.pt")
    meta_path.write_text(json.dumps({**meta, "weights_sha256": "0" * 64}))
    with pytest.raises(WeightsIntegrityError, match="describes other weights"):
        load_encoder(run_dir / "encoder.pt")
    meta_path.write_text("{not json")
    with pytest.raises(WeightsIntegrityError, match="encoder.json"):
        load_encoder(run_dir / "encoder.pt")


def test_without_sidecar_a_file_keeps_its_file_name_and_no_provenance(r18_file):
    enc = load_encoder(r18_file)
    assert enc.name == "r18.pt" and dict(enc.metadata) == {} and "encoder_provenance" not in enc.attrs


# ---- documentation in the code -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "module_name",
    ["xwvnet.datasets", "xwvnet.models.resnet", "xwvnet.models.weights", "xwvnet.models.encoder",
     "xwvnet.models.zoo", "xwvnet.inference", "xwvnet.distributed", "xwvnet.radiometry",
     "xwvnet.models.transforms"],
)
def test_my_rooms_have_numpydoc_docstrings(module_name):
    from tests._numpydoc import check_numpydoc

    check_numpydoc(module_name)


def test_embed_docstring_lists_every_parameter():
    import inspect

    from xwvnet.inference import embed

    doc = inspect.getdoc(embed)
    for name in inspect.signature(embed).parameters:
        assert f"\n{name} : " in doc, name
    assert "Returns\n-------" in doc and "Raises\n------" in doc
