"""Ingest (xwvnet.ingestion): SAFE products and quicklooks into one store, resumable, repairable; labels; bad luck."""

from __future__ import annotations

import shutil
import time

import dask
import numpy as np
import pytest

import xwvnet
from tests._factories import (
    chunk_objects,
    crafted_png,
    flip_byte,
    forget_chunk,
    kill_when,
    make_imagettes,
    small_pngs,
    spawn,
)
from tests._safe_factory import NAME, make_wv_safe
from xwvnet import ingestion
from xwvnet import schema as S
from xwvnet.cli import main
from xwvnet.ingestion import conform, ingest
from xwvnet.io import store as zs
from xwvnet.io.audit import verify
from xwvnet.io.safe import safe_to_imagettes


def test_a_folder_of_safe_products_and_quicklooks_is_ingested_whole(tmp_path, products, wvnet_samples):
    folder, zipped = products
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copytree(folder, mixed / folder.name)
    shutil.copy(zipped, mixed)
    for png in sorted(wvnet_samples.glob("*.png"))[:2]:
        shutil.copy(png, mixed)
    (mixed / "README.txt").write_text("not a source")
    report = ingest(mixed, tmp_path / "wv.zarr", spacing=(8.2, 9.0))
    assert report.added == 2 + 5 and not report.skipped


def test_bad_source_urls_and_empty_inputs_are_one_line_each(tmp_path):
    from xwvnet.errors import InputNotFoundError, XWVNetError

    for sources, error, what in ((["s3://bucket/ql/x.png"], ValueError, "read from a local disk"),
                                 (["s3://bucket/wv.zarr"], ValueError, "give quicklook files"),
                                 ([], ValueError, "given \\(an empty list\\)"),
                                 ([tmp_path / "none_*.png"], InputNotFoundError, "no file matches the pattern")):
        with pytest.raises(error, match=what) as err:
            ingest(sources, tmp_path / "wv.zarr")
        assert isinstance(err.value, XWVNetError) and len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "wv.zarr").exists()


def test_safe_products_and_quicklooks_into_one_store_resumable(tmp_path, products, wvnet_samples):
    folder, zipped = products
    store = tmp_path / "wv.zarr"
    pngs = sorted(wvnet_samples.glob("*.png"))[:3]
    report = ingest([*map(str, pngs), folder, zipped], store, spacing=(8.2, 9.0))
    assert report.added == 3 + 5 and report.total == 8 and not report.skipped
    ds = xwvnet.open_store(store)
    ids = [str(i) for i in ds[S.IMAGETTE].values]
    assert f"{NAME}:001" in ids and pngs[0].stem in ids
    safe_rows = ds.sel({S.IMAGETTE: [i for i in ids if ":" in i]})
    assert safe_rows[S.QUICKLOOK].dtype == np.uint8
    assert np.isfinite(safe_rows[S.LATITUDE].values).all()  # SAFE imagettes know their position, PNGs do not
    assert (safe_rows[S.VALID_LINES].values > 10).all()
    again = ingest([folder, zipped, *map(str, pngs)], store, spacing=(8.2, 9.0))
    assert again.added == 0 and again.present == 8 and again.total == 8


def test_a_damaged_imagette_is_skipped_and_named_the_rest_ingested(tmp_path, products):
    folder, _ = products
    tiff = next((folder / "measurement").glob("*-002.tiff"))
    tiff.write_bytes(tiff.read_bytes()[:-200])
    report = ingest([folder], tmp_path / "wv.zarr", spacing=(8.2, 9.0))
    assert report.added == 2 and any(":002" in s for s in report.skipped)


def test_cli_ingests_safe_products_in_parallel_processes(tmp_path, products, capsys):
    folder, zipped = products
    store = tmp_path / "wv.zarr"
    assert main(["ingest", str(folder), str(zipped), "--store", str(store), "--spacing", "8.2", "9.0",
                 "--keep-sigma0", "--workers", "2"]) == 0
    ds = xwvnet.open_store(store)
    assert ds.sizes[S.IMAGETTE] == 5 and S.SIGMA0 in ds
    assert "added" in capsys.readouterr().out


def test_conform_fills_and_drops_variables_to_fit_the_store():
    like = xwvnet.synthetic.imagettes(2, seed=0, size=(16, 16))
    ds = xwvnet.synthetic.imagettes(2, seed=1, size=(16, 16)).drop_vars(["hs", S.HEADING]).assign(extra=(
        S.IMAGETTE, [1, 2]))
    out, notes = conform(ds, like)
    assert set(out.variables) == set(like.variables)
    assert np.isnan(out["hs"].values).all() and np.isnan(out[S.HEADING].values).all()
    assert any("extra" in n for n in notes) and any("hs" in n for n in notes)


