"""Synthetic imagettes: data model, determinism across chunkings, laziness, physics visible in the pixels."""

from __future__ import annotations

import doctest
import math

import dask.array as da
import numpy as np
import pytest
from scipy.stats import spearmanr

import xwvnet
from tests._numpydoc import check_numpydoc
from xwvnet import schema as S
from xwvnet import synthetic

WVNET_CODES = {"UN", "NV", "WS", "MC", "CP", "RC", "AB", "LW", "AW", "UA", "BS", "OF", "OE", "IW", "UO", "SI", "IB",
               "SH", "SW", "LA", "NO"}
SMALL = (64, 64)


def _spectral_ratio(q: np.ndarray, pixel: float) -> np.ndarray:
    """Mean spectral density at wave scales (90-500 m) over that at the smallest scales (< 90 m, speckle)."""
    q = q.astype(float)
    power = np.abs(np.fft.rfft2(q - q.mean(axis=(1, 2), keepdims=True))) ** 2
    ky = np.fft.fftfreq(q.shape[1], pixel)[:, None]
    kx = np.fft.rfftfreq(q.shape[2], pixel)[None, :]
    k = np.hypot(kx, ky)
    waves, speckle = (k > 1 / 500) & (k < 1 / 90), k > 1 / 90
    return power[:, waves].mean(axis=1) / power[:, speckle].mean(axis=1)


def test_follows_the_data_model():
    ds = synthetic.imagettes(6, seed=2, size=SMALL, chunks=4, sigma0=True)
    assert xwvnet.validate(ds) is ds
    assert ds.sizes == {S.IMAGETTE: 6, S.LINE: 64, S.SAMPLE: 64, S.LABEL: len(synthetic.TAGS)}
    assert list(ds[S.IMAGETTE].values[:2]) == ["synthetic-2-0000000", "synthetic-2-0000001"]
    assert ds[S.QUICKLOOK].dtype == np.uint8 and ds[S.SIGMA0].dtype == np.float32
    assert isinstance(ds[S.QUICKLOOK].data, da.Array) and isinstance(ds[S.SIGMA0].data, da.Array)
    assert ds[S.LABELS].dtype == np.int8 and set(ds[S.LABEL].values) <= WVNET_CODES
    assert set(np.unique(ds[S.LABELS].values)) <= {0, 1}
    for name, units in [("hs", "m"), ("wind_speed", "m s-1"), ("peak_wavelength", "m"), ("t2m", "K")]:
        assert ds[name].dims == (S.IMAGETTE,) and ds[name].attrs["units"] == units
    assert "wave_direction" in ds and "wind_direction" in ds
    assert (ds[S.VALID_LINES] == 64).all() and (ds[S.VALID_SAMPLES] == 64).all()
    loaded = ds.load()
    assert np.isfinite(loaded[S.SIGMA0].values).all() and (loaded[S.SIGMA0].values >= 0).all()


def test_same_imagettes_whatever_the_chunking_or_the_count():
    a = synthetic.imagettes(12, seed=1, size=SMALL, chunks=7, sigma0=True).load()
    b = synthetic.imagettes(12, seed=1, size=SMALL, chunks=64, sigma0=True).load()
    c = synthetic.imagettes(5, seed=1, size=SMALL, chunks=2, sigma0=True).load()
    assert a.quicklook.data.dtype == np.uint8
    assert a.identical(b)
    assert c.identical(a.isel({S.IMAGETTE: slice(0, 5)}))


def test_different_seeds_differ():
    a = synthetic.imagettes(4, seed=0, size=SMALL).load()
    b = synthetic.imagettes(4, seed=1, size=SMALL).load()
    assert not np.array_equal(a.quicklook.values, b.quicklook.values)
    assert not np.array_equal(a.hs.values, b.hs.values)
    assert not np.array_equal(a.time.values, b.time.values)
    assert set(a[S.IMAGETTE].values).isdisjoint(b[S.IMAGETTE].values)


