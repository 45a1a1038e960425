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
