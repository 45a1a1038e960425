"""Names of the imagette data model, and ``validate`` that checks a Dataset against it.

Every room of xwvnet reads and writes Datasets through these names, so that a store written by ingest is
embedded, probed and collocated without any renaming. ``docs/data-model.md`` is the prose version. The
provenance attributes of embeddings (encoder, weights hash, version) are built by
:func:`xwvnet.inference.embedding_attrs`, next to the code that knows them.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from .errors import InvalidDataError

# dimensions
IMAGETTE = "imagette"
LINE = "line"  # azimuth
SAMPLE = "sample"  # range
LABEL = "label"
FEATURE = "feature"
RANK = "rank"

# image variables
QUICKLOOK = "quicklook"
SIGMA0 = "sigma0"
IMAGE_VARS = (QUICKLOOK, SIGMA0)
VALID_LINES = "valid_lines"
VALID_SAMPLES = "valid_samples"

# coordinates on the imagette dimension
TIME = "time"
LATITUDE = "latitude"
LONGITUDE = "longitude"
MISSION = "mission"
SWATH = "swath"
POLARIZATION = "polarization"
ORBIT = "orbit"
DATATAKE = "datatake"
NUMBER = "imagette_number"
INCIDENCE_ANGLE = "incidence_angle"
HEADING = "heading"
SOURCE = "source"

REQUIRED_COORDS = (TIME, LATITUDE, LONGITUDE, MISSION, SWATH, POLARIZATION, ORBIT)
OPTIONAL_COORDS = (DATATAKE, NUMBER, INCIDENCE_ANGLE, HEADING, SOURCE)

# derived variables
LABELS = "labels"
LABELS_PROBABILITY = "labels_probability"
EMBEDDING = "embedding"
COMPACT_DTYPE = "compact_dtype"  # attr of an embedding stored compactly (float16, int8): how to decode it
PREDICTED_SUFFIX = "_predicted"

# expected dtype kinds (numpy ``dtype.kind``) of the model's variables
#: CF attributes of the imagette coordinates, the same whatever the source (files, SAFE, synthetic)
CF_ATTRS: dict[str, dict[str, str]] = {
    TIME: {"standard_name": "time", "long_name": "imagette start time (UTC)"},
    LATITUDE: {"standard_name": "latitude", "units": "degrees_north", "long_name": "imagette centre latitude"},
    LONGITUDE: {"standard_name": "longitude", "units": "degrees_east", "long_name": "imagette centre longitude"},
    INCIDENCE_ANGLE: {"standard_name": "sensor_zenith_angle", "units": "degree",
                      "long_name": "incidence angle at the imagette centre"},
    HEADING: {"standard_name": "platform_course", "units": "degree", "long_name": "platform heading",
              "comment": "clockwise from north"},
    MISSION: {"long_name": "Sentinel-1 unit (s1a, s1b, s1c, s1d)"},
    SWATH: {"long_name": "wave-mode swath (wv1 about 23 deg, wv2 about 36.5 deg incidence)"},
    POLARIZATION: {"long_name": "polarisation (vv or hh)"},
    ORBIT: {"long_name": "absolute orbit number"},
}


def with_cf_attrs(ds: xr.Dataset) -> xr.Dataset:
    """A copy of ``ds`` whose imagette coordinates carry the CF attributes of :data:`CF_ATTRS`.

    Attributes already set on a coordinate win over the defaults, so a reader can say more than the table does.

    Parameters
    ----------
    ds : xarray.Dataset
        Imagettes following the data model.

    Returns
    -------
    xarray.Dataset
        The same data (not copied) with attributes added to the coordinates present.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset(coords={"latitude": ("imagette", np.zeros(2))})
    >>> with_cf_attrs(ds)["latitude"].attrs["units"]
    'degrees_north'
    """
    out = ds.copy(deep=False)
    for name, attrs in CF_ATTRS.items():
        if name in out.variables:
            out[name].attrs = {**attrs, **out[name].attrs}
    return out


_COORD_KINDS = {
    TIME: "M",
    LATITUDE: "f",
    LONGITUDE: "f",
    MISSION: "OUS",
    SWATH: "OUS",
    POLARIZATION: "OUS",
    ORBIT: "iu",
}
_VAR_DTYPES = {
    QUICKLOOK: np.dtype("uint8"),
    SIGMA0: np.dtype("float32"),
}


def did_you_mean(name: object, names: Iterable[object]) -> str:
    """The hint an error about an unknown name ends with: `` Did you mean 'x'?`` for close names, else ``""``.

    One rule (``difflib.get_close_matches``, up to two names) for misspelt variables, encoders and targets.

    Parameters
    ----------
    name : object
        The name given (compared as a string).
    names : iterable of object
        The names that exist.

    Returns
    -------
    str
        ``" Did you mean 'hs'?"`` (with a leading space), ``" Did you mean 'a' or 'b'?"``, or ``""``.

    Examples
    --------
    >>> did_you_mean("hss", ["hs", "t2m"])
    " Did you mean 'hs'?"
    >>> did_you_mean("zzz", ["hs", "t2m"])
    ''
    """
    import difflib

    close = difflib.get_close_matches(str(name), sorted({str(n) for n in names}), n=2)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""


def image_var(ds: xr.Dataset, var: str | None = None) -> str:
    """Name the image variable a stage should read: ``var`` if given, else ``quicklook``, else ``sigma0``.

    Stages that take pixels (embedding, plots, training) accept either image variable; this picks one the same
    way everywhere, preferring the 8-bit quicklook that WV-Net was trained on.

    Parameters
    ----------
    ds : xarray.Dataset
        An imagette Dataset.
    var : str, optional
        The variable asked for by the caller; ``None`` lets the data model choose.

    Returns
    -------
    str
        The name of a data variable of ``ds``.

    Raises
    ------
    ValueError
        If ``var`` is not a data variable of ``ds``, or ``ds`` has neither ``quicklook`` nor ``sigma0``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"sigma0": (("imagette", "line", "sample"), np.ones((1, 2, 2), "float32"))})
    >>> image_var(ds)
    'sigma0'
    """
    if var is not None:
        if var not in ds.data_vars:
            raise InvalidDataError(
                f"image variable {var!r} is not in the Dataset (variables: {sorted(map(str, ds.data_vars))})."
                + did_you_mean(var, ds.data_vars)
            )
        return var
    for name in IMAGE_VARS:
        if name in ds.data_vars:
            return name
    raise InvalidDataError(
        f"no image variable: expected one of {IMAGE_VARS} with dims ({IMAGETTE}, {LINE}, {SAMPLE}); "
        f"found variables {sorted(map(str, ds.data_vars))}. Open imagettes with xwvnet.open_quicklooks, "
        "xwvnet.open_store or xwvnet.synthetic.imagettes."
    )


def validate(ds: xr.Dataset, *, require_image: bool = True) -> xr.Dataset:
    """Check that ``ds`` follows the imagette data model, listing every problem at once.

    Every room relies on the same names, dims and dtypes; checking them up front turns a confusing failure deep
    inside embedding or a join into one message that says what is missing. Only names, dims and dtypes are
    checked: no pixel is read, so it is cheap on a lazy archive-scale Dataset (the id uniqueness check reads the
    ``imagette`` index only).

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset to check. It is not modified.
    require_image : bool, default True
        Whether an image variable (``quicklook`` or ``sigma0``) must be present. ``False`` accepts Datasets of
        metadata only, such as embeddings or the imagettes listed by a SAFE manifest.

    Returns
    -------
    xarray.Dataset
        ``ds`` itself, unchanged, so the call can sit in a chain.

    Raises
    ------
    ValueError
        If ``ds`` is not a Dataset, or lacks or mistypes any part of the model: the ``imagette`` dimension and
        its unique string ids, the required coordinates (time, latitude, longitude, mission, swath,
        polarization, orbit), the image variables' dims and dtypes, ``valid_lines``/``valid_samples``, or the
        dims of ``labels`` and ``embedding``. The message lists every problem found.

    See Also
    --------
    xwvnet.synthetic.imagettes : a valid imagette Dataset made from nothing.

    Examples
    --------
    >>> import xwvnet
    >>> from xwvnet import synthetic
    >>> ds = synthetic.imagettes(2, size=(32, 32))
    >>> xwvnet.validate(ds) is ds
    True
    >>> xwvnet.validate(ds.drop_vars("orbit"))
    Traceback (most recent call last):
    ...
    xwvnet.errors.InvalidDataError: not an imagette Dataset:
      - missing coordinate 'orbit' on 'imagette'
    """
    if not isinstance(ds, xr.Dataset):
        raise InvalidDataError(f"expected an xarray.Dataset of imagettes, got {type(ds).__name__}.")
    problems: list[str] = []
    if IMAGETTE not in ds.dims:
        problems.append(f"missing dimension {IMAGETTE!r} (found dims {sorted(map(str, ds.dims))})")
    else:
        if IMAGETTE not in ds.coords:
            problems.append(f"missing index coordinate {IMAGETTE!r} (unique string ids)")
        else:
            ids = ds[IMAGETTE].values
            if ids.dtype.kind not in "OUS":
                problems.append(f"coordinate {IMAGETTE!r} must hold string ids, found dtype {ids.dtype}")
            uniq, counts = np.unique(ids.astype(str), return_counts=True)
            dup = uniq[counts > 1]
            if dup.size:
                problems.append(f"duplicate imagette ids: {', '.join(map(str, dup[:5]))}")
    for name in REQUIRED_COORDS:
        if name not in ds.coords and name not in ds.data_vars:
            problems.append(f"missing coordinate {name!r} on {IMAGETTE!r}")
            continue
        var = ds[name]
        if var.dims != (IMAGETTE,):
            problems.append(f"coordinate {name!r} must have dims ({IMAGETTE!r},), found {var.dims}")
        if var.dtype.kind not in _COORD_KINDS[name]:
            problems.append(f"coordinate {name!r} has dtype {var.dtype}, expected kind {_COORD_KINDS[name]!r}")
    images = [n for n in IMAGE_VARS if n in ds.data_vars]
    if require_image and not images:
        problems.append(f"no image variable: expected one of {IMAGE_VARS}")
    for name in images:
        var = ds[name]
        if var.dims != (IMAGETTE, LINE, SAMPLE):
            problems.append(f"variable {name!r} must have dims ({IMAGETTE}, {LINE}, {SAMPLE}), found {var.dims}")
        if var.dtype != _VAR_DTYPES[name]:
            problems.append(f"variable {name!r} has dtype {var.dtype}, expected {_VAR_DTYPES[name]}")
    if images:
        for name in (VALID_LINES, VALID_SAMPLES):
            if name not in ds.variables:
                problems.append(f"missing variable {name!r} (original extent of each imagette)")
            elif ds[name].dtype.kind not in "iu":
                problems.append(f"variable {name!r} has dtype {ds[name].dtype}, expected an integer")
    if LABELS in ds.data_vars:
        if ds[LABELS].dims != (IMAGETTE, LABEL):
            problems.append(f"variable {LABELS!r} must have dims ({IMAGETTE}, {LABEL}), found {ds[LABELS].dims}")
        if LABEL not in ds.coords:
            problems.append(f"variable {LABELS!r} needs a {LABEL!r} coordinate of tag codes")
    if EMBEDDING in ds.data_vars and ds[EMBEDDING].dims != (IMAGETTE, FEATURE):
        problems.append(f"variable {EMBEDDING!r} must have dims ({IMAGETTE}, {FEATURE}), found {ds[EMBEDDING].dims}")
    if problems:
        raise InvalidDataError("not an imagette Dataset:\n  - " + "\n  - ".join(problems))
    return ds


def require(ds: xr.Dataset, names: Iterable[str], what: str) -> None:
    """Check that ``ds`` holds every variable in ``names``, naming what needs them if not.

    Stages that use more than the data model (a probe target, a joined field) call this first, so that the
    error names the missing variables and the stage instead of a bare ``KeyError``.

    Parameters
    ----------
    ds : xarray.Dataset
        The Dataset to look in (data variables and coordinates alike).
    names : iterable of str
        Variables that must be present.
    what : str
        The stage or argument that needs them, quoted in the message (e.g. ``"fit_probe(target='hs')"``).

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If any of ``names`` is missing; the message lists those missing and those present.

    Examples
    --------
    >>> import xarray as xr
    >>> require(xr.Dataset({"hs": ("imagette", [1.0])}), ["hs"], "a wave-height probe")
    >>> require(xr.Dataset(), ["hs"], "a wave-height probe")
    Traceback (most recent call last):
    ...
    xwvnet.errors.InvalidDataError: a wave-height probe needs ['hs'] in the Dataset, but it has only [].
    """
    missing = [n for n in names if n not in ds.variables]
    if missing:
        hints = "".join(did_you_mean(n, ds.variables).replace(" Did you mean", f" For {n!r}, did you mean")
                        for n in missing)
        raise InvalidDataError(
            f"{what} needs {missing} in the Dataset, but it has only {sorted(map(str, ds.variables))}.{hints}"
        )
