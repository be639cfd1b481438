"""Taming preprocessing: shortest side to S with OpenCV-style bilinear, centre crop, x/127.5 - 1.

The official validation pipeline resizes the uint8 RGB array so that its shortest side is
S (new sides ``round(side * S / min(h, w))``, Python round-half-to-even), with OpenCV's
``INTER_LINEAR`` (bilinear, half-pixel centres, *no* antialiasing when shrinking), then
crops the centre S x S (top = (h - S) // 2, left = (w - S) // 2) and maps pixels to
``x / 127.5 - 1``.

The resize is the shared OpenCV 8-bit arithmetic of ``models/cv_resize.py`` (no OpenCV,
no torchvision).
"""

from __future__ import annotations

import numpy as np
import torch

from ..cv_resize import resize_linear_u8, smallest_side_size

resize_bilinear_u8 = resize_linear_u8  # the shared OpenCV INTER_LINEAR arithmetic (models/cv_resize.py)
shortest_side_size = smallest_side_size


def resize_center_crop_u8(arr: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (size, size, 3): shortest side to ``size``, then centre crop."""
    h, w = arr.shape[:2]
    if size / float(min(h, w)) != 1.0:
        nh, nw = shortest_side_size(h, w, size)
        arr = resize_bilinear_u8(arr, nh, nw)
    h, w = arr.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return arr[top : top + size, left : left + size]


def normalize_u8(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) = x / 127.5 - 1 (computed in float64)."""
    x = (arr.astype(np.float64) / 127.5 - 1.0).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def preprocess_image(image, size: int) -> torch.Tensor:
    """A PIL image (any mode) -> float32 (3, size, size) in [-1, 1], the official validation way."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    arr = np.asarray(image, dtype=np.uint8)
    return normalize_u8(resize_center_crop_u8(arr, size))


def preprocess_id(size: int) -> str:
    return f"taming:short{size}-cv2bilinear-u8:center{size}:x/127.5-1"
