"""VAR image preprocessing (the official ImageNet validation transform).

1. convert to RGB;
2. resize so the shorter side becomes round(1.125 * S) with PIL LANCZOS; the longer side
   becomes int(new_short * long / short) (truncated);
3. centre crop S x S with top = int(round((H - S) / 2)), left = int(round((W - S) / 2));
4. float32 CHW in [0, 1] (uint8 / 255), then x = x + x - 1 in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from ..pil_resize import center_crop, resize_short_side

MID_RATIO = 1.125


def preprocess_id(size: int) -> str:
    return f"var:rgb,short{round(MID_RATIO * size)}-lanczos,center{size},pm1"


def to_pm1(u8: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) or (B, H, W, 3) -> float32 CHW / BCHW in [-1, 1] as 2 * (u8 / 255) - 1."""
    a = np.ascontiguousarray(u8, dtype=np.uint8)
    t = torch.from_numpy(a if a.flags.writeable else a.copy())
    t = t.permute(2, 0, 1) if t.dim() == 3 else t.permute(0, 3, 1, 2)
    x = t.float().div(255)
    return x + x - 1


def preprocess_image(image, size: int) -> torch.Tensor:
    """A PIL image (any mode, any size) -> float32 (3, size, size) in [-1, 1]."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise TypeError(f"VAR preprocessing expects a PIL.Image, got {type(image).__name__}")
    img = resize_short_side(image.convert("RGB"), round(MID_RATIO * size), Image.LANCZOS)
    return to_pm1(np.asarray(center_crop(img, size), dtype=np.uint8))
