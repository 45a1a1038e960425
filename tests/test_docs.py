"""The docs and notebooks at least parse: every code cell and every ``python`` block compiles, every page named in
a toctree exists, and every notebook is a MyST-NB text notebook. Executing them is the docs build's job
(``docs/build.sh``); these checks are fast enough for every test run."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
FENCE = re.compile(r"^(`{3,})\{?([\w-]+)\}?[^\n]*\n(.*?)^\1\s*$", re.MULTILINE | re.DOTALL)


def _blocks(text: str, kinds: set[str]) -> list[str]:
    """Bodies of the fenced blocks whose info string is one of ``kinds`` (MyST options stripped)."""
    out = []
    for _, kind, body in FENCE.findall(text):
        if kind in kinds:
            lines = body.splitlines()
            out.append("\n".join(line for line in lines if not line.startswith((":", "%"))))  # options, magics
    return out


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md")) + sorted(EXAMPLES.glob("*.md"))


NOTEBOOKS = sorted(p for p in EXAMPLES.glob("*.md") if re.match(r"---\n(.*\n)*?file_format: mystnb\n", p.read_text()))


def test_there_are_notebooks() -> None:
    assert len(NOTEBOOKS) >= 4, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_compile(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("---\n"), f"{path.name}: a MyST-NB notebook starts with its YAML header"
    assert "kernelspec:" in text.split("---\n")[1], f"{path.name}: the header names a kernel"
    cells = _blocks(text, {"code-cell"})
    assert cells, f"{path.name} has no code cells"
    for i, cell in enumerate(cells):
        ast.parse(cell, filename=f"{path.name} cell {i}")


@pytest.mark.parametrize("path", _pages(), ids=lambda p: p.name)
def test_python_blocks_compile(path: Path) -> None:
    for i, block in enumerate(_blocks(path.read_text(), {"python"})):
        ast.parse(block, filename=f"{path.name} block {i}")


def test_toctrees_name_existing_pages() -> None:
    missing = []
    for page in [DOCS / "index.md", EXAMPLES / "index.md"]:
        for body in _blocks(page.read_text(), {"toctree"}):
            for entry in body.split():
                if not (page.parent / f"{entry}.md").exists():
                    missing.append(f"{page.name}: {entry}")
    assert not missing, missing


def test_docs_site_sees_the_notebooks() -> None:
    link = DOCS / "examples"
    assert link.is_symlink() and link.resolve() == EXAMPLES.resolve()


def test_api_page_lists_every_public_name() -> None:
    import xwvnet

    api = (DOCS / "api.md").read_text()
    names = [n for n in xwvnet.__all__ if n != "__version__"]
    assert [n for n in names if not re.search(rf"^\s+{n}$", api, re.MULTILINE)] == []
    from xwvnet.accessor import WVNetAccessor

    methods = [n for n in vars(WVNetAccessor) if not n.startswith("_")]
    assert methods and [m for m in methods if f"Dataset.wvnet.{m}" not in api] == []


def _code(path: Path) -> str:
    return "\n".join(_blocks(path.read_text(), {"code-cell", "python"}))


def test_every_xwvnet_name_the_notebooks_use_exists() -> None:
    """``xwvnet.NAME``, ``ds.wvnet.NAME`` and ``from xwvnet.x import y`` in the notebooks' code all exist."""
    import contextlib
    import importlib

    import xwvnet
    from xwvnet.accessor import WVNetAccessor

    missing = []
    for path in NOTEBOOKS:
        code = _code(path)
        for module, names in re.findall(r"^from (xwvnet[\w.]*) import ([\w, ]+)$", code, re.MULTILINE):
            mod = importlib.import_module(module)
            missing += [f"{path.name}: {module}.{n.strip()}" for n in names.split(",") if not hasattr(mod, n.strip())]
        for dotted in set(re.findall(r"\bxwvnet\.([A-Za-z_][\w.]*[\w])", code)):
            value: object = xwvnet
            for i, part in enumerate(dotted.split(".")):
                if not hasattr(value, part):
                    with contextlib.suppress(ImportError):
                        importlib.import_module("xwvnet." + ".".join(dotted.split(".")[: i + 1]))
                if not hasattr(value, part):
                    missing.append(f"{path.name}: xwvnet.{dotted}")
                    break
                value = getattr(value, part)
        missing += [f"{path.name}: .wvnet.{m}" for m in set(re.findall(r"\.wvnet\.(\w+)", code))
                    if not callable(getattr(WVNetAccessor, m, None))]
    assert missing == []


def test_encoder_names_in_readme_docs_and_notebooks_are_loadable() -> None:
    """A name shaped like a zoo name (``random-resnet18``) that ``load_encoder`` rejects misleads: every one is in
    the zoo (other encoders are named as what they are, e.g. "random ResNet-18 (seed 0)")."""
    from xwvnet.models.zoo import ENCODERS

    pages = [ROOT / "README.md", *_pages()]
    found = {(p.name, name) for p in pages for name in re.findall(r"[\"'`]([a-z]+-resnet\d+)[\"'`]", p.read_text())}
    assert found and sorted(f"{page}: {name}" for page, name in found if name not in ENCODERS) == []
