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

MID_RATIO = 1.125


def preprocess_id(size: int) -> str:
    return f"var:rgb,short{round(MID_RATIO * size)}-lanczos,center{size},pm1"


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(new_width, new_height) after the short-side resize for final side ``size``."""
    new_short = round(MID_RATIO * size)
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(new_short * long / short)
    return (new_short, new_long) if width <= height else (new_long, new_short)


def center_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """PIL crop box (left, top, right, bottom) of the centred size x size square."""
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return left, top, left + size, top + size


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
    img = image.convert("RGB")
    w, h = img.size
    if min(w, h) < 1:
        raise ValueError(f"cannot preprocess an empty image of size {w}x{h}")
    nw, nh = resized_size(w, h, size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.LANCZOS)
    img = img.crop(center_box(nw, nh, size))
    return to_pm1(np.asarray(img, dtype=np.uint8))
