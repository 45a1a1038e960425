"""Sample data (xwvnet.datasets): the mirror first, hash-checked, pinned URLs, and what to do offline."""

import numpy as np
import pooch
import pytest

from xwvnet import datasets
from xwvnet.datasets import git_blob_sha1


def test_sample_comes_from_the_mirror_and_is_hash_checked(wvnet_samples, monkeypatch):
    monkeypatch.setenv("XWVNET_DATA_DIR", str(wvnet_samples.parent))
    sample = datasets.wvnet_sample()
    assert len(sample["quicklooks"]) == 15
    assert all(p.parent == wvnet_samples for p in sample["quicklooks"])
    assert np.load(sample["embeddings"]).shape == (15, 2048)


def test_a_tampered_mirror_file_is_refused(wvnet_samples, tmp_path, monkeypatch):
    (tmp_path / "wvnet_upstream").mkdir()
    (tmp_path / "wvnet_upstream" / "sample_data.csv").write_text("filename,UN\nx.png,1\n")
    monkeypatch.setenv("XWVNET_DATA_DIR", str(tmp_path))
    with pytest.raises(datasets.DataUnavailableError, match="does not match its registered SHA-256"):
        datasets.fetch("wvnet_upstream/sample_data.csv")


def test_offline_without_mirror_names_the_url_and_the_place(tmp_path, monkeypatch):
    monkeypatch.delenv("XWVNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XWVNET_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise ConnectionError("network is unreachable")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    with pytest.raises(datasets.DataUnavailableError) as err:
        datasets.fetch("wvnet_upstream/valid_embs.npy")
    message = str(err.value)
    assert f"https://github.com/hawaii-ai/WV-Net/raw/{datasets.WVNET_COMMIT}/assets/valid_embs.npy" in message
    assert str(tmp_path / "cache" / "wvnet_upstream" / "valid_embs.npy") in message


def test_every_upstream_sample_has_a_pinned_url():
    upstream = [name for name in datasets.REGISTRY if name.startswith("wvnet_upstream/")]
    assert len(upstream) == 17
    assert all(datasets.WVNET_COMMIT in datasets.URLS[name] for name in upstream)
    with pytest.raises(KeyError, match="unknown sample file"):
        datasets.fetch("nope.txt")


def test_git_blob_sha1_is_gits(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_sha1(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object` of "hello\n"
