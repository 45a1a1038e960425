"""The input door and the sources (xwvnet.io.sources): resolve, many files, ERA5 layouts, CMEMS names, GRIB attrs."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import xarray as xr

from tests import _source_files as F
from tests._numpydoc import check_numpydoc
from xwvnet.errors import InputNotFoundError, InvalidArgumentError, InvalidTypeError, XWVNetError
from xwvnet.io.sources import (
    GRIB,
    NETCDF,
    OCN,
    QUICKLOOK,
    SAFE,
    ZARR,
    normalise_source,
    open_source,
    resolve,
    source_kind,
)


def test_folder_and_glob_open_lazily_one_chunk_per_file(tmp_path):
    paths = F.monthly_folder(tmp_path / "m", months=2)
    (tmp_path / "m" / "README.txt").write_text("not a source")
    for source in (tmp_path / "m", str(tmp_path / "m" / "era5_*.nc")):
        ds = open_source(source)
        assert ds.t2m.chunks[0] == (744, 672)  # January, February: one chunk per file
        assert ds.sizes["time"] == 744 + 672
    assert [s.path for s in resolve(tmp_path / "m", kinds=(NETCDF, GRIB))] == paths
    assert [(s.kind, s.path) for s in resolve(paths[0])] == [(NETCDF, paths[0])]


def test_many_file_errors_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file matches the pattern"):
        open_source(str(tmp_path / "nothing_*.nc"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="netCDF files .* found: the folder .*empty holds none"):
        open_source(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_source(tmp_path / "missing.nc")


# --- the input door -----------------------------------------------------------------------------------------------
def _products(root):
    """A folder holding a SAFE folder (named by its manifest only), a zipped product, quicklooks and other files."""
    root.mkdir()
    safe = root / "S1A_WV_SLC__1SSV_A"  # no .SAFE suffix: its manifest.safe says what it is
    safe.mkdir()
    (safe / "manifest.safe").write_text("<xfdu/>")
    (root / "S1B_WV_SLC__1SSV_B.zip").write_bytes(b"PK")
    for name in ("b.png", "a.PNG", "notes.txt", "s1a-wv2-ocn-vv-x-001.nc", "era5.nc", "t.grib2"):
        (root / name).write_bytes(b"x")
    (root / "plain").mkdir()
    (root / "store.zarr").mkdir()
    return root, safe


def test_every_kind_is_told_by_name_or_content(tmp_path):
    root, safe = _products(tmp_path / "in")
    kinds = {s.path.name: s.kind for s in resolve(root)}
    assert kinds == {"S1A_WV_SLC__1SSV_A": SAFE, "S1B_WV_SLC__1SSV_B.zip": SAFE, "a.PNG": QUICKLOOK,
                     "b.png": QUICKLOOK, "era5.nc": NETCDF, "s1a-wv2-ocn-vv-x-001.nc": OCN, "store.zarr": ZARR,
                     "t.grib2": GRIB}  # notes.txt and the plain sub-folder are no source; not recursive
    assert [s.path.name for s in resolve(root, kinds=(QUICKLOOK,))] == ["a.PNG", "b.png"]  # sorted by name
    assert source_kind(safe) == SAFE and source_kind(root) is None
    assert [(s.kind, s.path) for s in resolve(safe / "manifest.safe")] == [(SAFE, safe)]  # the product, not the file


def test_explicit_files_are_kept_globs_filtered_and_duplicates_dropped(tmp_path):
    root, safe = _products(tmp_path / "in")
    found = resolve([safe, safe / "manifest.safe", root / "notes.txt", root / "missing.png",
                     str(root / "**" / "*.png")], kinds=(QUICKLOOK, SAFE))
    assert [(s.kind, s.path.name) for s in found] == [
        (SAFE, safe.name), (QUICKLOOK, "notes.txt"),  # named explicitly: kept as the first kind wanted
        (QUICKLOOK, "missing.png"), (QUICKLOOK, "b.png")]  # a.PNG does not match *.png; missing.png: its reader says


def test_relative_paths_and_user_folders_are_made_absolute(tmp_path, monkeypatch):
    root, _ = _products(tmp_path / "in")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert [s.path for s in resolve("in/*.png")] == [root / "b.png"]
    assert [s.path for s in resolve("~/in/b.png")] == [root / "b.png"]
    assert [s.path for s in resolve(f"file://{root}/b.png")] == [root / "b.png"]


def test_urls_are_never_local_paths_and_take_checked_storage_options():
    (safe,) = resolve("s3://bucket/wv/S1A_WV_SLC__1SSV_x.SAFE/manifest.safe", {"endpoint_url": "http://127.0.0.1:9"})
    assert safe.kind == SAFE and str(safe) == "s3://bucket/wv/S1A_WV_SLC__1SSV_x.SAFE"
    assert dict(safe.location.options) == {"endpoint_url": "http://127.0.0.1:9"}
    assert [s.kind for s in resolve(["gs://b/w/X.zip", "az://c/wv.zarr", "s3://b/folder"])] == [SAFE, ZARR, ZARR]
    assert resolve("s3://b/folder", kinds=(QUICKLOOK, SAFE))[0].kind == SAFE  # a name that says nothing: as wanted
    with pytest.raises(ValueError, match=r"\['regoin'\] are not known for s3:// stores"):
        resolve("s3://b/x.SAFE", {"regoin": "eu"})
    with pytest.raises(ValueError, match="not known for gs:// stores"):
        resolve(["s3://b/x.SAFE", "gs://b/y.SAFE"], {"region": "eu-west-1"})
    with pytest.raises(ValueError, match="without '//'"):
        resolve("s3:/bucket/x.SAFE")
    for url, what in (("s3://b/ql/x.png", "quicklook files"), ("s3://b/era5.nc", "netCDF files"),
                      ("s3://b/wv/*.SAFE", "glob patterns"), ("s3://b/wv.zarr", "give SAFE products")):
        with pytest.raises(InvalidArgumentError, match=what) as err:
            resolve(url, kinds=(SAFE,))
        assert isinstance(err.value, XWVNetError) and isinstance(err.value, ValueError)
        assert len(str(err.value).splitlines()) == 1


def test_local_paths_take_no_storage_options(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (found,) = resolve(tmp_path / "a.png", {"endpoint_url": "http://127.0.0.1:9"})
    assert found.location.options == () and found.location.local


def test_nothing_to_read_is_one_clear_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for items, why in ((tmp_path / "empty", "the folder .*empty holds none"),
                       (str(tmp_path / "*.png"), "no file matches the pattern")):
        with pytest.raises(InputNotFoundError, match=f"no quicklook files .* found: {why}") as err:
            resolve(items, kinds=(QUICKLOOK,))
        assert isinstance(err.value, FileNotFoundError) and len(str(err.value).splitlines()) == 1
    with pytest.raises(InvalidArgumentError, match=r"no quicklook files .* given \(an empty list\)"):
        resolve([], kinds=(QUICKLOOK,))
    with pytest.raises(InvalidTypeError, match="is not a path or a URL"):
        resolve([3])
    with pytest.raises(InvalidArgumentError, match="unknown source kind"):
        resolve(tmp_path, kinds=("png",))


def test_sources_are_told_apart_once_at_the_door(tmp_path, products, wvnet_samples):
    folder, zipped = products
    png = sorted(wvnet_samples.glob("*.png"))[0]
    found = resolve([folder, zipped.parent, folder / "manifest.safe", png], kinds=(QUICKLOOK, SAFE))
    assert [(s.kind, s.path) for s in found] == [(SAFE, folder), (SAFE, zipped), (QUICKLOOK, png)]


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


def test_grib_without_cfgrib_and_bad_sources_are_explained(tmp_path, monkeypatch):
    import sys

    from xwvnet.io.sources import normalise_source, open_source

    grib = tmp_path / "era5.grib"
    grib.write_bytes(b"GRIB")
    monkeypatch.setitem(sys.modules, "cfgrib", None)
    with pytest.raises(ImportError, match="needs cfgrib and eccodes"):
        open_source(grib)
    with pytest.raises(ValueError, match="no latitude/longitude"):
        normalise_source(xr.Dataset({"x": ("y", [1.0])}))


def test_join_modules_have_numpydoc_docstrings_and_their_examples_run():
    check_numpydoc("xwvnet.io.sources")
    module = importlib.import_module("xwvnet.io.sources")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, result