def test_a_million_imagettes_are_lazy(monkeypatch):
    rendered = []
    monkeypatch.setattr(synthetic, "_sigma0", lambda *args: rendered.append(1))
    ds = synthetic.imagettes(1_000_000, seed=3, chunks=64)
    assert ds.sizes[S.IMAGETTE] == 1_000_000
    assert rendered == [], "creating the Dataset must not render any imagette"
    data = ds[S.QUICKLOOK].data
    assert isinstance(data, da.Array)
    assert data.npartitions == math.ceil(1_000_000 / 64)
    assert len(data.dask.layers) <= 4  # a few blockwise layers, not one per imagette
    assert data.chunks[1:] == ((256,), (256,))
    assert ds[S.IMAGETTE].values[-1] == "synthetic-3-0999999"


def test_metadata_is_realistic():
    ds = synthetic.imagettes(4000, seed=4, size=SMALL)
    time = ds[S.TIME].values
    assert time.dtype == np.dtype("datetime64[ns]")
    assert time.min() >= np.datetime64("2015-01-01") and time.max() < np.datetime64("2025-01-01")
    s1b = ds[S.MISSION].values == "s1b"
    assert 0 < s1b.sum() < s1b.size and set(ds[S.MISSION].values) == {"s1a", "s1b"}
    assert time[s1b].min() >= np.datetime64("2016-04-25") and time[s1b].max() < np.datetime64("2021-12-23")
    swath = ds[S.SWATH].values
    assert (swath[::2] == "wv1").all() and (swath[1::2] == "wv2").all()
    inc = ds[S.INCIDENCE_ANGLE].values
    assert np.all(np.abs(inc[::2] - 23.0) < 1) and np.all(np.abs(inc[1::2] - 36.5) < 1)
    assert (ds[S.POLARIZATION].values == "vv").all()
    assert ds[S.ORBIT].dtype.kind == "i" and (ds[S.ORBIT].values > 0).all()
    s1a = ~s1b  # absolute orbits grow with time, 175 per 12 days
    rate = np.polyfit(time[s1a].astype("datetime64[s]").astype(float) / 86400, ds[S.ORBIT].values[s1a], 1)[0]
    assert rate == pytest.approx(175 / 12, rel=1e-3)
    lat, lon = ds[S.LATITUDE].values, ds[S.LONGITUDE].values
    assert np.isfinite(lat).all() and lat.min() >= -68 and lat.max() <= 72
    assert lon.min() >= -180 and lon.max() < 180
    assert synthetic._in_ocean(lat, lon).all()
    # a few well-known land points are off the mask: Sahara, Amazon, central Australia, Siberia
    assert not synthetic._in_ocean(np.array([23.0, -5.0, -25.0, 60.0]), np.array([10.0, -60.0, 134.0, 100.0])).any()
    t2m = ds["t2m"].values
    assert t2m.min() > 245 and t2m.max() < 310
    assert spearmanr(np.abs(lat), t2m)[0] < -0.8
    assert spearmanr(ds["wind_speed"].values, ds["hs"].values)[0] > 0.3  # wind sea grows with the wind


def test_tags_follow_their_conditions():
    ds = synthetic.imagettes(4000, seed=5, size=SMALL)
    tags = ds[S.LABELS].to_pandas().astype(bool)
    wind, lat = ds["wind_speed"].values, np.abs(ds[S.LATITUDE].values)
    assert tags.mean().between(0.005, 0.5).all(), tags.mean()
    assert (tags["LW"] == (wind < 2.5) & ~tags["SI"]).all()
    assert (lat[tags["SI"]] > 58).all() and not (tags["SI"] & tags.drop(columns="SI").any(axis=1)).any()
    assert (wind[tags["WS"]] >= 4).all() and (wind[tags["BS"]] < 6).all()
    assert 0.3 < (~tags.any(axis=1)).mean() < 0.9  # many imagettes show pure ocean waves


