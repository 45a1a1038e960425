"""The package as a whole: its public names (as the stub says, whatever the import order), one home per public
function, every warning through errors.warn, docstrings (numpydoc sections, examples that run), how the rooms of
models and of the analysis relate, one vocabulary without old names, and the README, docs pages and notebooks (they
run or parse, and name what exists)."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import xwvnet
from tests._factories import REPO, make_imagettes
from tests._public_names import check_names, stub_modules, submodules
from tests._safe_factory import make_wv_safe
from xwvnet import evaluation
from xwvnet import probe as P
from xwvnet import retrieval as R
from xwvnet import schema as S
from xwvnet.archive import embed_store
from xwvnet.evaluation import curves
from xwvnet.io import store as zs
from xwvnet.io.storage import locate
from xwvnet.retrieval import exact as E


# ---- the public names ----------------------------------------------------------------------------------------------
def test_no_module_replaces_its_own_class():
    for name in submodules():
        module = importlib.import_module(name)
        assert type(module) is types.ModuleType, f"{name} swapped its module class to {type(module)}"


def test_every_public_name_is_the_function_after_importing_every_submodule():
    for name in submodules():
        importlib.import_module(name)
    check_names()


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_public_names_in_a_fresh_process_whatever_the_import_order(order):
    code = (
        "import importlib, pkgutil, sys\n"
        "import xwvnet\n"
        "names = sorted(i.name for i in pkgutil.walk_packages(xwvnet.__path__, 'xwvnet.'))\n"
        f"names = names[::-1] if {order!r} == 'reverse' else names\n"
        "for n in names: importlib.import_module(n)\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from tests._public_names import check_names\n"
        "check_names()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_functions_have_numpydoc_sections():
    for name in xwvnet.__all__:
        value = getattr(xwvnet, name)
        if inspect.isfunction(value):
            doc = inspect.getdoc(value) or ""
            assert "Parameters\n----------" in doc, f"xwvnet.{name} has no Parameters section"
            assert "Returns\n-------" in doc, f"xwvnet.{name} has no Returns section"


def test_the_stub_names_exactly_the_public_api():
    """Editors follow __init__.pyi: it must list every name of __all__ and nothing else (modules aside)."""
    names = set(stub_modules()) - {"datasets", "plot", "synthetic"}
    assert names == set(xwvnet.__all__)


def test_evaluation_exports_and_the_package_name():
    assert xwvnet.learning_curve is curves.learning_curve
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None
    assert evaluation.learning_curve.__module__ == "xwvnet.evaluation.curves"
    assert not hasattr(P, "learning_curve") and not hasattr(P, "regression_scores") and not hasattr(P, "score")


# Public functions defined under the same name in two modules: each entry names the rooms. ``main`` is the entry
# point of each command (``xwvnet`` and ``python -m xwvnet.training.recipe``), as Python's convention names it.
_KNOWN_CLASHES = {
    "main": {"xwvnet.cli", "xwvnet.training.recipe"},
}


def _public_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    """The functions a module defines itself among its public names (``__all__``, else every non-underscore name)."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return {n: v for n in names if inspect.isfunction(v := getattr(module, n, None))
            and v.__module__ == module.__name__}


def test_no_two_modules_define_a_public_function_of_the_same_name():
    homes: dict[str, set[str]] = {}
    for name in ["xwvnet", *submodules()]:
        for function in _public_functions(importlib.import_module(name)):
            homes.setdefault(function, set()).add(name)
    clashes = {f: m for f, m in homes.items() if len(m) > 1}
    unexpected = {f: sorted(m) for f, m in clashes.items() if _KNOWN_CLASHES.get(f) != m}
    assert not unexpected, f"public functions of the same name in several modules: {unexpected}"
    stale = sorted(set(_KNOWN_CLASHES) - set(clashes))
    assert not stale, f"{stale} no longer clash: remove them from _KNOWN_CLASHES"
    # re-exports are not definitions: xwvnet.collocate is joins.collocation.collocate, counted once
    assert homes["collocate"] == {"xwvnet.joins.collocation"}


def test_no_two_public_functions_of_the_analysis_rooms_share_a_name():
    import inspect

    from xwvnet import probe
    from xwvnet.evaluation import baselines, curves, metrics, table

    seen: dict[str, str] = {}
    for module in (probe, E, R.index, R.compact, metrics, curves, table, baselines):
        for name, value in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(value) or value.__module__ != module.__name__:
                continue
            assert name not in seen, f"{name} is public in both {seen[name]} and {module.__name__}"
            seen[name] = module.__name__
    assert "retrieval_scores" in seen and not hasattr(R, "evaluate") and not hasattr(E, "evaluate")


