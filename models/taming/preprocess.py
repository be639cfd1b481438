"""Taming preprocessing: shortest side to S with OpenCV-style bilinear, centre crop, x/127.5 - 1.

The official validation pipeline resizes the uint8 RGB array so that its shortest side is
S (new sides ``round(side * S / min(h, w))``, Python round-half-to-even), with OpenCV's
``INTER_LINEAR`` (bilinear, half-pixel centres, *no* antialiasing when shrinking), then
crops the centre S x S (top = (h - S) // 2, left = (w - S) // 2) and maps pixels to
``x / 127.5 - 1``.

:func:`resize_bilinear_u8` reproduces OpenCV's 8-bit bilinear arithmetic in numpy: the
source coordinate ``(d + 0.5) * (src / dst) - 0.5`` in float32, weights quantised to 11
fractional bits, a horizontal pass in integers, then a vertical pass with OpenCV's
fixed-point rounding. It needs neither OpenCV nor torchvision.
"""

from __future__ import annotations

import numpy as np
import torch

COEF_BITS = 11
COEF_SCALE = 1 << COEF_BITS  # 2048


def _axis_coefficients(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and fixed-point weights (w0, w1) of one axis, each (dst,).

    ``clamp_weights``: the horizontal axis snaps coordinates outside [0, src-1] to the
    border pixel with weight (1, 0); the vertical axis keeps the computed weights and
    clamps the row indices (both give the border value).
    """
    scale = 1.0 / (dst / src)  # float64, as OpenCV forms it
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = (f - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low = i0 < 0
        high = i0 >= src - 1
        frac[low | high] = 0.0
        i0 = np.where(low, 0, np.where(high, src - 1, i0))
    c0 = (np.float32(1.0) - frac).astype(np.float32)
    w0 = np.rint(c0 * np.float32(COEF_SCALE)).astype(np.int64)
    w1 = np.rint(frac * np.float32(COEF_SCALE)).astype(np.int64)
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    return i0, i1, w0, w1


def resize_bilinear_u8(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """uint8 (H, W) or (H, W, C) -> uint8 (out_h, out_w[, C]), OpenCV INTER_LINEAR arithmetic."""
    if img.dtype != np.uint8:
        raise TypeError(f"resize_bilinear_u8 expects a uint8 array, got {img.dtype}")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"target size must be positive, got {out_h}x{out_w}")
    squeeze = img.ndim == 2
    a = img[:, :, None] if squeeze else img
    H, W, _ = a.shape
    x0, x1, a0, a1 = _axis_coefficients(W, out_w, clamp_weights=True)
    y0, y1, b0, b1 = _axis_coefficients(H, out_h, clamp_weights=False)
    s = a.astype(np.int64)

    def horizontal(rows: np.ndarray) -> np.ndarray:  # (out_h, out_w, C), weights sum to 2048
        r = s[rows]
        return r[:, x0, :] * a0[None, :, None] + r[:, x1, :] * a1[None, :, None]

    t0 = ((b0[:, None, None] * (horizontal(y0) >> 4)) >> 16)
    t1 = ((b1[:, None, None] * (horizontal(y1) >> 4)) >> 16)
    out = ((t0 + t1 + 2) >> 2).astype(np.uint8)
    return out[:, :, 0] if squeeze else out


def shortest_side_size(h: int, w: int, size: int) -> tuple[int, int]:
    """(new_h, new_w) with the shortest side equal to ``size`` (round half to even)."""
    scale = size / float(min(h, w))
    return round(h * scale), round(w * scale)


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
