"""Ctrl-C during an embed run keeps the finished work.

The first SIGINT stops submitting chunk tasks, lets the running ones finish, commits them (whatever
``--commit-every``) and ends with 130 (``EmbedInterrupted`` in Python); a re-run embeds only the rest, to the
uninterrupted result. A second SIGINT ends the run at once. The command is a real process sent real signals.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import xwvnet
from tests._factories import embed_whole_store, make_imagettes, save_random_resnet18
from xwvnet import archive
from xwvnet import schema as S
from xwvnet.archive import EmbedInterrupted, embed_store
from xwvnet.io.audit import status

REPO = Path(__file__).resolve().parent.parent
N, SIZE, CHUNK = 96, 64, 4


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return save_random_resnet18(tmp_path_factory.mktemp("w") / "a.pt", seed=0)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("in") / "in.zarr")
    xwvnet.to_store(make_imagettes(N, lines=SIZE, samples=SIZE, seed=3), url, chunk_size=CHUNK)
    return url


@pytest.fixture(scope="module")
def reference(source, weights) -> np.ndarray:
    return embed_whole_store(source, weights)


class _Embed:
    """``xwvnet embed`` in a process of its own, its stderr (progress bar, messages) read as it comes."""

    def __init__(self, source: str, out: str, weights: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "xwvnet.cli", "embed", source, out, "--encoder", str(weights), "--chunk-size",
             str(CHUNK), "--commit-every", "3600"],
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
        found = self.wait_for(rf"\|\s*(\d+)/{N} \[")
        while int(found.group(1)) == 0:
            found = self.wait_for(rf"\|\s*([1-9]\d*)/{N} \[")
        assert int(found.group(1)) < N // 2, f"the run went too far before it could be interrupted:\n{self.err}"

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


def test_first_ctrl_c_commits_the_finished_chunks_and_a_rerun_embeds_the_rest(tmp_path, source, weights, reference):
    out = str(tmp_path / "out.zarr")
    run = _Embed(source, out, weights)
    run.mid_run()
    run.interrupt()
    code, stdout, err = run.finish(timeout=120)
    assert code == 130, err
    assert "Traceback" not in err, err
    assert re.search(r"xwvnet: stopping after the \d+ running chunks \(up to 120 s\); Ctrl-C again to abort", err)
    assert "complete          NO" in stdout
    assert f"re-run the same command to complete the store: xwvnet embed {source} {out}" in err
    kept = status(out)
    assert 0 < kept.complete < N and kept.complete % CHUNK == 0  # committed although --commit-every 3600
    report = embed_store(source, out, weights)
    assert report.skipped == kept.complete // CHUNK and len(report.computed) == (N - kept.complete) // CHUNK
    assert report.complete and status(out).missing == 0
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)


def test_second_ctrl_c_exits_130_at_once(tmp_path, source, weights, reference):
    out = str(tmp_path / "out.zarr")
    run = _Embed(source, out, weights)
    run.mid_run()
    run.interrupt()
    run.wait_for("Ctrl-C again to abort")  # the first was handled: the second is not merged with it
    run.interrupt()
    code, _, err = run.finish(timeout=15)  # the running chunks are not waited for (before: ~17 s)
    assert code == 130, err
    assert "Traceback" not in err and "leaked" not in err, err
    assert err.rstrip().splitlines()[-1].startswith("xwvnet embed: aborted; "), err
    # what was committed is whole: a re-run completes the store to the uninterrupted result
    assert embed_store(source, out, weights).complete
    np.testing.assert_allclose(xwvnet.open_store(out)[S.EMBEDDING].values, reference, atol=1e-5, rtol=0)


# ---- in this process, on the thread pool: the signal is sent when a chunk task ends -------------------------------

M = 32


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("in") / "small.zarr")
    xwvnet.to_store(make_imagettes(M, lines=SIZE, samples=SIZE, seed=4), url, chunk_size=CHUNK)
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
        embed_store(small, out, weights, chunk_size=CHUNK, commit_every=3600)
    stop = info.value
    assert isinstance(stop, KeyboardInterrupt) and not stop.aborted and stop.abandoned == 0
    assert signal.getsignal(signal.SIGINT) is before
    computed = stop.report.computed
    assert 0 in computed and len(computed) < M // CHUNK and stop.report.commits == 1
    assert status(out).complete == len(computed) * CHUNK
    assert "Ctrl-C again to abort" in capfd.readouterr().err
    monkeypatch.undo()
    report = embed_store(small, out, weights)
    assert report.skipped == len(computed) and report.complete
    assert set(report.computed).isdisjoint(computed)


def test_library_second_ctrl_c_gives_up_the_running_chunks(tmp_path, monkeypatch, small, weights):
    out = str(tmp_path / "out.zarr")
    _signal_after(monkeypatch, {0: 2}, pause=0.5)
    with pytest.raises(EmbedInterrupted) as info:
        embed_store(small, out, weights, chunk_size=CHUNK, commit_every=3600)
    assert info.value.aborted and 0 not in info.value.report.computed  # not waited for, not merged
    assert status(out).complete == len(info.value.report.computed) * CHUNK


def test_library_first_ctrl_c_waits_at_most_interrupt_wait(tmp_path, monkeypatch, small, weights):
    out = str(tmp_path / "out.zarr")
    monkeypatch.setattr(archive, "INTERRUPT_WAIT", 0.0)
    _signal_after(monkeypatch, {0: 1}, pause=2.0)  # chunk 0 still runs when the wait is over
    with pytest.raises(EmbedInterrupted) as info:
        embed_store(small, out, weights, chunk_size=CHUNK, commit_every=3600)
    assert not info.value.aborted and info.value.abandoned >= 1


def test_outside_the_main_thread_ctrl_c_is_left_alone(tmp_path, small, weights):
    before = signal.getsignal(signal.SIGINT)
    found = {}

    def embed() -> None:
        found["report"] = embed_store(small, str(tmp_path / "out.zarr"), weights, chunk_size=CHUNK)

    worker = threading.Thread(target=embed)
    worker.start()
    worker.join(120)
    assert found["report"].complete and signal.getsignal(signal.SIGINT) is before
