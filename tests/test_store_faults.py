"""Stores under bad luck, with real processes, on a local disk and on a real S3 API (moto).

SIGKILLed ingests and embeds re-run to the uninterrupted result; concurrent ingests give every id once; two embed
runs with different encoders never mix; readers during an ingest always see a committed snapshot; labels added
during an ingest are applied or refused, never dropped; damaged chunks are named, and re-runs repair them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xwvnet
from tests._factories import chunk_objects, embed_whole_store, flip_byte, make_imagettes, save_random_resnet18
from xwvnet import schema as S
from xwvnet.archive import embed_store
from xwvnet.cli import main
from xwvnet.io import store as zs
from xwvnet.io.audit import status, verify

REPO = Path(__file__).resolve().parent.parent
N, SIZE, CHUNK = 16, 64, 4
ENV = {**os.environ, "XWVNET_TORCH_THREADS": "1"}


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("w") / "a.pt", seed=0)


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("w") / "b.pt", seed=1)


@pytest.fixture
def source(where) -> str:
    url = where("in.zarr")
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=3), url, chunk_size=CHUNK)
    return url


def _spawn(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env={**ENV, **os.environ, "XWVNET_TORCH_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ids(url: str) -> list[str]:
    return [str(i) for i in xwvnet.open_store(url)[S.IMAGETTE].values]


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()


def test_sigkilled_ingest_reruns_to_completion(where, wvnet_samples):
    url = where("s.zarr")
    proc = _spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "1"])
    _kill_when(proc, lambda: zs.store_kind(url) == "imagettes" and len(_ids(url)) >= 3)
    kept = _ids(url)
    assert 3 <= len(kept) < 15 and len(set(kept)) == len(kept)
    assert main(["ingest", str(wvnet_samples), "--store", url]) == 0
    fresh = xwvnet.open_quicklooks(wvnet_samples)
    back = xwvnet.open_store(url)
    assert sorted(back[S.IMAGETTE].values) == sorted(fresh[S.IMAGETTE].values)
    np.testing.assert_array_equal(back[S.QUICKLOOK].sel({S.IMAGETTE: fresh[S.IMAGETTE].values}).values[..., :489, :],
                                  fresh[S.QUICKLOOK].values[..., :489, :])
    assert verify(url).ok


def test_concurrent_ingests_give_every_id_once(where, wvnet_samples):
    url = where("s.zarr")
    procs = [_spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "2"])
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:  # each finished, or stopped on a conflict with a message naming the other commit
        assert code == 0 or "another writer committed" in err, err
    assert main(["ingest", str(wvnet_samples), "--store", url]) == 0  # the completing run
    back = _ids(url)
    assert len(back) == 15 and len(set(back)) == 15
    assert verify(url).ok


def test_readers_during_an_ingest_always_see_a_committed_snapshot(where, wvnet_samples):
    url = where("s.zarr")
    fresh = xwvnet.open_quicklooks(wvnet_samples).load()
    proc = _spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "1"])
    seen = set()
    try:
        while proc.poll() is None:
            if zs.store_kind(url) != "imagettes":
                continue
            ds = xwvnet.open_store(url)  # never an error, never a half-written batch
            ids = [str(i) for i in ds[S.IMAGETTE].values]
            assert len(set(ids)) == len(ids)
            lines = int(ds.sizes[S.LINE])
            np.testing.assert_array_equal(ds[S.QUICKLOOK].values[:, :min(lines, 489), :557],
                                          fresh[S.QUICKLOOK].sel({S.IMAGETTE: ids}).values[:, :min(lines, 489), :557])
            seen.add(len(ids))
    finally:
        proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    assert len(seen) >= 2 and len(_ids(url)) == 15


def test_labels_during_an_ingest_are_applied_or_refused(where, wvnet_samples):
    url = where("s.zarr")
    first = sorted(wvnet_samples.glob("*.png"))[:3]
    xwvnet.ingest(first, url)
    proc = _spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "1"])
    outcomes = []
    try:
        while proc.poll() is None:
            try:
                xwvnet.add_labels(url, wvnet_samples / "sample_data.csv")
                outcomes.append("applied")
                time.sleep(1.0)  # a person relabelling, not a livelock
            except (ValueError, zs.WriteConflictError) as err:
                assert "another writer" in str(err), err
                outcomes.append("refused")
    finally:
        proc.wait()
    assert proc.returncode == 0, proc.stderr.read()
    assert "applied" in outcomes
    for snapshot, message in zip(xwvnet.history(url).snapshot, xwvnet.history(url).message):
        if message.startswith("label from"):  # every commit of labels labels every imagette it saw
            ds = xwvnet.open_store(url, snapshot=snapshot)
            assert (ds[S.LABELS].values != -1).all()


def test_sigkilled_embed_reruns_to_the_uninterrupted_result(where, source, weights):
    out = where("out.zarr")
    proc = _spawn(["-m", "xwvnet.cli", "embed", source, out, "--encoder", str(weights), "--chunk", "2",
                   "--threads", "1", "--commit-every", "0"])

    def ready() -> bool:
        try:
            return zs.store_kind(out) == "embeddings" and status(out).complete >= 4
        except ValueError:
            return False

    _kill_when(proc, ready)
    before = status(out)
    done_before = set(range(N // 2)) - set(before.missing_chunks)
    assert 2 <= len(done_before) < N // 2 and before.command.startswith("xwvnet embed")
    assert main(["status", out]) == 1
    report = embed_store(source, out, weights, progress=False)
    assert report.complete and set(report.computed).isdisjoint(done_before)
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, embed_whole_store(source, weights),
                               atol=1e-5, rtol=0)
    assert status(out).missing == 0 and verify(out).ok


def test_concurrent_embeds_with_two_encoders_never_mix(where, source, weights, other_weights):
    out = where("out.zarr")
    code = ("import sys; from xwvnet.archive import embed_store; "
            "embed_store(sys.argv[1], sys.argv[2], sys.argv[3], chunk_size=2, progress=False)")
    procs = [_spawn(["-c", code, source, out, str(w)]) for w in (weights, other_weights)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    winners = [i for i, (c, _) in enumerate(results) if c == 0]
    assert len(winners) == 1, results
    loser = results[1 - winners[0]][1]
    assert "encoder_weights_hash" in loser or "another writer committed" in loser, loser
    expected = embed_whole_store(source, (weights, other_weights)[winners[0]])
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, expected, atol=1e-5, rtol=0)
    assert verify(out).ok


def test_damaged_input_chunk_fails_alone_and_damaged_output_is_reembedded(where, source, weights):
    biggest = max(chunk_objects(source).items(), key=lambda kv: kv[1])[0]
    flip_byte(biggest)
    out = where("out.zarr")
    report = embed_store(source, out, weights, chunk_size=CHUNK, progress=False, errors="report")
    assert len(report.failed) == 1 and "DamagedChunkError" in report.failed[0].error
    assert "of 'quicklook' is damaged" in report.failed[0].error and len(report.failed[0].ids) == CHUNK
    assert status(out).missing == CHUNK
    flip_byte(biggest)  # the input is repaired (the same bit flipped back)
    assert embed_store(source, out, weights, progress=False).complete
    flip_byte(max(chunk_objects(out).items(), key=lambda kv: kv[1])[0])
    assert [d.variable for d in verify(out).damage] == [S.EMBEDDING]
    report = embed_store(source, out, weights, progress=False, repair=True)
    assert len(report.damaged) == 1 and report.computed == report.damaged and verify(out).ok
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, embed_whole_store(source, weights),
                               atol=1e-5, rtol=0)


def test_ingest_repair_rewrites_a_damaged_chunk_from_its_files(where, wvnet_samples, capsys):
    url = where("s.zarr")
    xwvnet.to_store(xwvnet.open_quicklooks(wvnet_samples), url, chunk_size=4)
    before = xwvnet.open_store(url)[S.QUICKLOOK].values
    flip_byte(max(chunk_objects(url).items(), key=lambda kv: kv[1])[0])
    assert main(["verify", url]) == 1 and "DAMAGED" in capsys.readouterr().out
    assert main(["ingest", str(wvnet_samples), "--store", url, "--repair"]) == 0
    assert "repaired chunks  1" in capsys.readouterr().out
    np.testing.assert_array_equal(xwvnet.open_store(url)[S.QUICKLOOK].values, before)
    assert verify(url).ok
    lost = xwvnet.history(url).snapshot[1]
    assert xwvnet.open_store(url, snapshot=lost).sizes[S.IMAGETTE] == 15  # the damaged snapshot is still there


def test_cli_embed_between_buckets_equals_a_local_embed(s3_endpoint, tmp_path, weights, capsys):
    from tests._factories import new_bucket

    bucket = new_bucket(s3_endpoint)
    local, remote = tmp_path / "in.zarr", f"s3://{bucket}/in.zarr"
    for url in (local, remote):
        xwvnet.to_store(make_imagettes(8, lines=SIZE, samples=SIZE, seed=2), url, chunk_size=CHUNK)
    assert main(["embed", remote, f"s3://{bucket}/out.zarr", "--encoder", str(weights), "--threads", "2"]) == 0
    assert main(["embed", str(local), str(tmp_path / "out.zarr"), "--encoder", str(weights)]) == 0
    capsys.readouterr()
    a = xwvnet.open_store(f"s3://{bucket}/out.zarr")[S.EMBEDDING].values
    np.testing.assert_allclose(a, xwvnet.open_store(tmp_path / "out.zarr")[S.EMBEDDING].values, atol=1e-6)
    assert not list(tmp_path.glob("s3*"))
