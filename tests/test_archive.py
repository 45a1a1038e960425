"""embed_store (xwvnet.archive): chunk by chunk, resumable, appendable, failing per chunk; SIGKILL, races, Ctrl-C."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import xwvnet
from tests._factories import (
    REPO,
    RecordingBars,
    chunk_objects,
    embed_whole_store,
    flip_byte,
    kill_when,
    make_imagettes,
    save_random_resnet18,
    spawn,
)
from xwvnet import archive
from xwvnet import schema as S
from xwvnet.archive import ChunkTask, EmbedInterrupted, EmbedStoreError, embed_store
from xwvnet.cli import main
from xwvnet.io import store as zs
from xwvnet.io.audit import status, verify
from xwvnet.io.storage import locate

torch = pytest.importorskip("torch")

N, SIZE, IN_CHUNK = 16, 64, 4
LONG_N = 96  # imagettes of the Ctrl-C runs: enough chunks to interrupt one mid-run
TINY_N = 8  # imagettes of the progress-bar and client runs


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=3), path, chunk_size=IN_CHUNK)
    return path


@pytest.fixture(scope="module")
def reference(source, weights) -> np.ndarray:
    """Single-process embeddings of the whole input in one block."""
    return embed_whole_store(source, weights)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_threaded_run_writes_embeddings_and_coords(source, weights, reference, tmp_path):
    out = tmp_path / "out.zarr"
    report = embed_store(source, out, weights, chunk_size=IN_CHUNK, progress=False)
    assert report.complete and report.failed == []
    assert report.computed == list(range(N // IN_CHUNK)) and report.embedded == N
    assert "thread pool" in report.runner
    emb = xwvnet.open_store(out)
    np.testing.assert_allclose(emb[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)
    src = xwvnet.open_store(source)
    assert list(emb[S.IMAGETTE].values) == list(src[S.IMAGETTE].values)
    np.testing.assert_array_equal(emb[S.TIME].values, src[S.TIME].values)
    np.testing.assert_array_equal(emb[S.SWATH].values, src[S.SWATH].values)
    assert emb[S.EMBEDDING].attrs["encoder_arch"] == "resnet18"
    assert emb[S.EMBEDDING].chunks[0][0] == IN_CHUNK  # region writes aligned to the stored chunks
    assert status(out).missing_chunks == [] and status(out).complete == N
    assert "complete          yes" in report.summary()
    again = embed_store(source, out, weights, progress=False)  # nothing left to do
    assert again.computed == [] and again.skipped == N // IN_CHUNK and again.complete


def test_append_embeds_only_new_imagettes(source, weights, tmp_path):
    src = _copy(source, tmp_path / "in.zarr")
    out = tmp_path / "out.zarr"
    embed_store(src, out, weights, chunk_size=6, progress=False)  # 16 = 6 + 6 + 4: the last chunk is partly filled
    extra = make_imagettes(5, lines=SIZE, samples=SIZE, seed=9)
    xwvnet.to_store(extra, src)
    report = embed_store(src, out, weights, progress=False)
    assert report.embedded == 5 and report.total == N + 5 and report.complete
    assert report.computed == [2, 3]  # the partly filled chunk resumed where it stopped, then a new one
    emb = xwvnet.open_store(out)
    all_ids = list(xwvnet.open_store(src)[S.IMAGETTE].values)
    assert list(emb[S.IMAGETTE].values) == all_ids  # order follows the input
    from xwvnet.inference import embed_block

    new = embed_block(extra[S.QUICKLOOK].values, extra[S.VALID_LINES].values, extra[S.VALID_SAMPLES].values,
                      encoder=str(weights))
    np.testing.assert_allclose(emb[S.EMBEDDING].values[N:], new, atol=1e-5, rtol=0)
    assert not np.isnan(emb[S.EMBEDDING].values).any()


def test_corrupt_chunk_fails_alone_and_rerun_completes(source, weights, reference, tmp_path):
    src = _copy(source, tmp_path / "in.zarr")
    biggest = max(chunk_objects(str(src)).items(), key=lambda kv: kv[1])[0]  # one quicklook chunk
    flip_byte(biggest)
    out = tmp_path / "out.zarr"
    report = embed_store(src, out, weights, chunk_size=IN_CHUNK, progress=False, errors="report")
    assert not report.complete and len(report.failed) == 1
    bad = report.failed[0].chunk_index
    ids = list(xwvnet.open_store(source)[S.IMAGETTE].values)
    assert report.failed[0].ids == ids[bad * 4 : bad * 4 + 4] == report.missing_ids
    assert ids[bad * 4] in report.summary() and "re-run" in report.summary()
    assert sorted(report.computed) == sorted(set(range(4)) - {bad})
    assert status(out).missing_chunks == [bad]
    with pytest.raises(EmbedStoreError, match=ids[bad * 4]) as info:
        embed_store(src, out, weights, progress=False)
    assert info.value.report.computed == []
    flip_byte(biggest)  # the fix
    fixed = embed_store(src, out, weights, progress=False)
    assert fixed.complete and fixed.computed == [bad]
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)


def test_resume_refuses_another_encoder_or_input(source, weights, tmp_path):
    out = tmp_path / "out.zarr"
    embed_store(source, out, weights, chunk_size=8, progress=False)
    other = tmp_path / "other.pt"
    from xwvnet.models.resnet import resnet18

    torch.save(resnet18().state_dict(), other)
    with pytest.raises(ValueError, match="encoder_weights_hash"):
        embed_store(source, out, other, progress=False)
    with pytest.raises(ValueError, match="chunk_size=8"):
        embed_store(source, out, weights, chunk_size=4, progress=False)
    rewritten = tmp_path / "rewritten.zarr"
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=4), rewritten, chunk_size=IN_CHUNK)
    with pytest.raises(ValueError, match="different input"):
        embed_store(rewritten, out, weights, progress=False)


def test_refuses_to_overwrite_foreign_paths(source, weights, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        embed_store(source, folder, weights, progress=False)
    assert (folder / "keep.txt").read_text() == "mine"
    other = tmp_path / "store.zarr"  # an imagette store is not an embedding store
    shutil.copytree(source, other)
    with pytest.raises(ValueError, match="not an xwvnet embedding store"):
        embed_store(source, other, weights, progress=False)
    assert xwvnet.io.store.store_kind(other) == "imagettes"
    with pytest.raises(ValueError, match="holds no imagettes"):
        embed_store(tmp_path / "missing.zarr", tmp_path / "o.zarr", weights, progress=False)


def test_tasks_carry_the_spec_not_the_weights(source, weights, tmp_path):
    encoder = xwvnet.load_encoder(weights)
    assert encoder._module is not None  # built in this process
    xwvnet.io.store.extend_embedding_store(locate(tmp_path / "o.zarr"), xwvnet.open_store(source), chunk_size=4,
                                           dim=512, attrs={}, embedding_attrs={})
    fork = xwvnet.io.store.EmbeddingWriter(locate(tmp_path / "o.zarr")).fork()
    task = ChunkTask(locate(source), "snapshot", S.QUICKLOOK, 0, 0, 0, 4, encoder, 64, "cpu", "float32", fork)
    size = len(pickle.dumps(task))
    assert size < 5_000 < weights.stat().st_size // 1000


def test_cli_embed_exit_codes(source, weights, tmp_path, capsys):
    from xwvnet.cli import main

    out = tmp_path / "cli.zarr"
    assert main(["embed", str(source), str(out), "--encoder", str(weights), "--batch-size", "8"]) == 0
    assert "complete          yes" in capsys.readouterr().out
    src = _copy(source, tmp_path / "in.zarr")
    flip_byte(max(chunk_objects(str(src)).items(), key=lambda kv: kv[1])[0])
    assert main(["embed", str(src), str(tmp_path / "bad.zarr"), "--encoder", str(weights), "--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    assert "missing" in printed and "test-3-0000" in printed


def test_float16_embedding_store_halves_the_size_and_keeps_neighbours(tmp_path):
    import xwvnet
    from tests._factories import save_random_resnet18
    from xwvnet.archive import embed_store

    weights = save_random_resnet18(tmp_path / "r18.pt", seed=0)
    source = tmp_path / "in.zarr"
    xwvnet.to_store(xwvnet.synthetic.imagettes(24, seed=5, size=(32, 32)), source)
    full, half = tmp_path / "f32.zarr", tmp_path / "f16.zarr"
    embed_store(source, full, weights, progress=False, chunk_size=8, batch_size=8)
    embed_store(source, half, weights, progress=False, chunk_size=8, batch_size=8, dtype="float16")
    a, b = xwvnet.open_store(full), xwvnet.open_store(half)
    assert a[S.EMBEDDING].dtype == np.float32 and b[S.EMBEDDING].dtype == np.float16
    np.testing.assert_allclose(b[S.EMBEDDING].values.astype(np.float32), a[S.EMBEDDING].values, rtol=1e-3, atol=1e-3)
    na, nb = xwvnet.neighbors(a, k=3).compute(), xwvnet.neighbors(b, k=3).compute()
    # random-init embeddings of synthetic imagettes are near-duplicates (cosine ~0.99), so ties may reorder: the
    # neighbours found in float16 must be as similar, in float32, as the float32 ones
    x = a[S.EMBEDDING].values.astype(np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    position = {name: i for i, name in enumerate(a[S.IMAGETTE].values)}
    found = np.array([[u[i] @ u[position[n]] for n in row] for i, row in enumerate(nb["neighbor"].values)])
    np.testing.assert_allclose(found, na["similarity"].values, atol=2e-3)
    with pytest.raises(ValueError, match="dtype"):
        embed_store(source, half, weights, progress=False, chunk_size=8, batch_size=8)  # resume as float32
    with pytest.raises(ValueError, match="dtype must be"):
        embed_store(source, tmp_path / "x.zarr", weights, progress=False, dtype="int8")


def test_bad_arguments_are_refused_before_any_output(source, weights, tmp_path):
    out = tmp_path / "out.zarr"
    cases = [({"precision": "fp16"}, "precision must be one of"), ({"batch_size": 0}, "batch_size"),
             ({"chunk_size": 2.5}, "chunk_size must be"), ({"chunk_size": 0}, "chunk_size must be"),
             ({"dtype": "int8"}, "dtype must be"), ({"device": "gpu0"}, "device must be")]
    if not torch.cuda.is_available():  # the tasks would run here, where CUDA cannot work
        cases.append(({"device": "cuda"}, "no visible CUDA GPU"))
    for bad, match in cases:
        with pytest.raises(ValueError, match=match):
            embed_store(source, out, weights, progress=False, **bad)
        assert not out.exists(), bad
    assert embed_store(source, out, weights, progress=False, precision="float32").complete  # the fixed re-run


# ---- threads while a client is active, the progress bar per batch, CUDA refused without a GPU ---------
@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    xwvnet.to_store(make_imagettes(TINY_N, lines=48, samples=48, seed=1), path, chunk_size=IN_CHUNK)
    return path


def test_threads_here_while_a_client_is_active(tiny_source, weights, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None):
        report = embed_store(tiny_source, tmp_path / "t.zarr", weights, client="threads", progress=False)
    assert report.complete and "thread pool" in report.runner


def test_embed_store_bar_moves_per_batch(tiny_source, weights, tmp_path, monkeypatch):
    bars = RecordingBars(monkeypatch)
    embed_store(tiny_source, tmp_path / "p.zarr", weights, chunk_size=IN_CHUNK, batch_size=2, progress=True)
    moves = [u for u in bars.updates if u]
    assert len(moves) == 1 and sum(moves[0]) == TINY_N
    assert max(moves[0]) <= 2  # per batch of 2 imagettes, not per chunk of 4


# no client= here: where a dask client is active the cluster decides, and says that no worker declares a 'GPU'
# resource instead (so no module-scoped client fixture in this file)
def test_cuda_without_a_gpu_is_a_clear_error_for_embed_store_before_any_output(few_waves, tmp_path, no_gpu):
    from xwvnet.io.store import to_store

    to_store(few_waves, tmp_path / "s.zarr")
    with pytest.raises(ValueError, match="no visible CUDA GPU"):
        xwvnet.embed_store(tmp_path / "s.zarr", tmp_path / "e.zarr", "random-resnet50", device="cuda",
                           progress=False)
    assert not (tmp_path / "e.zarr").exists()
    assert [p for p in os.listdir(tmp_path) if not p.endswith(".commit-lock")] == ["s.zarr"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_with_a_gpu_embed_store_writes_what_the_cpu_writes(few_waves, weights, tmp_path, monkeypatch):
    """The call of the test above where there is a GPU: the store embedded there equals the one embedded on the CPU."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # float32 convolutions, as on the CPU
    xwvnet.to_store(few_waves, tmp_path / "s.zarr")
    for device in ("cuda", "cpu"):
        report = xwvnet.embed_store(tmp_path / "s.zarr", tmp_path / f"{device}.zarr", weights, device=device,
                                    client="threads", progress=False)
        assert report.complete, device
    gpu, cpu = (xwvnet.open_store(tmp_path / f"{device}.zarr")[S.EMBEDDING].values for device in ("cuda", "cpu"))
    assert gpu.shape == cpu.shape == (16, 512) and np.isfinite(gpu).all()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-3 * float(np.abs(cpu).max()))


