"""numpydoc checks shared by the tests of each module: sections, documented parameters, public names."""

from __future__ import annotations

import importlib
import inspect


def sections(doc: str) -> dict[str, str]:
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


def public_names(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [(f"{module_name}.{name}", obj) for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module_name]


def documented_params(doc: str) -> set[str]:
    names = set()
    for line in sections(doc).get("Parameters", "").splitlines():
        if line and not line[0].isspace():
            names.update(n.strip().lstrip("*") for n in line.split(":")[0].split(","))
    return names


def check_numpydoc(module_name: str) -> None:
    """Every public function and class of a module has a summary, its parameters documented, Returns and Raises."""
    public = public_names(module_name)
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
            found = sections(doc)
            assert "Returns" in found, f"{qualname}: no Returns section"
            if "raise " in inspect.getsource(obj).split('"""', 2)[-1]:
                assert "Raises" in found, f"{qualname} raises but has no Raises section"
        assert set(params) <= documented_params(doc), (
            f"{qualname}: parameters {sorted(set(params) - documented_params(doc))} are not in its Parameters section"
        )
