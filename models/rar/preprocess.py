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

from ..pil_resize import center_crop, resize_short_side


def eval_preprocess_id(size: int) -> str:
    return f"rar:rgb,short{size}-bicubic-antialias(trunc),center{size}(round),totensor[0,1]"


def robusttok_preprocess_id(size: int) -> str:
    return f"rar-robusttok:center_crop_arr(box-halving,bicubic,round)-S{size}:totensor:norm(0.5,0.5)"


def to_unit(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [0, 1]."""
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise DataError(f"expected a uint8 (H, W, 3) RGB array, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float().div(255)


def eval_preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """A PIL image (any mode) -> float32 (3, size, size) in [0, 1] (the evaluation transform)."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"RAR preprocessing expects a PIL.Image, got {type(image).__name__}")
    img = center_crop(resize_short_side(image.convert("RGB"), size, Image.BICUBIC), size)
    return to_unit(np.asarray(img, dtype=np.uint8))


def robusttok_preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """A PIL image (any mode) -> float32 (3, size, size) in [-1, 1] (ADM centre crop)."""
    if not isinstance(image, Image.Image):
        raise TypeError(f"RobusTok preprocessing expects a PIL.Image, got {type(image).__name__}")
    return to_model_input(center_crop_arr(image.convert("RGB"), size))
