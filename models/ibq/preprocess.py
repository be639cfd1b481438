"""IBQ preprocessing: smallest side -> S with OpenCV-style linear resize, floor centre crop, [-1, 1].

The official data code resizes with OpenCV ``INTER_LINEAR`` (no antialiasing when shrinking),
new size (round(h * S / min), round(w * S / min)) (Python round), crops at ((h - S) // 2,
(w - S) // 2) and maps x = uint8 / 127.5 - 1. The resize is the shared OpenCV arithmetic of
``models/cv_resize.py``.
"""

from __future__ import annotations

import numpy as np
import torch

from ..cv_resize import resize_linear_u8, smallest_side_size  # noqa: F401 - re-exported

PREPROCESS_ID = "ibq:cv-linear-smallest|crop-floor|x/127.5-1"

cv_linear_resize = resize_linear_u8  # the shared OpenCV INTER_LINEAR arithmetic (models/cv_resize.py)


def center_crop_offsets(h: int, w: int, size: int) -> tuple[int, int]:
    return (h - size) // 2, (w - size) // 2


def preprocess_array(arr: np.ndarray, size: int) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> float32 (3, size, size) in [-1, 1]."""
    h, w = arr.shape[:2]
    nh, nw = smallest_side_size(h, w, size)
    if (nh, nw) != (h, w):
        arr = cv_linear_resize(arr, nh, nw)
    top, left = center_crop_offsets(nh, nw, size)
    crop = arr[top:top + size, left:left + size]
    x = (crop.astype(np.float64) / 127.5 - 1.0).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).contiguous()


def preprocess_image(image, size: int) -> torch.Tensor:
    """PIL image (any mode) -> float32 (3, size, size) in [-1, 1]."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    return preprocess_array(np.asarray(image), size)
