"""The store layer (xwvnet.io.store) on icechunk, on a local disk and on S3 (moto): writes, history, damage, limits."""

from __future__ import annotations

import json
import warnings

import icechunk
import numpy as np
import pytest
import xarray as xr
import zarr

import xwvnet
from tests._factories import chunk_objects, delete_object, flip_byte, forget_chunk, make_imagettes
from xwvnet import schema as S
from xwvnet.cli import main
from xwvnet.io import store as zs
from xwvnet.io.audit import status, verify
from xwvnet.io.storage import locate


def test_round_trip_history_and_time_travel(where):
    url = where("im.zarr")
    first = make_imagettes(8, seed=1)
    assert xwvnet.to_store(first, url, chunk_size=4).added == 8
    report = xwvnet.to_store(xr.concat([first, make_imagettes(4, seed=2)], S.IMAGETTE), url)
    assert (report.added, report.present, report.total, report.commits) == (4, 8, 12, 1)
    back = xwvnet.open_store(url)
    assert back.sizes[S.IMAGETTE] == 12 and back[S.QUICKLOOK].chunks[0][0] == 4
    np.testing.assert_array_equal(back[S.QUICKLOOK].values[:8], first[S.QUICKLOOK].values)
    np.testing.assert_array_equal(back[S.TIME].values[:8], first[S.TIME].values)
    assert list(back[S.MISSION].values[:2]) == ["s1a", "s1a"]
    log = xwvnet.history(url)
    assert list(log.columns) == ["snapshot", "time", "message"]
    assert log.message[0].startswith("to_store: 4 imagettes appended") and "12 in store" in log.message[0]
    assert log.message[1].startswith("to_store: 8 imagettes appended") and log.time[0] >= log.time[1]
    before = xwvnet.open_store(url, snapshot=log.snapshot[1])
    assert before.sizes[S.IMAGETTE] == 8
    with pytest.raises(ValueError, match="neither a tag nor a snapshot"):
        xwvnet.open_store(url, snapshot="NOTASNAPSHOT0000000")


def test_appends_store_exactly_what_one_write_stores(where):
    ds = make_imagettes(11, seed=3)
    one, parts = where("one.zarr"), where("parts.zarr")
    xwvnet.to_store(ds, one, chunk_size=4)
    for lo, hi in [(0, 3), (3, 9), (9, 11)]:  # appends that start inside a chunk and end inside another
        xwvnet.to_store(ds.isel({S.IMAGETTE: slice(lo, hi)}), parts, chunk_size=4)
    xr.testing.assert_identical(xwvnet.open_store(parts).load(), xwvnet.open_store(one).load())
    a, b = zs.opened(locate(one)), zs.opened(locate(parts))
    for name, array in a.arrays.items():  # the stored values, units and dtypes too
        assert b.arrays[name].dtype == array.dtype and dict(b.arrays[name].attrs) == dict(array.attrs), name
        np.testing.assert_array_equal(b.arrays[name][:], array[:])
    assert verify(parts).ok


def test_an_append_whose_values_do_not_fit_the_stored_dtype_is_refused(tmp_path):
    url = str(tmp_path / "im.zarr")
    xwvnet.to_store(make_imagettes(4).assign(flag=(S.IMAGETTE, np.ones(4, np.int8))), url, chunk_size=4)
    more = make_imagettes(2, seed=9).assign(flag=(S.IMAGETTE, np.full(2, 0.5)))
    with pytest.raises(ValueError, match="'flag' is float64 in the imagettes to append, int8 in the store"):
        xwvnet.to_store(more, url)
    assert xwvnet.open_store(url).sizes[S.IMAGETTE] == 4


