"""Linear probes: recovery of a known linear signal, tags, NaN handling, lazy predict, safe save/load, curves."""

from __future__ import annotations

import json
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from xwvnet import probe as P
from xwvnet import schema as S


def embedded(n: int = 300, d: int = 16, noise: float = 0.1, seed: int = 0) -> xr.Dataset:
    """Embeddings x ~ N(0, 1); hs = 2 + x @ w + noise; tags: two separable, one random, one never set."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    w = rng.uniform(-1, 1, d) / np.sqrt(d)
    hs = 2.0 + x @ w + noise * rng.standard_normal(n)
    tags = np.stack([x[:, 0] > 0, x[:, 1] - x[:, 2] > 0.3, rng.random(n) < 0.5, np.zeros(n, bool)], axis=1)
    ids = np.array([f"im-{i:04d}" for i in range(n)], dtype=object)
    return xr.Dataset(
        {
            S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, {"encoder": "toy-linear"}),
            "hs": (S.IMAGETTE, hs, {"units": "m", "long_name": "significant wave height"}),
            S.LABELS: ((S.IMAGETTE, S.LABEL), tags.astype(np.int8)),
        },
        coords={S.IMAGETTE: ids, S.LABEL: np.array(["SEP", "SEP2", "RND", "NONE"], dtype=object)},
    )


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return embedded()


@pytest.fixture(scope="module")
def test_rows(ds) -> np.ndarray:
    return P.split(ds, test_size=0.3, seed=1)


@pytest.fixture(scope="module")
def hs_probe(ds, test_rows) -> P.Probe:
    return P.fit_probe(ds, "hs", train=~test_rows)


@pytest.fixture(scope="module")
def tag_probe(ds, test_rows) -> P.Probe:
    return P.fit_probe(ds, S.LABELS, train=~test_rows, Cs=(0.01, 0.1, 1.0, 10.0), cv=3)


def test_regression_recovers_the_linear_signal(ds, test_rows, hs_probe):
    assert hs_probe.kind == "regression"
    scores = P.score(ds, hs_probe, test=test_rows)
    assert 0.07 < scores["rmse"] < 0.14  # noise level is 0.1
    assert abs(scores["bias"]) < 0.05
    assert scores["r2"] > 0.9
    assert scores["n"] == test_rows.sum()


def test_multilabel_auroc_near_one_on_separable_and_half_on_random(ds, test_rows, tag_probe):
    assert tag_probe.kind == "multilabel"
    assert tag_probe.outputs == ("SEP", "SEP2", "RND", "NONE")
    scores = P.score(ds, tag_probe, test=test_rows)
    assert scores["auroc[SEP]"] > 0.97
    assert scores["auroc[SEP2]"] > 0.95
    assert 0.3 < scores["auroc[RND]"] < 0.7
    assert np.isnan(scores["auroc[NONE]"])  # one class only in the test set: no AUROC
    assert tag_probe.info["constant_labels"] == ["NONE"]
    assert 0.75 < scores["macro_auroc"] < 0.9  # mean of the three scorable tags


def test_predict_attaches_dims_coords_and_provenance(ds, hs_probe, tag_probe):
    out = P.predict(ds, hs_probe)
    pred = out["hs_predicted"]
    assert pred.dims == (S.IMAGETTE,)
    assert pred.dtype == np.float32
    np.testing.assert_array_equal(pred[S.IMAGETTE].values, ds[S.IMAGETTE].values)
    assert pred.attrs["units"] == "m"
    assert pred.attrs["encoder"] == "toy-linear"
    assert "hs_predicted" not in ds  # input untouched
    probs = P.predict(ds, tag_probe)[S.LABELS_PROBABILITY]
    assert probs.dims == (S.IMAGETTE, S.LABEL)
    assert list(probs[S.LABEL].values) == ["SEP", "SEP2", "RND", "NONE"]
    assert float(probs.min()) >= 0 and float(probs.max()) <= 1


def test_predict_is_lazy_over_dask_and_matches_eager(ds, hs_probe, tag_probe):
    lazy = ds.chunk({S.IMAGETTE: 64})
    out = P.predict(P.predict(lazy, hs_probe), tag_probe)
    assert isinstance(out["hs_predicted"].data, da.Array)
    assert isinstance(out[S.LABELS_PROBABILITY].data, da.Array)
    eager = P.predict(P.predict(ds, hs_probe), tag_probe)
    np.testing.assert_allclose(out["hs_predicted"].values, eager["hs_predicted"].values, rtol=1e-6)
    np.testing.assert_allclose(out[S.LABELS_PROBABILITY].values, eager[S.LABELS_PROBABILITY].values, rtol=1e-6)


def test_label_coordinate_order_of_the_dataset_is_kept(ds, tag_probe):
    reordered = ds.isel({S.LABEL: [3, 1, 0, 2]})
    probs = P.predict(reordered, tag_probe)[S.LABELS_PROBABILITY]
    assert list(probs[S.LABEL].values) == ["NONE", "SEP2", "SEP", "RND"]
    direct = P.predict(ds, tag_probe)[S.LABELS_PROBABILITY]
    np.testing.assert_array_equal(probs.sel({S.LABEL: "SEP"}).values, direct.sel({S.LABEL: "SEP"}).values)


def test_nan_targets_are_left_out_and_counted(ds):
    hs = ds["hs"].values.copy()
    hs[:25] = np.nan
    gappy = ds.assign(hs=(S.IMAGETTE, hs, ds["hs"].attrs))
    with pytest.warns(UserWarning, match="25 of 300"):
        fitted = P.fit_probe(gappy, "hs")
    assert fitted.info["n_dropped"] == 25
    assert fitted.info["n_train"] == 275


def test_unknown_tags_are_left_out(ds):
    labels = ds[S.LABELS].values.copy()
    labels[:10] = -1
    with pytest.warns(UserWarning, match="10 of 300"):
        fitted = P.fit_probe(ds.assign({S.LABELS: ((S.IMAGETTE, S.LABEL), labels)}), S.LABELS, Cs=(1.0,), cv=3)
    assert fitted.info["n_train"] == 290
    assert fitted.info["n_dropped"] == 10


def test_wrong_feature_count_is_refused(ds, hs_probe):
    fewer = ds.isel({S.FEATURE: slice(0, 5)})
    with pytest.raises(ValueError, match="16 features"):
        P.predict(fewer, hs_probe)


def test_kind_auto_and_errors(ds):
    assert P.infer_kind(ds["hs"]) == "regression"
    assert P.infer_kind(ds[S.LABELS]) == "multilabel"
    with pytest.raises(ValueError, match="no target"):
        P.fit_probe(ds, "t2m")
    with pytest.raises(ValueError, match="Embed the imagettes"):
        P.fit_probe(ds.drop_vars(S.EMBEDDING), "hs")


def test_save_load_round_trip_gives_identical_predictions(ds, hs_probe, tag_probe, tmp_path):
    for fitted, name in ((hs_probe, "hs_predicted"), (tag_probe, S.LABELS_PROBABILITY)):
        path = fitted.save(tmp_path / f"{fitted.kind}.probe")  # any suffix: no .npz appended
        assert path.is_file()
        again = P.Probe.load(path)
        assert again.kind == fitted.kind and again.outputs == fitted.outputs
        assert again.info["n_train"] == fitted.info["n_train"]
        np.testing.assert_array_equal(P.predict(ds, again)[name].values, P.predict(ds, fitted)[name].values)


def test_foreign_files_are_refused(tmp_path, hs_probe):
    text = tmp_path / "notes.txt"
    text.write_text("not a probe")
    with pytest.raises(P.ProbeFileError, match="not an xwvnet probe"):
        P.Probe.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    with pytest.raises(P.ProbeFileError, match="no probe header"):
        P.Probe.load(other)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, header=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(P.ProbeFileError, match="format 'something-else'"):
        P.Probe.load(wrong)
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(P.ProbeFileError):
        P.Probe.load(pickled)
    with pytest.raises(FileNotFoundError):
        P.Probe.load(tmp_path / "missing.npz")


def test_newer_format_version_is_refused(tmp_path, hs_probe):
    path = hs_probe.save(tmp_path / "p.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(str(arrays["header"]))
    header["format_version"] = P.FORMAT_VERSION + 1
    arrays["header"] = np.array(json.dumps(header))
    np.savez(path, **arrays)
    with pytest.raises(P.ProbeFileError, match="upgrade xwvnet"):
        P.Probe.load(path)


def test_learning_curve_shape_and_improvement(ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curve = P.learning_curve(ds, "hs", sizes=(10, 30, None, 10_000), seeds=3, test_size=0.3)
    assert list(curve["n_labels"].values) == [10, 30, 210]  # None and oversized sizes -> all 210 training rows
    assert curve["score"].dims == ("metric", "n_labels", "seed")
    assert set(curve["metric"].values) == {"rmse", "bias", "r2"}
    rmse = curve["mean"].sel(metric="rmse").values
    assert rmse[-1] < rmse[0]
    assert rmse[-1] < 0.15
    assert np.all(curve["std"].sel(metric="rmse").values >= 0)


def test_learning_curve_for_tags(ds):
    curve = P.learning_curve(ds, S.LABELS, sizes=(40, None), seeds=2, Cs=(0.1, 1.0), cv=3)
    assert "macro_auroc" in curve["metric"].values
    assert float(curve["mean"].sel(metric="auroc[SEP]", n_labels=210)) > 0.95


def test_regression_scores_values():
    scores = P.regression_scores(np.array([1.0, 2.0, 3.0, np.nan]), np.array([2.0, 3.0, 4.0, 1.0]))
    assert scores == pytest.approx({"rmse": 1.0, "bias": 1.0, "r2": -0.5, "n": 3})