# ---- with real processes, on a local disk and on S3: SIGKILLed and concurrent runs, damaged chunks ---------------
@pytest.fixture(scope="module")
def other_weights(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("w") / "b.pt", seed=1)


@pytest.fixture
def source_url(where) -> str:
    url = where("in.zarr")
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=3), url, chunk_size=IN_CHUNK)
    return url


def test_sigkilled_embed_reruns_to_the_uninterrupted_result(where, source_url, weights):
    out = where("out.zarr")
    proc = spawn(["-m", "xwvnet.cli", "embed", source_url, out, "--encoder", str(weights), "--chunk", "2",
                  "--threads", "1", "--commit-every", "0"])

    def ready() -> bool:
        try:
            return zs.store_kind(out) == "embeddings" and status(out).complete >= 4
        except ValueError:
            return False

    kill_when(proc, ready)
    before = status(out)
    done_before = set(range(N // 2)) - set(before.missing_chunks)
    assert 2 <= len(done_before) < N // 2 and before.command.startswith("xwvnet embed")
    assert main(["status", out]) == 1
    report = embed_store(source_url, out, weights, progress=False)
    assert report.complete and set(report.computed).isdisjoint(done_before)
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, embed_whole_store(source_url, weights),
                               atol=1e-5, rtol=0)
    assert status(out).missing == 0 and verify(out).ok


def test_concurrent_embeds_with_two_encoders_never_mix(where, source_url, weights, other_weights):
    out = where("out.zarr")
    code = ("import sys; from xwvnet.archive import embed_store; "
            "embed_store(sys.argv[1], sys.argv[2], sys.argv[3], chunk_size=2, progress=False)")
    procs = [spawn(["-c", code, source_url, out, str(w)]) for w in (weights, other_weights)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    winners = [i for i, (c, _) in enumerate(results) if c == 0]
    assert len(winners) == 1, results
    loser = results[1 - winners[0]][1]
    assert "encoder_weights_hash" in loser or "another writer committed" in loser, loser
    expected = embed_whole_store(source_url, (weights, other_weights)[winners[0]])
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, expected, atol=1e-5, rtol=0)
    assert verify(out).ok


def test_damaged_input_chunk_fails_alone_and_damaged_output_is_reembedded(where, source_url, weights):
    biggest = max(chunk_objects(source_url).items(), key=lambda kv: kv[1])[0]
    flip_byte(biggest)
    out = where("out.zarr")
    report = embed_store(source_url, out, weights, chunk_size=IN_CHUNK, progress=False, errors="report")
    assert len(report.failed) == 1 and "DamagedChunkError" in report.failed[0].error
    assert "of 'quicklook' is damaged" in report.failed[0].error and len(report.failed[0].ids) == IN_CHUNK
    assert status(out).missing == IN_CHUNK
    flip_byte(biggest)  # the input is repaired (the same bit flipped back)
    assert embed_store(source_url, out, weights, progress=False).complete
    flip_byte(max(chunk_objects(out).items(), key=lambda kv: kv[1])[0])
    assert [d.variable for d in verify(out).damage] == [S.EMBEDDING]
    report = embed_store(source_url, out, weights, progress=False, repair=True)
    assert len(report.damaged) == 1 and report.computed == report.damaged and verify(out).ok
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, embed_whole_store(source_url, weights),
                               atol=1e-5, rtol=0)


