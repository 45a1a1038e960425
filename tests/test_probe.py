"""Linear probes: recovery of a known linear signal, tags, NaN handling, lazy predict, safe save/load (foreign,
truncated and damaged probe files named), and that they are scikit-learn's estimators (same numbers as a direct
Pipeline fit)."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import ShuffleSplit, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import xwvnet
from tests._embeddings import probe_embeddings
from xwvnet import probe as P
from xwvnet import schema as S
from xwvnet.evaluation.metrics import probe_scores


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return probe_embeddings()


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
    scores = probe_scores(ds, hs_probe, test=test_rows)
    assert 0.07 < scores["rmse"] < 0.14  # noise level is 0.1
    assert abs(scores["bias"]) < 0.05
    assert scores["r2"] > 0.9
    assert scores["n"] == test_rows.sum()


def test_multilabel_auroc_near_one_on_separable_and_half_on_random(ds, test_rows, tag_probe):
    assert tag_probe.kind == "multilabel"
    assert tag_probe.outputs == ("SEP", "SEP2", "RND", "NONE")
    scores = probe_scores(ds, tag_probe, test=test_rows)
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
    with pytest.raises(ValueError, match="s3://bucket/hs.probe: a probe is read and written on a local file system"):
        hs_probe.save("s3://bucket/hs.probe")
    with pytest.raises(ValueError, match="s3://bucket/hs.probe: a probe is read and written on a local file system"):
        P.Probe.load("s3://bucket/hs.probe")


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


# --- scikit-learn's parts --------------------------------------------------------------------------------------------
def test_regression_probe_is_a_standardscaler_ridgecv_pipeline(ds, test_rows, hs_probe):
    train = ~test_rows
    x, y = ds[S.EMBEDDING].values[train].astype(np.float64), ds["hs"].values[train]
    direct = Pipeline([("s", StandardScaler()), ("r", RidgeCV(alphas=np.asarray(P.DEFAULT_ALPHAS)))]).fit(x, y)
    assert hs_probe.info["alpha"] == direct[-1].alpha_
    np.testing.assert_allclose(hs_probe.coef[0], direct[-1].coef_, rtol=1e-12)
    np.testing.assert_allclose(hs_probe.mean[0], direct[0].mean_, rtol=1e-12)
    everything = ds[S.EMBEDDING].values.astype(np.float64)
    np.testing.assert_allclose(P.predict(ds, hs_probe)["hs_predicted"].values,
                               direct.predict(everything).astype(np.float32), rtol=1e-6)
    assert [type(step).__name__ for _, step in hs_probe.pipelines[0].steps] == ["StandardScaler", "Ridge"]


def test_tag_probe_is_one_logistic_pipeline_per_tag(ds, test_rows, tag_probe):
    train = ~test_rows
    x, y = ds[S.EMBEDDING].values[train].astype(np.float64), ds[S.LABELS].values[train, 0].astype(int)
    kwargs = {"Cs": [0.01, 0.1, 1.0, 10.0], "scoring": "roc_auc", "max_iter": 500,
              "cv": StratifiedKFold(n_splits=3, shuffle=True, random_state=0)}
    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:
        kwargs.update(use_legacy_attributes=False, l1_ratios=(0.0,))
    direct = Pipeline([("s", StandardScaler()), ("l", LogisticRegressionCV(**kwargs))]).fit(x, y)
    probs = P.predict(ds, tag_probe)[S.LABELS_PROBABILITY].sel({S.LABEL: "SEP"}).values
    np.testing.assert_allclose(probs, direct.predict_proba(ds[S.EMBEDDING].values.astype(np.float64))[:, 1],
                               rtol=1e-5, atol=1e-7)
    assert len(tag_probe.pipelines) == 4
    assert tag_probe.info["C"]["SEP"] == float(np.ravel(direct[-1].C_)[0])
    # a tag never set predicts its smoothed prevalence (0.5 / (n + 1)), whatever the features
    never = P.predict(ds, tag_probe)[S.LABELS_PROBABILITY].sel({S.LABEL: "NONE"}).values
    np.testing.assert_allclose(never, 0.5 / (train.sum() + 1), rtol=1e-6)


def test_split_is_a_seeded_shufflesplit(ds):
    test = P.split(ds, test_size=0.3, seed=4)
    assert test.sum() == 90 and test.dtype == bool
    _, rows = next(ShuffleSplit(n_splits=1, test_size=90, random_state=4).split(np.empty((300, 1))))
    np.testing.assert_array_equal(np.flatnonzero(test), np.sort(rows))
    np.testing.assert_array_equal(P.split(ds, test_size=0.3, seed=4), test)
    assert not np.array_equal(P.split(ds, test_size=0.3, seed=5), test)
    assert P.split(ds.isel({S.IMAGETTE: [0, 1]}), test_size=0.01).sum() == 1  # at least one held out
    assert P.split(ds.isel({S.IMAGETTE: [0]}), test_size=0.5).sum() == 0  # a lone imagette stays for training
    with pytest.raises(ValueError, match="fraction"):
        P.split(ds, test_size=1.5)


def test_nan_features_predict_nan_and_do_not_spoil_the_rest(ds, hs_probe, tag_probe):
    x = ds[S.EMBEDDING].values.copy()
    x[4, 2] = np.nan
    gappy = ds.assign({S.EMBEDDING: (ds[S.EMBEDDING].dims, x, ds[S.EMBEDDING].attrs)})
    got = P.predict(P.predict(gappy, hs_probe), tag_probe)
    full = P.predict(P.predict(ds, hs_probe), tag_probe)
    assert np.isnan(got["hs_predicted"].values[4])
    assert np.isnan(got[S.LABELS_PROBABILITY].values[4]).all()
    keep = np.arange(300) != 4
    np.testing.assert_array_equal(got["hs_predicted"].values[keep], full["hs_predicted"].values[keep])


def test_saved_file_holds_only_arrays_and_a_json_header(tmp_path, tag_probe):
    path = tag_probe.save(tmp_path / "tags.probe")
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["coef", "header", "intercept", "mean", "scale"]
        assert npz["mean"].shape == npz["coef"].shape == (4, 16)
        assert all(npz[name].dtype != object for name in npz.files)
        header = json.loads(str(npz["header"]))
    assert header["format_version"] == P.FORMAT_VERSION
    assert header["outputs"] == ["SEP", "SEP2", "RND", "NONE"]


def test_format_1_files_with_one_shared_scaler_still_load(tmp_path, ds, hs_probe):
    header = {"format": P.FORMAT, "format_version": 1, "kind": "regression", "target": "hs",
              "features": S.EMBEDDING, "outputs": ["hs"], "info": {"n_train": 5}}
    path = tmp_path / "v1.npz"
    np.savez(path, header=np.array(json.dumps(header)), mean=hs_probe.mean[0], scale=hs_probe.scale[0],
             coef=hs_probe.coef, intercept=hs_probe.intercept)
    old = P.Probe.load(path)
    assert old.mean.shape == (1, 16)
    np.testing.assert_array_equal(P.predict(ds, old)["hs_predicted"].values,
                                  P.predict(ds, hs_probe)["hs_predicted"].values)


def test_damaged_arrays_are_refused(tmp_path, hs_probe):
    path = hs_probe.save(tmp_path / "p.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["intercept"] = np.zeros(3)
    np.savez(path, **arrays)
    with pytest.raises(P.ProbeFileError, match="damaged"):
        P.Probe.load(path)


def test_predict_on_lazily_embedded_imagettes_warns_that_it_embeds_again():
    import xwvnet

    ds = xwvnet.synthetic.imagettes(12, seed=0, size=(32, 32), chunks=6)
    emb = xwvnet.embed(ds, "random-resnet50", batch_size=6)
    persisted = emb.persist()
    probe = P.fit_probe(persisted, "hs")
    with pytest.warns(P.RecomputeWarning, match="persist"):
        P.predict(emb, probe)
    import warnings as _w

    with _w.catch_warnings():
        _w.simplefilter("error", P.RecomputeWarning)
        P.predict(persisted, probe)


def test_misspelt_probe_target():
    import numpy as np

    ds = xwvnet.synthetic.imagettes(8, seed=0, size=(16, 16))
    ds = ds.assign(embedding=(("imagette", "feature"), np.random.default_rng(0).normal(size=(8, 4))))
    with pytest.raises(ValueError, match=r"no target 'hs_' .*Did you mean 'hs'\?"):
        xwvnet.fit_probe(ds, "hs_")


# --- probe files -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_probe(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    ds = xr.Dataset({S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x), "hs": (S.IMAGETTE, x @ [1.0, 2.0, 0.0, -1.0])},
                    coords={S.IMAGETTE: [f"i{k}" for k in range(40)]})
    return P.fit_probe(ds, "hs").save(tmp_path_factory.mktemp("probe") / "hs.probe")


def _rewrite(saved: Path, target: Path, header: object = None, **arrays: np.ndarray) -> Path:
    with np.load(saved) as npz:
        parts = {name: npz[name] for name in npz.files}
    if header is not None:
        parts["header"] = np.array(json.dumps(header))
    parts.update(arrays)
    with open(target, "wb") as fh:
        np.savez(fh, **parts)
    return target


def _header(saved: Path) -> dict:
    with np.load(saved) as npz:
        return json.loads(str(npz["header"]))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "kind"}, r"header lacks \['kind'\]"),
        (lambda h: [1, 2, 3], "its header is a JSON list"),
        (lambda h: "just text", "its header is a JSON str"),
        (lambda h: {**h, "outputs": 5}, r"outputs \(int, expected list\)"),
        (lambda h: {**h, "outputs": [1]}, "outputs .not all strings"),
        (lambda h: {**h, "kind": ["regression"]}, r"kind \(list, expected str\)"),
        (lambda h: {**h, "info": [1]}, r"info \(list, expected dict\)"),
        (lambda h: {**h, "kind": "cluster"}, "probe kind must be one of"),
        (lambda h: {**h, "format_version": True}, "format version True"),
    ],
    ids=["no-kind", "json-list", "json-string", "outputs-int", "outputs-not-str", "kind-list", "info-list",
         "kind-unknown", "version-bool"],
)
def test_probe_headers_that_are_not_probes_are_named(saved_probe, tmp_path, damage, match):
    bad = _rewrite(saved_probe, tmp_path / "bad.probe", header=damage(_header(saved_probe)))
    with pytest.raises(P.ProbeFileError, match=match) as err:
        P.Probe.load(bad)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9, 0.99])
def test_truncated_probe_files_are_named(saved_probe, tmp_path, keep):
    data = saved_probe.read_bytes()
    cut = tmp_path / "cut.probe"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(P.ProbeFileError, match="not an xwvnet probe file, or is damaged") as err:
        P.Probe.load(cut)
    assert str(cut) in str(err.value)


def test_flipped_byte_non_zip_and_bad_arrays_are_named(saved_probe, tmp_path):
    data = bytearray(saved_probe.read_bytes())
    data[len(data) // 3] ^= 0xFF
    flipped = tmp_path / "flipped.probe"
    flipped.write_bytes(bytes(data))
    with pytest.raises(P.ProbeFileError, match="flipped.probe"):
        P.Probe.load(flipped)
    for name, content in {"empty.probe": b"", "text.probe": b"hello", "random.probe": bytes(range(256)) * 9}.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(P.ProbeFileError, match=f"{name} is not an xwvnet probe file"):
            P.Probe.load(tmp_path / name)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(P.ProbeFileError, match="not a readable .npz archive"):
        P.Probe.load(tmp_path / "array.npy")
    coef = np.load(saved_probe)["coef"]
    words = _rewrite(saved_probe, tmp_path / "words.probe", coef=np.array(["a"] * coef.size).reshape(coef.shape))
    with pytest.raises(P.ProbeFileError, match=r"arrays \['coef'\] are not numbers"):
        P.Probe.load(words)
    nan = _rewrite(saved_probe, tmp_path / "nan.probe", coef=np.full(coef.shape, np.nan))
    with pytest.raises(P.ProbeFileError, match=r"nan.probe is a damaged probe file: arrays \['coef'\] hold non-finite"):
        P.Probe.load(nan)
    zero = _rewrite(saved_probe, tmp_path / "zero.probe", scale=np.zeros(coef.shape))
    with pytest.raises(P.ProbeFileError, match="zero.probe is a damaged probe file"):
        P.Probe.load(zero)
    with pytest.raises(FileNotFoundError, match=r"\(a folder\)"):
        P.Probe.load(tmp_path)
    assert P.Probe.load(shutil.copy(saved_probe, tmp_path / "fine.probe")).n_features == 4


@pytest.mark.parametrize("layout", ["strings", "integers", "two classes"])
def test_class_probe_is_one_multinomial_pipeline_and_round_trips(ds, test_rows, tmp_path, layout):
    x = ds[S.EMBEDDING].values.astype(np.float64)
    names = np.where(x[:, 0] > 0.5, "WS", np.where(x[:, 1] > 0, "POW", "RC")).astype(object)
    if layout == "two classes":
        names = np.where(x[:, 0] > 0, "WS", "POW").astype(object)
    names[:5] = ""  # unknown: left out
    values = names
    attrs: dict = {}
    if layout == "integers":  # TenGeoP-style codes, declared as classes by CF flag_values
        values = np.select([names == "POW", names == "RC", names == "WS"], [0, 1, 2], -1)
        attrs = {"flag_values": [0, 1, 2], "flag_meanings": "POW RC WS"}
    data = ds.assign(cls=(S.IMAGETTE, values, attrs))
    assert P.infer_kind(data["cls"]) == "multiclass"
    assert P.infer_kind(data["cls"].assign_attrs(flag_values=None).drop_attrs()) == (
        "regression" if layout == "integers" else "multiclass")
    train = ~test_rows
    with pytest.warns(xwvnet.errors.XWVNetWarning, match="unknown tag or class"):
        probe = P.fit_probe(data, "cls", train=train, Cs=(0.1, 1.0), cv=3)
    known = train & P.known_classes(values)
    assert probe.kind == "multiclass" and probe.info["n_train"] == known.sum()
    kwargs = {"Cs": [0.1, 1.0], "scoring": "accuracy", "max_iter": 500,
              "cv": StratifiedKFold(n_splits=3, shuffle=True, random_state=0)}
    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:
        kwargs.update(use_legacy_attributes=False, l1_ratios=(0.0,))
    direct = Pipeline([("s", StandardScaler()), ("l", LogisticRegressionCV(**kwargs))]).fit(x[known], values[known])
    np.testing.assert_allclose(probe.transform(x), direct.predict_proba(x), rtol=1e-5, atol=1e-6)
    predicted = P.predict(data, probe)["cls_predicted"]
    np.testing.assert_array_equal(predicted.values, direct.predict(x))
    assert predicted.dtype == (np.int64 if layout == "integers" else object)
    lazy = P.predict(data.chunk({S.IMAGETTE: 70}), probe)["cls_predicted"]
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_array_equal(lazy.values, predicted.values)
    loaded = P.Probe.load(probe.save(tmp_path / "cls.probe"))
    np.testing.assert_array_equal(P.predict(data, loaded)["cls_predicted"].values, predicted.values)
    scores = probe_scores(data, probe, test=test_rows)
    assert scores["accuracy"] > 0.85 and scores["n"] == (test_rows & P.known_classes(values)).sum()


def test_class_probe_needs_two_classes(ds):
    with pytest.raises(ValueError, match="at least two classes"):
        P.fit_probe(ds.assign(cls=(S.IMAGETTE, np.full(ds.sizes[S.IMAGETTE], "POW", dtype=object))), "cls")
