"""The one Zarr layer: both store kinds behind one opener, their format records, joins, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import xwvnet
from xwvnet import schema as S
from xwvnet.io import store as zs

from .conftest import make_imagettes

DIM = 5


def _fake_embeddings(n: int, start: int = 0) -> np.ndarray:
    return (np.arange(start * DIM, (start + n) * DIM, dtype=np.float32).reshape(n, DIM) / 7).astype(np.float32)


def _embedding_store(source, out, chunk=3, write=True):
    """An embedding store of ``source`` made with the layer's own writers (no model needed)."""
    src = xwvnet.open_store(source)
    zs.extend_embedding_store(out, src, chunk=chunk, dim=DIM, attrs={"encoder_arch": "test", "input": str(source)},
                              embedding_attrs={"long_name": "test embedding"})
    n = src.sizes[S.IMAGETTE]
    if write:
        for k, lo in enumerate(range(0, n, chunk)):
            zs.write_embedding_chunk(out, k, lo, lo, _fake_embeddings(min(chunk, n - lo), lo))
    return out


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.zarr"
    xwvnet.to_store(make_imagettes(7, seed=5), path, chunk=2)
    return path


def test_format_records_name_kind_and_version(source, tmp_path):
    out = _embedding_store(source, tmp_path / "emb.zarr")
    img, emb = zs.root_attrs(source), zs.root_attrs(out)
    assert (img["format"], img["version"], img["kind"], img["committed"]) == ("xwvnet-imagette-store", 1,
                                                                              "imagettes", 7)
    assert (emb["format"], emb["version"], emb["kind"], emb["imagettes"]) == ("xwvnet-embedding-store", 1,
                                                                              "embeddings", 7)
    assert (zs.store_kind(source), zs.store_kind(out), zs.store_kind(tmp_path / "none")) == ("imagettes",
                                                                                             "embeddings", None)
    assert zs.committed(source) == zs.committed(out) == 7
    assert (zs.committed_chunk(source), zs.committed_chunk(out)) == (2, 3)


def test_open_store_opens_an_embedding_store(source, tmp_path):
    out = _embedding_store(source, tmp_path / "emb.zarr")
    emb = xwvnet.open_store(out)
    src = xwvnet.open_store(source)
    np.testing.assert_array_equal(emb[S.EMBEDDING].values, _fake_embeddings(7))
    assert emb[S.EMBEDDING].chunks[0] == (3, 3, 1)  # lazy, one dask chunk per stored chunk
    assert emb[S.EMBEDDING].attrs["long_name"] == "test embedding"
    assert list(emb[S.IMAGETTE].values) == list(src[S.IMAGETTE].values)
    np.testing.assert_array_equal(emb[S.TIME].values, src[S.TIME].values)
    assert emb[S.SWATH].dtype == object and emb[S.IMAGETTE].dtype == object  # zarr v3 strings decoded
    assert emb.attrs["encoder_arch"] == "test" and emb.attrs["chunk"] == 3
    assert not {"format", "version", "kind", "imagettes"} & set(emb.attrs)
    assert not {"format", "version", "kind", "committed"} & set(src.attrs)


def test_embedding_store_shows_committed_imagettes_and_unwritten_chunks_as_nan(source, tmp_path):
    out = _embedding_store(source, tmp_path / "emb.zarr", write=False)
    zs.write_embedding_chunk(out, 1, 3, 3, _fake_embeddings(3, 3))
    np.testing.assert_array_equal(zs.done_counts(out), [0, 3, 0])
    values = xwvnet.open_store(out)[S.EMBEDDING].values
    assert np.isnan(values[:3]).all() and np.isnan(values[6:]).all()
    np.testing.assert_array_equal(values[3:6], _fake_embeddings(3, 3))
    # an extension whose coordinates landed but was killed before its commit is not shown, and is trimmed
    xwvnet.to_store(make_imagettes(2, seed=6), source)
    bigger = xwvnet.open_store(source)
    group = zarr.open_group(str(out), mode="r+")
    for array in zs.imagette_arrays(group):
        array.resize((9, *array.shape[1:]))
    assert xwvnet.open_store(out).sizes[S.IMAGETTE] == 7
    zs.extend_embedding_store(out, bigger, chunk=3, dim=DIM, attrs={}, embedding_attrs={})
    grown = xwvnet.open_store(out)
    assert list(grown[S.IMAGETTE].values) == list(bigger[S.IMAGETTE].values)
    assert zs.done_counts(out).tolist() == [0, 3, 0]


def test_open_store_says_what_it_found(tmp_path):
    with pytest.raises(ValueError, match="not a Zarr store.*does not exist"):
        xwvnet.open_store(tmp_path / "missing.zarr")
    (tmp_path / "file.zarr").write_text("x")
    with pytest.raises(ValueError, match="not a Zarr store.*a file"):
        xwvnet.open_store(tmp_path / "file.zarr")
    group = zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    group.attrs["format"] = "someone-elses"
    group.create_array("temperature", shape=(3,), dtype="f4")
    with pytest.raises(ValueError, match="not an xwvnet imagette store or embedding store.*someone-elses.*"
                                         "temperature"):
        xwvnet.open_store(tmp_path / "other.zarr")


def test_newer_format_version_is_refused(source):
    zarr.open_group(str(source), mode="r+").attrs["version"] = 99
    with pytest.raises(ValueError, match="format version 99, newer"):
        xwvnet.open_store(source)
    with pytest.raises(ValueError, match="newer"):
        xwvnet.to_store(make_imagettes(2, seed=8), source)


