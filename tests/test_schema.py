import doctest
import importlib
import inspect

import numpy as np
import pytest

import xwvnet
from xwvnet import schema as S

from .conftest import make_imagettes


def test_valid_dataset_passes_and_is_returned():
    ds = make_imagettes()
    assert xwvnet.validate(ds) is ds
    assert ds.wvnet.validate() is ds


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds.drop_vars(S.ORBIT), "missing coordinate 'orbit'"),
        (lambda ds: ds.drop_vars([S.QUICKLOOK]), "no image variable"),
        (lambda ds: ds.assign({S.QUICKLOOK: ds[S.QUICKLOOK].astype("float32")}), "expected uint8"),
        (lambda ds: ds.assign_coords({S.IMAGETTE: ["a"] * ds.sizes[S.IMAGETTE]}), "duplicate imagette ids: a"),
        (lambda ds: ds.rename({S.IMAGETTE: "image"}), "missing dimension 'imagette'"),
        (lambda ds: ds.assign_coords({S.TIME: (S.IMAGETTE, np.zeros(ds.sizes[S.IMAGETTE]))}), "'time' has dtype"),
        (lambda ds: ds.drop_vars(S.VALID_LINES), "missing variable 'valid_lines'"),
    ],
)
def test_invalid_dataset_names_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message):
        xwvnet.validate(mutate(make_imagettes()))


def test_every_problem_is_listed_at_once():
    ds = make_imagettes().drop_vars([S.ORBIT, S.SWATH])
    with pytest.raises(ValueError) as err:
        xwvnet.validate(ds)
    assert "'orbit'" in str(err.value) and "'swath'" in str(err.value)


def test_not_a_dataset():
    with pytest.raises(ValueError, match="expected an xarray.Dataset"):
        xwvnet.validate(make_imagettes()[S.QUICKLOOK])


def test_image_var_choice():
    ds = make_imagettes()
    assert S.image_var(ds) == S.QUICKLOOK
    with pytest.raises(ValueError, match="'sigma0' is not in the Dataset"):
        S.image_var(ds, "sigma0")


# --------------------------------------------------------------------------- documentation in the code

_DOC_MODULES = ["xwvnet.schema", "xwvnet.io.names", "xwvnet.io.quicklook", "xwvnet.io.safe", "xwvnet.io.ocn",
                "xwvnet.synthetic"]


def _sections(doc: str) -> dict[str, str]:
    """numpydoc sections of a docstring: header (a line underlined with dashes) -> its text."""
    lines = inspect.cleandoc(doc).splitlines()
    out, name = {"": []}, ""
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and line.strip() and set(lines[i + 1].strip()) == {"-"}:
            name = line.strip()
            out[name] = []
        elif set(line.strip()) != {"-"}:
            out[name].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _public(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [(f"{module_name}.{name}", obj) for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module_name]


def _documented_params(doc: str) -> set[str]:
    names = set()
    for line in _sections(doc).get("Parameters", "").splitlines():
        if line and not line[0].isspace():
            names.update(n.strip().lstrip("*") for n in line.split(":")[0].split(","))
    return names


@pytest.mark.parametrize("module_name", _DOC_MODULES)
def test_public_names_have_numpydoc_docstrings(module_name):
    public = _public(module_name)
    assert public, f"{module_name} defines no public function or class"
    for qualname, obj in public:
        doc = obj.__doc__ or ""
        summary = inspect.cleandoc(doc).splitlines()[0] if doc.strip() else ""
        assert summary.endswith("."), f"{qualname}: no one-line summary ending with a period"
        if inspect.isclass(obj):
            init = obj.__dict__.get("__init__")
            params = [] if init is None else list(inspect.signature(init).parameters)[1:]
        else:
            params = list(inspect.signature(obj).parameters)
            sections = _sections(doc)
            assert "Returns" in sections, f"{qualname}: no Returns section"
            if "raise " in inspect.getsource(obj).split('"""', 2)[-1]:
                assert "Raises" in sections, f"{qualname} raises but has no Raises section"
        assert set(params) <= _documented_params(doc), (
            f"{qualname}: parameters {sorted(set(params) - _documented_params(doc))} are not in its Parameters section"
        )


def test_section_parser_catches_an_undocumented_parameter():
    def documented(a: int, b: int) -> int:
        """Add.

        Parameters
        ----------
        a : int
            One.

        Returns
        -------
        int
        """
        return a + b

    assert _documented_params(documented.__doc__) == {"a"}
    assert set(_sections(documented.__doc__)) == {"", "Parameters", "Returns"}


@pytest.mark.parametrize("module_name", ["xwvnet.schema", "xwvnet.io.names"])
def test_docstring_examples_run(module_name):
    result = doctest.testmod(importlib.import_module(module_name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
