"""Imagette positions from a real WV SAFE manifest: 60 imagettes, times from file names, footprints."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import xwvnet
from xwvnet import schema as S
from xwvnet.io.safe import footprint_centre, imagettes_from_manifest

SAFE = "S1B_WV_SLC__1SSV_20210403T083025_20210403T084452_026300_032390_D542.SAFE"


@pytest.fixture(scope="module")
def safe_dir(data_dir):
    path = data_dir / "s1_wv" / SAFE
    if not (path / "manifest.safe").is_file():
        pytest.skip(f"{path} not in the data mirror")
    return path


def test_sixty_imagettes_with_ids_times_and_footprints(safe_dir):
    ds = imagettes_from_manifest(safe_dir)
    assert ds.sizes[S.IMAGETTE] == 60
    assert str(ds[S.IMAGETTE].values[0]) == f"{SAFE[:-5]}:001"
    assert ds[S.TIME].values[0] == np.datetime64("2021-04-03T08:30:25", "ns")
    assert ds[S.TIME].values[1] == np.datetime64("2021-04-03T08:30:40", "ns")
    assert (np.diff(ds[S.TIME].values) > np.timedelta64(0, "s")).all()
    assert list(ds[S.SWATH].values[:4]) == ["wv1", "wv2", "wv1", "wv2"]
    assert set(ds[S.ORBIT].values) == {26300} and set(ds[S.MISSION].values) == {"s1b"}
    np.testing.assert_allclose(ds.footprint_latitude.values[0], [35.943001, 35.980026, 36.159458, 36.122410])
    np.testing.assert_allclose(ds.footprint_longitude.values[0], [-34.578793, -34.804562, -34.759426, -34.533089])
    lat, lon = ds[S.LATITUDE].values, ds[S.LONGITUDE].values
    assert ((lat > ds.footprint_latitude.min("corner")) & (lat < ds.footprint_latitude.max("corner"))).all()
    assert ((lon > ds.footprint_longitude.min("corner")) & (lon < ds.footprint_longitude.max("corner"))).all()
    # descending, right-looking: wv2 (far range) lies west of the wv1 imagette before it
    assert (lon[1::2] < lon[0::2]).all()
    assert lat[-1] == pytest.approx(-15.78, abs=0.01)
    assert str(ds.imagette_key.values[1]) == "s1b-wv2-vv-026300-032390-002"
    assert ds.attrs["pass"] == "DESCENDING"
    xwvnet.validate(ds, require_image=False)


def test_manifest_file_or_folder(safe_dir):
    a = imagettes_from_manifest(safe_dir / "manifest.safe")
    b = imagettes_from_manifest(safe_dir)
    assert a.identical(b)


def test_centre_across_the_antimeridian():
    lat, lon = footprint_centre(np.array([0.0, 0.0, 1.0, 1.0]), np.array([179.9, -179.9, -179.9, 179.9]))
    assert lat == pytest.approx(0.5, abs=1e-3) and abs(lon) == pytest.approx(180.0, abs=1e-6)


def test_errors_say_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.safe"):
        imagettes_from_manifest(tmp_path)
    (tmp_path / "manifest.safe").write_text("<xfdu:XFDU xmlns:xfdu='urn:ccsds:schema:xfdu:1'/>")
    with pytest.raises(ValueError, match="lists no WV measurement files"):
        imagettes_from_manifest(tmp_path)
    (tmp_path / "manifest.safe").write_text("not xml")
    with pytest.raises(ValueError, match="not a readable XML"):
        imagettes_from_manifest(tmp_path)


def test_docstring_examples_run(safe_dir):
    """The examples in the manifest reader's docstrings run on the real SAFE and show what they claim."""
    from xwvnet.io import safe

    result = doctest.testmod(safe, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