def test_cli_embed_between_buckets_equals_a_local_embed(s3_endpoint, tmp_path, weights, capsys):
    from tests._factories import new_bucket

    bucket = new_bucket(s3_endpoint)
    local, remote = tmp_path / "in.zarr", f"s3://{bucket}/in.zarr"
    for url in (local, remote):
        xwvnet.to_store(make_imagettes(8, lines=SIZE, samples=SIZE, seed=2), url, chunk_size=IN_CHUNK)
    assert main(["embed", remote, f"s3://{bucket}/out.zarr", "--encoder", str(weights), "--threads", "2"]) == 0
    assert main(["embed", str(local), str(tmp_path / "out.zarr"), "--encoder", str(weights)]) == 0
    capsys.readouterr()
    a = xwvnet.open_store(f"s3://{bucket}/out.zarr")[S.EMBEDDING].values
    np.testing.assert_allclose(a, xwvnet.open_store(tmp_path / "out.zarr")[S.EMBEDDING].values, atol=1e-6)
    assert not list(tmp_path.glob("s3*"))


# ---- Ctrl-C during an embed run keeps the finished work -------------------------------------------------
# The first SIGINT stops submitting chunk tasks, lets the running ones finish, commits them (whatever
# ``--commit-every``) and ends with 130 (``EmbedInterrupted`` in Python); a re-run embeds only the rest, to
# the uninterrupted result. A second SIGINT ends the run at once. The command is a real process sent real
# signals.
@pytest.fixture(scope="module")
def long_source(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("in") / "in.zarr")
    xwvnet.to_store(make_imagettes(LONG_N, lines=SIZE, samples=SIZE, seed=3), url, chunk_size=IN_CHUNK)
    return url


