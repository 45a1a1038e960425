"""Issue 11, items 1-3 and 8 (store side), reproduced: concurrent writers, deleted and garbage chunks, repeated ids.

Each fault gives a clear error (naming the variable, the chunk and its imagettes) or a refusal naming the other
writer, never silent fill values or mixed encoders; a re-run rewrites what can be rewritten from the sources.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xwvnet
from xwvnet import schema as S
from xwvnet.archive import embed_store, status
from xwvnet.cli import main
from xwvnet.io import integrity as I
from xwvnet.io import lease as L
from xwvnet.io import store as zs

from .conftest import embed_whole_store, make_imagettes, save_random_resnet18

REPO = Path(__file__).resolve().parent.parent
N, SIZE, CHUNK = 16, 64, 4


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("w") / "a.pt", seed=0)


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("w") / "b.pt", seed=1)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "in.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=3), path, chunk=CHUNK)
    return path


@pytest.fixture(scope="module")
def reference(source, weights) -> np.ndarray:
    return embed_whole_store(source, weights)


@pytest.fixture
def copy(source, tmp_path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "in.zarr"))


@pytest.fixture
def sample_store(wvnet_samples, tmp_path) -> Path:
    """The 15 published quicklooks in a store of 4 imagettes per chunk (4 chunks)."""
    path = tmp_path / "samples.zarr"
    xwvnet.to_store(xwvnet.open_quicklooks(wvnet_samples), path, chunk=4)
    return path


def _ids(path: Path) -> list[str]:
    return [str(i) for i in xwvnet.open_store(path)[S.IMAGETTE].values]


# ---- item 3: missing and garbage chunks ------------------------------------------------------------------------


def test_deleted_quicklook_chunk_is_named_and_reingest_rewrites_it(wvnet_samples, sample_store, capsys):
    ids = _ids(sample_store)
    (sample_store / S.QUICKLOOK / "c" / "1" / "0" / "0").unlink()  # imagettes 4..7
    with pytest.raises(I.DamagedChunkError, match="'quicklook'") as info:
        xwvnet.open_store(sample_store).load()
    err = info.value
    assert (err.variable, err.chunk, err.start, err.stop, err.ids) == (S.QUICKLOOK, (1, 0, 0), 4, 8, ids[4:8])
    assert ids[4] in str(err) and "xwvnet verify" in str(err) and "missing" in str(err)
    report = I.verify(sample_store)
    assert not report.ok and [(d.variable, d.chunk, d.ids) for d in report.damage] == [(S.QUICKLOOK, (1, 0, 0),
                                                                                         ids[4:8])]
    assert "DAMAGED" in report.summary() and ids[5] in report.summary()
    assert main(["ingest", str(wvnet_samples), "--store", str(sample_store)]) == 0  # the same files again
    out = capsys.readouterr().out
    assert "repaired chunks  1" in out and "already present  15" in out and "total in store   15" in out
    assert I.verify(sample_store).ok
    back, fresh = xwvnet.open_store(sample_store), xwvnet.open_quicklooks(wvnet_samples)
    np.testing.assert_array_equal(back[S.QUICKLOOK].values, fresh[S.QUICKLOOK].values)


def test_deleted_id_chunk_is_named_and_reingest_refuses_to_append_again(wvnet_samples, sample_store, capsys):
    (sample_store / S.IMAGETTE / "c" / "0").unlink()
    with pytest.raises(I.DamagedChunkError, match="'imagette'") as info:
        xwvnet.open_store(sample_store)
    assert "imagettes 0..14" in str(info.value) and "ids are unreadable" in str(info.value)
    assert main(["ingest", str(wvnet_samples), "--store", str(sample_store)]) == 1
    assert "chunk (0,) of 'imagette'" in capsys.readouterr().err
    assert zs.committed(sample_store) == 15  # nothing appended again
    assert xr.open_zarr(sample_store, consolidated=False).sizes[S.IMAGETTE] == 15


def test_deleted_valid_lines_chunk_fails_embedding_by_name(copy, weights, tmp_path):
    (copy / S.VALID_LINES / "c" / "0").unlink()
    with pytest.raises(I.DamagedChunkError, match="'valid_lines'"):
        xwvnet.open_store(copy)[S.VALID_LINES].values  # noqa: B018
    with pytest.raises(I.DamagedChunkError, match="'valid_lines'"):
        xwvnet.embed(xwvnet.open_store(copy), weights, device="cpu")[S.EMBEDDING].values  # noqa: B018
    out = tmp_path / "out.zarr"
    report = embed_store(copy, out, weights, chunk=CHUNK, progress=False, errors="report")
    assert not report.complete and len(report.failed) == N // CHUNK  # every chunk reads valid_lines
    assert all("DamagedChunkError" in f.error and "'valid_lines'" in f.error for f in report.failed)
    assert status(out)["chunks_done"] == 0  # nothing embedded from fill values


def test_garbage_chunk_is_named_and_fails_alone(copy, weights, reference, tmp_path):
    target = copy / S.QUICKLOOK / "c" / "2" / "0" / "0"  # imagettes 8..11
    size = target.stat().st_size
    target.write_bytes(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())  # same size
    ids = [f"test-3-{i:04d}" for i in range(N)]
    with pytest.raises(I.DamagedChunkError, match="checksum") as info:
        xwvnet.open_store(copy).load()
    assert "chunk (2, 0, 0) of 'quicklook'" in str(info.value) and ids[8] in str(info.value)
    out = tmp_path / "out.zarr"
    report = embed_store(copy, out, weights, chunk=CHUNK, progress=False, errors="report")
    assert [f.chunk for f in report.failed] == [2] and sorted(report.computed) == [0, 1, 3]
    assert "'quicklook'" in report.failed[0].error and ids[8] in report.summary()
    emb = xr.open_zarr(out, consolidated=False)[S.EMBEDDING].values
    np.testing.assert_allclose(emb[:8], reference[:8], atol=1e-5, rtol=0)
    assert np.isnan(emb[8:12]).all()  # never embedded from garbage or fill values


def test_damaged_embedding_chunk_is_named_and_reembedded(source, weights, reference, tmp_path):
    out = tmp_path / "out.zarr"
    embed_store(source, out, weights, chunk=CHUNK, progress=False)
    assert I.verify(out).ok
    (out / S.EMBEDDING / "c" / "1" / "0").unlink()
    with pytest.raises(I.DamagedChunkError, match="'embedding'") as info:
        xwvnet.open_store(out).load()
    assert "test-3-0004" in str(info.value) and "xwvnet embed" in str(info.value)
    assert [d.chunk for d in I.verify(out).damage] == [(1, 0)]
    report = embed_store(source, out, weights, progress=False)
    assert report.damaged == [1] and report.computed == [1] and report.complete
    assert "damaged, redone" in report.summary()
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)
    assert I.verify(out).ok


def test_plain_open_zarr_still_reads_both_kinds(source, weights, tmp_path):
    out = tmp_path / "out.zarr"
    embed_store(source, out, weights, chunk=CHUNK, progress=False)
    for path in (source, out):
        plain = xr.open_zarr(path, consolidated=False)
        ours = xwvnet.open_store(path)
        assert plain.sizes[S.IMAGETTE] == ours.sizes[S.IMAGETTE] == N
        assert set(ours.data_vars) <= set(plain.data_vars)
        assert "integrity" not in plain.variables


def test_killed_write_leaves_pending_records_that_read_and_settle(tmp_path, monkeypatch):
    path = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(10, seed=1), path, chunk=4)  # the last chunk holds 8..9 of 8..11
    calls = {"n": 0}
    original = I.RecordLog.commit

    def killed_before_commit(self):
        calls["n"] += 1
        raise KeyboardInterrupt  # the data landed (chunk 2 rewritten with 8..11), its records did not commit

    monkeypatch.setattr(I.RecordLog, "commit", killed_before_commit)
    with pytest.raises(KeyboardInterrupt):
        xwvnet.to_store(make_imagettes(6, seed=2), path)
    monkeypatch.setattr(I.RecordLog, "commit", original)
    assert calls["n"] == 1
    assert I.load_manifest(path).pending  # a pending record file is left
    back = xwvnet.open_store(path).load()  # the rewritten partial chunk still reads: its pending record is valid
    assert back.sizes[S.IMAGETTE] == 10 and I.verify(path).ok
    assert not L.lease_path(path).exists()  # the lease was given back on the way out
    report = xwvnet.to_store(make_imagettes(6, seed=2), path)
    assert (report.added, report.total) == (6, 16)
    assert not I.load_manifest(path).pending and I.verify(path).ok
    assert os.listdir(path / "integrity" / "records") == [I.BASE]  # settled and compacted


def test_store_without_records_is_adopted_by_its_next_writer(tmp_path):
    path = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(8, seed=1), path, chunk=4)
    shutil.rmtree(path / "integrity")  # as written before chunk records existed
    assert not I.verify(path).recorded
    xwvnet.to_store(make_imagettes(3, seed=2), path)
    report = I.verify(path)
    assert report.recorded and report.ok and report.imagettes == 11


def test_verify_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(ValueError, match="not an xwvnet store"):
        I.verify(tmp_path / "nothing.zarr")


# ---- item 8 (store side): a repeated file name behaves the same whatever the batch size ------------------------


def test_repeated_names_are_skipped_the_same_whatever_the_batch(wvnet_samples, tmp_path):
    files = sorted(wvnet_samples.glob("*.png"))
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for f in files[:5]:
        shutil.copy(f, a / f.name)
    for f in files[3:8]:
        shutil.copy(f, b / f.name)
    reports = [zs.ingest([a, b], tmp_path / f"s{batch}.zarr", batch=batch) for batch in (1, 3, 256)]
    for report in reports:
        assert (report.added, report.present, report.total) == (8, 0, 8)
        assert len(report.skipped) == 2 and all("DuplicateId" in s and str(b) in s for s in report.skipped)
    assert reports[0].skipped == reports[1].skipped == reports[2].skipped
    assert _ids(tmp_path / "s1.zarr") == _ids(tmp_path / "s256.zarr") == [f.name.split(".")[0] for f in files[:8]]
    np.testing.assert_array_equal(xwvnet.open_store(tmp_path / "s1.zarr")[S.QUICKLOOK].values,
                                  xwvnet.open_store(tmp_path / "s256.zarr")[S.QUICKLOOK].values)


# ---- items 1 and 2: one writer per store (real processes) ------------------------------------------------------

HOLD = """
import sys, time
from xwvnet.io.lease import writer_lease
with writer_lease(sys.argv[1], "another run"):
    print("held", flush=True)
    time.sleep(60)
