"""Sentinel-1 WV file names (xwvnet.io.names): parsing, the key that joins products, round trips."""

import doctest
from datetime import datetime

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tests._numpydoc import check_numpydoc
from xwvnet.io import names
from xwvnet.io.names import imagette_key, parse_name


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


def test_public_names_have_numpydoc_docstrings():
    check_numpydoc("xwvnet.io.names")


def test_docstring_examples_run():
    result = doctest.testmod(names, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result
