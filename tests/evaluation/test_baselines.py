"""The image-statistics baseline: features of the valid region only, lazy and chunk-independent, spectral bands."""

from __future__ import annotations

import dask.array as da
import numpy as np

from xwvnet import schema as S
from xwvnet.evaluation import baselines


def test_baseline_features_use_only_the_valid_region(bright):
    ds = bright(6)
    emb = baselines.image_statistics(ds)[S.EMBEDDING]
    assert emb.dims == (S.IMAGETTE, S.FEATURE)
    assert list(emb[S.FEATURE].values) == baselines.feature_names()
    assert emb.attrs["encoder"] == "image-statistics"
    for i in range(6):
        valid = ds[S.QUICKLOOK].values[i, : int(ds[S.VALID_LINES][i])].astype(float)
        np.testing.assert_allclose(emb.values[i, 0], valid.mean(), rtol=1e-5)
        np.testing.assert_allclose(emb.values[i, 1], valid.std(), rtol=1e-5)
    band = [i for i, n in enumerate(baselines.feature_names()) if n.startswith("band_")]
    np.testing.assert_allclose((10.0 ** emb.values[:, band] - 1e-6).sum(axis=1), 1.0, atol=1e-3)


def test_baseline_is_lazy_and_chunk_independent(bright):
    ds = bright(10)
    eager = baselines.image_statistics(ds)[S.EMBEDDING]
    lazy = baselines.image_statistics(ds.chunk({S.IMAGETTE: 3}))[S.EMBEDDING]
    assert isinstance(lazy.data, da.Array)
    np.testing.assert_allclose(lazy.values, eager.values, rtol=1e-6)


def test_spectral_bands_find_a_wave():
    y, x = np.mgrid[0:128, 0:128]
    wave = 100 + 50 * np.sin(2 * np.pi * x / 10.0)  # 0.1 cycles/pixel along samples
    feats = dict(zip(baselines.feature_names(), baselines.image_features(wave)))
    bands = {k: v for k, v in feats.items() if k.startswith("band_")}
    assert max(bands, key=bands.get) == "band_0.0625_0.1250"
    assert feats["sector_0"] > 0.95  # wave vector along samples -> direction sector 0


def test_one_function_reads_uint8_quicklooks_and_nan_padded_sigma0():
    """image_features takes uint8 as it is and ignores NaN padding; image_statistics reads either image variable."""
    from xwvnet import synthetic

    ds = synthetic.imagettes(6, seed=2, size=(32, 32), chunks=3, sigma0=True, ragged=True).load()
    img = ds[S.QUICKLOOK].values[0]
    np.testing.assert_array_equal(baselines.image_features(img), baselines.image_features(img.astype(np.float64)))
    lines, samples = int(ds[S.VALID_LINES][0]), int(ds[S.VALID_SAMPLES][0])
    padded = ds[S.SIGMA0].values[0]
    assert np.isnan(padded).any() and np.isfinite(padded[:lines, :samples]).all()
    moments = slice(0, baselines.feature_names().index("log10_variance") + 1)
    np.testing.assert_allclose(baselines.image_features(padded)[moments],
                               baselines.image_features(padded[:lines, :samples])[moments], rtol=1e-5)
    for var in (S.QUICKLOOK, S.SIGMA0):
        emb = baselines.image_statistics(ds.chunk({S.IMAGETTE: 3}), var=var)[S.EMBEDDING]
        assert emb.attrs["image_variable"] == var and np.isfinite(emb.values).all()
