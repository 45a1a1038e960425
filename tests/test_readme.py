"""Every Python block of the README runs as written, in order, in a fresh folder (offline, with the mirror)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(_blocks()) >= 4


def test_every_readme_block_runs_as_written(tmp_path, wvnet_samples, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(_blocks(), start=1):
        try:
            exec(compile(block, f"README.md block {number}", "exec"), namespace)
        except Exception as err:  # the message says which block failed
            pytest.fail(f"README block {number} fails: {type(err).__name__}: {err}\n{block}")
    assert (tmp_path / "embeddings.zarr").is_dir() and (tmp_path / "run1" / "encoder.pt").is_file()
    assert os.environ.get("XWVNET_DATA_DIR")