@pytest.fixture(scope="module")
def long_reference(long_source, weights) -> np.ndarray:
    return embed_whole_store(long_source, weights)


class _Embed:
    """``xwvnet embed`` in a process of its own, its stderr (progress bar, messages) read as it comes."""

    def __init__(self, source: str, out: str, weights: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xwvnet.cli", "embed", source, out, "--encoder", str(weights), "--chunk-size",
             str(IN_CHUNK), "--commit-every", "3600"],
            cwd=REPO, env={**os.environ, "XWVNET_TORCH_THREADS": "1"}, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._err = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.proc.stderr.fileno(), 1 << 16):
            self._err.extend(chunk)

    @property
    def err(self) -> str:
        return bytes(self._err).decode(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match:
        """The first match of ``pattern`` in stderr, while the run still goes on."""
        deadline = time.monotonic() + timeout
        while (found := re.search(pattern, self.err)) is None:
            assert self.proc.poll() is None, f"the run ended first:\n{self.err[-3000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} in time:\n{self.err[-3000:]}"
            time.sleep(0.02)
        return found

    def mid_run(self) -> None:
        """Wait until the bar has moved (a chunk is done, others run, most are still to come)."""
        found = self.wait_for(rf"\|\s*(\d+)/{LONG_N} \[")
        while int(found.group(1)) == 0:
            found = self.wait_for(rf"\|\s*([1-9]\d*)/{LONG_N} \[")
        assert int(found.group(1)) < LONG_N // 2, f"the run went too far before it could be interrupted:\n{self.err}"

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout)  # stdout holds a few lines at most: it cannot fill its pipe
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode, self.proc.stdout.read().decode(), self.err