def test_larger_imagettes_grow_the_store_and_smaller_are_padded(where):
    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(4, lines=32, samples=40), url, chunk_size=2)
    xwvnet.to_store(make_imagettes(2, lines=48, samples=36, seed=5), url)
    back = xwvnet.open_store(url)
    assert back.sizes[S.LINE] == 48 and back.sizes[S.SAMPLE] == 40
    assert (back[S.QUICKLOOK].values[:4, 32:, :] == 0).all()  # padding, not data
    assert list(back[S.VALID_LINES].values) == [32] * 4 + [48] * 2
    assert verify(url).ok  # the stored rows' new chunks are written: growing leaves no hole in the grid


def test_writers_never_overwrite_what_they_did_not_write(where, tmp_path):
    url = where("other")
    xwvnet.to_store(make_imagettes(2), url)
    emb = make_imagettes(2).assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), np.ones((2, 3), np.float32))})
    zs.extend_embedding_store(locate(where("emb.zarr")), emb, chunk_size=2, dim=3, attrs={}, embedding_attrs={})
    with pytest.raises(ValueError, match="not an xwvnet imagette store"):
        xwvnet.to_store(make_imagettes(2), where("emb.zarr"))
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        xwvnet.to_store(make_imagettes(2), folder)
    assert (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="do not have the store's variables"):
        xwvnet.to_store(make_imagettes(2, seed=9).assign(extra=(S.IMAGETTE, [1, 2])), url)


def test_add_variables_and_labels_commit_beside_the_imagettes(where, wvnet_samples):
    url = where("im.zarr")
    samples = xwvnet.open_quicklooks(wvnet_samples)
    xwvnet.to_store(samples.isel({S.IMAGETTE: slice(0, 14)}), url)
    stale = xwvnet.open_store(url)
    xwvnet.to_store(samples, url)  # the 15th arrives after `stale` was opened
    with pytest.raises(ValueError, match="did another writer append"):
        zs.add_variables(stale.assign(score=(S.IMAGETTE, np.zeros(14))), url, ["score"])
    ds = xwvnet.open_store(url)
    snapshot = zs.add_variables(ds.assign(score=(S.IMAGETTE, np.arange(15.0))), url, ["score"])
    assert xwvnet.history(url).snapshot[0] == snapshot
    assert xwvnet.add_labels(url, wvnet_samples / "sample_data.csv").added == 15
    back = xwvnet.open_store(url)
    np.testing.assert_array_equal(back.score.values, np.arange(15.0))
    assert back[S.LABELS].shape == (15, 21) and set(np.unique(back[S.LABELS].values)) <= {0, 1}
    assert xwvnet.history(url).message[0] == "label from sample_data.csv: labels for 15 imagettes"


def test_a_flipped_byte_is_an_error_naming_the_variable(where):
    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(16, lines=64, samples=64), url, chunk_size=4)
    biggest = max(chunk_objects(url).items(), key=lambda kv: kv[1])[0]  # a quicklook chunk (4 x 64 x 64 bytes)
    flip_byte(biggest)
    ds = xwvnet.open_store(url)  # opening reads no pixel
    with pytest.raises(zs.DamagedChunkError, match="of 'quicklook' is damaged \\(checksum mismatch\\)") as info:
        ds[S.QUICKLOOK].load()
    assert info.value.variable == S.QUICKLOOK and len(info.value.ids) == 4
    report = verify(url)
    assert not report.ok and [d.variable for d in report.damage] == [S.QUICKLOOK]
    assert report.damaged_ids == info.value.ids and "DAMAGED" in report.summary()
    good = [i for i in ds[S.IMAGETTE].values if i not in info.value.ids]
    assert ds.sel({S.IMAGETTE: good})[S.QUICKLOOK].values.shape == (12, 64, 64)  # the rest still reads


def test_a_deleted_chunk_object_is_an_error_never_fill_values(where):
    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(8, lines=64, samples=64), url, chunk_size=4)
    delete_object(max(chunk_objects(url).items(), key=lambda kv: kv[1])[0])
    with pytest.raises(zs.DamagedChunkError, match="of 'quicklook' is damaged \\(unreadable"):
        xwvnet.open_store(url)[S.QUICKLOOK].load()
    assert len(verify(url).damage) == 1


