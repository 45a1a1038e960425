"""Opening and spelling sources (xwvnet.io.sources): many files, ERA5 layouts, CMEMS names, GRIB attributes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from xwvnet.io.sources import normalise_source, open_source, source_files

from . import _source_files as F


def test_folder_and_glob_open_lazily_one_chunk_per_file(tmp_path):
    paths = F.monthly_folder(tmp_path / "m", months=2)
    (tmp_path / "m" / "README.txt").write_text("not a source")
    for source in (tmp_path / "m", str(tmp_path / "m" / "era5_*.nc")):
        ds = open_source(source)
        assert ds.t2m.chunks[0] == (744, 672)  # January, February: one chunk per file
        assert ds.sizes["time"] == 744 + 672
    assert source_files(tmp_path / "m") == paths
    assert source_files(paths[0]) == []


def test_many_file_errors_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches the source pattern"):
        open_source(str(tmp_path / "nothing_*.nc"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no netCDF or GRIB file"):
        open_source(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_source(tmp_path / "missing.nc")


def test_new_cds_spelling_expver_number_and_grib_attrs(tmp_path):
    F.era5_single(tmp_path / "new.nc", layout="new", packed=False)
    ds = normalise_source(xr.open_dataset(tmp_path / "new.nc"))
    assert "time" in ds.dims and "valid_time" not in ds.variables
    assert "expver" not in ds.variables and "number" not in ds.variables
    assert not [k for v in (ds, *ds.variables.values()) for k in v.attrs if k.startswith("GRIB_")]
    assert ds.t2m.attrs == {"units": "K", "long_name": "2 metre temperature"}
    assert ds.attrs["institution"] == "ECMWF"


def test_expver_dimension_merged_final_first(tmp_path):
    truth = F.era5_single(tmp_path / "old.nc", layout="old", packed=False)
    F.era5_single(tmp_path / "ev.nc", layout="expver-dim", packed=False)
    ds = normalise_source(xr.open_dataset(tmp_path / "ev.nc"))
    assert "expver" not in ds.dims
    np.testing.assert_array_equal(ds.t2m.values, truth.t2m.values)


def test_cmems_and_level_spellings(tmp_path):
    F.insitu_buoys(tmp_path / "b.nc")
    buoys = normalise_source(xr.open_dataset(tmp_path / "b.nc"))
    assert {"time", "latitude", "longitude"} <= set(buoys.variables) and buoys.VHM0.dims == ("STATION", "time")
    F.era5_pressure_levels(tmp_path / "pl.nc", level_name="pressure_level")
    pl = normalise_source(xr.open_dataset(tmp_path / "pl.nc"))
    assert pl.t.dims == ("time", "level", "latitude", "longitude")
    depth = xr.Dataset({"VHM0": (("TIME", "DEPTH"), np.ones((3, 1)))},
                       coords={"TIME": F.hours(3), "LATITUDE": ("TIME", [1.0, 2, 3]),
                               "LONGITUDE": ("TIME", [1.0, 2, 3])})
    assert normalise_source(depth).VHM0.dims == ("time",)  # a one-member depth squeezed


def test_units_identify_unnamed_coordinates():
    ds = xr.Dataset({"v": (("Y", "X"), np.zeros((2, 3)))},
                    coords={"Y": ("Y", [0.0, 1.0], {"units": "degrees_north"}),
                            "X": ("X", [0.0, 1.0, 2.0], {"units": "degrees_east"})})
    assert normalise_source(ds).v.dims == ("latitude", "longitude")
