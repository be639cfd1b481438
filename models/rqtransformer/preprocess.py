"""RQ-Transformer evaluation preprocessing of a PIL image (ImageNet 256x256 validation transform).

RGB -> resize the shorter side to S with PIL bilinear (longer side int(S * long / short),
truncated; untouched when the short side already is S) -> centre crop S x S with
top/left = round((size - S) / 2) (Python rounding) -> uint8 / 255 -> (v - 0.5) / 0.5,
float32 (3, S, S) in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from ..pil_resize import center_crop, resize_short_side


def preprocess_id(size: int) -> str:
    """Names this preprocessing at side ``size`` (part of the token-cache key)."""
    return f"rq-shortside{size}-pilbilinear-centercrop{size}-pm1"


def to_tensor_pm1(image) -> torch.Tensor:
    """RGB PIL image -> float32 (3, H, W) = (u8 / 255 - 0.5) / 0.5."""
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got an array of shape {arr.shape}")
    x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0  # (3, H, W) in [0, 1]
    return (x - 0.5) / 0.5


def preprocess_image(image, size: int) -> torch.Tensor:
    """A decoded PIL image (any mode) -> float32 (3, size, size) in [-1, 1]."""
    from PIL import Image

    img = center_crop(resize_short_side(image.convert("RGB"), size, Image.BILINEAR), size)
    return to_tensor_pm1(img)