def test_quicklook_is_stretched_like_wvnet():
    q = synthetic.imagettes(8, seed=6, size=(128, 128)).quicklook.values
    at_0, at_255 = (q == 0).mean(axis=(1, 2)), (q == 255).mean(axis=(1, 2))
    assert np.all((at_0 > 0.005) & (at_0 < 0.02)) and np.all((at_255 > 0.005) & (at_255 < 0.02))
    assert 70 < q.mean() < 140


def test_ragged_extents_are_zero_padded():
    ds = synthetic.imagettes(10, seed=7, size=(80, 96), chunks=3, sigma0=True, ragged=True).load()
    xwvnet.validate(ds)
    vl, vs = ds[S.VALID_LINES].values, ds[S.VALID_SAMPLES].values
    assert (vl <= 80).all() and (vl > 70).all() and (vs <= 96).all() and (vs > 85).all()
    assert (vl < 80).any() and (vs < 96).any()
    for i in range(10):
        q, s0 = ds[S.QUICKLOOK].values[i], ds[S.SIGMA0].values[i]
        assert (q[vl[i]:] == 0).all() and (q[:, vs[i]:] == 0).all()
        assert np.isnan(s0[vl[i]:]).all() and np.isnan(s0[:, vs[i]:]).all()
        assert np.isfinite(s0[: vl[i], : vs[i]]).all()
        assert (q[: vl[i], : vs[i]] == 255).mean() > 0.005


def test_hs_is_visible_in_the_image():
    """Wave-scale spectral energy over the speckle floor rises with hs, all other factors varying."""
    ds = synthetic.imagettes(100, seed=3, size=(128, 128), chunks=50).load()
    ratio = _spectral_ratio(ds.quicklook.values, ds.attrs["pixel_size_m"])
    rho = spearmanr(ds["hs"].values, ratio)[0]
    assert rho > 0.7, f"rank correlation of hs with wave-scale energy is only {rho:.2f}"


def test_wind_sets_the_mean_nrcs():
    ds = synthetic.imagettes(120, seed=8, size=SMALL, sigma0=True).load()
    plain = ~ds[S.LABELS].values.any(axis=1) & (ds[S.SWATH].values == "wv1")
    level = np.median(ds[S.SIGMA0].values[plain], axis=(1, 2))
    assert spearmanr(ds["wind_speed"].values[plain], level)[0] > 0.8


def _render(seed: int, index: int, size: tuple[int, int], **tags: bool) -> np.ndarray:
    p = synthetic._parameters(np.array([index]), seed, size, False)
    one = {name: value[0] for name, value in p.items()}
    one.update({tag: False for tag in synthetic.TAGS}, **tags)
    return synthetic._sigma0(one, synthetic._pixel_rng(seed, index), size, synthetic.PIXEL_SIZE)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_rain_cells_change_local_statistics(index):
    def patchiness(image: np.ndarray) -> float:  # brightest 8x8 block mean over the median block mean
        blocks = image.reshape(16, 8, 16, 8).mean(axis=(1, 3))
        return float(blocks.max() / np.median(blocks))

    clear, rain = _render(9, index, (128, 128)), _render(9, index, (128, 128), RC=True)
    assert patchiness(rain) > 1.5 * patchiness(clear)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_slicks_darken_and_sea_ice_replaces_the_ocean(index):
    def blocks(image: np.ndarray) -> np.ndarray:  # 4x4 block means: local level without most speckle
        return image.reshape(32, 4, 32, 4).mean(axis=(1, 3))

    size = (128, 128)
    water = blocks(_render(10, index, size))
    slick = blocks(_render(10, index, size, BS=True))
    ice = blocks(_render(10, index, size, SI=True))
    assert np.percentile(slick, 2) < 0.85 * np.percentile(water, 2)
    assert np.median(np.abs(ice - water) / water) > 0.1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n": -1}, "non-negative"),
        ({"n": 3, "seed": -2}, "seed"),
        ({"n": 3, "size": (8, 8)}, "size"),
        ({"n": 3, "chunks": 0}, "chunks"),
        ({"n": 3, "pixel_size": 0}, "pixel_size"),
    ],
)
def test_bad_arguments_say_what_is_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.imagettes(**kwargs)


