"""Store checks (xwvnet.io.audit): verify finds damage even when the store's bookkeeping files are removed."""

from __future__ import annotations

import shutil

import pytest

import xwvnet
from tests._factories import chunk_objects, flip_byte, make_imagettes
from xwvnet import schema as S
from xwvnet.io.audit import verify


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
