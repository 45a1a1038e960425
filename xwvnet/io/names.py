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

#: the Sentinel-1 units, as the data model's ``mission`` names them (every reader gives one of these)
MISSIONS = ("s1a", "s1b", "s1c", "s1d")
_NAME = re.compile(
    rf"^(?P<mission>{'|'.join(MISSIONS)})-(?P<swath>wv[12])-(?P<product>[a-z]+)-(?P<polarization>vv|hh|vh|hv)-"
    r"(?P<start>\d{8}t\d{6})-(?P<stop>\d{8}t\d{6})-(?P<orbit>\d{6})-(?P<datatake>[0-9a-f]{6})-(?P<number>\d{3})$",
    re.IGNORECASE,
)


class NameInfo(TypedDict):
    """Metadata carried by a Sentinel-1 WV file name, as :func:`parse_name` returns it.

    A plain dict at run time (a ``TypedDict``), so it costs nothing per file and the keys are checked by type
    checkers; the keys match the coordinate names of the imagette data model.

    Attributes
    ----------
    mission : str
        Platform, lower case: ``'s1a'`` ... ``'s1d'``.
    swath : str
        ``'wv1'`` or ``'wv2'``.
    product : str
        Product token, lower case: ``'ql'`` (quicklook), ``'slc'``, ``'ocn'``...
    polarization : str
        ``'vv'``, ``'hh'``, ``'vh'`` or ``'hv'``.
    time : numpy.datetime64
        Start of the acquisition (UTC, ns precision).
    stop_time : numpy.datetime64
        End of the acquisition (UTC, ns precision).
    orbit : int
        Absolute orbit number.
    datatake : str
        Mission datatake id, six lower-case hex digits.
    imagette_number : int
        Position of the imagette in its datatake, from 1.
    """

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
    """Read the metadata a Sentinel-1 WV file name carries; ``None`` if it is not such a name.

    Quicklooks, SAFE measurement files and L2 OCN products all name mission, swath, times, orbit, datatake and
    imagette number in their file names, so readers take these from the name instead of opening the file.
    Returning ``None`` (rather than raising) lets a reader report every odd name of a folder at once.

    Parameters
    ----------
    name : str or pathlib.Path
        A file name or path; the folder and every extension (``.png``, ``.tiff``, ``.nc``, ``.png.aux``) are
        ignored, and case does not matter.

    Returns
    -------
    NameInfo or None
        The fields of the name, lower case, times as ``datetime64[ns]``; ``None`` when the stem does not follow
        the ``<mission>-<swath>-<product>-<pol>-<start>-<stop>-<orbit>-<datatake>-<nnn>`` pattern.

    Examples
    --------
    >>> info = parse_name("s1a-wv1-QL-vv-20190213t130655-20190213t130658-025911-02e29d-095.png")
    >>> info["mission"], info["swath"], info["orbit"], info["imagette_number"]
    ('s1a', 'wv1', 25911, 95)
    >>> str(info["time"])
    '2019-02-13T13:06:55.000000000'
    >>> parse_name("holiday.png") is None
    True
    """
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
    """Make a product-independent key for one acquisition, to join quicklooks, SLC imagettes and OCN products.

    Start times of one imagette can differ by a second between L1 and L2 names, so the key leaves time out; the
    absolute orbit, datatake id and imagette number already identify the acquisition uniquely. The product token
    is left out too, which is what lets products of one acquisition share the key.

    Parameters
    ----------
    info : NameInfo
        Fields of a file name, as :func:`parse_name` returns them.

    Returns
    -------
    str
        ``<mission>-<swath>-<pol>-<orbit:06d>-<datatake>-<number:03d>``.

    Examples
    --------
    >>> slc = parse_name("s1b-wv2-slc-vv-20210403t083040-20210403t083043-026300-032390-002.tiff")
    >>> ocn = parse_name("s1b-wv2-ocn-vv-20210403t083041-20210403t083043-026300-032390-002.nc")
    >>> imagette_key(slc) == imagette_key(ocn)
    True
    >>> imagette_key(slc)
    's1b-wv2-vv-026300-032390-002'
    """
    return (
        f"{info['mission']}-{info['swath']}-{info['polarization']}-{info['orbit']:06d}-"
        f"{info['datatake']}-{info['imagette_number']:03d}"
    )