def test_models_rooms_import_each_other_without_a_circle():
    import ast

    import xwvnet.models

    folder = Path(xwvnet.models.__file__).parent
    imports = {}
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module] if node.module else [a.name for a in node.names])
        imports[path.stem] = found & {"resnet", "weights", "encoder", "zoo"}
    assert not (folder / "registry.py").exists()
    assert imports["encoder"] <= {"resnet", "weights"} and imports["resnet"] == set()
    assert imports["weights"] <= {"resnet"} and "zoo" not in set().union(*imports.values())

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, (*seen, n))) for n in imports.get(start, ()))

    assert not any(reaches(room, room) for room in imports)


def test_every_warning_goes_through_errors_warn():
    """One home for warning: errors.warn attributes it to the user's line and xwvnet warns only its own classes."""
    import pathlib
    import re

    package = pathlib.Path(xwvnet.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.strip()
            if code.startswith((">>>", "...", "#")):
                continue
            if re.search(r"\bwarnings\.warn\(", code) or re.search(r"\bwarn\([^)]*\bUserWarning\b", code):
                offenders.append(f"{path.relative_to(package)}:{number}")
    assert not offenders, f"use xwvnet.errors.warn with an xwvnet warning class: {offenders}"


# ---- one vocabulary, no old names ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A store of 8 imagettes (48 x 48) in chunks of 4."""
    path = tmp_path_factory.mktemp("input") / "in.zarr"
    xwvnet.to_store(make_imagettes(8, lines=48, samples=48, seed=1), path, chunk_size=4)
    return path


def test_the_vocabulary_and_no_old_names(tmp_path, source, weights):
    from xwvnet.io.safe import open_safe

    ds = make_imagettes(6, lines=16, samples=16, seed=2)
    assert xwvnet.to_store(ds, out=tmp_path / "b.zarr", chunk_size=3).added == 6
    assert zs.opened(locate(tmp_path / "b.zarr")).group[S.QUICKLOOK].chunks[0] == 3
    product, _ = make_wv_safe(tmp_path / "safe", seed=3)
    assert max(open_safe(product, chunk_size=2).sigma0.data.chunks[0]) == 2
    for call in (lambda: xwvnet.to_store(ds, store=tmp_path / "a.zarr"),
                 lambda: xwvnet.to_store(ds, tmp_path / "a.zarr", chunk=3),
                 lambda: open_safe(product, chunks=2),
                 lambda: embed_store(input_store=source, output_store=tmp_path / "o.zarr", encoder=weights),
                 lambda: embed_store(source, tmp_path / "o.zarr", weights, workers=2),
                 lambda: embed_store(source, tmp_path / "o.zarr", weights, scheduler="threads"),
                 lambda: xwvnet.ingest([product], store=tmp_path / "p.zarr")):
        with pytest.raises(TypeError, match="unexpected keyword argument"):
            call()
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "o.zarr").exists()
    assert not (tmp_path / "p.zarr").exists()


# ---- documentation in the code -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "module_name",
    ["xwvnet.datasets", "xwvnet.models.resnet", "xwvnet.models.weights", "xwvnet.models.encoder",
     "xwvnet.models.zoo", "xwvnet.inference", "xwvnet.distributed", "xwvnet.radiometry",
     "xwvnet.models.transforms"],
)
def test_my_rooms_have_numpydoc_docstrings(module_name):
    from tests._numpydoc import check_numpydoc

    check_numpydoc(module_name)


@pytest.mark.parametrize(
    "module_name",
    ["xwvnet.datasets", "xwvnet.models.resnet", "xwvnet.models.weights", "xwvnet.models.encoder",
     "xwvnet.models.zoo", "xwvnet.inference", "xwvnet.models.transforms", "xwvnet.radiometry"],
)
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result


# ---- the README: every Python block runs as written, in order, in a fresh folder (offline, with the mirror) ----------
README = REPO / "README.md"


def _readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_blocks():
    assert len(_readme_blocks()) >= 4