def test_first_ctrl_c_commits_the_finished_chunks_and_a_rerun_embeds_the_rest(tmp_path, long_source, weights,
                                                                              long_reference):
    out = str(tmp_path / "out.zarr")
    run = _Embed(long_source, out, weights)
    run.mid_run()
    run.interrupt()
    code, stdout, err = run.finish(timeout=120)
    assert code == 130, err
    assert "Traceback" not in err, err
    assert re.search(r"xwvnet: stopping after the \d+ running chunks \(up to 120 s\); Ctrl-C again to abort", err)
    assert "complete          NO" in stdout
    assert f"re-run the same command to complete the store: xwvnet embed {long_source} {out}" in err
    kept = status(out)
    assert 0 < kept.complete < LONG_N and kept.complete % IN_CHUNK == 0  # committed although --commit-every 3600
    report = embed_store(long_source, out, weights)
    assert report.skipped == kept.complete // IN_CHUNK and len(report.computed) == (LONG_N - kept.complete) // IN_CHUNK
    assert report.complete and status(out).missing == 0
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, long_reference, atol=1e-5, rtol=0)


def test_second_ctrl_c_exits_130_at_once(tmp_path, long_source, weights, long_reference):
    out = str(tmp_path / "out.zarr")
    run = _Embed(long_source, out, weights)
    run.mid_run()
    run.interrupt()
    run.wait_for("Ctrl-C again to abort")  # the first was handled: the second is not merged with it
    run.interrupt()
    code, _, err = run.finish(timeout=15)  # the running chunks are not waited for (before: ~17 s)
    assert code == 130, err
    assert "Traceback" not in err and "leaked" not in err, err
    assert err.rstrip().splitlines()[-1].startswith("xwvnet embed: aborted; "), err
    # what was committed is whole: a re-run completes the store to the uninterrupted result
    assert embed_store(long_source, out, weights).complete
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, long_reference, atol=1e-5, rtol=0)


