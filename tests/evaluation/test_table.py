"""The evaluation table: one row per encoder (embeddings, callables, the image-statistics baseline), its split, the
failing encoder's row, and the test predictions it scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from xwvnet import schema as S
from xwvnet.evaluation import table as E


def labelled(n: int = 200, d: int = 12, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """Imagette-less labelled Dataset plus two ready embeddings of it: one carrying the signal, one pure noise."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, d)).astype(np.float32)
    hs = 2.5 + signal[:, :3].sum(axis=1) * 0.5 + 0.05 * rng.standard_normal(n)
    tags = np.stack([signal[:, 3] > 0, rng.random(n) < 0.3], axis=1).astype(np.int8)
    ids = np.array([f"e-{i:04d}" for i in range(n)], dtype=object)
    ds = xr.Dataset({"hs": (S.IMAGETTE, hs, {"units": "m"}), S.LABELS: ((S.IMAGETTE, S.LABEL), tags)},
                    coords={S.IMAGETTE: ids, S.LABEL: ["SEP", "RND"]})
    good = ds.assign({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), signal, {"encoder": "good"})})
    noise = rng.standard_normal((n, d)).astype(np.float32)
    bad = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), noise, {"encoder": "noise"})},
                     coords={S.IMAGETTE: ids}).isel({S.IMAGETTE: rng.permutation(n)})  # shuffled: must be aligned
    return ds, good, bad


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    ds, good, bad = labelled()

    def broken(_ds):
        raise RuntimeError("weights not available offline")

    with pytest.warns(UserWarning, match="broken"):
        return E.evaluate(ds, {"good": good, "noise": bad, "broken": broken}, ["hs", S.LABELS], seed=3,
                          Cs=(0.1, 1.0), cv=3)


def test_table_shape_rows_and_columns(table):
    assert list(table.index) == ["good", "noise", "broken"]
    assert table.index.name == "encoder"
    for col in [("hs", "rmse"), ("hs", "bias"), ("hs", "r2"), ("hs", "n_train"), ("hs", "n_test"),
                (S.LABELS, "micro_auroc"), (S.LABELS, "macro_auroc"), (S.LABELS, "auroc[SEP]")]:
        assert col in table.columns
    assert table.loc["good", ("hs", "n_test")] == 60 and table.loc["good", ("hs", "n_train")] == 140
    assert table.attrs["n_test"] == 60


def test_signal_encoder_beats_noise(table):
    assert table.loc["good", ("hs", "rmse")] < 0.1
    assert table.loc["good", ("hs", "r2")] > 0.95
    assert table.loc["noise", ("hs", "r2")] < 0.3
    assert table.loc["good", (S.LABELS, "auroc[SEP]")] > 0.95
    assert abs(table.loc["noise", (S.LABELS, "auroc[SEP]")] - 0.5) < 0.25


def test_failing_encoder_keeps_a_nan_row_and_a_reason(table):
    assert table.loc["broken"].isna().all()
    assert "weights not available offline" in table.attrs["skipped"]["broken"]
    assert "broken: not run" in E.format_table(table)


def test_errors_raise_stops():
    ds, good, _ = labelled(60)
    with pytest.raises(RuntimeError, match="offline"):
        E.evaluate(ds, {"x": lambda _: (_ for _ in ()).throw(RuntimeError("offline"))}, "hs", errors="raise")


def test_given_split_is_used_and_same_for_all_encoders():
    ds, good, bad = labelled(100)
    test_ids = ds[S.IMAGETTE].values[:25]
    table = E.evaluate(ds, [good, bad], "hs", split=test_ids)
    assert list(table.index) == ["good", "noise"]
    assert (table[("hs", "n_test")] == 25).all()
    words = np.where(np.arange(100) < 40, "test", "train")
    assert E.test_mask(ds.assign(split=(S.IMAGETTE, words)), "split").sum() == 40


def test_default_targets_and_missing_target():
    ds, good, _ = labelled(80)
    table = E.evaluate(ds, {"good": good})
    assert {c[0] for c in table.columns} == {"hs", S.LABELS}
    with pytest.raises(ValueError, match="evaluate needs"):
        E.evaluate(ds, {"good": good}, "t2m")


def test_evaluate_with_the_baseline_row(bright):
    ds = bright(60)
    table = E.evaluate(ds, ["image-statistics"], "brightness", seed=0)
    assert table.loc["image-statistics", ("brightness", "r2")] > 0.9


def test_evaluate_fills_the_test_predictions_it_scored(bright):
    ds = bright(60)
    predicted: dict = {}
    table = E.evaluate(ds, {"stats": "image-statistics", "broken": lambda d: 1 / 0}, "brightness", seed=0,
                       predictions=predicted)
    assert set(predicted) == {"stats"} and set(predicted["stats"]) == {"brightness"}  # no row, no predictions
    got = predicted["stats"]["brightness"]
    test = E.test_mask(ds, seed=0)
    assert got.sizes[S.IMAGETTE] == int(test.sum()) == table.loc["stats", ("brightness", "n_test")]
    assert set(got[S.IMAGETTE].values) == set(ds[S.IMAGETTE].values[test])
    # the scores in the table are those of these very predictions (independent: numpy RMSE)
    truth = ds["brightness"].sel({S.IMAGETTE: got[S.IMAGETTE]}).values
    assert np.sqrt(np.mean((got.values - truth) ** 2)) == pytest.approx(table.loc["stats", ("brightness", "rmse")])
    pd.testing.assert_frame_equal(table, E.evaluate(ds, {"stats": "image-statistics", "broken": lambda d: 1 / 0},
                                                    "brightness", seed=0))
