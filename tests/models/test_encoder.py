"""The Encoder: built from a state-dict file and its JSON sidecar, saved whole with a sidecar carrying the weights'
SHA-256, pickled as a spec without weights, and refused when its file or sidecar is damaged."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch

import xwvnet
from tests._training import copy_run, digest, file_names
from xwvnet import schema as S
from xwvnet.models.encoder import Encoder
from xwvnet.models.resnet import resnet18, resnet50
from xwvnet.models.weights import WeightsIntegrityError
from xwvnet.models.zoo import load_encoder

torch.set_num_threads(1)


def test_local_state_dict_loads_strictly_with_inferred_arch(r18_file):
    enc = load_encoder(r18_file)
    assert enc.arch == "resnet18" and enc.embedding_size == 512 and enc.transform == "wvnet"
    assert enc.hash == "sha256:" + hashlib.sha256(r18_file.read_bytes()).hexdigest()
    saved = torch.load(r18_file, weights_only=True)
    for k, v in enc.module.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)


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


# ---- saved whole, checked on load -----------------------------------------------------------------------------
def test_a_failed_encoder_save_leaves_the_previous_weights_and_no_temporary(tmp_path, monkeypatch):
    first = Encoder.from_module(resnet18(), name="first").save(tmp_path / "enc.pt")
    before = (tmp_path / "enc.pt").read_bytes(), (tmp_path / "enc.json").read_text()
    assert file_names(tmp_path) == ["enc.json", "enc.pt"]
    from xwvnet.models import encoder as E

    def failing(path, meta):
        raise OSError("sidecar not writable")

    monkeypatch.setattr(E, "write_sidecar", failing)
    other = Encoder.from_module(resnet18(), name="second")
    with pytest.raises(OSError, match="sidecar not writable"):
        other.save(tmp_path / "enc.pt")
    assert ((tmp_path / "enc.pt").read_bytes(), (tmp_path / "enc.json").read_text()) == before
    assert file_names(tmp_path) == ["enc.json", "enc.pt"]  # the weights' temporary file is gone
    monkeypatch.undo()
    again = Encoder.from_file(tmp_path / "enc.pt")
    assert again.hash == first.hash
    torch.testing.assert_close(again.module.conv1.weight, first.module.conv1.weight)
    saved = other.save(tmp_path / "enc.pt")
    assert saved.hash != first.hash and file_names(tmp_path) == ["enc.json", "enc.pt"]


def test_saved_weights_get_a_sidecar_with_their_hash_and_are_checked(tmp_path):
    enc = Encoder("r18", "resnet18", seed=3).save(tmp_path / "w.pt")
    meta = json.loads((tmp_path / "w.json").read_text())
    assert meta["format"] == "xwvnet-encoder" and meta["arch"] == "resnet18" and meta["in_chans"] == 3
    assert meta["weights_sha256"] == digest(tmp_path / "w.pt") and enc.hash == f"sha256:{meta['weights_sha256']}"
    assert meta["name"] == "r18" and meta["transform"] == "wvnet"
    assert xwvnet.load_encoder(tmp_path / "w.pt").name == "r18"
    raw = bytearray((tmp_path / "w.pt").read_bytes())
    raw[-5000] ^= 0x80
    (tmp_path / "w.pt").write_bytes(raw)
    with pytest.raises(WeightsIntegrityError, match="does not match the SHA-256"):
        xwvnet.load_encoder(tmp_path / "w.pt")
    (tmp_path / "x.json").write_text('{"mine": 1}')  # a user's file is never overwritten by a sidecar
    with pytest.raises(FileExistsError, match="not an xwvnet encoder sidecar"):
        enc.save(tmp_path / "x.pt")
    assert json.loads((tmp_path / "x.json").read_text()) == {"mine": 1} and not (tmp_path / "x.pt").exists()


def test_one_flipped_byte_in_trained_weights_is_refused_by_load_encoder(few_waves, finished_run, tmp_path):
    run = copy_run(finished_run, tmp_path / "run")
    path = run / "encoder.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(raw)
    assert set(torch.load(path, weights_only=True)) == set(resnet18().state_dict())  # torch reads it
    with pytest.raises(WeightsIntegrityError, match=r"encoder\.pt does not match the SHA-256.*expected sha256:"
                                                    r"[0-9a-f]{64}, found sha256:[0-9a-f]{64}.*restore it"):
        xwvnet.load_encoder(path)
    with pytest.raises(WeightsIntegrityError, match="does not match the SHA-256"):
        xwvnet.embed(few_waves.isel({S.IMAGETTE: slice(0, 2)}), encoder=path)
