"""The `xwvnet` command (xwvnet.cli): end to end, exit codes, one-line errors, help and defaults, storage options."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import xwvnet
from tests._factories import REPO, make_imagettes, new_bucket
from xwvnet import schema as S
from xwvnet.cli import build_parser, main
from xwvnet.io import store as zs
from xwvnet.io.store import add_variables
from xwvnet.training.recipe import _parser as recipe_parser


def _embedded_store(tmp_path):
    """A synthetic store whose stored embedding is hs plus noise (so a probe has something to find)."""
    path = tmp_path / "s.zarr"
    xwvnet.to_store(xwvnet.synthetic.imagettes(40, seed=3, size=(32, 32)), path)
    ds = xwvnet.open_store(path).load()
    rng = np.random.default_rng(0)
    emb = np.column_stack([ds["hs"].values, rng.normal(size=(40, 7))]).astype(np.float32)
    add_variables(ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), emb)}), path, [S.EMBEDDING])
    return path


def test_probe_fit_save_apply_and_neighbors(tmp_path, capsys):
    store = _embedded_store(tmp_path)
    assert main(["probe", str(store), "--target", "hs", "--save", str(tmp_path / "p.npz")]) == 0
    assert main(["probe", str(store), "--load", str(tmp_path / "p.npz"), "--csv", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv", index_col=0).iloc[:, 0]
    truth = xwvnet.open_store(store)["hs"].to_pandas()
    assert np.corrcoef(predicted.loc[truth.index], truth)[0, 1] > 0.95
    assert main(["neighbors", str(store), "-k", "3", "--csv", str(tmp_path / "n.csv")]) == 0
    table = pd.read_csv(tmp_path / "n.csv")
    assert len(table) == 40 * 3 and (table["neighbor"] != table[S.IMAGETTE]).all()
    assert main(["evaluate", str(store), "--encoders", "stored", "--targets", "hs"]) == 0
    assert "stored" in capsys.readouterr().out


def test_version_and_help_show_defaults(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and xwvnet.__version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["ingest", "--help"])
    assert "(default: 256)" in capsys.readouterr().out


def test_user_error_is_one_line_without_traceback_unless_debug(tmp_path, capsys):
    import pytest

    missing = tmp_path / "no-such-store.zarr"
    assert main(["neighbors", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("xwvnet neighbors: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError):
        main(["--debug", "neighbors", str(missing)])


def test_subcommands_dispatch_through_set_defaults():
    from xwvnet.cli import build_parser

    args = build_parser().parse_args(["demo", "--quick"])
    assert args.func.__name__ == "_run_demo" and args.quick


def test_label_adds_tags_to_imagettes_already_stored(tmp_path, wvnet_samples, capsys):
    store = tmp_path / "s.zarr"
    pngs = sorted(wvnet_samples.glob("*.png"))[:4]
    assert main(["ingest", *map(str, pngs), "--store", str(store)]) == 0
    assert S.LABELS not in xwvnet.open_store(store)
    csv = wvnet_samples / "sample_data.csv"
    assert main(["label", str(store), str(csv)]) == 0
    ds = xwvnet.open_store(store)
    expected = xwvnet.open_quicklooks(pngs, labels=csv)
    np.testing.assert_array_equal(ds[S.LABELS].sel({S.LABEL: expected[S.LABEL].values}).values,
                                  expected[S.LABELS].values)
    assert "4 of 4" in capsys.readouterr().out
    assert main(["label", str(store), str(csv)]) == 0  # again: same tags, nothing lost
    np.testing.assert_array_equal(xwvnet.open_store(store)[S.LABELS].values, ds[S.LABELS].values)


def test_ingest_exits_non_zero_when_nothing_was_read(tmp_path, capsys):
    (tmp_path / "s1a-wv1-QL-vv-20190101t000000-20190101t000003-025000-02a000-001.png").write_bytes(b"not a png")
    assert main(["ingest", str(tmp_path), "--store", str(tmp_path / "s.zarr")]) == 1
    assert "nothing could be read" in capsys.readouterr().err


def _options(command: str) -> dict[str, object]:
    """The actions of one subcommand, by their first option string (or dest)."""
    import argparse

    from xwvnet.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {(a.option_strings or [a.dest])[0]: a for a in sub.choices[command]._actions}


def test_choices_are_the_librarys_constants_and_every_option_has_help():
    import argparse

    from xwvnet import archive
    from xwvnet._runtime import PRECISIONS
    from xwvnet.cli import build_parser
    from xwvnet.export.geoparquet import DTYPES
    from xwvnet.joins.grid import METHODS as GRID_METHODS
    from xwvnet.models.backbones import ARCHITECTURES
    from xwvnet.retrieval.index import METHODS as INDEX_METHODS
    from xwvnet.training.simclr import TRAIN_PRECISIONS

    expected = {("embed", "--precision"): PRECISIONS, ("embed", "--dtype"): archive.EMBEDDING_DTYPES,
                ("train", "--arch"): tuple(ARCHITECTURES), ("train", "--precision"): TRAIN_PRECISIONS,
                ("index", "--method"): INDEX_METHODS, ("collocate", "--method"): GRID_METHODS,
                ("export", "--dtype"): DTYPES}
    for (command, option), names in expected.items():
        assert tuple(_options(command)[option].choices) == tuple(names), (command, option)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    no_help = [f"{name} {a.option_strings or a.dest}" for name, parser in sub.choices.items()
               for a in parser._actions if not isinstance(a, argparse._HelpAction) and not a.help]
    assert no_help == []


def test_building_the_parser_imports_neither_torch_nor_sklearn():
    import subprocess
    import sys

    code = ("import sys; from xwvnet.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bad_choice_names_the_librarys_names(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_:
        main(["embed", "a", "b", "--precision", "fp16"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "'float32', 'bfloat16', 'float16'" in err


@pytest.mark.parametrize("flag,value,name", [("--batch-size", "0", "batch_size"), ("--image-size", "0", "image_size"),
                                             ("--lr", "-1", "lr"), ("--steps", "0", "steps")])
def test_the_cli_says_which_training_argument_is_bad_in_one_line(few_waves, tmp_path, capsys, flag, value, name):
    from xwvnet.cli import main
    from xwvnet.io.store import to_store

    to_store(few_waves, tmp_path / "s.zarr")
    assert main(["train", str(tmp_path / "s.zarr"), "--out", str(tmp_path / "run"), flag, value]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"xwvnet train: error: {name}=") and "must be" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def _last_line(err: str) -> str:
    """The last line on stderr (a progress bar may come before it)."""
    return err.strip().splitlines()[-1]


def test_ingest_of_a_path_that_does_not_exist_exits_non_zero_saying_what_to_do(tmp_path, capsys):
    missing = tmp_path / "no-such-folder"
    assert main(["ingest", str(missing), "--store", str(tmp_path / "s.zarr")]) == 1
    line = _last_line(capsys.readouterr().err)
    assert line.startswith("xwvnet ingest:") and str(missing) in line and "give existing" in line
    assert not (tmp_path / "s.zarr").exists()  # nothing written: no empty folder that status calls "not a store"


def test_ingest_of_a_folder_without_imagettes_exits_non_zero(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["ingest", str(tmp_path / "empty"), "--store", str(tmp_path / "s.zarr")]) == 1
    line = _last_line(capsys.readouterr().err)
    assert line.startswith("xwvnet ingest") and "empty" in line


def test_a_local_cluster_that_cannot_start_is_one_line(tmp_path, monkeypatch, capsys):
    import xwvnet.distributed as xd

    def refuse(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(xd, "local_cluster", refuse)
    for argv in (["embed", str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr"), "--workers", "2"],):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"xwvnet {argv[0]}: error: could not start a local dask cluster") and "Nanny" in err
    assert not (tmp_path / "out.zarr").exists()


def test_ctrl_c_is_one_line_and_130_and_the_local_cluster_is_closed(tmp_path, monkeypatch, capsys):
    import signal

    import xwvnet.archive
    import xwvnet.distributed as xd

    seen = {}

    class FakeClient:
        def close(self):
            seen["closed"] = True

    def fake_local_client(workers, threads, **kwargs):
        seen["sigint while starting"] = signal.getsignal(signal.SIGINT)  # what the worker processes inherit
        seen["shape"] = (workers, threads)
        return FakeClient()

    def interrupted(*args, client=None, **kwargs):
        seen["client"] = client
        raise KeyboardInterrupt

    monkeypatch.setattr(xd, "local_client", fake_local_client)
    monkeypatch.setattr(xwvnet.archive, "embed_store", interrupted)
    before = signal.getsignal(signal.SIGINT)
    assert main(["embed", "in.zarr", "out.zarr", "--workers", "2", "--device", "cpu"]) == 130
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("xwvnet embed: interrupted")
    assert seen["sigint while starting"] is signal.SIG_IGN and seen["shape"] == (2, None)
    assert isinstance(seen["client"], FakeClient) and seen["closed"]
    assert signal.getsignal(signal.SIGINT) is before
    # without --workers nothing is started: the library's default (threads here) gets client=None
    monkeypatch.setattr(xd, "local_client", None)
    assert main(["embed", "in.zarr", "out.zarr"]) == 130 and seen["client"] is None


def test_train_help_states_the_defaults_of_trainconfig():
    """The CLI passes only the options given; the defaults its help shows are read from TrainConfig, the one home."""
    import argparse
    import dataclasses

    from xwvnet.cli import build_parser
    from xwvnet.training import TrainConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["train"]
    text = " ".join(parser.format_help().split())
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    checked = 0
    for action in parser._actions:
        if action.dest in names:
            assert action.default is None, action.dest  # not retyped: TrainConfig's default applies
            if getattr(action, "train_setting", False):
                default = TrainConfig.default_of(action.dest)
                shown = f"{action.dest}={default}" if action.nargs == 0 else default  # a flag: which way by default
                assert f"(default: {shown})" in text, action.dest
                checked += 1
    assert checked >= 15 and "(default: flip=False)" in text
    assert "(default: 64)" in text and "0.0001 when continuing from init" in text
    assert TrainConfig.default_of("weight_decay") == str(TrainConfig().weight_decay)
    assert TrainConfig.default_of("steps").startswith("300; with max_seconds")


def test_status_and_history_on_the_command_line(where, capsys):
    from xwvnet.cli import main

    url = where("im.zarr")
    xwvnet.to_store(make_imagettes(3), url)
    assert main(["status", url]) == 0 and "complete         3" in capsys.readouterr().out
    assert main(["history", url]) == 0 and "to_store: 3 imagettes appended" in capsys.readouterr().out
    assert main(["verify", url]) == 0 and "status           OK" in capsys.readouterr().out
    assert main(["verify", where("none")]) == 1 and "not an xwvnet store" in capsys.readouterr().err


# ---- storage failures through the real command in a subprocess: one line, exit 1, no traceback, no Rust panic
def _cli(*args: str, env: dict[str, str] | None = None, prefix: list[str] | None = None
         ) -> subprocess.CompletedProcess:
    command = [*(prefix or []), sys.executable, "-m", "xwvnet.cli", *args]
    return subprocess.run(command, cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=300)


def _one_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text and "panicked" not in text and "WARN" not in text, text
    errors = re.sub(r"\w+:\s+\d+%\|[^\]]*\]", "", result.stderr)  # without the progress bar
    lines = [ln for ln in errors.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_file_in_the_way_is_one_line(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a store")
    for args in (["status", str(path)], ["verify", str(path)], ["history", str(path)],
                 ["ingest", str(tmp_path), "--out", str(path / "below.zarr")]):
        _one_line(_cli(*args), "is a file")
    with pytest.raises(zs.StoreAccessError, match="is a file"):
        xwvnet.to_store(make_imagettes(2), path)
    assert path.read_text() == "not a store"


def test_a_missing_bucket_and_missing_credentials_are_one_line(s3_endpoint):
    _one_line(_cli("status", "s3://no-such-bucket-xwvnet/s.zarr"), "does not exist")
    bucket = new_bucket(s3_endpoint)
    xwvnet.to_store(make_imagettes(2), f"s3://{bucket}/s.zarr")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env = {**bare, "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
           "AWS_CONFIG_FILE": os.devnull}
    result = subprocess.run([sys.executable, "-m", "xwvnet.cli", "status", f"s3://{bucket}/s.zarr"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=300)
    _one_line(result, "no credentials", "AWS_ACCESS_KEY_ID", "--storage-option")


_UNSHARE = shutil.which("unshare")


def _private_mount(tmp_path: Path, options: str) -> list[str] | None:
    """A command prefix that runs inside a private tmpfs mount at ``tmp_path/m`` (None where that is not allowed)."""
    if _UNSHARE is None:
        return None
    mount = tmp_path / "m"
    mount.mkdir()
    probe = subprocess.run([_UNSHARE, "--mount", "sh", "-c", f"mount -t tmpfs -o {options} none {mount}"],
                           capture_output=True)
    if probe.returncode:
        return None
    return [_UNSHARE, "--mount", "sh", "-c", f'mount -t tmpfs -o {options} none {mount} && exec "$@"', "sh"]


def test_a_read_only_location_and_a_full_disk_are_one_line(tmp_path, wvnet_samples):
    ro = _private_mount(tmp_path, "ro,size=1m")
    if ro is None:
        pytest.skip("needs `unshare --mount` to mount a private read-only tmpfs")
    _one_line(_cli("ingest", str(wvnet_samples), "--out", str(tmp_path / "m" / "s.zarr"), prefix=ro), "read-only")
    full = [*ro[:4], ro[4].replace("ro,size=1m", "size=64k"), *ro[5:]]
    _one_line(_cli("ingest", str(wvnet_samples), "--out", str(tmp_path / "m" / "s.zarr"), prefix=full), "full")


def test_a_damaged_branch_names_the_snapshots_still_readable(tmp_path):
    url = tmp_path / "s.zarr"
    xwvnet.to_store(make_imagettes(4), url)
    snapshot = xwvnet.history(url).snapshot[0]
    (url / "refs" / "branch.main" / "ref.json").write_text("garbage{")
    result = _cli("status", str(url))
    _one_line(result, "branch pointer", snapshot)
    (url / "refs" / "branch.main" / "ref.json").write_text(json.dumps({"snapshot": snapshot}))  # what the line says
    assert xwvnet.open_store(url).sizes[S.IMAGETTE] == 4


# ---- help: every option of the command and of ``python -m xwvnet.training.recipe`` shows its default, once -----------
#: commands that touch no store given as a URL: `index` works beside a store on a local disk, `demo` on samples
NO_STORE = {"index", "demo"}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    return {"xwvnet": build_parser(), **{f"xwvnet {n}": p for n, p in _subcommands().items()},
            "python -m xwvnet.training.recipe": recipe_parser()}


def _options_of(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    return [a for a in parser._actions if not isinstance(a, skip)]


def _in_required_group(parser: argparse.ArgumentParser, action: argparse.Action) -> bool:
    """One of a required set of alternatives (``probe --target | --load``): no default to show."""
    return any(g.required and action in g._group_actions for g in parser._mutually_exclusive_groups)


@pytest.mark.parametrize("name", list(_parsers()))
def test_every_option_has_help_showing_its_default_once(name):
    parser = _parsers()[name]
    problems = []
    for action in _options_of(parser):
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


def test_evaluate_several_encoders_names_and_files_in_one_table(tmp_path, weights, capsys):
    store = _embedded_store(tmp_path)
    csv = tmp_path / "table.csv"
    assert main(["evaluate", str(store), "--encoder", "stored", "--encoder", "image-statistics", str(weights),
                 "--targets", "hs", "wind_speed", "labels", "-k", "5", "--csv", str(csv),
                 "--curve", "hs", "--curve-sizes", "10", "--curve-seeds", "2"]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(csv, header=[0, 1], index_col=0)
    assert list(table.index) == ["stored", "image-statistics", str(weights)]  # one row each, in the order given
    assert {("hs", "rmse"), ("wind_speed", "rmse"), ("labels", "micro_auroc"), ("labels", "precision@5")} <= set(
        table.columns)
    assert table[("hs", "rmse")].notna().all()
    assert table.loc["stored", ("hs", "rmse")] < table.loc[str(weights), ("hs", "rmse")]  # embedding = hs + noise
    assert "Learning curves of 'hs'" in out and out.count(str(weights)) >= 2  # the table and the curves
    assert main(["evaluate", str(store), "--encoders", "stored", "image-statistics", "--targets", "hs", "--paper"]) == 0
    out = capsys.readouterr().out
    assert "Hs RMSE (m)" in out and "Kerdreux et al. 2025" in out and "not comparable" in out


def test_collocate_an_ndbc_text_file_at_the_station_position(tmp_path, capsys):
    """NDBC text carries no position: `--position LAT LON` places the station; without it, one line says so."""
    times = np.array(["2019-01-01T00:50", "2019-01-01T01:50"], "datetime64[ns]")
    ds = make_imagettes(2, lines=4, samples=4).assign_coords(
        {S.TIME: (S.IMAGETTE, times), S.LATITUDE: (S.IMAGETTE, [29.0, 29.0]),
         S.LONGITUDE: (S.IMAGETTE, [-78.4, -78.4])})
    xwvnet.to_store(ds, tmp_path / "s.zarr")
    text = tmp_path / "41010h2019.txt"
    text.write_text("#YY  MM DD hh mm WDIR WSPD GST  WVHT   DPD   APD MWD   PRES\n"
                    "#yr  mo dy hr mn degT m/s  m/s     m   sec   sec degT   hPa\n"
                    "2019 01 01 00 50 120  5.0  6.2  1.20  8.00  5.10 999 1013.0\n"
                    "2019 01 01 01 50 130  5.5  6.4  2.50  9.00  5.30 999 1012.0\n")
    out = tmp_path / "joined.nc"
    argv = ["collocate", str(tmp_path / "s.zarr"), str(text), "--out", str(out), "--method", "nearest"]
    assert main([*argv, "--position", "28.9", "-78.5"]) == 0
    with xr.open_dataset(out) as joined:
        assert joined["ndbc_hs"].values.tolist() == [1.2, 2.5]
    assert main(argv) == 1
    assert "position" in capsys.readouterr().err.strip().splitlines()[-1]