def test_kinds_and_what_was_found(where, tmp_path):
    assert zs.store_kind(where("nothing")) is None
    with pytest.raises(ValueError, match="not an xwvnet store .found nothing"):
        xwvnet.open_store(where("nothing"))
    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(2), url)
    assert zs.store_kind(url) == "imagettes" and zs.root_attrs(url)["version"] == zs.VERSION
    assert "imagette store (format version 2)" in zs.describe(url)
    assert "format" not in xwvnet.open_store(url).attrs


def test_a_store_of_a_newer_version_is_refused(tmp_path):
    url = tmp_path / "im.zarr"
    xwvnet.to_store(make_imagettes(2), url)
    repo = zs.repository(locate(url))
    session = repo.writable_session(zs.BRANCH)
    zarr.open_group(session.store, mode="r+").attrs["version"] = zs.VERSION + 1
    session.commit("from the future")
    with pytest.raises(ValueError, match="newer than this xwvnet reads"):
        xwvnet.open_store(url)


def test_open_stores_joins_on_ids(where):
    a, b = where("a.zarr"), where("b.zarr")
    xwvnet.to_store(make_imagettes(6), a)
    ds = make_imagettes(6).isel({S.IMAGETTE: [5, 3, 1]}).assign(extra=(S.IMAGETTE, [5.0, 3.0, 1.0]))
    xwvnet.to_store(ds, b)
    joined = xwvnet.open_stores([a, b])
    assert list(joined[S.IMAGETTE].values) == ["test-0-0001", "test-0-0003", "test-0-0005"]
    np.testing.assert_array_equal(joined.extra.values, [1.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="at least one"):
        xwvnet.open_stores([])


def test_plain_zarr_of_others_opens_read_only_with_a_warning(where):
    url = where("plain.zarr")
    loc = locate(url)
    make_imagettes(4).to_zarr(loc.zarr_store(read_only=False), mode="w", consolidated=True)
    with pytest.warns(zs.ForeignStoreWarning, match="no integrity guarantees"):
        ds = xwvnet.open_store(url)
    np.testing.assert_array_equal(ds[S.QUICKLOOK].values, make_imagettes(4)[S.QUICKLOOK].values)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        xwvnet.to_store(make_imagettes(2), url)
    make_imagettes(2).drop_dims(S.IMAGETTE).assign(x=("y", [1, 2])).to_zarr(
        locate(where("other.zarr")).zarr_store(read_only=False), mode="w")
    with pytest.raises(ValueError, match="does not follow the xwvnet data model"):
        xwvnet.open_store(where("other.zarr"))


def test_an_interrupted_embedding_store_is_reported_and_never_read_as_complete(where):
    url = where("emb.zarr")
    loc = locate(url)
    ds = make_imagettes(10)
    zs.extend_embedding_store(loc, ds, chunk_size=4, dim=3, attrs={"encoder": "random-resnet50", "input": "in.zarr"},
                              embedding_attrs={})
    writer = zs.EmbeddingWriter(loc)
    writer.merge(zs.write_embedding_rows(writer.fork(), 0, 0, 0, np.ones((4, 3), np.float32)), 0)
    writer.merge(zs.write_embedding_rows(writer.fork(), 2, 8, 8, np.full((2, 3), 2, np.float32)), 2)
    writer.commit()
    with pytest.warns(zs.IncompleteStoreWarning, match="4 of 10 imagettes are not embedded"):
        emb = xwvnet.open_store(url)
    assert emb.sizes[S.IMAGETTE] == 6 and not np.isnan(emb[S.EMBEDDING].values).any()
    state = status(url)
    assert (state.imagettes, state.complete, state.missing_chunks) == (10, 6, [1])
    assert "xwvnet embed in.zarr" in state.command and "--encoder random-resnet50" in state.command
    report = verify(url)
    assert not report.ok and not report.damage and "INCOMPLETE" in report.summary()


def test_encoding_puts_crc32c_on_every_array(tmp_path):
    url = tmp_path / "im.zarr"
    xwvnet.to_store(make_imagettes(3), url)
    group = zs.opened(locate(url)).group
    checked = set()
    for name, array in group.arrays():
        names = [json.loads(c.to_json())["name"] if hasattr(c, "to_json") else type(c).__name__
                 for c in array.metadata.codecs]
        assert any("crc32c" in str(n).lower() for n in names), (name, names)
        checked.add(name)
    assert set(make_imagettes(3).variables) <= checked  # every variable and coordinate was looked at
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an xwvnet store opens without a foreign-store warning
        xwvnet.open_store(url)


def test_a_hole_in_the_grid_is_damage_never_fill_values(where, capsys):
    url = where("h.zarr")
    xwvnet.to_store(xwvnet.synthetic.imagettes(16, size=(64, 64), seed=0), url, chunk_size=4)
    forget_chunk(url, "quicklook/c/1/0/0")
    ds = xwvnet.open_store(url)  # lazy: the hole is found when its chunk is read
    with pytest.raises(zs.DamagedChunkError, match="chunk 1 of 'quicklook' is damaged .missing") as info:
        ds.load()
    assert info.value.ids == [str(i) for i in ds[S.IMAGETTE].values[4:8]]
    np.testing.assert_array_equal(ds[S.QUICKLOOK][:4].values.shape, (4, 64, 64))  # the other chunks still read
    assert ds.sel({S.IMAGETTE: ds[S.IMAGETTE].values[9]})[S.QUICKLOOK].values.shape == (64, 64)
    with pytest.raises(zs.DamagedChunkError, match="chunk 1 of 'quicklook'"):  # a point selection in the hole
        ds.sel({S.IMAGETTE: ds[S.IMAGETTE].values[5]})[S.QUICKLOOK].load()
    report = verify(url)
    assert not report.ok and [(d.variable, d.chunk_index) for d in report.damage] == [(S.QUICKLOOK, 1)]
    state = status(url)
    assert (state.complete, state.missing_chunks) == (12, [1]) and "--repair" in state.command
    assert main(["verify", url]) == 1 and "DAMAGED" in capsys.readouterr().out
    assert main(["status", url]) == 1 and "--repair" in capsys.readouterr().out


def test_a_hole_in_the_ids_or_coordinates_is_an_error(tmp_path):
    url = str(tmp_path / "h.zarr")
    xwvnet.to_store(make_imagettes(8), url, chunk_size=4)
    forget_chunk(url, "latitude/c/0")
    with pytest.raises(zs.DamagedChunkError, match="of 'latitude' is damaged"):
        xwvnet.open_store(url).latitude.load()
    forget_chunk(url, "imagette/c/0")
    with pytest.raises(zs.DamagedChunkError, match="chunk 0 of 'imagette' is damaged"):
        xwvnet.open_store(url)
    assert main(["history", url]) == 0  # the history still lists the snapshots to go back to
    assert xwvnet.open_store(url, snapshot=xwvnet.history(url).snapshot[2]).sizes[S.IMAGETTE] == 8


def test_an_embedding_store_hole_is_damage_and_embed_repair_fills_it(where, tmp_path):
    from tests._factories import save_random_resnet18

    weights = save_random_resnet18(tmp_path / "w.pt", seed=0)
    source, out = where("in.zarr"), where("out.zarr")
    xwvnet.to_store(make_imagettes(8, lines=32, samples=32), source, chunk_size=4)
    xwvnet.embed_store(source, out, weights, chunk_size=4, progress=False)
    before = xwvnet.open_store(out)[S.EMBEDDING].values
    forget_chunk(out, "embedding/c/1/0")
    with pytest.raises(zs.DamagedChunkError, match="chunk 1 of 'embedding'"):
        xwvnet.open_store(out).load()
    assert status(out).missing_chunks == [1] and not verify(out).ok
    report = xwvnet.embed_store(source, out, weights, progress=False, repair=True)
    assert report.damaged == [1] and report.computed == [1] and verify(out).ok
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, before, atol=1e-6)


