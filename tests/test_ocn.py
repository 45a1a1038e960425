"""The L2 OCN reader on the real product: total Hs, winds, position, time and the join key."""

from __future__ import annotations

import doctest
import shutil

import numpy as np
import pytest

import xwvnet
from xwvnet import schema as S
from xwvnet.io.names import imagette_key, parse_name
from xwvnet.io.ocn import OcnWarning, open_ocn

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