@pytest.mark.filterwarnings("error::FutureWarning", "error::DeprecationWarning:xwvnet")
def test_every_readme_block_runs_as_written(tmp_path, wvnet_samples, monkeypatch):
    """The tour runs as written, and nothing of it is deprecated (a FutureWarning fails it)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(_readme_blocks(), start=1):
        try:
            exec(compile(block, f"README.md block {number}", "exec"), namespace)
        except Exception as err:  # the message says which block failed (a FutureWarning raised as an error too)
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

    code = "\n".join(_readme_blocks())
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


# ---- docs and notebooks -------------------------------------------------------------------------------------------
# They at least parse: every code cell and every ``python`` block compiles, every page named in a toctree exists,
# and every notebook is a MyST-NB text notebook. Executing them is the docs build's job (``docs/build.sh``); these
# checks are fast enough for every test run.
DOCS = REPO / "docs"
EXAMPLES = REPO / "examples"
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

    pages = [REPO / "README.md", *_pages()]
    found = {(p.name, name) for p in pages for name in re.findall(r"[\"'`]([a-z]+-resnet\d+)[\"'`]", p.read_text())}
    assert found and sorted(f"{page}: {name}" for page, name in found if name not in ENCODERS) == []


def _layout_rows() -> list[list[str]]:
    """The module paths of each row of docs/layout.md's table, in order (``training/loss.py``, ``head.py`` ... spelled
    out with their folder)."""
    import re

    rows = []
    for line in (REPO / "docs" / "layout.md").read_text().splitlines():
        if not line.startswith("| `"):
            continue
        folder, paths = "", []
        for item in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
            folder = item.rpartition("/")[0] + "/" if "/" in item else folder
            paths.append(item if "/" in item else folder + item)
        rows.append(paths)
    return rows


def test_the_layout_page_names_every_module_and_nothing_else():
    modules = {p.relative_to(REPO / "xwvnet").as_posix() for p in (REPO / "xwvnet").rglob("*.py")
               if p.name != "__init__.py"}
    named = [path for row in _layout_rows() for path in row]
    assert len(named) == len(set(named)), "a module is named twice in docs/layout.md"
    assert set(named) == modules, (f"missing from docs/layout.md: {sorted(modules - set(named))}; "
                                   f"named but not in xwvnet/: {sorted(set(named) - modules)}")


def test_modules_import_only_modules_above_them_in_the_layout():
    """The page says a module imports (at its top level) only modules of its own row or above it."""
    import ast

    rank = {path: i for i, row in enumerate(_layout_rows()) for path in row}
    wrong = []
    for path, row in rank.items():
        file = REPO / "xwvnet" / path
        package = file.parent.relative_to(REPO).as_posix().split("/")
        for node in ast.parse(file.read_text()).body:
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[: len(package) - node.level + 1]
            parts = base + (node.module.split(".") if node.module else [])
            names = [parts + [alias.name] for alias in node.names] + ([parts] if node.module else [])
            for name in names:
                target = "/".join(name[1:])
                for candidate in (target + ".py", target + "/__init__.py"):
                    if candidate in rank and rank[candidate] > row:
                        wrong.append(f"{path} imports {candidate}")
    assert not wrong, wrong


def test_each_test_file_is_named_after_a_module_and_imports_no_other_test_file():
    """tests/ mirrors the package: tests/io/test_store.py checks xwvnet/io/store.py; test_xwvnet.py the package."""
    import ast

    wrong = []
    for file in sorted((REPO / "tests").rglob("test_*.py")):
        relative = file.relative_to(REPO / "tests")
        module = REPO / "xwvnet" / relative.parent / (relative.name.removeprefix("test_"))
        package = REPO / "xwvnet" / relative.parent / relative.stem.removeprefix("test_") / "__init__.py"
        if relative.as_posix() != "test_xwvnet.py" and not (module.is_file() or package.is_file()):
            wrong.append(f"{relative}: no module xwvnet/{relative.parent / relative.name.removeprefix('test_')}")
        for node in ast.walk(ast.parse(file.read_text())):
            names = ([node.module or ""] + [a.name for a in node.names] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(name.rpartition(".")[2].startswith("test_") for name in names):
                wrong.append(f"{relative} imports a test module: {names}")
    assert not wrong, wrong


# ---- benchmarks -----------------------------------------------------------------------------------------------------
def test_the_gpu_benchmark_runs_in_one_command(tmp_path):
    """``benchmarks/gpu.py --out DIR`` writes its JSON and table; without a GPU, its tiny CPU version says so."""
    import json

    import torch

    if torch.cuda.is_available():
        pytest.skip("the full GPU benchmark takes minutes; run it by hand on a GPU machine")
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["gpu"] is False and "not GPU figures" in result["device"]
    cases = {row["case"] for row in result["rows"]}
    assert cases == {"store -> embeddings", "bare forward", "SimCLR training"}
    assert all(row["images_per_s"] > 0 for row in result["rows"])
    assert "not GPU figures" in (tmp_path / "gpu.md").read_text()
