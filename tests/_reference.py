"""An independent per-image evaluation of the WV-Net transform (PIL geometry, step-by-step torch), written apart from
``xwvnet.models.transforms`` so that the transform and embedding tests compare the package with something else."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def reference_field(valid: np.ndarray) -> np.ndarray:
    """The published 450x450 field, by replaying the steps on a PIL image (written apart from the module)."""
    h, w = valid.shape
    img = Image.fromarray(valid)
    # Pad(padding=(0, w_diff, 0, h_diff)): torchvision reads (left, top, right, bottom)
    top, bottom = max(0, 450 - w), max(0, 450 - h)
    padded = Image.new("L", (w, h + top + bottom), 0)
    padded.paste(img, (0, top))
    # CenterCrop(450): pad symmetrically (floor on the left/top) where smaller, then crop at Python round()
    pw, ph = padded.size
    if pw < 450 or ph < 450:
        grown = Image.new("L", (max(pw, 450), max(ph, 450)), 0)
        grown.paste(padded, ((450 - pw) // 2 if pw < 450 else 0, (450 - ph) // 2 if ph < 450 else 0))
        padded = grown
        pw, ph = padded.size
    left, upper = int(round((pw - 450) / 2.0)), int(round((ph - 450) / 2.0))
    return np.asarray(padded.crop((left, upper, left + 450, upper + 450)))


def reference_input(valid: np.ndarray) -> torch.Tensor:
    """(3, 224, 224) float32 model input of one valid region, step by step."""
    x = torch.from_numpy(reference_field(valid).copy()).to(torch.float32) / 255.0
    x = F.interpolate(x[None, None], size=(224, 224), mode="bilinear", align_corners=True)[0]
    x = x.repeat(3, 1, 1)
    mean = torch.full((3, 1, 1), 103.4862417561056 / 255.0)
    std = torch.full((3, 1, 1), 56.745013435601074 / 255.0)
    return (x - mean) / std