def test_round_trips_through_a_store(tmp_path):
    ds = synthetic.imagettes(5, seed=11, size=(32, 32), chunks=2)
    xwvnet.to_store(ds, tmp_path / "s.zarr")
    back = xwvnet.open_store(tmp_path / "s.zarr").load()
    assert list(back[S.IMAGETTE].values) == list(ds[S.IMAGETTE].values)
    np.testing.assert_array_equal(back[S.QUICKLOOK].values, ds[S.QUICKLOOK].values)
    np.testing.assert_array_equal(back[S.TIME].values, ds[S.TIME].values)
    np.testing.assert_allclose(back["hs"].values, ds["hs"].values)


def test_docstring_examples_run():
    """The examples in ``imagettes``' docstring run and show what they claim (no data needed)."""
    result = doctest.testmod(synthetic, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


def test_public_names_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.synthetic")


def test_coordinates_carry_cf_attributes():
    ds = synthetic.imagettes(3, seed=0, size=(16, 16))
    assert ds[S.LATITUDE].attrs["units"] == "degrees_north" and ds[S.LATITUDE].attrs["standard_name"] == "latitude"
    assert ds[S.LONGITUDE].attrs["units"] == "degrees_east"
    assert ds[S.TIME].attrs["standard_name"] == "time"
    assert ds[S.HEADING].attrs["units"] == "degree"


def test_imagettes_can_be_placed_in_a_region_and_time_window():
    ds = synthetic.imagettes(50, seed=4, size=(16, 16), region=(-20.0, 40.0, -10.0, 50.0),
                             time=("2021-03-01T00", "2021-03-02T00"))
    assert ((ds[S.LATITUDE] >= 40) & (ds[S.LATITUDE] <= 50)).all()
    assert ((ds[S.LONGITUDE] >= -20) & (ds[S.LONGITUDE] <= -10)).all()
    assert (ds[S.TIME] >= np.datetime64("2021-03-01")).all() and (ds[S.TIME] < np.datetime64("2021-03-02")).all()
    across = synthetic.imagettes(50, seed=4, size=(16, 16), region=(170.0, -10.0, -170.0, 10.0))
    lon = across[S.LONGITUDE].values
    assert ((lon >= 170) | (lon <= -170)).all()
    # pixels are rendered from the placed parameters, the same for any chunking
    a = synthetic.imagettes(4, seed=4, size=(32, 32), region=(-20.0, 40.0, -10.0, 50.0), chunks=1)
    b = synthetic.imagettes(4, seed=4, size=(32, 32), region=(-20.0, 40.0, -10.0, 50.0), chunks=4)
    np.testing.assert_array_equal(a.quicklook.values, b.quicklook.values)
    with pytest.raises(ValueError, match="region"):
        synthetic.imagettes(2, region=(0, 10, 5, 5))
    with pytest.raises(ValueError, match="stop after start"):
        synthetic.imagettes(2, time=("2021-01-02", "2021-01-01"))


# --- placement on the open ocean ------------------------------------------------------------------------------------
def _natural_earth_land():
    """Natural Earth's 1:110m countries (shipped with pyogrio's tests): an independent land mask, offline."""
    pyogrio = pytest.importorskip("pyogrio")
    shapely = pytest.importorskip("shapely")
    from pathlib import Path

    path = Path(pyogrio.__file__).parent / "tests" / "fixtures" / "naturalearth_lowres" / "naturalearth_lowres.shp"
    if not path.is_file():
        pytest.skip(f"no Natural Earth coastlines offline ({path})")
    return shapely, shapely.union_all(pyogrio.read_dataframe(path).geometry.values)


# everywhere (before the ocean boxes, 3 of 200 draws were on land), the demo's UK box inside the ERA5 GRIB sample
# (104 of 200 on land before), off Iberia, and across the antimeridian among the atolls
REGIONS = [None, (-9.5, 50.5, 1.5, 57.5), (-20.0, 40.0, -10.0, 50.0), (170.0, -10.0, -170.0, 10.0)]


@pytest.mark.parametrize("region", REGIONS)
def test_two_hundred_draws_none_on_land_by_natural_earth(region):
    shapely, land = _natural_earth_land()
    ds = synthetic.imagettes(200, seed=0, size=(16, 16), region=region)
    lat, lon = ds[S.LATITUDE].values, ds[S.LONGITUDE].values
    assert int(shapely.contains_xy(land, lon, lat).sum()) == 0
    assert synthetic._in_ocean(lat, lon).all()
    if region is not None:
        west, south, east, north = region
        assert ((lat >= south) & (lat <= north)).all()
        assert (((lon >= west) & (lon <= east)) if west < east else ((lon >= west) | (lon <= east))).all()


def test_two_hundred_draws_none_on_land_by_the_basin_mask(data_dir):
    import xarray as xr

    path = data_dir / "ocean_masks" / "basin_mask.nc"
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    ds = synthetic.imagettes(200, seed=1, size=(16, 16))
    with xr.open_dataset(path) as mask:  # 1-degree cells, NaN on land
        surface = mask.basin.isel(Z=0).load()
    lon360 = np.mod(ds[S.LONGITUDE].values, 360.0)
    cell = surface.sel(Y=xr.DataArray(ds[S.LATITUDE].values), X=xr.DataArray(lon360), method="nearest")
    assert int(np.isnan(cell.values).sum()) == 0


def test_ocean_boxes_hold_no_land_and_do_not_overlap():
    shapely, land = _natural_earth_land()
    boxes = [shapely.box(*b) for b in synthetic.OCEAN_BOXES]
    for b, geometry in zip(synthetic.OCEAN_BOXES, boxes):
        assert -180 <= b[0] < b[2] <= 180 and -90 <= b[1] < b[3] <= 90, b
        assert not geometry.intersects(land), b
    for i, a in enumerate(boxes):
        for c in boxes[i + 1:]:
            assert a.intersection(c).area == 0


def test_draws_are_area_uniform_over_the_boxes():
    ds = synthetic.imagettes(20000, seed=2, size=(16, 16))
    lat, lon = ds[S.LATITUDE].values, ds[S.LONGITUDE].values
    b = np.asarray(synthetic.OCEAN_BOXES)
    area = (np.sin(np.radians(b[:, 3])) - np.sin(np.radians(b[:, 1]))) * (b[:, 2] - b[:, 0])
    inside = ((lon[:, None] >= b[:, 0]) & (lon[:, None] <= b[:, 2]) & (lat[:, None] >= b[:, 1])
              & (lat[:, None] <= b[:, 3]))
    counts = inside.sum(0)
    expected = 20000 * area / area.sum()
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 5), np.c_[counts, expected.round()]
    # within the largest box, sin(latitude) is uniform (area-uniform, not latitude-uniform)
    big = int(np.argmax(area))
    s = np.sin(np.radians(lat[inside[:, big]]))
    lo, hi = np.sin(np.radians(b[big, [1, 3]]))
    assert np.histogram(s, bins=5, range=(lo, hi))[0].std() < 4 * np.sqrt(counts[big] / 5)


def test_a_region_without_open_ocean_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="OCEAN_BOXES"):
        synthetic.imagettes(2, region=(0.0, 15.0, 20.0, 30.0))  # the Sahara
    with pytest.raises(ValueError, match="open sea"):
        synthetic.imagettes(2, region=(20.0, -30.0, 30.0, -20.0))  # southern Africa
    same = synthetic.imagettes(3, seed=3, size=(16, 16), region=(340.0, 40.0, 350.0, 50.0))  # = (-20, 40, -10, 50)
    assert synthetic._in_ocean(same[S.LATITUDE].values, same[S.LONGITUDE].values).all()
    assert ((same[S.LONGITUDE] >= -20) & (same[S.LONGITUDE] <= -10)).all()