def test_an_append_beside_a_hole_is_refused_not_filled_with_blanks(tmp_path):
    url = str(tmp_path / "h.zarr")
    ds = xwvnet.synthetic.imagettes(12, size=(64, 64), seed=1)
    xwvnet.to_store(ds.isel({S.IMAGETTE: slice(0, 10)}), url, chunk_size=4)
    forget_chunk(url, "quicklook/c/2/0/0")  # the partial last chunk: an append writes into it
    commits = len(xwvnet.history(url))
    with pytest.raises(zs.DamagedChunkError, match="appending refused, nothing written: chunk 2 of 'quicklook'"):
        xwvnet.to_store(ds.isel({S.IMAGETTE: slice(10, 12)}), url)
    assert len(xwvnet.history(url)) == commits and xwvnet.open_store(url).sizes[S.IMAGETTE] == 10
    with pytest.raises(zs.DamagedChunkError, match="chunk 2 of 'quicklook'"):  # still a hole, never blanks
        xwvnet.open_store(url)[S.QUICKLOOK].load()
    assert xwvnet.to_store(ds.isel({S.IMAGETTE: slice(0, 4)}), url).present == 4  # nothing to write: no refusal


def test_an_append_beside_a_chunk_that_fails_its_checksum_is_refused_by_name(where):
    url = where("c.zarr")
    ds = make_imagettes(12, lines=64, samples=64, seed=1)
    xwvnet.to_store(ds.isel({S.IMAGETTE: slice(0, 8)}), url, chunk_size=4)
    before = chunk_objects(url)
    xwvnet.to_store(ds.isel({S.IMAGETTE: slice(8, 10)}), url)
    new = {k: v for k, v in chunk_objects(url).items() if k not in before}
    flip_byte(max(new.items(), key=lambda kv: kv[1])[0])  # quicklook chunk 2 (rows 8, 9): the append writes into it
    commits = len(xwvnet.history(url))
    with pytest.raises(zs.DamagedChunkError, match="appending refused, nothing written: chunk 2 of 'quicklook' is "
                       "damaged \\(checksum mismatch\\): imagettes 8..9 ") as info:
        xwvnet.to_store(ds.isel({S.IMAGETTE: slice(10, 12)}), url)
    assert info.value.ids == list(ds[S.IMAGETTE].values[8:10])
    assert len(xwvnet.history(url)) == commits and xwvnet.open_store(url).sizes[S.IMAGETTE] == 10


