"""Open-MAGVIT2 preprocessing: PIL bilinear resize of the short side, rounded centre crop, [-1, 1].

The validation path of the official data code: short side -> S with the long side
int(S * long / short) (truncated), PIL bilinear (antialiased when shrinking), centre crop
with offsets int(round((size - S) / 2)) (Python round, half to even), x = uint8 / 127.5 - 1.
"""

from __future__ import annotations

import numpy as np
import torch

from ..pil_resize import center_crop_offsets
from ..pil_resize import resize_short_side as _resize_short_side

PREPROCESS_ID = "omg:pil-bilinear-short|crop-round|x/127.5-1"


def resize_short_side(image, size: int):
    """PIL image -> PIL image whose short side is ``size`` (long side truncated), bilinear."""
    from PIL import Image

    return _resize_short_side(image, size, Image.BILINEAR)


def to_unit_range(arr: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 = x / 127.5 - 1 (computed in float64)."""
    x = arr.astype(np.float64) / 127.5 - 1.0
    return torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1).contiguous()


def preprocess_image(image, size: int) -> torch.Tensor:
    """PIL image (any mode) -> float32 (3, size, size) in [-1, 1]."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    image = resize_short_side(image, size)
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    top, left = center_crop_offsets(h, w, size)
    return to_unit_range(arr[top:top + size, left:left + size])
