"""Former home of the quicklook recipe and the model input transforms; kept one release so that old imports work.

The numpy radiometry moved to :mod:`xwvnet.radiometry` (torch-free) and the model input transforms to
:mod:`xwvnet.models.transforms`. Import from there: this module imports torch, warns (``FutureWarning``) and goes
away in the next release.
"""

from __future__ import annotations

from .errors import warn
from .models.transforms import (  # noqa: F401
    CROP,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SIZE,
    TRANSFORMS,
    WVNET_MEAN,
    WVNET_STD,
    crop_field,
    crop_offsets,
    get_transform,
    imagenet_transform,
    wvnet_transform,
)
from .radiometry import (  # noqa: F401
    DEFAULT_SPACING,
    DETREND_SLOPE_DB,
    STRETCH_PERCENTILES,
    detrend,
    multilook,
    multilook_factor,
    safe_to_imagettes,
    sigma0_to_quicklook,
    stretch,
)

warn("xwvnet.preprocess is deprecated and goes away in the next release: import the quicklook recipe from "
     "xwvnet.radiometry and the model input transforms from xwvnet.models.transforms.", FutureWarning)
