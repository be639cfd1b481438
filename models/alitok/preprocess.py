"""AliTok tokenizer input: the pretokenisation script's transforms, range [0, 1] (no normalisation).

- ``center`` (default): ADM ``center_crop_arr`` at S (box-filter halving, bicubic resize of the short
  side to S with rounded sizes, central crop), ToTensor;
- ``tencrop-center``: ``center_crop_arr`` at int(1.1 S), then the centre S x S crop of torchvision's
  TenCrop (top/left int(round((int(1.1 S) - S) / 2)), 12 at 256): the view of each training image that
  the AR models saw among the ten, objects 1.1x larger.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..llamagen.preprocess import center_crop_arr
from ..rar.preprocess import to_unit


def crop(image: Image.Image, size: int, view: str) -> np.ndarray:
    """A PIL image (any mode) -> uint8 (size, size, 3): the ``view`` (``center`` or ``tencrop-center``)."""
    rgb = image.convert("RGB")
    if view == "center":
        return center_crop_arr(rgb, size)
    big = int(size * 1.1)
    arr = center_crop_arr(rgb, big)
    top = int(round((big - size) / 2.0))  # torchvision's centre crop offset (both sides: the crop is square)
    return arr[top:top + size, top:top + size]


def preprocess(image: Image.Image, size: int, view: str = "center") -> torch.Tensor:
    """A PIL image -> float32 (3, size, size) in [0, 1]."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"AliTok preprocessing expects a PIL.Image, got {type(image).__name__}")
    return to_unit(crop(image, size, view))


def preprocess_id(size: int, view: str = "center") -> str:
    """Names the preprocessing for the token-cache key."""
    if view == "center":
        return f"alitok:center_crop_arr(box-halving,bicubic,round)-S{size}:totensor[0,1]"
    big = int(size * 1.1)
    return (f"alitok:center_crop_arr(box-halving,bicubic,round)-S{big}:tencrop-center{size}"
            f"(offset {int(round((big - size) / 2.0))}):totensor[0,1]")
