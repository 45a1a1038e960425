"""Model input transforms: the WV-Net one (bit-faithful to the published code), the ImageNet one, and OceanSAR-1's.

All transforms work on a batch of padded imagettes ``(n, line, sample)`` plus each one's valid extent, so a dask
block goes through in one vectorised call. The geometry (where each output pixel comes from) is integer index
arithmetic done once per batch; the arithmetic on values repeats the published operations in the same order and
dtype (uint8 -> float32 ``* (1/255)``, bilinear ``align_corners=True`` without antialiasing, ``(x - mean) / std``),
so the tensors equal the published procedure's. The numpy quicklook recipe lives in :mod:`xwvnet.radiometry`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InvalidArgumentError, InvalidDataError
from ..radiometry import check_batch

# the published WV-Net procedure (Glaser et al. 2024): a 450x450 field, resized to 224x224
CROP = 450
SIZE = 224
WVNET_MEAN = 103.4862417561056 / 255.0
WVNET_STD = 56.745013435601074 / 255.0
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# OceanSAR-1 (Kerdreux et al. 2025; model card of galeio-research/OceanSAR-1): single-channel VV, 256 x 256 pixels at
# 50 m. Quicklooks have ~41 x 45 m pixels (xwvnet.radiometry), so a 300-pixel field (~12.3 x 13.5 km) resized to 256
# gives ~48 x 53 m: the 50 m of the card, within the quicklooks' own anisotropy.
OCEANSAR_FIELD = 300
OCEANSAR_SIZE = 256
#: a field whose standard deviation (in [0, 1] units) is below this is constant: the OceanSAR-1 transform makes it
#: zeros (not NaN, nor rounding noise blown up)
OCEANSAR_MIN_STD = 1e-4
#: what the field holds outside an imagette smaller than it (:func:`field_index`)
BORDERS = ("zero", "reflect")


def crop_offsets(valid_lines: np.ndarray, valid_samples: np.ndarray, crop: int = CROP) -> tuple[np.ndarray, ...]:
    """Per imagette, the source (line, sample) of the top-left pixel of the ``crop`` x ``crop`` field.

    Replays the published steps on the image extent only:

    1. ``Pad(padding=(0, w_diff, 0, h_diff))`` with ``w_diff = max(0, 450 - width)``,
       ``h_diff = max(0, 450 - height)``. torchvision reads a 4-tuple as (left, top, right, bottom), so the *width*
       deficit pads the **top** and the height deficit the bottom; nothing pads left or right. A quirk of the
       published code, kept because the weights were trained (and the reference embeddings computed) with it.
    2. ``CenterCrop(450)``: where the image is still smaller it is first padded with 0 by ``(450 - w) // 2`` on the
       left (and the rest on the right), then cropped at ``round((size - 450) / 2)`` (Python's round half to even).

    Parameters
    ----------
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    crop : int, default 450
        The side of the field.

    Returns
    -------
    tuple of numpy.ndarray
        ``(line0, sample0)`` int64 arrays: output pixel (r, c) reads input pixel (line0 + r, sample0 + c), and is 0
        where that falls outside the valid extent.

    Examples
    --------
    >>> line0, sample0 = crop_offsets([500], [400])
    >>> int(line0[0]), int(sample0[0])  # 50 rows padded on top (the quirk) and cropped again; 25 columns left
    (0, -25)
    """
    h = np.asarray(valid_lines, dtype=np.int64)
    w = np.asarray(valid_samples, dtype=np.int64)
    top = np.maximum(0, crop - w)  # the quirk: width deficit on top
    h1 = h + top + np.maximum(0, crop - h)
    pad_top = np.where(h1 < crop, (crop - h1) // 2, 0)  # never happens after step 1, kept for clarity
    pad_left = np.where(w < crop, (crop - w) // 2, 0)
    h2 = np.maximum(h1, crop)
    w2 = np.maximum(w, crop)
    crop_top = np.round((h2 - crop) / 2.0).astype(np.int64)  # numpy rounds half to even, as Python's round
    crop_left = np.round((w2 - crop) / 2.0).astype(np.int64)
    return crop_top - pad_top - top, crop_left - pad_left


def _reflect(index: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Indices folded into ``[0, extent)`` by mirror reflection about the edge pixels (numpy's ``"reflect"``)."""
    period = np.maximum(2 * (extent - 1), 1)
    folded = np.mod(index, period)
    return np.where(folded >= extent, period - folded, folded)


def field_index(
    valid_lines: np.ndarray, valid_samples: np.ndarray, crop: int = CROP, border: str = "zero"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where each pixel of the ``crop`` x ``crop`` field reads its imagette: the one home of the field's geometry.

    Parameters
    ----------
    valid_lines, valid_samples : numpy.ndarray
        ``(n,)`` the valid extent of each imagette.
    crop : int, default 450
        The side of the field.
    border : {"zero", "reflect"}, default "zero"
        What the field holds outside the imagette: 0 (the published procedure), or the imagette mirrored about
        its edges, so an imagette smaller than the field fills it with sea at the same pixel scale.

    Returns
    -------
    rows, cols : numpy.ndarray
        ``(n, crop)`` int64 source line and sample of each field row and column, inside the valid extent.
    row_ok, col_ok : numpy.ndarray
        ``(n, crop)`` bool: the field pixel (r, c) holds the imagette where ``row_ok[r] & col_ok[c]``, else 0
        (all True with ``border="reflect"``).

    Raises
    ------
    ValueError
        On an unknown ``border``.

    Examples
    --------
    >>> rows, cols, row_ok, col_ok = field_index([3], [450], crop=6, border="reflect")
    >>> rows[0].tolist()  # 3 lines in a field of 6: the bottom 3 mirror the imagette instead of holding 0
    [0, 1, 2, 1, 0, 1]
    """
    if border not in BORDERS:
        raise InvalidArgumentError(f"unknown field border {border!r}; expected one of {BORDERS}.")
    vl = np.asarray(valid_lines, dtype=np.int64)
    vs = np.asarray(valid_samples, dtype=np.int64)
    line0, sample0 = crop_offsets(vl, vs, crop)
    rows = line0[:, None] + np.arange(crop)  # (n, crop)
    cols = sample0[:, None] + np.arange(crop)
    if border == "reflect":
        rows, cols = _reflect(rows, vl[:, None]), _reflect(cols, vs[:, None])
    row_ok = (rows >= 0) & (rows < vl[:, None])
    col_ok = (cols >= 0) & (cols < vs[:, None])
    return rows, cols, row_ok, col_ok


def crop_field(
    images: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray, crop: int = CROP,
    border: str = "zero",
) -> np.ndarray:
    """The published 450x450 field of each imagette, before resizing (integer indexing, no arithmetic on values).

    Parameters
    ----------
    images : numpy.ndarray
        ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    crop : int, default 450
        The side of the field.
    border : {"zero", "reflect"}, default "zero"
        What the field holds outside the imagette (:func:`field_index`).

    Returns
    -------
    numpy.ndarray
        ``(n, crop, crop)`` of the input dtype, 0 where padded (``border="zero"``).

    Raises
    ------
    ValueError
        If the shapes disagree or an extent lies outside the padded shape.
    """
    images, vl, vs = check_batch(images, valid_lines, valid_samples)
    rows, cols, row_ok, col_ok = field_index(vl, vs, crop, border)
    rows = np.clip(rows, 0, max(images.shape[1] - 1, 0))
    cols = np.clip(cols, 0, max(images.shape[2] - 1, 0))
    if images.shape[1] == 0 or images.shape[2] == 0:
        return np.zeros((images.shape[0], crop, crop), dtype=images.dtype)
    field = images[np.arange(images.shape[0])[:, None, None], rows[:, :, None], cols[:, None, :]]
    return np.where(row_ok[:, :, None] & col_ok[:, None, :], field, np.zeros((), dtype=images.dtype))


def _to_device(array: np.ndarray, device: torch.device | str | None) -> torch.Tensor:
    """``array`` as a tensor on ``device``; to a GPU from pinned memory without blocking the host (copies overlap).

    Parameters
    ----------
    array : numpy.ndarray
        Host data (any layout: made contiguous).
    device : torch.device or str, optional
        Where the tensor goes; default the CPU (no copy).

    Returns
    -------
    torch.Tensor
    """
    x = torch.from_numpy(np.ascontiguousarray(array))
    device = torch.device(device or "cpu")
    return x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x.to(device)


def _resize(field: np.ndarray, device: torch.device | str | None) -> torch.Tensor:
    """uint8 (n, H, W) -> float32 (n, 1, SIZE, SIZE): scale to [0, 1] then bilinear, as published."""
    x = _to_device(field, device).to(torch.float32).mul_(1.0 / 255)  # as torchvision ToDtype(float32, scale=True)
    return F.interpolate(x[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=True, antialias=False)


def wvnet_transform(
    quicklooks: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    device: torch.device | str | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """The published WV-Net input of each quicklook: float32 tensor ``(n, channels, 224, 224)``.

    ``quicklooks``: uint8 ``(n, line, sample)``, padded; only ``[:valid_lines[i], :valid_samples[i]]`` is read.
    Steps: pad and centre-crop to 450x450 (see :func:`crop_offsets`), scale to [0, 1], bilinear resize to 224x224
    (``align_corners=True``, no antialiasing), repeat to ``channels``, normalise with mean 103.486/255 and std
    56.745/255. The tensors equal the published procedure's, so the published weights see what they were
    trained on.

    Parameters
    ----------
    quicklooks : numpy.ndarray
        uint8 ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    device : torch.device or str, optional
        Where the float work happens (the uint8 field travels, 4x smaller than floats).
    channels : int, default 3
        Channels of the output (the grey level repeated).

    Returns
    -------
    torch.Tensor
        float32 ``(n, channels, 224, 224)``.

    Raises
    ------
    ValueError
        If the quicklooks are not uint8, or the extents do not fit.
    """
    return _wvnet(quicklooks, valid_lines, valid_samples, device=device, channels=channels, border="zero")


def wvnet_reflect_transform(
    quicklooks: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    device: torch.device | str | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """The WV-Net input with the field's border filled by the imagette mirrored, not by zeros.

    The same pixel scale, resize and normalisation as :func:`wvnet_transform`; the two differ only for imagettes
    smaller than the 450 x 450 field (WV2, or any small imagette), where this one shows the encoder sea wherever the
    published one shows a constant 0. Encoders trained by :func:`xwvnet.train` embed with it: their views are
    windows of the imagette, which never showed them a zero border (a border that covers two thirds of the field of
    a 256 x 256 imagette, and that a trained encoder answers less predictably than a random one). The published
    WV-Net weights keep :func:`wvnet_transform`, with which they were trained.

    Parameters
    ----------
    quicklooks : numpy.ndarray
        uint8 ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    device : torch.device or str, optional
        Where the float work happens.
    channels : int, default 3
        Channels of the output (the grey level repeated).

    Returns
    -------
    torch.Tensor
        float32 ``(n, channels, 224, 224)``.

    Raises
    ------
    ValueError
        If the quicklooks are not uint8, or the extents do not fit.
    """
    return _wvnet(quicklooks, valid_lines, valid_samples, device=device, channels=channels, border="reflect")


def _wvnet(quicklooks: np.ndarray, valid_lines: np.ndarray, valid_samples: np.ndarray, *,
           device: torch.device | str | None, channels: int, border: str) -> torch.Tensor:
    """The WV-Net input with a given field border (see :func:`wvnet_transform`)."""
    if np.asarray(quicklooks).dtype != np.uint8:
        raise InvalidDataError(
            f"the WV-Net transform takes uint8 quicklooks, found dtype {np.asarray(quicklooks).dtype}; convert "
            "calibrated sigma0 with xwvnet.radiometry.sigma0_to_quicklook first."
        )
    x = _resize(crop_field(quicklooks, valid_lines, valid_samples, border=border), device)
    x = x.sub_(torch.tensor(WVNET_MEAN, dtype=torch.float32)).div_(torch.tensor(WVNET_STD, dtype=torch.float32))
    return x.expand(-1, channels, -1, -1).contiguous()


def imagenet_transform(
    quicklooks: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    device: torch.device | str | None = None,
    channels: int = 3,
) -> torch.Tensor:
    """Input for ImageNet-trained weights: float32 ``(n, channels, 224, 224)``.

    The same 450x450 field and resize as :func:`wvnet_transform`, so that both encoders see the same ocean, then
    the grey level repeated to RGB and normalised with ImageNet's per-channel mean and std (the statistics those
    weights were trained with).

    Parameters
    ----------
    quicklooks : numpy.ndarray
        uint8 ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    device : torch.device or str, optional
        Where the float work happens.
    channels : int, default 3
        Channels of the output (the first ``channels`` of RGB).

    Returns
    -------
    torch.Tensor
        float32 ``(n, channels, 224, 224)``.

    Raises
    ------
    ValueError
        If the quicklooks are not uint8, or the extents do not fit.
    """
    if np.asarray(quicklooks).dtype != np.uint8:
        raise InvalidDataError(f"the ImageNet transform takes uint8 quicklooks, found {np.asarray(quicklooks).dtype}.")
    x = _resize(crop_field(quicklooks, valid_lines, valid_samples), device).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return x[:, :channels].contiguous()


def oceansar_transform(
    quicklooks: np.ndarray,
    valid_lines: np.ndarray,
    valid_samples: np.ndarray,
    *,
    device: torch.device | str | None = None,
    channels: int = 1,
) -> torch.Tensor:
    """Input for OceanSAR-1: float32 ``(n, channels, 256, 256)``, ~50 m pixels, standardised per imagette.

    What its authors state (model card of ``galeio-research/OceanSAR-1``; Kerdreux et al. 2025, arXiv:2504.06962):
    single-channel VV images of 256 x 256 pixels, downsampled to 50 m. The card and the paper's abstract state no
    normalisation, and the weights were trained on the authors' own product of the WV archive, not on quicklooks; so
    this transform is xwvnet's reading, not a reproduction: the central :data:`OCEANSAR_FIELD` x
    :data:`OCEANSAR_FIELD` field of the quicklook (~41 x 45 m pixels), mirrored at the edges of smaller imagettes,
    scaled to [0, 1] and resized bilinearly to 256 x 256 (~50 m), then standardised per imagette to zero mean and
    unit variance (which removes the 8-bit stretch's scale and offset, so that the input does not depend on it).

    Parameters
    ----------
    quicklooks : numpy.ndarray
        uint8 ``(n, line, sample)``, padded.
    valid_lines, valid_samples : numpy.ndarray
        The valid extent of each imagette.
    device : torch.device or str, optional
        Where the float work happens.
    channels : int, default 1
        Channels of the output (the standardised image repeated).

    Returns
    -------
    torch.Tensor
        float32 ``(n, channels, 256, 256)``.

    Raises
    ------
    ValueError
        If the quicklooks are not uint8, or the extents do not fit.
    """
    if np.asarray(quicklooks).dtype != np.uint8:
        raise InvalidDataError(
            f"the OceanSAR-1 transform takes uint8 quicklooks, found {np.asarray(quicklooks).dtype}; convert "
            "calibrated sigma0 with xwvnet.radiometry.sigma0_to_quicklook first."
        )
    field = crop_field(quicklooks, valid_lines, valid_samples, crop=OCEANSAR_FIELD, border="reflect")
    x = _to_device(field, device).to(torch.float32).mul_(1.0 / 255)
    x = F.interpolate(x[:, None], size=(OCEANSAR_SIZE, OCEANSAR_SIZE), mode="bilinear", align_corners=False,
                      antialias=False)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True, correction=0)
    x = torch.where(std > OCEANSAR_MIN_STD, (x - mean) / std.clamp_min(OCEANSAR_MIN_STD), 0.0)
    return x.expand(-1, channels, -1, -1).contiguous()


TRANSFORMS: dict[str, Callable[..., torch.Tensor]] = {
    "wvnet": wvnet_transform, "wvnet-reflect": wvnet_reflect_transform, "imagenet": imagenet_transform,
    "oceansar": oceansar_transform}
#: the field border of each named transform :func:`xwvnet.train` trains for (not OceanSAR-1's: training views are
#: normalised as WV-Net's inputs, so a run for it would embed with inputs its views never were)
TRANSFORM_BORDERS = {"wvnet": "zero", "wvnet-reflect": "reflect", "imagenet": "zero"}
#: the field each named transform reads and the side it resizes it to (pixels)
TRANSFORM_GEOMETRY = {"wvnet": (CROP, SIZE), "wvnet-reflect": (CROP, SIZE), "imagenet": (CROP, SIZE),
                      "oceansar": (OCEANSAR_FIELD, OCEANSAR_SIZE)}


def get_transform(name: str | Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """A transform by name (``"wvnet"``, ``"wvnet-reflect"``, ``"imagenet"``, ``"oceansar"``), or a callable.

    Parameters
    ----------
    name : str or callable
        A key of :data:`TRANSFORMS`, or a transform.

    Returns
    -------
    callable
        ``fn(quicklooks, valid_lines, valid_samples, *, device=None, channels=3) -> torch.Tensor``.

    Raises
    ------
    ValueError
        On an unknown name.

    Examples
    --------
    >>> get_transform("wvnet").__name__
    'wvnet_transform'
    """
    if callable(name):
        return name
    if name not in TRANSFORMS:
        raise InvalidArgumentError(f"unknown transform {name!r}; expected one of {sorted(TRANSFORMS)} or a callable.")
    return TRANSFORMS[name]
