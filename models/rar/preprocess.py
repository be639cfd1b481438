"""RAR preprocessing.

MaskGIT-VQGAN tokenizer (``rar``): the repo's evaluation transform —
1. RGB; 2. shorter side -> S with PIL bicubic (antialiased), longer side int(S * long / short)
(truncated), no resize when the image already has that size; 3. centre crop S x S at
top = int(round((H - S) / 2)), left = int(round((W - S) / 2)); 4. uint8 / 255, CHW, [0, 1],
no normalisation.

RobusTok tokenizer (``rar-robusttok``): ADM ``center_crop_arr`` at S, then (v / 255 - 0.5) / 0.5
in [-1, 1] (its validation and pretokenisation path).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from visbpp.core.errors import DataError
from visbpp.models.llamagen.preprocess import center_crop_arr, to_model_input


def eval_preprocess_id(size: int) -> str:
    return f"rar:rgb,short{size}-bicubic-antialias(trunc),center{size}(round),totensor[0,1]"


def robusttok_preprocess_id(size: int) -> str:
    return f"rar-robusttok:center_crop_arr(box-halving,bicubic,round)-S{size}:totensor:norm(0.5,0.5)"


def resized_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(new_width, new_height): shorter side -> ``size``, longer side truncated."""
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def center_box(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return left, top, left + size, top + size


def to_unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"expected a uint8 (H, W, 3) RGB array, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float().div(255)


def eval_preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """A PIL image (any mode) -> float32 (3, size, size) in [0, 1] (the evaluation transform)."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"RAR preprocessing expects a PIL.Image, got {type(image).__name__}")
    img = image.convert("RGB")
    w, h = img.size
    if min(w, h) < 1:
        raise DataError(f"cannot preprocess an empty image of size {w}x{h}")
    nw, nh = resized_size(w, h, size)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BICUBIC)
    return to_unit(np.asarray(img.crop(center_box(nw, nh, size)), dtype=np.uint8))


def robusttok_preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """A PIL image (any mode) -> float32 (3, size, size) in [-1, 1] (ADM centre crop)."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"RobusTok preprocessing expects a PIL.Image, got {type(image).__name__}")
    return to_model_input(center_crop_arr(image.convert("RGB"), size))
