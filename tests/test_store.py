"""The store layer on icechunk, on a local disk and on a real S3 API (moto): writes, history, integrity, kinds."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr

import xwvnet
from tests._factories import chunk_objects, delete_object, flip_byte, make_imagettes
from xwvnet import schema as S
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


def test_larger_imagettes_grow_the_store_and_smaller_are_padded(where):
    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(4, lines=32, samples=40), url)
    xwvnet.to_store(make_imagettes(2, lines=48, samples=36, seed=5), url)
    back = xwvnet.open_store(url)
    assert back.sizes[S.LINE] == 48 and back.sizes[S.SAMPLE] == 40
    assert (back[S.QUICKLOOK].values[:4, 32:, :] == 0).all()  # padding, not data
    assert list(back[S.VALID_LINES].values) == [32] * 4 + [48] * 2


def test_a_bad_url_is_refused_never_taken_for_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for bad, message in [("s3:/bucket/x.zarr", "without '//'"), ("ftp://host/x", "unknown storage scheme"),
                         ("s3:///x", "names no bucket")]:
        with pytest.raises(ValueError, match=message):
            xwvnet.to_store(make_imagettes(2), bad)
    with pytest.raises(ValueError, match="regoin"):
        xwvnet.open_store("s3://bucket/x", storage_options={"regoin": "eu-west-1"})
    assert not any(tmp_path.iterdir())  # nothing was written as a folder named like the URL
    assert str(locate("file://" + str(tmp_path / "a.zarr"))) == str(tmp_path / "a.zarr")


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


def test_removing_bookkeeping_files_cannot_turn_checking_off(tmp_path):
    url = tmp_path / "im.zarr"
    xwvnet.to_store(make_imagettes(8, lines=64, samples=64), url, chunk_size=4)
    flip_byte(max(chunk_objects(str(url)).items(), key=lambda kv: kv[1])[0])
    shutil.rmtree(url / "transactions")
    for leftover in url.glob("config*"):
        leftover.unlink()
    assert len(verify(url).damage) == 1
    for snapshot in (url / "snapshots").iterdir():  # edited metadata is refused, never read as valid
        if snapshot.name != "1CECHNKREP0F1RSTCMT0":
            snapshot.write_bytes(snapshot.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(Exception):  # noqa: B017 - icechunk's own error for a corrupt snapshot
        xwvnet.open_store(url)[S.QUICKLOOK].load()


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


def test_status_and_history_on_the_command_line(where, capsys):
    from xwvnet.cli import main

    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(3), url)
    assert main(["status", url]) == 0 and "complete         3" in capsys.readouterr().out
    assert main(["history", url]) == 0 and "to_store: 3 imagettes appended" in capsys.readouterr().out
    assert main(["verify", url]) == 0 and "status           OK" in capsys.readouterr().out
    assert main(["verify", where("none")]) == 1 and "not an xwvnet store" in capsys.readouterr().err


def test_encoding_puts_crc32c_on_every_array(tmp_path):
    url = tmp_path / "im.zarr"
    xwvnet.to_store(make_imagettes(3), url)
    group = zs.opened(locate(url)).group
    for name, array in group.arrays():
        names = [json.loads(c.to_json())["name"] if hasattr(c, "to_json") else type(c).__name__
                 for c in array.metadata.codecs]
        assert any("crc32c" in str(n).lower() for n in names), (name, names)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an xwvnet store opens without a foreign-store warning
        xwvnet.open_store(url)


def test_collocate_command_reads_imagettes_from_a_bucket(s3_endpoint, tmp_path, capsys):
    from tests._factories import new_bucket
    from xwvnet.cli import main

    url = f"s3://{new_bucket(s3_endpoint)}/im.zarr"
    ds = xwvnet.synthetic.imagettes(6, seed=0, size=(32, 32), time=("2021-03-01T11", "2021-03-01T13"))
    xwvnet.to_store(ds, url)
    era5 = xwvnet.datasets.fetch("era5/era5_2t_1.nc")
    assert main(["collocate", url, str(era5), "--out", str(tmp_path / "t.nc"), "--variables", "t2m",
                 "--time-tolerance", "1h"]) == 0
    table = xr.open_dataset(tmp_path / "t.nc")
    assert table.sizes[S.IMAGETTE] == 6 and np.isfinite(table["era5_t2m"]).all()
