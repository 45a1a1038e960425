"""The writer lease: one writer per store, across real processes; stale leases of killed writers are taken over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xwvnet.io import lease as L

REPO = Path(__file__).resolve().parent.parent

HOLD = """
import sys, time
from xwvnet.io.lease import writer_lease
with writer_lease(sys.argv[1], "holder script"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(store: Path, seconds: float) -> subprocess.Popen:
    """A real process that takes the lease of ``store`` and keeps it ``seconds``; returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store), str(seconds)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "held", proc.stderr.read()
    return proc


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    store = tmp_path / "s.zarr"
    proc = _holder(store, 30)
    try:
        with pytest.raises(L.StoreBusyError) as info, L.writer_lease(store, "test"):
            pass
        message = str(info.value)
        assert f"pid {proc.pid}" in message and socket.gethostname() in message
        assert "holder script" in message and "since 20" in message and "UTC" in message
        assert info.value.holder.pid == proc.pid
        assert L.read_lease(store).pid == proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_waiting_writer_gets_the_lease_when_released(tmp_path):
    store = tmp_path / "s.zarr"
    proc = _holder(store, 1.0)
    try:
        began = time.monotonic()
        with L.writer_lease(store, "waiter", wait=30) as lease:
            assert lease.info.pid == os.getpid()
            assert L.read_lease(store).token == lease.info.token
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - began < 30
    finally:
        proc.kill()
        proc.wait()
    assert L.read_lease(store) is None  # given back
    assert not L.lease_path(store).exists()


def test_sigkilled_holder_is_taken_over(tmp_path):
    store = tmp_path / "s.zarr"
    proc = _holder(store, 60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stale = L.read_lease(store)
    assert stale is not None and stale.pid == proc.pid  # the killed writer could not give it back
    assert L.is_stale(stale)
    with L.writer_lease(store, "after the kill") as lease:
        assert L.read_lease(store).token == lease.info.token != stale.token
    assert not L.lease_path(store).exists()
    assert not list(tmp_path.glob("*.stale-*"))  # the renamed stale lease was removed


def _fake_lease(store: Path, host: str, age: float) -> None:
    path = L.lease_path(store)
    path.write_text(json.dumps({"host": host, "pid": 1, "started": time.time() - age, "token": "t0",
                                "command": "elsewhere"}))
    os.utime(path, (time.time() - age, time.time() - age))


def test_lease_of_another_host_is_stale_only_without_heartbeat(tmp_path):
    store = tmp_path / "s.zarr"
    _fake_lease(store, "another-host", age=5)
    with pytest.raises(L.StoreBusyError, match="another-host"), L.writer_lease(store, stale_after=60):
        pass
    _fake_lease(store, "another-host", age=600)  # no heartbeat for 10 minutes: its writer is gone
    with L.writer_lease(store, stale_after=60) as lease:
        assert L.read_lease(store).token == lease.info.token


def test_unreadable_lease_file_is_taken_over_once_old(tmp_path):
    store = tmp_path / "s.zarr"
    path = L.lease_path(store)
    path.write_text("{half a lea")
    with pytest.raises(L.StoreBusyError, match="creating its lease"), L.writer_lease(store):
        pass
    os.utime(path, (time.time() - 60, time.time() - 60))
    with L.writer_lease(store) as lease:
        assert L.read_lease(store).token == lease.info.token


def test_nested_writers_reuse_and_lost_lease_is_detected(tmp_path):
    store = tmp_path / "s.zarr"
    with L.writer_lease(store, "outer") as outer:
        with L.writer_lease(store, "inner") as inner:
            assert inner is outer
        assert L.read_lease(store).token == outer.info.token  # the inner block did not give it back
        L.check_token(store, outer.info.token)
        _fake_lease(store, "thief", age=0)  # as if another writer had taken it over
        with pytest.raises(L.LeaseLostError, match="taken over"):
            L.check_token(store, outer.info.token)
    assert L.read_lease(store).host == "thief"  # a writer never removes a lease it does not hold


def test_bad_wait_is_refused(tmp_path):
    with pytest.raises(ValueError, match="wait"):
        L.WriterLease(tmp_path / "s.zarr", wait=-1)


CONTEND = """
import sys, time, os
from xwvnet.io.lease import writer_lease
store, log = sys.argv[1], sys.argv[2]
with writer_lease(store, "contender", wait=60):
    with open(log, "a") as f:
        f.write(f"start {os.getpid()}\\n")
    time.sleep(0.15)
    with open(log, "a") as f:
        f.write(f"end {os.getpid()}\\n")
"""


def test_contending_processes_write_one_at_a_time(tmp_path):
    store, log = tmp_path / "s.zarr", tmp_path / "log.txt"
    _fake_lease(store, "gone-host", age=600)  # a stale lease that all four race to take over
    procs = [subprocess.Popen([sys.executable, "-c", CONTEND, str(store), str(log)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    lines = log.read_text().split()
    events = list(zip(lines[::2], lines[1::2]))
    assert len(events) == 8
    for i in range(0, 8, 2):  # every start is followed by the end of the same process: never two at once
        assert events[i][0] == "start" and events[i + 1] == ("end", events[i][1])
    assert not L.lease_path(store).exists()