def test_store_keeps_what_was_there_when_a_product_vanishes(tmp_path, products):
    folder, zipped = products
    store = tmp_path / "wv.zarr"
    ingest([folder], store, spacing=(8.2, 9.0))
    shutil.rmtree(folder)
    report = ingest([zipped], store, spacing=(8.2, 9.0))
    assert report.total == 5


def test_sub_millisecond_times_are_stored_as_whole_milliseconds_when_appending(tmp_path, products, wvnet_samples):
    folder, _ = products
    store = tmp_path / "wv.zarr"
    ingest([str(sorted(wvnet_samples.glob("*.png"))[0])], store)  # a millisecond store made by a quicklook
    ingest([folder], store, spacing=(8.2, 9.0))
    times = xwvnet.open_store(store)[S.TIME].values
    assert times.dtype.kind == "M" and (times >= np.datetime64("2019-01-01")).all()
    assert (times <= np.datetime64("2019-12-31")).all()
    direct = xwvnet.open_safe([folder])[S.TIME].values
    np.testing.assert_array_equal(np.sort(times[1:]), np.sort(direct.astype("datetime64[ms]").astype(times.dtype)))


def test_label_rows_for_imagettes_not_in_the_store_are_reported_and_the_rest_applied(tmp_path, capsys):
    """A row for an imagette not committed (yet) does not vanish: the report and the command name it."""

    store = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(4), store)
    ids = [str(i) for i in xwvnet.open_store(store)[S.IMAGETTE].values]
    csv = tmp_path / "tags.csv"
    rows = [f"{name}.png,{i % 2},1" for i, name in enumerate([*ids[:3], "s1a-not-ingested-yet"])]
    csv.write_text("\n".join(["filename,WS,MC", *rows]) + "\n")
    report = xwvnet.add_labels(store, csv)
    assert (report.added, report.present, report.total) == (3, 1, 4)
    assert report.skipped == ["row for s1a-not-ingested-yet: no such imagette in the store"]
    assert len(report.warnings) == 1 and report.warnings[0].startswith("1 row(s) of tags.csv match no imagette")
    tags = xwvnet.open_store(store)[S.LABELS].sel({S.LABEL: ["WS", "MC"]}).values
    np.testing.assert_array_equal(tags, [[0, 1], [1, 1], [0, 1], [-1, -1]])
    assert main(["label", str(store), str(csv)]) == 0
    out = capsys.readouterr().out
    assert "3 of 4" in out and "1 row(s) of tags.csv match no imagette" in out and "s1a-not-ingested-yet" in out


def test_safe_imagettes_are_computed_where_client_says_threads_here_while_a_client_is_active(tmp_path):
    """``client="threads"``: the SAFE imagettes are computed on threads here, not on the active client's cluster."""
    distributed = pytest.importorskip("distributed")
    product, _ = make_wv_safe(tmp_path / "safe", sizes=[(600, 500)], seed=4)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        with distributed.get_task_stream(client) as here:
            assert ingest([product], tmp_path / "here", client="threads").added == 1
        with distributed.get_task_stream(client) as there:
            assert ingest([product], tmp_path / "there").added == 1  # default: the active client
    assert not here.data and there.data  # only the default run used the cluster
    np.testing.assert_array_equal(xwvnet.open_store(tmp_path / "here").quicklook.values,
                                  xwvnet.open_store(tmp_path / "there").quicklook.values)


def test_ingest_on_a_distributed_cluster(tmp_path, big_safe_product):
    distributed = pytest.importorskip("distributed")
    import xwvnet

    path, _ = big_safe_product
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        report = xwvnet.ingest([path], tmp_path / "store", client=client)
    assert report.added == 2
    ref = safe_to_imagettes(path)
    stored = xwvnet.open_store(tmp_path / "store")
    np.testing.assert_array_equal(stored.quicklook.values, ref.quicklook.values)


def test_ingest_skips_a_bomb_and_stores_the_rest_unpadded(tmp_path):
    small_pngs(tmp_path / "in", n=3)
    crafted_png(tmp_path / "in" / "bomb.png", 12000, 12000)
    report = ingest(tmp_path / "in", tmp_path / "store.zarr")
    assert (report.added, report.total, len(report.skipped)) == (3, 3, 1)
    assert "bomb.png" in report.skipped[0]
    stored = xwvnet.open_store(tmp_path / "store.zarr")
    assert (stored.sizes[S.LINE], stored.sizes[S.SAMPLE]) == (20, 30)


# ---- with real processes, on a local disk and on S3: SIGKILLed and concurrent ingests, readers and labels during one
# ----------------------------------------------------------------------------------------------------------------------
def _ids(url: str) -> list[str]:
    return [str(i) for i in xwvnet.open_store(url)[S.IMAGETTE].values]