"""


def _hold(store: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def test_ingest_and_embed_are_refused_while_another_process_writes(wvnet_samples, source, weights, tmp_path,
                                                                   capsys):
    store, out = tmp_path / "s.zarr", tmp_path / "out.zarr"
    holders = [_hold(store), _hold(out)]
    try:
        assert main(["ingest", str(wvnet_samples), "--store", str(store)]) == 1
        err = capsys.readouterr().err
        assert f"pid {holders[0].pid}" in err and "another run" in err and "one writer at a time" in err
        assert zs.committed(store) == 0
        with pytest.raises(L.StoreBusyError, match=f"pid {holders[1].pid}"):
            embed_store(source, out, weights, progress=False)
        with pytest.raises(L.StoreBusyError):
            xwvnet.to_store(make_imagettes(2), store)
    finally:
        for proc in holders:
            proc.kill()
            proc.wait()
    # the holders were SIGKILLed: their leases are stale and taken over by the next writer
    report = embed_store(source, out, weights, chunk=CHUNK, progress=False)
    assert report.complete


INGEST = [sys.executable, "-m", "xwvnet.cli", "ingest"]


def test_concurrent_ingests_never_corrupt_the_store(wvnet_samples, tmp_path):
    store = tmp_path / "s.zarr"
    cmd = [*INGEST, str(wvnet_samples), "--store", str(store), "--batch", "1"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in procs]
    for code, _, err in results:
        assert code == 0 or "one writer at a time" in err, err  # refused with the holder named, or ran alone
    assert any(code == 0 for code, _, _ in results)
    fresh = xwvnet.open_quicklooks(wvnet_samples)
    back = xwvnet.open_store(store)
    assert back.sizes[S.IMAGETTE] == 15 and len(set(back[S.IMAGETTE].values)) == 15
    np.testing.assert_array_equal(back[S.QUICKLOOK].sel({S.IMAGETTE: fresh[S.IMAGETTE].values}).values,
                                  fresh[S.QUICKLOOK].values)
    assert I.verify(store).ok


EMBED = """
import sys
from xwvnet.archive import embed_store
embed_store(sys.argv[1], sys.argv[2], sys.argv[3], chunk=2, threads=1, progress=False)
"""


def test_concurrent_embeds_with_two_encoders_never_mix(source, weights, other_weights, reference, tmp_path):
    out = tmp_path / "out.zarr"
    env = {**os.environ, "XWVNET_TORCH_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", EMBED, str(source), str(out), str(w)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for w in (weights, other_weights)]
    time.sleep(0.01)
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    winners = [i for i, (code, _) in enumerate(results) if code == 0]
    assert len(winners) == 1, results  # the other is refused: busy (at once) or another encoder (after)
    loser = results[1 - winners[0]][1]
    assert "StoreBusyError" in loser or "encoder_weights_hash" in loser, loser
    expected = reference if winners[0] == 0 else embed_whole_store(source, other_weights)
    emb = xwvnet.open_store(out)
    np.testing.assert_allclose(emb[S.EMBEDDING].values, expected, atol=1e-5, rtol=0)  # one encoder, every row
    assert I.verify(out).ok
