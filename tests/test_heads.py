"""Heads beyond linear: an MLP beats ridge on a nonlinear target, an ensemble is the mean of its members, wide
embeddings are reduced to principal components chosen on validation, saved files (safetensors, no pickle) give the same
predictions bit for bit, covariates (a coordinate, image statistics) travel with the head and are checked at
prediction, NaN rows are left out and counted, lazy predictions equal eager ones, and seeds reproduce."""

from __future__ import annotations

import json
import struct
import zipfile

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import xwvnet
from xwvnet import heads as H
from xwvnet import probe as P
from xwvnet import schema as S
from xwvnet import synthetic
from xwvnet.errors import InvalidArgumentError, InvalidDataError, InvalidTypeError, ModelMismatchError, XWVNetWarning

SMALL = {"hidden": (32, 32), "max_epochs": 150, "patience": 20, "batch_size": 32, "learning_rate": 3e-3, "ensemble": 2}


def _nonlinear(n: int = 500, d: int = 6, seed: int = 0) -> xr.Dataset:
    """Embeddings x ~ N(0, 1) and an incidence angle; ``hs`` depends on them nonlinearly (noise 0.05)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    incidence = rng.uniform(20.0, 40.0, n)
    hs = (
        2.0
        + np.sin(2 * x[:, 0])
        + x[:, 1] ** 2
        + 0.1 * (incidence - 30.0) * np.tanh(x[:, 2])
        + 0.05 * rng.standard_normal(n)
    )
    ids = np.array([f"im-{i:04d}" for i in range(n)], dtype=object)
    return xr.Dataset(
        {
            S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x, {"encoder": "toy", "encoder_weights_hash": "abc"}),
            "hs": (S.IMAGETTE, hs, {"units": "m", "long_name": "significant wave height"}),
        },
        coords={S.IMAGETTE: ids, "incidence_angle": (S.IMAGETTE, incidence, {"units": "degree"})},
    )


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return _nonlinear()


@pytest.fixture(scope="module")
def test_rows(ds) -> np.ndarray:
    return P.split(ds, test_size=0.3, seed=1)


@pytest.fixture(scope="module")
def mlp(ds, test_rows) -> H.Head:
    return H.fit_head(ds, "hs", features=("embedding", "incidence_angle"), train=~test_rows, seed=0, **SMALL)


def _rmse(ds: xr.Dataset, head: H.Head, rows: np.ndarray) -> float:
    predicted = xwvnet.predict(ds, head)["hs_predicted"].values[rows]
    return float(np.sqrt(np.mean((predicted - ds["hs"].values[rows]) ** 2)))


def test_mlp_beats_ridge_on_a_nonlinear_target(ds, test_rows, mlp):
    ridge = H.fit_head(ds, "hs", features=("embedding", "incidence_angle"), model="ridge", train=~test_rows)
    mlp_rmse, ridge_rmse = _rmse(ds, mlp, test_rows), _rmse(ds, ridge, test_rows)
    assert ridge_rmse > 0.9  # the target's nonlinear part: a linear model cannot follow it
    assert mlp_rmse < 0.5 * ridge_rmse, (mlp_rmse, ridge_rmse)
    # the ridge head is the linear probe on the same inputs: same numbers as fit_probe on them side by side
    both = ds.assign(
        {"both": ((S.IMAGETTE, "column"), np.column_stack([ds[S.EMBEDDING].values, ds["incidence_angle"].values]))}
    )
    probe = P.fit_probe(both, "hs", features="both", train=~test_rows)
    np.testing.assert_array_equal(
        P.predict(both, probe)["hs_predicted"].values, xwvnet.predict(ds, ridge)["hs_predicted"].values
    )
    assert mlp.info["n_train"] + mlp.info["n_validation"] == (~test_rows).sum() == ridge.info["n_train"]
    assert len(mlp.info["epochs"]) == len(mlp.info["best_epoch"]) == mlp.info["ensemble"]
    assert mlp.info["components"] is None and "projection" not in mlp.tensors  # 7 inputs: none is reduced
    assert all(1 <= b <= e <= SMALL["max_epochs"] for b, e in zip(mlp.info["best_epoch"], mlp.info["epochs"]))


def test_predictions_are_a_variable_with_provenance(ds, mlp):
    out = ds.wvnet.predict(mlp)
    pred = out["hs_predicted"]
    assert pred.dims == (S.IMAGETTE,) and pred.dtype == np.float32
    assert pred.attrs["units"] == "m" and pred.attrs["encoder"] == "toy" and pred.attrs["head_model"] == "mlp"
    assert pred.attrs["head_features"] == "embedding,incidence_angle"
    assert "hs_predicted" not in ds
    assert ds.wvnet.fit_head.__wrapped__ is H.fit_head


def test_saved_head_round_trips_bit_exactly_with_no_pickle(ds, mlp, tmp_path):
    path = mlp.save(tmp_path / "hs.head")  # any suffix: nothing appended
    raw = path.read_bytes()
    # the safetensors layout: an 8-byte little-endian header length, a JSON header, then raw tensor bytes only
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    assert 8 + length + max(ends) == len(raw)
    assert not zipfile.is_zipfile(path)  # not a torch.save archive (which holds a pickle)
    meta = json.loads(header["__metadata__"][H.FORMAT])
    assert meta["format"] == H.FORMAT and meta["features"] == ["embedding", "incidence_angle"]
    assert {entry["dtype"] for entry in header.values() if isinstance(entry, dict) and "dtype" in entry} <= {
        "F32",
        "F64",
    }
    again = H.Head.load(path)
    assert again.model == "mlp" and again.widths == mlp.widths and again.info == json.loads(json.dumps(mlp.info))
    for key, value in mlp.tensors.items():
        np.testing.assert_array_equal(again.tensors[key], value)
        assert again.tensors[key].dtype == value.dtype
    before, after = (xwvnet.predict(ds, h)["hs_predicted"].values for h in (mlp, again))
    assert before.tobytes() == after.tobytes()  # bit for bit
    # a ridge head too
    ridge = H.fit_head(ds, "hs", model="ridge")
    loaded = H.Head.load(ridge.save(tmp_path / "ridge.safetensors"))
    assert (
        xwvnet.predict(ds, loaded)["hs_predicted"].values.tobytes()
        == xwvnet.predict(ds, ridge)["hs_predicted"].values.tobytes()
    )


def test_foreign_and_newer_files_are_refused(tmp_path, mlp):
    text = tmp_path / "notes.txt"
    text.write_text("not a head")
    with pytest.raises(H.HeadFileError, match="not a readable safetensors"):
        H.Head.load(text)
    probe_file = tmp_path / "p.npz"
    np.savez(probe_file, header=np.array("{}"))
    with pytest.raises(H.HeadFileError):
        H.Head.load(probe_file)
    import safetensors.numpy

    other = tmp_path / "other.safetensors"
    safetensors.numpy.save_file({"w": np.ones(3)}, str(other))
    with pytest.raises(H.HeadFileError, match="no xwvnet-head header"):
        H.Head.load(other)
    newer = tmp_path / "newer.safetensors"
    header = json.loads(json.dumps({"format": H.FORMAT, "format_version": H.FORMAT_VERSION + 1}))
    safetensors.numpy.save_file(dict(mlp.tensors), str(newer), metadata={H.FORMAT: json.dumps(header)})
    with pytest.raises(H.HeadFileError, match="upgrade xwvnet"):
        H.Head.load(newer)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(mlp.save(tmp_path / "full.safetensors").read_bytes()[:-10])
    with pytest.raises(H.HeadFileError):
        H.Head.load(truncated)
    with pytest.raises(FileNotFoundError):
        H.Head.load(tmp_path / "missing.safetensors")


def test_mismatched_encoder_or_covariates_are_refused(ds, mlp):
    other = ds.copy()
    other[S.EMBEDDING] = other[S.EMBEDDING].assign_attrs(encoder="another")
    with pytest.raises(ModelMismatchError, match="encoder 'another', the head was fitted on 'toy'"):
        xwvnet.predict(other, mlp)
    rehashed = ds.copy()
    rehashed[S.EMBEDDING] = rehashed[S.EMBEDDING].assign_attrs(encoder_weights_hash="def")
    with pytest.raises(ModelMismatchError, match="encoder_weights_hash"):
        xwvnet.predict(rehashed, mlp)
    with pytest.raises(ModelMismatchError, match="lacks \\['incidence_angle'\\]"):
        xwvnet.predict(ds.drop_vars("incidence_angle"), mlp)
    with pytest.raises(ModelMismatchError, match="5 columns, the head was fitted on 6"):
        xwvnet.predict(ds.isel({S.FEATURE: slice(0, 5)}), mlp)
    with pytest.raises(InvalidTypeError, match="a Probe or a Head"):
        xwvnet.predict(ds, "hs.head")


def test_nan_targets_and_inputs_are_left_out_and_counted(ds):
    hs = ds["hs"].values.copy()
    hs[:7] = np.nan
    incidence = ds["incidence_angle"].values.copy()
    incidence[10:13] = np.nan
    holed = ds.assign({"hs": (S.IMAGETTE, hs, ds["hs"].attrs)}).assign_coords(incidence_angle=(S.IMAGETTE, incidence))
    with pytest.warns(XWVNetWarning, match="10 of 500 imagettes left out"):
        head = H.fit_head(holed, "hs", features=("embedding", "incidence_angle"), model="ridge")
    assert head.info["n_dropped"] == 10 and head.info["n_train"] == 490
    predicted = xwvnet.predict(holed, head)["hs_predicted"].values
    assert np.isnan(predicted[10:13]).all() and np.isfinite(np.delete(predicted, range(10, 13))).all()


def test_seeds_reproduce(ds, test_rows, mlp):
    again = H.fit_head(ds, "hs", features=("embedding", "incidence_angle"), train=~test_rows, seed=0, **SMALL)
    for key, value in mlp.tensors.items():
        assert again.tensors[key].tobytes() == value.tobytes(), key
    other = H.fit_head(
        ds, "hs", features=("embedding", "incidence_angle"), train=~test_rows, seed=1, **{**SMALL, "max_epochs": 5}
    )
    assert not np.array_equal(other.tensors["layer0.weight"], mlp.tensors["layer0.weight"])


def test_an_ensemble_predicts_the_mean_of_its_members(ds, test_rows):
    kw = {**SMALL, "max_epochs": 30, "train": ~test_rows, "features": ("embedding", "incidence_angle")}
    pair = H.fit_head(ds, "hs", seed=3, **{**kw, "ensemble": 2})
    members = [H.fit_head(ds, "hs", seed=s, **{**kw, "ensemble": 1}) for s in (3, 4)]  # member k is seeded seed + k
    assert pair.n_layers == 3 and pair.tensors["layer0.weight"].shape == (64, 7)
    assert pair.tensors["layer1.weight"].shape == (64, 64) and pair.tensors["layer2.weight"].shape == (1, 64)
    assert not pair.tensors["layer1.weight"][:32, 32:].any()  # the members do not read each other's units
    mean = np.mean([xwvnet.predict(ds, m)["hs_predicted"].values for m in members], axis=0)
    np.testing.assert_allclose(xwvnet.predict(ds, pair)["hs_predicted"].values, mean, rtol=1e-5, atol=1e-5)
    assert pair.info["epochs"] == [m.info["epochs"][0] for m in members]


def _wide(n: int = 400, d: int = 64, seed: int = 0) -> xr.Dataset:
    """A 64-column embedding whose first two principal directions carry ``hs``, plus weak noise columns."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, 2))
    mixing = np.linalg.qr(rng.standard_normal((d, d)))[0][:, :2].T
    x = 3.0 * signal @ mixing + 0.1 * rng.standard_normal((n, d))
    hs = 2.0 + np.sin(signal[:, 0]) + 0.5 * signal[:, 1] ** 2 + 0.05 * rng.standard_normal(n)
    return _nonlinear(n, 3, seed).assign(
        {
            S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), x.astype(np.float32), {"encoder": "toy"}),
            "hs": (S.IMAGETTE, hs, {"units": "m"}),
        }
    )


