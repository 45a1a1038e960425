"""Every option of the ``xwvnet`` command and of ``python -m xwvnet.training.recipe`` has help that shows its
default, once; every command that reads or writes a store takes ``--storage-option``."""

from __future__ import annotations

import argparse

import pytest

from xwvnet.cli import build_parser
from xwvnet.training.recipe import _parser as recipe_parser

#: commands that touch no store given as a URL: `index` works beside a store on a local disk, `demo` on samples
NO_STORE = {"index", "demo"}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    return {"xwvnet": build_parser(), **{f"xwvnet {n}": p for n, p in _subcommands().items()},
            "python -m xwvnet.training.recipe": recipe_parser()}


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    return [a for a in parser._actions if not isinstance(a, skip)]


def _in_required_group(parser: argparse.ArgumentParser, action: argparse.Action) -> bool:
    """One of a required set of alternatives (``probe --target | --load``): no default to show."""
    return any(g.required and action in g._group_actions for g in parser._mutually_exclusive_groups)


@pytest.mark.parametrize("name", list(_parsers()))
def test_every_option_has_help_showing_its_default_once(name):
    parser = _parsers()[name]
    problems = []
    for action in _options(parser):
        label = f"{name} {'/'.join(action.option_strings) or action.dest}"
        if not (action.help or "").strip():
            problems.append(f"{label}: no help")
            continue
        text = parser._get_formatter()._expand_help(action)
        if text.count("(default") > 1:
            problems.append(f"{label}: default shown twice: {text}")
        optional = action.option_strings and not action.required and not _in_required_group(parser, action)
        if optional and "(default" not in text:
            problems.append(f"{label}: no default shown: {text}")
    assert problems == []
    parser.format_help()  # renders (no bad % placeholders)


def test_every_command_that_touches_a_store_takes_storage_options():
    missing = [name for name, parser in _subcommands().items() if name not in NO_STORE
               and not any("--storage-option" in a.option_strings for a in parser._actions)]
    assert missing == []
    assert any("--storage-option" in a.option_strings for a in recipe_parser()._actions)


def test_the_top_level_help_speaks_of_the_jobs_and_ingest_names_out_first(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert "thin call" not in text and "functional module" not in text
    out = next(a for a in _subcommands()["ingest"]._actions if a.dest == "out")
    assert out.option_strings[0] == "--out" and "old name" not in out.help
    assert build_parser().parse_args(["ingest", "x", "--store", "s.zarr"]).out == "s.zarr"  # the alias still works


def test_storage_options_reach_train_and_the_recipe(monkeypatch, tmp_path):
    import xwvnet.training
    from xwvnet.cli import main
    from xwvnet.training import recipe

    seen = []

    def fake_train(data, out, **kwargs):
        seen.append((data, kwargs.get("storage_options")))
        return tmp_path / "encoder.pt"

    monkeypatch.setattr(xwvnet.training, "train", fake_train)
    monkeypatch.setattr("xwvnet.training.simclr.train", fake_train)
    options = ["--storage-option", "endpoint_url=http://127.0.0.1:9000", "--storage-option", "allow_http=true"]
    assert main(["train", "s3://bucket/wv.zarr", "--out", str(tmp_path / "run"), *options]) == 0
    assert recipe.main(["s3://bucket/wv.zarr", "--out", str(tmp_path / "run"), "--tiny", *options]) == 0
    expected = {"endpoint_url": "http://127.0.0.1:9000", "allow_http": True}
    assert seen == [("s3://bucket/wv.zarr", expected)] * 2  # the URL kept whole, not made a Path
