"""Sentinel-1 wave-mode file names: parse them into imagette metadata, and make join keys.

Two styles carry the same fields: the WV-Net sample quicklooks
(``s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png``) and the SAFE measurement/annotation files
(``s1b-wv2-slc-vv-20210403t083040-20210403t083043-026300-032390-002.tiff``), as do L2 OCN products
(``s1a-wv2-ocn-vv-...-036.nc``). Only the product token differs, so :func:`imagette_key` ignores it and lets
quicklooks, SLC imagettes and OCN products of one acquisition be joined.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TypedDict

import numpy as np

_NAME = re.compile(
    r"^(?P<mission>s1[a-d])-(?P<swath>wv[12])-(?P<product>[a-z]+)-(?P<polarization>vv|hh|vh|hv)-"
    r"(?P<start>\d{8}t\d{6})-(?P<stop>\d{8}t\d{6})-(?P<orbit>\d{6})-(?P<datatake>[0-9a-f]{6})-(?P<number>\d{3})$",
    re.IGNORECASE,
)


class NameInfo(TypedDict):
    """Metadata carried by a Sentinel-1 WV file name."""

    mission: str
    swath: str
    product: str
    polarization: str
    time: np.datetime64
    stop_time: np.datetime64
    orbit: int
    datatake: str
    imagette_number: int


def _time(token: str) -> np.datetime64:
    t = token.lower()
    return np.datetime64(f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[9:11]}:{t[11:13]}:{t[13:15]}", "ns")


def parse_name(name: str | Path) -> NameInfo | None:
    """Metadata from a Sentinel-1 WV file name (any extension, any folder), or ``None`` if it is not one."""
    stem = Path(str(name)).name.split(".")[0]
    match = _NAME.match(stem)
    if match is None:
        return None
    g = match.groupdict()
    return NameInfo(
        mission=g["mission"].lower(),
        swath=g["swath"].lower(),
        product=g["product"].lower(),
        polarization=g["polarization"].lower(),
        time=_time(g["start"]),
        stop_time=_time(g["stop"]),
        orbit=int(g["orbit"]),
        datatake=g["datatake"].lower(),
        imagette_number=int(g["number"]),
    )


def imagette_key(info: NameInfo) -> str:
    """A product-independent key for one acquisition: mission, swath, polarization, orbit, datatake and number.

    Start times of one imagette can differ by a second between L1 and L2 names, so the key leaves time out; the
    absolute orbit, datatake id and imagette number already identify the acquisition uniquely.
    """
    return (
        f"{info['mission']}-{info['swath']}-{info['polarization']}-{info['orbit']:06d}-"
        f"{info['datatake']}-{info['imagette_number']:03d}"
    )
