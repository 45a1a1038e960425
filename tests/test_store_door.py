"""The store door: holes are damage, storage failures are one line, secrets stay secret, limits are checked.

On a local disk and on a real S3 API (moto on 127.0.0.1). Failures are run through the real command in a
subprocess, so that what a user sees (one line, exit 1, no traceback, no Rust panic) is what is checked.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import icechunk
import numpy as np
import pytest

import xwvnet
from tests._factories import make_imagettes, new_bucket
from xwvnet import schema as S
from xwvnet.cli import main
from xwvnet.io import store as zs
from xwvnet.io.audit import status, verify
from xwvnet.io.storage import locate

REPO = Path(__file__).resolve().parent.parent


def _delete_chunk(url: str, key: str) -> None:
    """Delete one chunk from the branch tip through an icechunk session, and commit: a hole in the grid."""
    repo = zs.repository(locate(url))
    session = repo.writable_session(zs.BRANCH)
    asyncio.run(session.store.delete(key))
    session.commit(f"deleted {key}")


def _cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
         ) -> subprocess.CompletedProcess:
    command = [*(prefix or []), sys.executable, "-m", "xwvnet.cli", *args]
    return subprocess.run(command, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def _one_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text and "panicked" not in text and "WARN" not in text, text
    errors = re.sub(r"\w+:\s+\d+%\|[^\]]*\]", "", result.stderr)  # without the progress bar
    lines = [ln for ln in errors.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_hole_in_the_grid_is_damage_never_fill_values(where, capsys):
    url = where("h.zarr")
    xwvnet.to_store(xwvnet.synthetic.imagettes(16, size=(64, 64), seed=0), url, chunk_size=4)
    _delete_chunk(url, "quicklook/c/1/0/0")
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
    _delete_chunk(url, "latitude/c/0")
    with pytest.raises(zs.DamagedChunkError, match="of 'latitude' is damaged"):
        xwvnet.open_store(url).latitude.load()
    _delete_chunk(url, "imagette/c/0")
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
    _delete_chunk(out, "embedding/c/1/0")
    with pytest.raises(zs.DamagedChunkError, match="chunk 1 of 'embedding'"):
        xwvnet.open_store(out).load()
    assert status(out).missing_chunks == [1] and not verify(out).ok
    report = xwvnet.embed_store(source, out, weights, progress=False, repair=True)
    assert report.damaged == [1] and report.computed == [1] and verify(out).ok
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, before, atol=1e-6)


def test_the_grid_is_listed_once_per_snapshot(tmp_path):
    url = tmp_path / "g.zarr"
    xwvnet.to_store(make_imagettes(8), url, chunk_size=4)
    zs._LISTED.clear()
    listings = []
    real = icechunk.Session.chunk_coordinates
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(icechunk.Session, "chunk_coordinates", lambda self, path: listings.append(path) or real(self, path))
        xwvnet.open_store(url)
        first = len(listings)
        xwvnet.open_store(url).load()
    assert first == len(list(zs.opened(locate(url)).group.arrays()))  # every array, once
    assert len(listings) == first  # the same snapshot again: nothing listed


def test_a_file_in_the_way_is_one_line(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a store")
    for args in (["status", str(path)], ["verify", str(path)], ["history", str(path)],
                 ["ingest", str(tmp_path), "--out", str(path / "below.zarr")]):
        _one_line(_cli(*args), "is a file")
    with pytest.raises(zs.StoreAccessError, match="is a file"):
        xwvnet.to_store(make_imagettes(2), path)
    assert path.read_text() == "not a store"


def test_a_missing_bucket_and_missing_credentials_are_one_line(s3_endpoint):
    _one_line(_cli("status", "s3://no-such-bucket-xwvnet/s.zarr"), "does not exist")
    bucket = new_bucket(s3_endpoint)
    xwvnet.to_store(make_imagettes(2), f"s3://{bucket}/s.zarr")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {**bare, "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_CONFIG_FILE": os.devnull}
    result = subprocess.run([sys.executable, "-m", "xwvnet.cli", "status", f"s3://{bucket}/s.zarr"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    _one_line(result, "no credentials", "AWS_ACCESS_KEY_ID", "--storage-option")


_UNSHARE = shutil.which("unshare")


def _private_mount(tmp_path: Path, options: str) -> list[str] | None:
    """A command prefix that runs inside a private tmpfs mount at ``tmp_path/m`` (None where that is not allowed)."""
    if _UNSHARE is None:
        return None
    mount = tmp_path / "m"
    mount.mkdir()
    probe = subprocess.run([_UNSHARE, "--mount", "sh", "-c", f"mount -t tmpfs -o {options} none {mount}"],
                           capture_output=True)
    if probe.returncode:
        return None
    return [_UNSHARE, "--mount", "sh", "-c", f'mount -t tmpfs -o {options} none {mount} && exec "$@"', "sh"]


def test_a_read_only_location_and_a_full_disk_are_one_line(tmp_path, wvnet_samples):
    ro = _private_mount(tmp_path, "ro,size=1m")
    if ro is None:
        pytest.skip("needs `unshare --mount` to mount a private read-only tmpfs")
    _one_line(_cli("ingest", str(wvnet_samples), "--out", str(tmp_path / "m" / "s.zarr"), prefix=ro), "read-only")
    full = [*ro[:4], ro[4].replace("ro,size=1m", "size=64k"), *ro[5:]]
    _one_line(_cli("ingest", str(wvnet_samples), "--out", str(tmp_path / "m" / "s.zarr"), prefix=full), "full")


def test_a_damaged_branch_names_the_snapshots_still_readable(tmp_path):
    url = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(4), url)
    snapshot = xwvnet.history(url).snapshot[0]
    (url / "refs" / "branch.main" / "ref.json").write_text("garbage{")
    result = _cli("status", str(url))
    _one_line(result, "branch pointer", snapshot)
    (url / "refs" / "branch.main" / "ref.json").write_text(json.dumps({"snapshot": snapshot}))  # what the line says
    assert xwvnet.open_store(url).sizes[S.IMAGETTE] == 4


def test_secrets_never_appear(s3_endpoint):
    bucket = new_bucket(s3_endpoint)
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    options = {"access_key_id": os.environ["AWS_ACCESS_KEY_ID"], "secret_access_key": secret}
    location = locate(f"s3://{bucket}/s.zarr", options)
    assert secret not in repr(location) and secret not in str(location)
    assert "secret_access_key" in repr(location)
    xwvnet.to_store(make_imagettes(2), location)
    seen = [repr(xwvnet.history(location).to_dict()), repr(xwvnet.open_store(location).attrs), repr(status(location))]
    with pytest.raises(zs.StoreAccessError) as info:
        xwvnet.open_store(f"s3://{bucket}-missing/s.zarr", storage_options=options)
    seen.append(str(info.value))
    assert all(secret not in text for text in seen)


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
