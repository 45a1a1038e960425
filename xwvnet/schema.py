"""Names of the imagette data model, and ``validate`` that checks a Dataset against it.

Every room of xwvnet reads and writes Datasets through these names, so that a store written by ingest is
embedded, probed and collocated without any renaming. ``docs/data-model.md`` is the prose version.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

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
PREDICTED_SUFFIX = "_predicted"

# expected dtype kinds (numpy ``dtype.kind``) of the model's variables
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


def image_var(ds: xr.Dataset, var: str | None = None) -> str:
    """The name of the image variable to use: ``var`` if given, else ``quicklook``, else ``sigma0``."""
    if var is not None:
        if var not in ds.data_vars:
            raise ValueError(
                f"image variable {var!r} is not in the Dataset (variables: {sorted(map(str, ds.data_vars))})."
            )
        return var
    for name in IMAGE_VARS:
        if name in ds.data_vars:
            return name
    raise ValueError(
        f"no image variable: expected one of {IMAGE_VARS} with dims ({IMAGETTE}, {LINE}, {SAMPLE}); "
        f"found variables {sorted(map(str, ds.data_vars))}. Open imagettes with xwvnet.open_quicklooks, "
        "xwvnet.open_store or xwvnet.synthetic.imagettes."
    )


def validate(ds: xr.Dataset, *, require_image: bool = True) -> xr.Dataset:
    """Check that ``ds`` follows the imagette data model; raise ``ValueError`` listing every problem.

    Returns ``ds`` unchanged so that it can be used in a chain.
    """
    if not isinstance(ds, xr.Dataset):
        raise ValueError(f"expected an xarray.Dataset of imagettes, got {type(ds).__name__}.")
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
        raise ValueError("not an imagette Dataset:\n  - " + "\n  - ".join(problems))
    return ds


def require(ds: xr.Dataset, names: Iterable[str], what: str) -> None:
    """Raise a ``ValueError`` naming the variables among ``names`` that ``ds`` lacks, and what needs them."""
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise ValueError(
            f"{what} needs {missing} in the Dataset, but it has only {sorted(map(str, ds.variables))}."
        )