def test_wide_embeddings_are_reduced_to_principal_components_chosen_on_validation(tmp_path):
    wide = _wide()
    head = H.fit_head(
        wide, "hs", features=("embedding", "incidence_angle"), components=(2, 8), **{**SMALL, "max_epochs": 60}
    )
    assert head.info["components"] in (2, 8) and set(head.info["components_validation_rmse"]) == {"2", "8"}
    k = head.info["components"]
    projection = head.tensors["projection"]
    assert projection.shape == (65, k + 1) and head.tensors["layer0.weight"].shape[1] == k + 1
    np.testing.assert_array_equal(projection[64:, k:], [[1.0]])  # the incidence angle passes unchanged
    # whitened principal components of the standardised training embedding: unit variance, uncorrelated
    x = np.column_stack([wide[S.EMBEDDING].values, wide["incidence_angle"].values]).astype(np.float64)
    z = (x - head.tensors["input_mean"]) / head.tensors["input_scale"] @ projection
    np.testing.assert_allclose(np.cov(z[:, :k].T, bias=True), np.eye(k), atol=1e-6)
    path = head.save(tmp_path / "wide.head")
    assert H.Head.load(path).tensors["projection"].tobytes() == projection.tobytes()
    eager = xwvnet.predict(wide, head)["hs_predicted"]
    lazy = xwvnet.predict(wide.chunk({S.IMAGETTE: 64}), H.Head.load(path))["hs_predicted"]
    assert isinstance(lazy.data, da.Array) and lazy.values.tobytes() == eager.values.tobytes()
    rmse = float(np.sqrt(np.mean((eager.values - wide["hs"].values) ** 2)))
    assert rmse < 0.5 * float(wide["hs"].std()), rmse
    # a head without a projection is written as format version 1, which older xwvnet reads
    narrow = H.fit_head(wide, "hs", features=("embedding",), components=None, **{**SMALL, "max_epochs": 5})
    assert "projection" not in narrow.tensors
    raw = narrow.save(tmp_path / "narrow.head").read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    assert json.loads(json.loads(raw[8 : 8 + length])["__metadata__"][H.FORMAT])["format_version"] == 1


