"""Closing a local cluster is quiet: the nanny's "Worker process still alive after 4.0 seconds, killing" notice (one
per worker whose process was slow to exit) is dropped while a cluster of ours closes, and only then."""

from __future__ import annotations

import asyncio
import logging

import xwvnet.distributed as xd

NOTICE = "Worker process still alive after 4.0 seconds, killing"


class _FakeCluster:
    """Closes the way a LocalCluster whose workers are slow to exit does: its nanny logs the kill notice."""

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs

    async def _close(self) -> None:
        logging.getLogger("distributed.nanny").warning(NOTICE)
        logging.getLogger("distributed.nanny").warning("something else")


def test_closing_a_local_cluster_drops_the_kill_notice_only(monkeypatch, caplog):
    monkeypatch.setattr(xd, "LocalCluster", _FakeCluster)
    cluster = xd.local_cluster(2)
    assert cluster.kwargs["n_workers"] == 2
    with caplog.at_level(logging.WARNING, logger="distributed.nanny"):
        asyncio.run(cluster._close())
        messages = [r.getMessage() for r in caplog.records]
        assert NOTICE not in messages and "something else" in messages
        caplog.clear()
        logging.getLogger("distributed.nanny").warning(NOTICE)  # outside a close of ours: left alone
        assert [r.getMessage() for r in caplog.records] == [NOTICE]
