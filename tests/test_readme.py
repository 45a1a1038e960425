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


def _resolve(dotted: str) -> object:
    """``xwvnet.<dotted>``: attributes, importing submodules on the way (``retrieval.build_index``)."""
    import importlib

    import xwvnet

    value: object = xwvnet
    path = "xwvnet"
    for part in dotted.split("."):
        path = f"{path}.{part}"
        if not hasattr(value, part):
            try:
                importlib.import_module(path)
            except ImportError:
                raise AttributeError(path) from None
        value = getattr(value, part)
    return value


def _table_names(column: int) -> list[str]:
    """The backticked names in one column of the README's table of stages (code-ish words only)."""
    lines = README.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| stage |"))
    rows = [line for line in lines[first + 2:] if line.startswith("|")]
    rows = rows[: next((i for i, line in enumerate(lines[first + 2:]) if not line.startswith("|")), len(rows))]
    cells = [row.strip().strip("|").split("|")[column] for row in rows]
    return [n for cell in cells for n in re.findall(r"`([A-Za-z_][\w.]*)`", cell)]


def test_every_name_the_readme_uses_exists():
    """Each ``xwvnet.NAME`` and ``ds.wvnet.NAME`` of the Python blocks, and each name of the table of stages."""
    from xwvnet.accessor import WVNetAccessor

    code = "\n".join(_blocks())
    package = sorted(set(re.findall(r"\bxwvnet\.([A-Za-z_][\w.]*[\w])", code)))
    methods = sorted(set(re.findall(r"\b\w+\.wvnet\.(\w+)", code)))
    assert package and methods
    functions, on_datasets = _table_names(1), _table_names(2)
    assert "embed_store" in functions and "learning_curve" in on_datasets
    missing = []
    for name in [*package, *functions]:
        try:
            _resolve(name)
        except AttributeError:
            missing.append(f"xwvnet.{name}")
    missing += [f"ds.wvnet.{m}" for m in [*methods, *on_datasets] if not callable(getattr(WVNetAccessor, m, None))]
    assert missing == []
