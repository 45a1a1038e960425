"""The evaluation table: one row per encoder (embeddings, callables, the image-statistics baseline), its split, the
failing encoder's row, and the test predictions it scored."""

from __future__ import annotations

import inspect
import warnings

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


# --- one comparison: several encoders, every task of the field --------------------------------------------------------
def compared(n: int = 90, seed: int = 0) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """Synthetic imagettes with a class per imagette (one of the tags, or ``POW``), plus a ready embedding carrying
    hs, wind speed, the class and the tags linearly, and one of pure noise (shuffled: must be aligned)."""
    import xwvnet

    ds = xwvnet.synthetic.imagettes(n, seed=seed, size=(32, 32)).load()
    tags = ds[S.LABELS].values
    names = np.asarray(ds[S.LABEL].values, dtype=object)
    ds = ds.assign({E.CLASS: (S.IMAGETTE, np.where(tags.any(1), names[np.argmax(tags, 1)], "POW").astype(object))})
    classes = np.unique(ds[E.CLASS].values.astype(str))
    onehot = ds[E.CLASS].values.astype(str)[:, None] == classes[None, :]
    rng = np.random.default_rng(seed)
    signal = np.column_stack([ds["hs"].values, ds["wind_speed"].values, 3 * onehot, 3 * tags]).astype(np.float32)
    signal += 0.05 * rng.standard_normal(signal.shape).astype(np.float32)
    ids = ds[S.IMAGETTE].values
    good = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), signal, {"encoder": "signal"})}, coords={S.IMAGETTE: ids})
    noise = rng.standard_normal((n, 8)).astype(np.float32)
    bad = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), noise, {"encoder": "noise"})},
                     coords={S.IMAGETTE: ids}).isel({S.IMAGETTE: rng.permutation(n)})
    return ds, good, bad


@pytest.fixture(scope="module")
def comparison() -> tuple[xr.Dataset, pd.DataFrame, dict, dict]:
    ds, good, bad = compared()
    predicted: dict = {}
    embedded: dict = {}
    table = E.evaluate(ds, {"signal": good, "noise": bad, "image-statistics": "image-statistics"},
                       ["hs", "wind_speed", E.CLASS, S.LABELS], seed=1, Cs=(0.1, 1.0), cv=3, k=5,
                       predictions=predicted, embeddings=embedded)
    return ds, table, predicted, embedded


def test_three_encoders_give_one_table_with_every_task(comparison):
    ds, table, _, embedded = comparison
    assert list(table.index) == ["signal", "noise", "image-statistics"]
    for col in [("hs", "rmse"), ("wind_speed", "rmse"), (E.CLASS, "accuracy"), (E.CLASS, "balanced_accuracy"),
                (E.CLASS, "precision@5"), (E.CLASS, "map@5"), (S.LABELS, "micro_auroc"), (S.LABELS, "precision@5"),
                (E.CLASS, "n_test")]:
        assert col in table.columns, col
    assert ("hs", "precision@5") not in table.columns  # retrieval only for a class or tags
    assert not table[[c for c in table.columns if not c[1].startswith("auroc[")]].isna().any().any()
    assert (table[(E.CLASS, "n_test")] == table.attrs["n_test"]).all()  # the same test imagettes for all
    assert table.loc["signal", (E.CLASS, "accuracy")] > 0.9 > table.loc["noise", (E.CLASS, "accuracy")]
    assert table.loc["signal", ("wind_speed", "rmse")] < table.loc["noise", ("wind_speed", "rmse")]
    assert table.loc["signal", (E.CLASS, "precision@5")] > table.loc["noise", (E.CLASS, "precision@5")]
    assert set(embedded) == set(table.index)  # embedded once, kept for the learning curves
    paper = E.paper_table(table)
    assert list(paper.columns) == ["Hs RMSE (m)", "wind RMSE (m/s)", "class accuracy (%)", "tags micro-AUROC",
                                   "class precision@5", "tags precision@5"]
    assert paper.loc["signal", "class accuracy (%)"] == pytest.approx(100 * table.loc["signal", (E.CLASS, "accuracy")])


def test_accuracy_and_micro_auroc_agree_with_sklearn(comparison):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds, table, predicted, embedded = comparison
    test = E.test_mask(ds, seed=1)
    truth = ds[E.CLASS].values.astype(str)
    # the table's accuracy is that of the predictions it made
    got = predicted["signal"][E.CLASS].sel({S.IMAGETTE: ds[S.IMAGETTE].values[test]}).values.astype(str)
    assert accuracy_score(truth[test], got) == pytest.approx(table.loc["signal", (E.CLASS, "accuracy")])
    # and those predictions are scikit-learn's own multinomial probe, fitted here on the same training imagettes
    x = embedded["noise"][S.EMBEDDING].sel({S.IMAGETTE: ds[S.IMAGETTE].values}).values.astype(float)
    counts = np.unique(truth[~test], return_counts=True)[1]
    folds = StratifiedKFold(n_splits=max(2, min(3, counts.min())), shuffle=True, random_state=1)
    extra = ({"use_legacy_attributes": False, "l1_ratios": (0.0,)}
             if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters else {})
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(Cs=[0.1, 1.0], cv=folds, scoring="accuracy",
                                                                 max_iter=500, **extra))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a class seen once in training
        model.fit(x[~test], truth[~test])
    assert accuracy_score(truth[test], model.predict(x[test])) == pytest.approx(
        table.loc["noise", (E.CLASS, "accuracy")])
    # micro-AUROC: every known (imagette, tag) entry of the test imagettes, pooled
    prob = predicted["signal"][S.LABELS].sel({S.IMAGETTE: ds[S.IMAGETTE].values[test]})
    tags = ds[S.LABELS].values[test]
    expected = roc_auc_score(tags.ravel(), prob.transpose(S.IMAGETTE, S.LABEL).values.ravel())
    assert table.loc["signal", (S.LABELS, "micro_auroc")] == pytest.approx(expected)


def test_integer_classes_with_flag_values(comparison):
    ds, _, _, embedded = comparison
    codes = np.unique(ds[E.CLASS].values.astype(str), return_inverse=True)[1]
    ints = ds.assign({"tengeop": (S.IMAGETTE, codes, {"flag_values": list(range(codes.max() + 1))})})
    table = E.evaluate(ints, {"signal": embedded["signal"]}, "tengeop", seed=1, Cs=(1.0,), cv=2, k=None)
    assert list(table.columns.get_level_values("metric")) == [
        "n_train", "n_test", "accuracy", "balanced_accuracy"]
    assert table.loc["signal", ("tengeop", "accuracy")] > 0.9


def test_published_figures_are_the_papers():
    published = E.published_table()
    assert published.loc["WV-Net ResNet-50", "Hs RMSE (m)"] == 0.50
    assert published.loc["OceanSAR-1 ViT-B/8", "class accuracy (%)"] == pytest.approx(83.6)
    assert published.loc["OceanSAR-1 ResNet-50", "wind RMSE (m/s)"] == 1.62
    assert set(published["source"]) == {"Glaser et al. 2024", "Kerdreux et al. 2025"}