@pytest.mark.parametrize("damage", ["hole", "checksum"])
def test_embedding_beside_damage_is_refused_and_repair_embeds_it_again(tmp_path, damage):
    from tests._factories import save_random_resnet18

    weights = save_random_resnet18(tmp_path / "w.pt", seed=0)
    source, out = str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr")
    ds = make_imagettes(12, lines=32, samples=32)
    xwvnet.to_store(ds.isel({S.IMAGETTE: slice(0, 10)}), source, chunk_size=4)
    xwvnet.embed_store(source, out, weights, chunk_size=4, progress=False)
    before = xwvnet.open_store(out)[S.EMBEDDING].values
    if damage == "hole":
        forget_chunk(out, "embedding/c/2/0")  # 2 of its 4 rows done: the next run writes the other 2 beside them
    else:  # the embedding chunks are the largest objects: chunks 0 and 1 (4 rows each), then chunk 2 (2 rows)
        (_, a), (_, b), (key, c) = sorted(chunk_objects(out).items(), key=lambda kv: -kv[1])[:3]
        assert abs(a - b) < a // 10 and abs(2 * c - a) < a // 10
        flip_byte(key)
    xwvnet.to_store(ds.isel({S.IMAGETTE: slice(10, 12)}), source)
    with pytest.raises(zs.DamagedChunkError, match="embedding into it refused, nothing written: chunk 2 of"):
        xwvnet.embed_store(source, out, weights, progress=False)
    report = xwvnet.embed_store(source, out, weights, progress=False, repair=True)
    assert report.damaged == [2] and verify(out).ok
    after = xwvnet.open_store(out)[S.EMBEDDING].values
    assert after.shape[0] == 12 and np.isfinite(after).all()
    np.testing.assert_allclose(after[:10], before, atol=1e-6)


