"""The `xwvnet` command end to end on a small store: probe (fit, save, apply), neighbors, evaluate."""

import numpy as np
import pandas as pd

import xwvnet
from xwvnet import schema as S
from xwvnet.cli import main
from xwvnet.io.store import add_variables


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