M = 32


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("in") / "small.zarr")
    xwvnet.to_store(make_imagettes(M, lines=SIZE, samples=SIZE, seed=4), url, chunk_size=IN_CHUNK)
    return url


def _signal_after(monkeypatch, chunks: dict[int, int], pause: float = 0.0) -> None:
    """``run_chunk`` sends SIGINT to this process when it ends chunk ``k`` (``chunks[k]`` times; one per pass)."""
    real = archive.run_chunk

    def run_chunk(task, on_batch=None):
        result = real(task, on_batch)
        for _ in range(chunks.get(task.chunk_index, 0)):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # the handler runs in the main thread meanwhile
        time.sleep(pause)
        return result

    monkeypatch.setattr(archive, "run_chunk", run_chunk)


def test_library_raises_embed_interrupted_with_the_committed_chunks(tmp_path, monkeypatch, small, weights, capfd):
    out = str(tmp_path / "out.zarr")
    before = signal.getsignal(signal.SIGINT)
    _signal_after(monkeypatch, {0: 1})
    with pytest.raises(EmbedInterrupted) as info:
        embed_store(small, out, weights, chunk_size=IN_CHUNK, commit_every=3600)
    stop = info.value
    assert isinstance(stop, KeyboardInterrupt) and not stop.aborted and stop.abandoned == 0
    assert signal.getsignal(signal.SIGINT) is before
    computed = stop.report.computed
    assert 0 in computed and len(computed) < M // IN_CHUNK and stop.report.commits == 1
    assert status(out).complete == len(computed) * IN_CHUNK
    assert "Ctrl-C again to abort" in capfd.readouterr().err
    monkeypatch.undo()
    report = embed_store(small, out, weights)
    assert report.skipped == len(computed) and report.complete
    assert set(report.computed).isdisjoint(computed)


def test_library_second_ctrl_c_gives_up_the_running_chunks(tmp_path, monkeypatch, small, weights):
    out = str(tmp_path / "out.zarr")
    _signal_after(monkeypatch, {0: 2}, pause=0.5)
    with pytest.raises(EmbedInterrupted) as info:
        embed_store(small, out, weights, chunk_size=IN_CHUNK, commit_every=3600)
    assert info.value.aborted and 0 not in info.value.report.computed  # not waited for, not merged
    assert status(out).complete == len(info.value.report.computed) * IN_CHUNK


def test_library_first_ctrl_c_waits_at_most_interrupt_wait(tmp_path, monkeypatch, small, weights):
    out = str(tmp_path / "out.zarr")
    monkeypatch.setattr(archive, "INTERRUPT_WAIT", 0.0)
    _signal_after(monkeypatch, {0: 1}, pause=2.0)  # chunk 0 still runs when the wait is over
    with pytest.raises(EmbedInterrupted) as info:
        embed_store(small, out, weights, chunk_size=IN_CHUNK, commit_every=3600)
    assert not info.value.aborted and info.value.abandoned >= 1


def test_outside_the_main_thread_ctrl_c_is_left_alone(tmp_path, small, weights):
    before = signal.getsignal(signal.SIGINT)
    found = {}

    def embed() -> None:
        found["report"] = embed_store(small, str(tmp_path / "out.zarr"), weights, chunk_size=IN_CHUNK)

    worker = threading.Thread(target=embed)
    worker.start()
    worker.join(120)
    assert found["report"].complete and signal.getsignal(signal.SIGINT) is before
