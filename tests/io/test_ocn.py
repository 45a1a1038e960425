"""The L2 OCN reader (xwvnet.io.ocn): the real product's values, the join key, bad files, IPFs without total Hs."""

from __future__ import annotations

import doctest
import shutil

import numpy as np
import pytest
import xarray as xr

import xwvnet
from tests import _source_files as F
from tests._numpydoc import check_numpydoc
from xwvnet import schema as S
from xwvnet.datasets import fetch
from xwvnet.io.names import imagette_key, parse_name
from xwvnet.io.ocn import MAX_PARTITION_QUALITY, OcnWarning, open_ocn

NAME = "s1a-wv2-ocn-vv-20260112t045817-20260112t045820-062729-07ddb1-036.nc"


@pytest.fixture(scope="module")
def product(data_dir):
    path = data_dir / "s1_wv" / NAME
    if not path.is_file():
        pytest.skip(f"{path} not in the data mirror")
    return path


def test_reads_the_product_values(product):
    ds = open_ocn(product)
    assert ds.sizes[S.IMAGETTE] == 1
    row = ds.isel({S.IMAGETTE: 0})
    assert str(row[S.IMAGETTE].values) == NAME[:-3]
    assert float(row.hs) == pytest.approx(2.01, abs=1e-3)
    assert float(row.wind_speed) == pytest.approx(6.73, abs=0.01)
    assert float(row.model_wind_speed) == pytest.approx(6.60, abs=0.01)
    assert float(row.nrcs) == pytest.approx(-16.7, abs=0.05)
    assert float(row[S.LATITUDE]) == pytest.approx(-56.01, abs=0.01)
    assert float(row[S.LONGITUDE]) == pytest.approx(-4.23, abs=0.01)
    assert float(row[S.INCIDENCE_ANGLE]) == pytest.approx(35.9, abs=0.1)
    assert row[S.TIME].values == np.datetime64("2026-01-12T04:58:17", "ns")
    assert (str(row[S.MISSION].values), str(row[S.SWATH].values), int(row[S.ORBIT])) == ("s1a", "wv2", 62729)
    assert ds.hs.attrs["units"] == "m" and ds.hs.attrs["source_name"] == "oswTotalHs"
    hs_parts = ds.partition_hs.values[0]
    assert hs_parts[0] == pytest.approx(1.81, abs=0.01) and np.isnan(hs_parts[2:]).all()
    xwvnet.validate(ds, require_image=False)
    assert xwvnet.open_ocn is open_ocn


def test_key_joins_with_a_quicklook_of_the_same_acquisition(product):
    ds = open_ocn([product])
    quicklook = "s1a-wv2-QL-vv-20260112t045816-20260112t045819-062729-07ddb1-036.png"  # a second earlier
    assert str(ds.imagette_key.values[0]) == imagette_key(parse_name(quicklook))


def test_bad_files_are_skipped_and_reported(product, tmp_path):
    shutil.copy(product, tmp_path / NAME)
    (tmp_path / "s1a-wv1-ocn-vv-20260112t045917-20260112t045920-062729-07ddb1-037.nc").write_bytes(b"not netcdf")
    (tmp_path / "notes.nc").write_bytes(b"")
    with pytest.warns(OcnWarning, match="skipped 2 OCN file"):
        ds = open_ocn(tmp_path)
    assert ds.sizes[S.IMAGETTE] == 1
    with pytest.raises(ValueError, match="no readable WV L2 OCN product"), pytest.warns(OcnWarning):
        open_ocn(tmp_path / "notes.nc")


def test_docstring_examples_run(product):
    """The examples in the reader's docstring run on the real product and show what they claim."""
    from xwvnet.io import ocn

    result = doctest.testmod(ocn, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


def test_public_names_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.io.ocn")


OCN = "s1_wv/s1a-wv2-ocn-vv-20260112t045817-20260112t045820-062729-07ddb1-036.nc"


# --- L2 OCN of any IPF -----------------------------------------------------------------------------------------------
def test_ocn_before_total_hs_from_partitions_within_15_percent(tmp_path):
    real = fetch(OCN)
    path = F.ocn_without_total_hs(real, tmp_path / "old")
    ds = open_ocn(path)
    with xr.open_dataset(real) as r:
        parts = r.oswHs.values.ravel()
        quality = r.oswQualityFlagPartition.values.ravel()
        windsea = float(r.oswWindSeaHs.values.ravel()[0])
        total = float(r.oswTotalHs.values.ravel()[0])
    keep = np.isfinite(parts) & (quality <= MAX_PARTITION_QUALITY)
    expected = np.sqrt(np.sum(parts[keep] ** 2) + windsea**2)
    assert float(ds.hs[0]) == pytest.approx(expected, rel=1e-6)
    assert float(ds.hs[0]) == pytest.approx(total, rel=0.15)
    assert ds.hs_method.values.tolist() == ["partitions"] and "partitions" in ds.hs.attrs["hs_method"]
    assert str(ds.swath.values[0]) == "wv1"
    new = open_ocn(real)
    assert new.hs_method.values.tolist() == ["oswTotalHs"] and new.hs.attrs["source_name"] == "oswTotalHs"


def test_ocn_polar_spectrum_only_by_direct_integration(tmp_path):
    real = fetch(OCN)
    path = F.ocn_without_total_hs(real, tmp_path / "polar", drop_partitions=True)
    ds = open_ocn(path)
    with xr.open_dataset(real) as r:
        spec = r.oswPolSpec.values[0, 0].astype(float)  # (phi, k)
        k = r.oswK.values.astype(float)
    edges = np.sqrt(k[:-1] * k[1:])  # a log grid: bin edges at geometric midpoints, the ends extended alike
    edges = np.r_[k[0] ** 2 / edges[0], edges, k[-1] ** 2 / edges[-1]]
    m0 = np.nansum(spec * (k * np.diff(edges))[None, :]) * 2 * np.pi / spec.shape[0]
    assert ds.hs_method.values.tolist() == ["polar_spectrum"]
    assert float(ds.hs[0]) == pytest.approx(4 * np.sqrt(m0), rel=0.01)
