import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr

import xwvnet
from xwvnet import schema as S
from xwvnet.cli import main
from xwvnet.io import store as store_module

from .conftest import make_imagettes


def test_round_trip_and_no_duplicates(tmp_path):
    ds = make_imagettes(10)
    path = tmp_path / "s.zarr"
    report = xwvnet.to_store(ds, path, chunk=4)
    assert (report.added, report.present, report.total) == (10, 0, 10)
    again = ds.wvnet.to_store(path)
    assert (again.added, again.present, again.total) == (0, 10, 10)
    back = xwvnet.open_store(path)
    assert back[S.QUICKLOOK].chunks[0][0] == 4  # lazy, chunked as stored
    xwvnet.validate(back)
    np.testing.assert_array_equal(back[S.QUICKLOOK].values, ds[S.QUICKLOOK].values)
    np.testing.assert_array_equal(back[S.TIME].values, ds[S.TIME].values)
    assert list(back[S.IMAGETTE].values) == list(ds[S.IMAGETTE].values)


def test_append_new_and_larger_imagettes(tmp_path):
    path = tmp_path / "s.zarr"
    small = make_imagettes(4, lines=20, samples=30, seed=1)
    big = make_imagettes(3, lines=25, samples=28, seed=2)
    xwvnet.to_store(small, path)
    report = xwvnet.to_store(big, path)
    assert report.added == 3 and report.total == 7
    back = xwvnet.open_store(path)
    assert (back.sizes[S.LINE], back.sizes[S.SAMPLE]) == (25, 30)
    np.testing.assert_array_equal(back[S.QUICKLOOK].values[:4, :20, :30], small[S.QUICKLOOK].values)
    assert not back[S.QUICKLOOK].values[:4, 20:, :].any()
    np.testing.assert_array_equal(back[S.QUICKLOOK].values[4:, :25, :28], big[S.QUICKLOOK].values)
    assert not back[S.QUICKLOOK].values[4:, :, 28:].any()


def test_interrupted_append_keeps_what_was_there_and_rerun_completes(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    first, second = make_imagettes(5, seed=1), make_imagettes(6, seed=2)
    xwvnet.to_store(first, path)
    original = store_module._write_batch

    def crash_after_data_before_commit(batch, p, chunk):
        group = zarr.open_group(str(p), mode="r+")
        n = group.attrs["committed"]
        original(batch, p, chunk)
        group.attrs["committed"] = n  # as if killed right before the commit
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module, "_write_batch", crash_after_data_before_commit)
    with pytest.raises(KeyboardInterrupt):
        xwvnet.to_store(second, path)
    monkeypatch.undo()
    assert zarr.open_array(str(path / S.QUICKLOOK)).shape[0] == 11  # data landed ...
    still = xwvnet.open_store(path)  # ... but only committed imagettes are shown
    assert list(still[S.IMAGETTE].values) == list(first[S.IMAGETTE].values)
    report = xwvnet.to_store(second, path)
    assert (report.added, report.total) == (6, 11)
    back = xwvnet.open_store(path)
    np.testing.assert_array_equal(back[S.QUICKLOOK].values[5:], second[S.QUICKLOOK].values)


def test_sigkilled_ingest_reruns_to_completion(wvnet_samples, tmp_path):
    path = tmp_path / "s.zarr"
    cmd = [sys.executable, "-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", str(path), "--batch", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while store_module.committed(path) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = store_module.committed(path)
    assert before >= 1
    xwvnet.open_store(path)  # opens after the kill
    assert main(["ingest", str(wvnet_samples), "--store", str(path)]) == 0
    back = xwvnet.open_store(path)
    assert back.sizes[S.IMAGETTE] == 15 and len(set(back[S.IMAGETTE].values)) == 15
    fresh = xwvnet.open_quicklooks(wvnet_samples)
    for i in fresh[S.IMAGETTE].values:
        a = back[S.QUICKLOOK].sel({S.IMAGETTE: i}).values
        b = fresh[S.QUICKLOOK].sel({S.IMAGETTE: i}).values
        np.testing.assert_array_equal(a[: b.shape[0], : b.shape[1]], b)


def test_real_samples_written_twice_give_15(wvnet_samples, tmp_path, capsys):
    path = tmp_path / "s.zarr"
    csv = wvnet_samples / "sample_data.csv"
    assert main(["ingest", str(wvnet_samples / "*.png"), "--store", str(path), "--labels", str(csv)]) == 0
    assert main(["ingest", str(wvnet_samples / "*.png"), "--store", str(path), "--labels", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "already present  15" in out
    back = xwvnet.open_store(path)
    assert back.sizes[S.IMAGETTE] == 15 and back[S.LABELS].sum() > 0


def test_open_store_refuses_foreign_paths(tmp_path):
    with pytest.raises(ValueError, match="not a Zarr store"):
        xwvnet.open_store(tmp_path / "nothing.zarr")
    zarr.open_group(str(tmp_path / "other.zarr"), mode="w")
    with pytest.raises(ValueError, match="not an xwvnet imagette store"):
        xwvnet.open_store(tmp_path / "other.zarr")


def test_append_with_other_variables_is_refused(tmp_path):
    path = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(3, seed=1), path)
    other = make_imagettes(3, seed=2).assign(extra=(S.IMAGETTE, np.ones(3)))
    with pytest.raises(ValueError, match="extra \\['extra'\\]"):
        xwvnet.to_store(other, path)
    assert xwvnet.open_store(path).sizes[S.IMAGETTE] == 3


def test_add_variables_beside_the_imagettes(tmp_path):
    path = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(6), path, chunk=4)
    ds = xwvnet.open_store(path)
    emb = ds.assign(embedding=((S.IMAGETTE, S.FEATURE), np.arange(6 * 3, dtype=np.float32).reshape(6, 3)))
    store_module.add_variables(emb, path, [S.EMBEDDING])
    back = xwvnet.open_store(path)
    np.testing.assert_array_equal(back[S.EMBEDDING].values, emb[S.EMBEDDING].values)
    assert back[S.EMBEDDING].chunks[0][0] == 4
    store_module.add_variables(emb.assign(embedding=emb[S.EMBEDDING] * 2), path, [S.EMBEDDING])  # overwrite
    np.testing.assert_array_equal(xwvnet.open_store(path)[S.EMBEDDING].values, 2 * emb[S.EMBEDDING].values)
    with pytest.raises(ValueError, match="not the store's committed imagettes"):
        store_module.add_variables(emb.isel({S.IMAGETTE: slice(0, 3)}), path, [S.EMBEDDING])
