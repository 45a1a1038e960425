"""One ``except XWVNetError`` catches every error xwvnet raises on purpose, and ``except ValueError`` still works.

The package source is scanned for ``raise`` statements: none may raise a builtin exception class directly (a
re-raise, a caught variable or an exception built by a helper are fine). Every exception class of xwvnet derives
from :class:`~xwvnet.errors.XWVNetError` through one of the families of :mod:`xwvnet.errors` and keeps a builtin
parent; every warning class derives from :class:`~xwvnet.errors.XWVNetWarning`.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import xwvnet
from xwvnet import errors as E

PACKAGE = Path(xwvnet.__file__).parent
#: Every builtin exception class, by name.
BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)
#: Control flow rather than errors: a command's exit status, and a second Ctrl-C re-raised by a signal handler.
ALLOWED = frozenset({"SystemExit", "KeyboardInterrupt"})


# ---- the raise scanner ----------------------------------------------------------------------------------------
def _bound_at_module_level(tree: ast.Module) -> set[str]:
    """Names a module binds itself (imports, classes, functions, assignments): those shadow a builtin's name."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def builtin_raises(source: str) -> list[tuple[int, str]]:
    """The ``raise`` statements of ``source`` that raise a builtin exception class directly: (line, class name).

    Parameters
    ----------
    source : str
        Python source code.

    Returns
    -------
    list of (int, str)
        Each offending statement's line and the builtin it raises. A bare ``raise``, ``raise err`` (a caught
        variable), ``raise make_error(...)`` (a helper's result) and :data:`ALLOWED` classes are not listed.
    """
    tree = ast.parse(source)
    shadowed = _bound_at_module_level(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(target, ast.Name) and target.id not in shadowed:
            name = target.id
        elif (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
              and target.value.id == "builtins"):
            name = target.attr
        else:
            continue
        if name in BUILTIN_EXCEPTIONS and name not in ALLOWED:
            found.append((node.lineno, name))
    return found


FLAGGED = {
    "a ValueError": 'raise ValueError("x")',
    "a class, not an instance": "raise TypeError",
    "with a cause": 'try:\n    pass\nexcept OSError as err:\n    raise RuntimeError("y") from err',
    "from None": 'raise KeyError("k") from None',
    "in a function": 'def f(x):\n    if x:\n        raise FileNotFoundError(f"{x}")',
    "through builtins": 'import builtins\nraise builtins.ValueError("x")',
    "a NotImplementedError": "def f():\n    raise NotImplementedError",
}
ALLOWED_SOURCES = {
    "a re-raise": "try:\n    pass\nexcept ValueError:\n    raise",
    "a caught variable": "try:\n    pass\nexcept ValueError as err:\n    raise err",
    "a typed error": 'from xwvnet.errors import InvalidArgumentError\nraise InvalidArgumentError("x")',
    "a helper's error": "raise make_error()",
    "a command's exit": "raise SystemExit(main())",
    "a second Ctrl-C": "raise KeyboardInterrupt",
    "a name the module binds": "from .errors import InvalidArgumentError as ValueError\nraise ValueError(\"x\")",
}


@pytest.mark.parametrize("source", FLAGGED.values(), ids=FLAGGED.keys())
def test_the_scanner_flags_a_builtin_raised_directly(source):
    assert len(builtin_raises(source)) == 1


@pytest.mark.parametrize("source", ALLOWED_SOURCES.values(), ids=ALLOWED_SOURCES.keys())
def test_the_scanner_leaves_re_raises_and_typed_errors_alone(source):
    assert builtin_raises(source) == []


def test_the_scanner_flags_a_bare_value_error_added_to_a_package_module():
    source = (PACKAGE / "schema.py").read_text()
    assert builtin_raises(source) == []
    added = source + textwrap.dedent('''

        def _added(x):
            if x is None:
                raise ValueError("x")
        ''')
    line = added.splitlines().index('        raise ValueError("x")') + 1
    assert builtin_raises(added) == [(line, "ValueError")]


def test_no_module_of_the_package_raises_a_builtin_exception_directly():
    offenders = [f"{path.relative_to(PACKAGE.parent)}:{line}: raise {name}"
                 for path in sorted(PACKAGE.rglob("*.py"))
                 for line, name in builtin_raises(path.read_text(encoding="utf-8"))]
    assert not offenders, (
        "raise an xwvnet error class (xwvnet.errors: InvalidArgumentError, InvalidDataError, InvalidFileError, "
        "InputNotFoundError, MissingDependencyError ...) instead of a builtin; it keeps the builtin as a parent:\n"
        + "\n".join(offenders))


# ---- the classes ------------------------------------------------------------------------------------------------
def _package_classes() -> list[type[BaseException]]:
    """Every exception and warning class defined in a module of the package (imported from where it is defined)."""
    found = []
    for info in pkgutil.walk_packages(xwvnet.__path__, "xwvnet."):
        module = importlib.import_module(info.name)
        found += [value for value in vars(module).values()
                  if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == info.name]
    return found


def _builtin_parents(cls: type) -> list[type]:
    return [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]


def test_every_warning_class_derives_from_xwvnet_warning():
    warnings_ = [cls for cls in _package_classes() if issubclass(cls, Warning)]
    assert len(warnings_) > 10
    assert [cls for cls in warnings_ if not issubclass(cls, E.XWVNetWarning)] == []


def test_every_exception_class_is_in_a_family_and_keeps_a_builtin_parent():
    classes = [cls for cls in _package_classes() if not issubclass(cls, Warning)]
    assert len(classes) > 30
    roots = {E.XWVNetError, *E.FAMILIES}
    problems = []
    for cls in classes:
        name = f"{cls.__module__}.{cls.__qualname__}"
        if not issubclass(cls, Exception):  # a Ctrl-C (archive.EmbedInterrupted): `except Exception` must miss it
            if not issubclass(cls, KeyboardInterrupt):
                problems.append(f"{name} is neither an Exception nor a KeyboardInterrupt")
        elif not issubclass(cls, E.XWVNetError):
            problems.append(f"{name} does not derive from XWVNetError")
        elif cls in roots:
            continue
        elif not any(issubclass(cls, family) for family in E.FAMILIES):
            problems.append(f"{name} is in no family of xwvnet.errors ({[f.__name__ for f in E.FAMILIES]})")
        elif not _builtin_parents(cls):
            problems.append(f"{name} has no builtin parent (ValueError, OSError ...)")
    assert not problems, "\n".join(problems)


def test_the_families_are_documented_and_have_no_builtin_parent():
    direct = [cls for cls in vars(E).values()
              if isinstance(cls, type) and cls.__module__ == E.__name__ and E.XWVNetError in cls.__bases__]
    assert set(direct) == set(E.FAMILIES)
    for family in E.FAMILIES:
        assert f":class:`{family.__name__}`" in E.__doc__, f"{family.__name__} is not in errors.py's family table"
        assert _builtin_parents(family) == [], family
        assert family.__doc__.startswith("The family of errors"), family


def test_every_class_of_the_errors_module_has_a_numpydoc_summary():
    for name, cls in vars(E).items():
        if isinstance(cls, type) and cls.__module__ == E.__name__:
            summary = inspect.cleandoc(cls.__doc__ or "").splitlines()
            assert summary and summary[0].endswith("."), name


# ---- behaviour: one except catches them, the builtin except still does -------------------------------------------
@pytest.mark.parametrize(
    ("call", "typed", "builtin"),
    [
        (lambda: xwvnet.synthetic.imagettes(-1), E.InvalidArgumentError, ValueError),
        (lambda: xwvnet.schema.validate(xr.Dataset()), E.InvalidDataError, ValueError),
        (lambda: xwvnet.schema.validate([]), E.InvalidDataError, ValueError),
        (lambda: xwvnet.io.storage.locate("s3://"), E.InvalidArgumentError, ValueError),
        (lambda: xwvnet.datasets.local_copy("no-such-sample.png"), E.UnknownKeyError, KeyError),
        (lambda: xwvnet.probe.Probe.load("/nonexistent/probe.npz"), E.InputNotFoundError, FileNotFoundError),
    ],
    ids=["argument", "dataset", "not-a-dataset", "url", "registry", "missing-file"],
)
def test_errors_are_caught_by_xwvnet_error_their_family_and_their_builtin(call, typed, builtin):
    import xwvnet.datasets
    import xwvnet.io.storage
    import xwvnet.probe
    import xwvnet.synthetic  # noqa: F401 (the calls above use them)

    with pytest.raises(typed) as caught:
        call()
    assert isinstance(caught.value, E.XWVNetError)
    assert isinstance(caught.value, builtin)
    assert any(isinstance(caught.value, family) for family in E.FAMILIES)


def test_a_missing_optional_dependency_is_an_import_error(monkeypatch):
    from xwvnet.retrieval import exact

    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now fails
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(E.MissingDependencyError, match="pip install") as caught:
        exact.search_arrays(x, x, 1, backend="faiss")
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, E.UnavailableError)


