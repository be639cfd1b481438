"""LlamaGen preprocessing: ``center_crop_arr`` to S, ToTensor, normalise to [-1, 1].

Box-filter halving while the short side is at least 2S, one bicubic resize so the short
side becomes S (new sizes with Python ``round``, i.e. halves to even), then the central
S x S window; pixels v in [0, 255] map to (v / 255 - 0.5) / 0.5 in float32, CHW.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def center_crop_arr(image: Image.Image, size: int) -> np.ndarray:
    """PIL image -> uint8 (size, size, C) array, the ADM-style centre crop used by LlamaGen."""
    if size <= 0:
        raise ValueError(f"center_crop_arr: size must be positive, got {size}")
    while min(image.size) >= 2 * size:
        w, h = image.size
        image = image.resize((w // 2, h // 2), resample=Image.BOX)
    scale = size / min(image.size)
    w, h = image.size
    image = image.resize((round(w * scale), round(h * scale)), resample=Image.BICUBIC)
    arr = np.asarray(image)
    top = (arr.shape[0] - size) // 2
    left = (arr.shape[1] - size) // 2
    return arr[top : top + size, left : left + size]


def to_model_input(arr: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1]: (v / 255 - 0.5) / 0.5."""
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB array, got {arr.dtype} {arr.shape}")
    x = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float().div(255)  # (3, H, W), own writable copy
    return (x - 0.5) / 0.5


def preprocess(image: Image.Image, size: int) -> torch.Tensor:
    """Decoded PIL image (any mode) -> float32 (3, size, size) tokenizer input."""
    return to_model_input(center_crop_arr(image.convert("RGB"), size))


def preprocess_id(size: int) -> str:
    """Names the preprocessing for the token-cache key."""
    return f"llamagen:center_crop_arr(box-halving,bicubic,round)-S{size}:totensor:norm(0.5,0.5)"