def test_sigkilled_ingest_reruns_to_completion(where, wvnet_samples):
    url = where("s.zarr")
    proc = spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "1"])
    kill_when(proc, lambda: zs.store_kind(url) == "imagettes" and len(_ids(url)) >= 3)
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
    procs = [spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "2"])
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
    proc = spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "1"])
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
    proc = spawn(["-m", "xwvnet.cli", "ingest", str(wvnet_samples), "--store", url, "--batch", "1"])
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


def test_ingest_repair_rewrites_a_missing_chunk_from_safe_products(tmp_path, products):
    folder, zipped = products
    url = str(tmp_path / "wv.zarr")
    ingest([folder, zipped], url, spacing=(8.2, 9.0))
    before = xwvnet.open_store(url)[S.QUICKLOOK].values
    forget_chunk(url, "quicklook/c/0/0/0")  # the 5 imagettes of both products share one chunk
    part = ingest([folder], url, spacing=(8.2, 9.0), repair=True)  # 3 of its 5 imagettes: not rewritten, said why
    assert part.repaired == 0 and len(part.damaged) == 1 and "not among the SAFE products given" in part.damaged[0]
    report = ingest([folder, zipped], url, spacing=(8.2, 9.0), repair=True)
    assert (report.repaired, report.damaged, report.added) == (1, [], 0) and verify(url).ok
    np.testing.assert_array_equal(xwvnet.open_store(url)[S.QUICKLOOK].values, before)




def test_where_safe_products_are_computed_is_decided_before_anything_is_written(tmp_path, wvnet_samples, products):
    url = tmp_path / "s.zarr"
    with pytest.raises(TypeError, match="client must be"):
        ingest([wvnet_samples, products[0]], url, client=3.5)  # the quicklook files would be ingested first
    assert not url.exists()
    computed = []
    real, real_repair = ingestion.to_store, zs.repair

    def spy(ds, *args, **kwargs):
        computed.append(dask.config.get("scheduler", None))
        return real(ds, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ingestion, "to_store", spy)
        mp.setattr(zs, "repair", lambda *a: computed.append(dask.config.get("scheduler", None)) or real_repair(*a))
        xwvnet.to_store(xwvnet.open_quicklooks(wvnet_samples).isel({S.IMAGETTE: slice(0, 8)}), url, chunk_size=8)
        forget_chunk(str(url), "quicklook/c/0/0/0")
        report = ingest([wvnet_samples, products[0]], url, spacing=(8.2, 9.0), client="threads", repair=True)
    assert report.repaired == 1 and report.added == 7 + 3 and verify(url).ok
    assert len(computed) == 3 and set(computed) == {"threads"}  # the repair, the quicklooks and the SAFE imagettes

def test_ingest_repair_rewrites_a_chunk_holding_quicklook_files_and_safe_imagettes(tmp_path, wvnet_samples, products):
    folder, zipped = products
    url = str(tmp_path / "mixed.zarr")
    ingest([wvnet_samples, folder, zipped], url, spacing=(8.2, 9.0))
    before = xwvnet.open_store(url).load()
    assert before.sizes[S.IMAGETTE] == 20 and zs.opened(zs.locate(url)).arrays[S.QUICKLOOK].chunks[0] >= 20
    forget_chunk(url, "quicklook/c/0/0/0")  # the 15 quicklook files and the 5 SAFE imagettes share this chunk
    assert not verify(url).ok
    alone = ingest([wvnet_samples], url, repair=True)  # the SAFE imagettes are not given: said, nothing rewritten
    assert alone.repaired == 0 and "5 of these imagettes are not among the quicklook files given" in alone.damaged[0]
    report = ingest([wvnet_samples, folder, zipped], url, spacing=(8.2, 9.0), repair=True)
    assert (report.repaired, report.damaged, report.added) == (1, [], 0) and verify(url).ok
    after = xwvnet.open_store(url).load()
    np.testing.assert_array_equal(after[S.QUICKLOOK].values, before[S.QUICKLOOK].values)
    assert list(after[S.IMAGETTE].values) == list(before[S.IMAGETTE].values)

# ---- SAFE imagettes in worker processes (ingest(workers=N)) ---------------------------------------------------------
def _die(*args):
    """A task that kills its worker process, as the kernel's out-of-memory killer would."""
    import os

    os._exit(9)