def test_an_existing_output_is_both_file_exists_and_value_error(tmp_path):
    err = E.OutputExistsError(f"{tmp_path} exists: pass overwrite=True to replace it.")
    assert isinstance(err, FileExistsError) and isinstance(err, ValueError) and isinstance(err, E.OutputError)


def test_warnings_point_at_the_callers_line():
    import warnings

    from xwvnet.errors import XWVNetWarning, warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("look here", XWVNetWarning)
    assert caught[0].filename == __file__
    assert caught[0].category is XWVNetWarning


def test_every_xwvnet_error_pickles_whole_as_it_would_from_a_dask_worker():
    """Errors cross process boundaries (dask workers, process pools) as the same class, message and attributes."""
    import importlib
    import pickle
    import pkgutil

    import xwvnet
    from xwvnet.errors import DamagedChunkError, XWVNetError
    from xwvnet.io.quicklook import NoReadableImageError
    from xwvnet.io.text import TextFileError

    for info in pkgutil.walk_packages(xwvnet.__path__, "xwvnet."):
        importlib.import_module(info.name)
    classes, todo = set(), [XWVNetError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in classes:
                classes.add(sub)
                todo.append(sub)
    plain = [c for c in classes if "__init__" not in vars(c)]
    assert len(plain) > 20
    for cls in plain:
        err = cls("what went wrong, and what to do")
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is cls and str(back) == str(err) and "what went wrong" in str(back), cls
    made = [DamagedChunkError("chunk 2 of 'quicklook' is damaged", "quicklook", 2, 8, 12, ["a", "b"]),
            TextFileError("41010h2019.txt", 7, "7 columns, the header names 18"),
            NoReadableImageError("no image could be read", ["x.png: not a PNG"])]
    for err in made:
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and vars(back) == vars(err)
    assert pickle.loads(pickle.dumps(made[0])).ids == ["a", "b"]