@pytest.fixture(scope="module")
def imagettes() -> xr.Dataset:
    """Synthetic imagettes (quicklook and NaN-padded sigma0) with a stand-in embedding, loaded into memory."""
    ds = synthetic.imagettes(48, seed=3, size=(32, 32), chunks=16, sigma0=True, ragged=True).load()
    rng = np.random.default_rng(0)
    return ds.assign(
        {S.EMBEDDING: ((S.IMAGETTE, S.FEATURE), rng.standard_normal((48, 4)).astype(np.float32), {"encoder": "toy"})}
    )


def test_image_statistics_covariates_lazy_predictions_equal_eager(imagettes):
    features = ("embedding", "incidence_angle", H.IMAGE_STATISTICS)
    head = H.fit_head(imagettes, "wind_speed", features=features, **{**SMALL, "max_epochs": 20})
    n_stats = len(xwvnet.evaluation.baselines.feature_names())
    assert head.widths == (4, 1, n_stats) and head.identities[2]["image_variable"] == S.QUICKLOOK
    eager = xwvnet.predict(imagettes, head)["wind_speed_predicted"]
    lazy = xwvnet.predict(imagettes.chunk({S.IMAGETTE: 10}), head)["wind_speed_predicted"]
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6)
    assert np.isfinite(eager.values).all()
    # statistics of sigma0 (NaN outside the valid extent) are another covariate: the quicklook head refuses them
    on_sigma0 = H.fit_head(imagettes, "wind_speed", features=features, image_variable=S.SIGMA0, model="ridge")
    assert on_sigma0.info["n_dropped"] == 0  # NaN padding is not read: every imagette has finite statistics
    with pytest.raises(ModelMismatchError, match="lacks \\['sigma0 \\(for image_statistics\\)'\\]"):
        xwvnet.predict(imagettes.drop_vars(S.SIGMA0), on_sigma0)


def test_arguments_are_checked(ds):
    with pytest.raises(InvalidArgumentError, match="also a feature"):
        H.fit_head(ds, "hs", features=("embedding", "hs"))
    with pytest.raises(InvalidArgumentError, match="model must be"):
        H.fit_head(ds, "hs", model="forest")
    with pytest.raises(InvalidDataError, match="no feature 'embeding'"):
        H.fit_head(ds, "hs", features=("embeding",))
    with pytest.raises(InvalidDataError, match="no target"):
        H.fit_head(ds, "hss")
    with pytest.raises(InvalidArgumentError, match="validation"):
        H.fit_head(ds, "hs", validation=1.0)
    for bad in ({"components": 0}, {"ensemble": 0}, {"dropout": 1.0}):
        with pytest.raises(InvalidArgumentError, match="components"):
            H.fit_head(ds, "hs", **bad)
    with pytest.raises(InvalidArgumentError, match="components must be"):
        H.fit_head(ds, "hs", components=(8, "all"))
