import doctest
import shutil
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import xwvnet
from xwvnet import schema as S
from xwvnet.io.names import imagette_key, parse_name
from xwvnet.io.quicklook import QuicklookWarning


def test_parse_wvnet_sample_name():
    info = parse_name("s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png")
    assert info["mission"] == "s1a" and info["swath"] == "wv1" and info["product"] == "ql"
    assert info["time"] == np.datetime64("2019-02-13T13:06:55")
    assert info["stop_time"] == np.datetime64("2019-02-13T13:06:58")
    assert (info["orbit"], info["datatake"], info["imagette_number"]) == (25911, "02e29d", 95)


def test_parse_safe_measurement_name_and_key_joins_products():
    slc = parse_name("measurement/s1b-wv2-slc-vv-20210403t083040-20210403t083043-026300-032390-002.tiff")
    ocn = parse_name("s1b-wv2-ocn-vv-20210403t083041-20210403t083043-026300-032390-002.nc")
    assert slc["polarization"] == "vv" and slc["orbit"] == 26300 and slc["imagette_number"] == 2
    assert imagette_key(slc) == imagette_key(ocn) == "s1b-wv2-vv-026300-032390-002"
    assert parse_name("holiday.png") is None


def test_open_the_15_real_samples_with_tags(wvnet_samples):
    csv = wvnet_samples / "sample_data.csv"
    ds = xwvnet.open_quicklooks(wvnet_samples, labels=csv)
    xwvnet.validate(ds)
    assert ds.sizes[S.IMAGETTE] == 15
    table = pd.read_csv(csv)
    for _, row in table.iterrows():
        stem = row["filename"].rsplit(".", 1)[0]
        info = parse_name(row["filename"])
        one = ds.sel({S.IMAGETTE: stem})
        assert one[S.TIME].values == info["time"]
        assert one[S.SWATH].item() == info["swath"]
        assert one[S.ORBIT].item() == info["orbit"]
        assert one[S.NUMBER].item() == info["imagette_number"]
        np.testing.assert_array_equal(one[S.LABELS].sel(label=table.columns[1:]).values, row.iloc[1:].to_numpy())
        pixels = np.asarray(Image.open(wvnet_samples / row["filename"]))
        lines, samples = one[S.VALID_LINES].item(), one[S.VALID_SAMPLES].item()
        assert pixels.shape == (lines, samples)
        np.testing.assert_array_equal(one[S.QUICKLOOK].values[:lines, :samples], pixels)
        assert not one[S.QUICKLOOK].values[lines:, :].any() and not one[S.QUICKLOOK].values[:, samples:].any()
    assert np.isnan(ds[S.LATITUDE]).all()


def test_corrupt_and_text_files_are_skipped_and_reported(wvnet_samples, tmp_path):
    pngs = sorted(wvnet_samples.glob("*.png"))[:3]
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(pngs[0].read_bytes()[:2000])
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    with pytest.warns(QuicklookWarning, match="skipped 2 unreadable"):
        ds = xwvnet.open_quicklooks([*pngs, corrupt, text])
    assert ds.sizes[S.IMAGETTE] == 3
    assert len(ds.attrs["skipped"]) == 2
    assert any("broken.png" in s for s in ds.attrs["skipped"]) and any("notes.txt" in s for s in ds.attrs["skipped"])


def test_non_sentinel_name_loads_with_missing_metadata(tmp_path):
    Image.fromarray(np.full((10, 12), 7, np.uint8)).save(tmp_path / "my picture.png")
    with pytest.warns(QuicklookWarning, match="not Sentinel-1 WV names"):
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds[S.IMAGETTE].item() == "my picture"
    assert np.isnat(ds[S.TIME].values[0]) and ds[S.ORBIT].item() == -1 and ds[S.SWATH].item() == ""


def test_rgb_is_converted_with_a_warning(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(tmp_path / "s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png")
    with pytest.warns(QuicklookWarning, match="converted to greyscale"):
        ds = xwvnet.open_quicklooks(tmp_path)
    assert ds[S.QUICKLOOK].dtype == np.uint8
    assert ds[S.QUICKLOOK].values[0, 0, 0] == np.asarray(Image.fromarray(rgb).convert("L"))[0, 0]


def test_empty_selection_is_a_clear_error(tmp_path):
    from xwvnet.errors import InputNotFoundError

    with pytest.raises(InputNotFoundError, match="no quicklook files .* found: the folder .* holds none"):
        xwvnet.open_quicklooks(tmp_path)
    with pytest.raises(FileNotFoundError, match="no quicklook files .* found: no file matches the pattern"):
        xwvnet.open_quicklooks(str(tmp_path / "*.png"))


def test_quicklook_urls_are_refused_never_read_as_local_paths(tmp_path):
    with pytest.raises(ValueError, match="s3://bucket/ql/x.png: quicklook files .* are read from a local disk"):
        xwvnet.open_quicklooks(["s3://bucket/ql/x.png"])


def test_lazy_reading_equals_eager(wvnet_samples, tmp_path):
    for png in sorted(wvnet_samples.glob("*.png"))[:5]:
        shutil.copy(png, tmp_path)
    eager = xwvnet.open_quicklooks(str(tmp_path / "*.png"))
    lazy = xwvnet.open_quicklooks(str(tmp_path / "*.png"), chunks=2)
    assert lazy[S.QUICKLOOK].chunks is not None and lazy[S.QUICKLOOK].data.chunks[0] == (2, 2, 1)
    np.testing.assert_array_equal(lazy[S.QUICKLOOK].values, eager[S.QUICKLOOK].values)


@given(
    mission=st.sampled_from(["s1a", "s1b", "s1c"]),
    swath=st.sampled_from(["wv1", "wv2"]),
    product=st.sampled_from(["QL", "slc", "ocn"]),
    start=st.datetimes(min_value=datetime(2014, 4, 3), max_value=datetime(2035, 1, 1)),
    orbit=st.integers(0, 999_999),
    datatake=st.integers(0, 0xFFFFFF),
    number=st.integers(1, 999),
)
def test_names_round_trip(mission, swath, product, start, orbit, datatake, number):
    start = start.replace(microsecond=0)
    stamp = start.strftime("%Y%m%dt%H%M%S")
    name = f"{mission}-{swath}-{product}-vv-{stamp}-{stamp}-{orbit:06d}-{datatake:06x}-{number:03d}.tiff"
    info = parse_name(name)
    assert info is not None
    assert (info["mission"], info["swath"], info["orbit"], info["imagette_number"]) == (mission, swath, orbit, number)
    assert info["time"] == np.datetime64(start, "ns")
    assert imagette_key(info).endswith(f"-{orbit:06d}-{datatake:06x}-{number:03d}")


def test_docstring_examples_run(wvnet_samples):
    """The examples in the reader's docstrings run on the published sample and show what they claim."""
    from xwvnet.io import quicklook

    result = doctest.testmod(quicklook, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