def test_ingest_in_worker_processes_equals_in_process_commits_in_order_and_resumes(tmp_path, products, caplog):
    import logging

    folder, zipped = products
    here = ingest([folder, zipped], tmp_path / "here", spacing=(8.2, 9.0), keep_sigma0=True, client="threads")
    ingest([folder], tmp_path / "pool", spacing=(8.2, 9.0), keep_sigma0=True)  # 3 of the 5 stored already
    with caplog.at_level(logging.INFO, logger="xwvnet.ingestion"):
        report = ingest([folder, zipped], tmp_path / "pool", spacing=(8.2, 9.0), keep_sigma0=True, workers=2, batch=1)
    assert (report.added, report.present, report.total, report.commits) == (2, 3, 5, 2)  # only the new ones computed
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ingest worker")]
    assert 1 <= len(lines) <= 2 and all("peak memory" in line for line in lines)
    a, b = xwvnet.open_store(tmp_path / "here"), xwvnet.open_store(tmp_path / "pool")
    assert here.added == 5 and list(a[S.IMAGETTE].values) == list(b[S.IMAGETTE].values)
    np.testing.assert_array_equal(a[S.QUICKLOOK].values, b[S.QUICKLOOK].values)
    np.testing.assert_array_equal(a[S.SIGMA0].values, b[S.SIGMA0].values)
    fresh = ingest([folder, zipped], tmp_path / "new", spacing=(8.2, 9.0), keep_sigma0=True, workers=2, batch=2)
    assert (fresh.added, fresh.commits) == (5, 3)  # 2 + 2 + 1, in source order
    np.testing.assert_array_equal(xwvnet.open_store(tmp_path / "new")[S.SIGMA0].values, a[S.SIGMA0].values)
    again = ingest([folder, zipped], tmp_path / "new", spacing=(8.2, 9.0), keep_sigma0=True, workers=2)
    assert (again.added, again.present, again.total, again.commits) == (0, 5, 5, 0)


def test_ingest_workers_refuses_a_client_too_and_bad_counts(tmp_path, products):
    from xwvnet.errors import InvalidArgumentError

    folder, _ = products
    with pytest.raises(InvalidArgumentError, match="not both"):
        ingest([folder], tmp_path / "s", workers=2, client="threads")
    with pytest.raises(ValueError, match="workers"):
        ingest([folder], tmp_path / "s", workers=0)
    assert not (tmp_path / "s").exists()


def test_a_worker_process_that_dies_is_one_clear_error(tmp_path, products, monkeypatch):
    from xwvnet import ingestion
    from xwvnet.distributed import WorkerDiedError

    monkeypatch.setattr(ingestion, "_compute_imagette", _die)
    with pytest.raises(WorkerDiedError, match="worker process died .* fewer workers than 2") as err:
        ingest([products[0]], tmp_path / "s", spacing=(8.2, 9.0), workers=2)
    assert len(str(err.value).splitlines()) == 1 and "0 imagettes committed are kept" in str(err.value)


def test_ctrl_c_keeps_committed_batches_stops_every_worker_and_the_rerun_completes(tmp_path, products):
    """Code piped into ``python -`` (no script to re-run: workers are forked); Ctrl-C, as a terminal sends it to the
    whole process group, right after the first commit."""
    import os
    import signal
    import subprocess
    import sys

    psutil = pytest.importorskip("psutil")
    if sys.platform != "linux":
        pytest.skip("workers are forked on Linux only; elsewhere piped code is refused in one line")
    folder, zipped = products
    store = tmp_path / "s.zarr"
    code = f"""
import multiprocessing, os, signal
import xwvnet
from xwvnet import ingestion
commit = ingestion.to_store
def interrupted(*args, **kwargs):
    report = commit(*args, **kwargs)
    print("workers", *[p.pid for p in multiprocessing.active_children()], flush=True)
    os.killpg(os.getpgid(0), signal.SIGINT)  # Ctrl-C in a terminal: the parent and its workers
    return report
ingestion.to_store = interrupted
xwvnet.ingest([{str(folder)!r}, {str(zipped)!r}], {str(store)!r}, spacing=(8.2, 9.0), workers=2, batch=1)
"""
    proc = subprocess.run([sys.executable, "-"], input=code, capture_output=True, text=True, timeout=300,
                          start_new_session=True, env={**os.environ, "XWVNET_TORCH_THREADS": "1"})
    assert proc.returncode != 0 and proc.stderr.rstrip().endswith("KeyboardInterrupt"), proc.stderr
    assert proc.stderr.count("Traceback") == 1, proc.stderr  # the workers ignored it: the parent decided
    pids = [int(p) for p in proc.stdout.split("workers", 1)[1].split()]
    assert len(pids) == 2 and not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    assert xwvnet.open_store(store).sizes[S.IMAGETTE] == 1  # the first batch, committed before Ctrl-C
    report = ingest([folder, zipped], store, spacing=(8.2, 9.0), workers=2)
    assert (report.added, report.present, report.total) == (4, 1, 5)
    ids = [str(i) for i in xwvnet.open_store(store)[S.IMAGETTE].values]
    assert ids == [str(i) for i in safe_to_imagettes([folder, zipped], spacing=(8.2, 9.0))[S.IMAGETTE].values]
    del signal