def test_the_grid_is_listed_once_per_snapshot(tmp_path):
    url = tmp_path / "g.zarr"
    xwvnet.to_store(make_imagettes(8), url, chunk_size=4)
    zs._LISTED.clear()
    listings = []
    real = icechunk.Session.chunk_coordinates
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(icechunk.Session, "chunk_coordinates", lambda self, path: listings.append(path) or real(self, path))
        xwvnet.open_store(url)
        first = sorted(listings)
        xwvnet.open_store(url).load()
        once = sorted(listings)
        xwvnet.open_store(url).load()
    assert first == ["/imagette"]  # opening lists only what it reads at once: the ids (these have no tags)
    assert once == sorted(f"/{name}" for name, _ in zs.opened(locate(url)).group.arrays())  # every array, once
    assert sorted(listings) == once  # the same snapshot again: nothing listed



def test_the_remembered_grids_stay_bounded_and_keep_the_snapshot_being_read(tmp_path, monkeypatch):
    url = tmp_path / "g.zarr"
    xwvnet.to_store(make_imagettes(8), url, chunk_size=4)
    forget_chunk(str(url), "quicklook/c/1/0/0")
    n = len(zs.opened(locate(url), strict=False).arrays)
    zs._LISTED.clear()
    other = locate(tmp_path / "other.zarr")
    monkeypatch.setattr(zs, "_REMEMBERED", n + 3)
    zs._LISTED.update({(other, f"S{k}", "quicklook"): [] for k in range(n + 3)})  # full, of another store's grids
    with pytest.raises(zs.DamagedChunkError, match="chunk 1 of 'quicklook'"):
        xwvnet.open_store(url).load()
    snap = zs.opened(locate(url), strict=False)
    assert len(zs._LISTED) == n + 3 and sum(key[:2] == (snap.location, snap.id) for key in zs._LISTED) == n
    assert [key[1] for key in zs._LISTED if key[0] == other] == [f"S{k}" for k in range(n, n + 3)]  # oldest out
    assert snap.holes() == {"quicklook": [1]}  # the hole is still known: it was not evicted with the others

def test_the_first_snapshot_is_said_to_be_the_empty_first_commit(tmp_path):
    url = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(2), url)
    first = xwvnet.history(url).snapshot.iloc[-1]
    with pytest.raises(ValueError, match="empty first commit"):
        xwvnet.open_store(url, snapshot=first)


def test_chunks_beyond_the_limit_are_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="the limit is 1 GiB per chunk"):
        xwvnet.to_store(make_imagettes(2), tmp_path / "s.zarr", chunk_size=10**12)
    assert not (tmp_path / "s.zarr").exists()
    xwvnet.to_store(make_imagettes(4), tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="the limit is 1 GiB per chunk"):
        xwvnet.embed_store(tmp_path / "s.zarr", tmp_path / "e.zarr", "random-resnet50", chunk_size=10**12)
    assert zs.store_kind(tmp_path / "e.zarr") is None


def test_to_store_bad_chunk_size_writes_nothing(tmp_path):
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size must be a positive number"):
            xwvnet.to_store(make_imagettes(2, lines=8, samples=8), tmp_path / "s.zarr", chunk_size=bad)
        assert not (tmp_path / "s.zarr").exists()