def test_open_stores_joins_imagettes_with_embeddings(source, tmp_path):
    out = _embedding_store(source, tmp_path / "emb.zarr")
    xwvnet.to_store(make_imagettes(2, seed=6), source)  # two imagettes without embeddings yet
    joined = zs.open_stores([source, out])
    src = xwvnet.open_store(source)
    assert list(joined[S.IMAGETTE].values) == list(src[S.IMAGETTE].values[:7])  # inner join, first store's order
    np.testing.assert_array_equal(joined[S.EMBEDDING].values, _fake_embeddings(7))
    np.testing.assert_array_equal(joined[S.QUICKLOOK].values, src[S.QUICKLOOK].values[:7])
    assert joined[S.EMBEDDING].chunks is not None  # still lazy


def test_open_stores_first_store_wins_and_order_follows_it(source, tmp_path):
    out = _embedding_store(source, tmp_path / "emb.zarr")
    ds = xwvnet.open_store(source)
    mine = np.full((7, DIM), -1.0, dtype=np.float32)
    zs.add_variables(ds.assign(embedding=((S.IMAGETTE, S.FEATURE), mine)), source, [S.EMBEDDING])
    np.testing.assert_array_equal(zs.open_stores([source, out])[S.EMBEDDING].values, mine)
    np.testing.assert_array_equal(zs.open_stores([out, source])[S.EMBEDDING].values, _fake_embeddings(7))
    subset = tmp_path / "subset.zarr"  # a store holding some imagettes in reverse order
    xwvnet.to_store(make_imagettes(7, seed=5).isel({S.IMAGETTE: [5, 3, 1]}), subset)
    joined = zs.open_stores([subset, out])
    assert list(joined[S.IMAGETTE].values) == list(ds[S.IMAGETTE].values[[5, 3, 1]])
    np.testing.assert_array_equal(joined[S.EMBEDDING].values, _fake_embeddings(7)[[5, 3, 1]])


def test_open_stores_refuses_nothing_and_disjoint_stores(source, tmp_path):
    with pytest.raises(ValueError, match="at least one store"):
        zs.open_stores([])
    other = tmp_path / "other.zarr"
    xwvnet.to_store(make_imagettes(3, seed=9), other)
    with pytest.raises(ValueError, match="share no imagette id"):
        zs.open_stores([source, other])
    assert zs.open_stores(source).sizes[S.IMAGETTE] == 7  # one path alone is fine


def test_imagette_writers_never_overwrite_what_they_did_not_write(source, tmp_path):
    out = _embedding_store(source, tmp_path / "emb.zarr")
    with pytest.raises(ValueError, match="not an xwvnet imagette store.*embedding store"):
        xwvnet.to_store(make_imagettes(2, seed=6), out)
    assert zs.store_kind(out) == "embeddings" and zs.committed(out) == 7
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a Zarr store"):
        xwvnet.to_store(make_imagettes(2, seed=6), folder)
    with pytest.raises(ValueError, match="not a Zarr store"):
        zs.ingest(tmp_path / "nothing-*.png", folder)
    assert (folder / "keep.txt").read_text() == "mine"
    empty = zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")  # an empty group is fine to write into
    assert empty is not None
    assert xwvnet.to_store(make_imagettes(2, seed=6), tmp_path / "empty.zarr").total == 2


def test_a_killed_first_batch_leaves_a_recognisable_store(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    original = zs._write_batch

    def killed_before_commit(batch, p, chunk):
        original(batch, p, chunk)
        zarr.open_group(str(p), mode="r+").attrs["committed"] = 0  # as if killed right before the first commit
        raise KeyboardInterrupt

    monkeypatch.setattr(zs, "_write_batch", killed_before_commit)
    with pytest.raises(KeyboardInterrupt):
        xwvnet.to_store(make_imagettes(4), path)
    monkeypatch.undo()
    assert zs.store_kind(path) == "imagettes" and xwvnet.open_store(path).sizes[S.IMAGETTE] == 0
    report = xwvnet.to_store(make_imagettes(4), path)
    assert (report.added, report.total) == (4, 4)


def test_store_left_ragged_by_a_killed_append_opens_at_its_commit(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(4, seed=1), path, chunk=2)
    before = xwvnet.open_store(path).load()
    original = zs._write_batch

    def killed_half_way(batch, p, chunk):
        original(batch, p, chunk)
        group = zarr.open_group(str(p), mode="r+")
        group.attrs["committed"] = 4
        for name in (S.ORBIT, S.POLARIZATION, S.QUICKLOOK):  # these had not grown yet when the kill came
            group[name].resize((4, *group[name].shape[1:]))
        raise KeyboardInterrupt

    monkeypatch.setattr(zs, "_write_batch", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        xwvnet.to_store(make_imagettes(3, seed=2), path)
    monkeypatch.undo()
    lengths = {a.shape[0] for a in zs.imagette_arrays(zarr.open_group(str(path), mode="r"))}
    assert lengths == {4, 7}
    after = xwvnet.open_store(path)
    assert set(after.coords) == set(before.coords) and set(after.data_vars) == set(before.data_vars)
    assert after.load().identical(before)
    assert xwvnet.to_store(make_imagettes(3, seed=2), path).total == 7  # and the next write completes it
    assert xwvnet.open_store(path).sizes[S.IMAGETTE] == 7
