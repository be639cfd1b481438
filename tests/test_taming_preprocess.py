"""Taming preprocessing: OpenCV-style bilinear without antialiasing, shortest side, centre crop, x/127.5 - 1."""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from visbpp.models import get_family
from visbpp.models.taming.preprocess import (
    normalize_u8,
    preprocess_image,
    resize_bilinear_u8,
    shortest_side_size,
)


def _opencv_linear_scalar(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Scalar re-derivation of OpenCV's 8-bit INTER_LINEAR, one output pixel at a time."""
    H, W, C = img.shape
    out = np.zeros((oh, ow, C), np.uint8)

    def coef(d, src, dst):
        f = np.float32((d + 0.5) * (1.0 / (dst / src)) - 0.5)
        i = math.floor(f)
        return i, np.float32(f - np.float32(i))

    for dy in range(oh):
        sy, fy = coef(dy, H, oh)
        b = (int(np.rint((np.float32(1) - fy) * np.float32(2048))), int(np.rint(fy * np.float32(2048))))
        rows = (min(max(sy, 0), H - 1), min(max(sy + 1, 0), H - 1))
        for dx in range(ow):
            sx, fx = coef(dx, W, ow)
            if sx < 0:
                sx, fx = 0, np.float32(0)
            if sx >= W - 1:
                sx, fx = W - 1, np.float32(0)
            a = (int(np.rint((np.float32(1) - fx) * np.float32(2048))), int(np.rint(fx * np.float32(2048))))
            for c in range(C):
                acc = 2
                for r, br in zip(rows, b):
                    s = int(img[r, sx, c]) * a[0] + int(img[r, min(sx + 1, W - 1), c]) * a[1]
                    acc += (br * (s >> 4)) >> 16
                out[dy, dx, c] = acc >> 2
    return out


def test_bilinear_hand_values():
    # width 2 -> 4: source x = -0.25, 0.25, 0.75, 1.25 -> 0, 25, 75, 100 (borders clamp)
    row = np.array([[[0], [100]]], np.uint8)
    assert resize_bilinear_u8(row, 1, 4)[0, :, 0].tolist() == [0, 25, 75, 100]
    # 6 -> 2 without antialiasing: source x = 1.0 and 4.0 exactly, i.e. pixels 1 and 4, no averaging
    line = np.array([[[10], [20], [30], [40], [50], [60]]], np.uint8)
    assert resize_bilinear_u8(line, 1, 2)[0, :, 0].tolist() == [20, 50]
    # exact 2x shrink: mean of each 2x2 block, rounded half up
    img = np.array([[1, 2, 10, 20], [3, 5, 30, 41], [0, 0, 255, 255], [0, 1, 255, 254]], np.uint8)
    assert resize_bilinear_u8(img, 2, 2).tolist() == [[3, 25], [0, 255]]


def test_bilinear_matches_scalar_and_float_reference():
    rng = np.random.default_rng(0)
    for (h, w), (oh, ow) in [((7, 5), (3, 11)), ((9, 13), (4, 6)), ((5, 5), (12, 9)), ((3, 17), (3, 7))]:
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ours = resize_bilinear_u8(img, oh, ow)
        assert np.array_equal(ours, _opencv_linear_scalar(img, oh, ow))
        # float bilinear with half-pixel centres and edge clamping, no antialias
        ys = np.clip((np.arange(oh) + 0.5) * h / oh - 0.5, 0, h - 1)
        xs = np.clip((np.arange(ow) + 0.5) * w / ow - 0.5, 0, w - 1)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
        wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        f = img.astype(np.float64)
        ref = ((1 - wy) * ((1 - wx) * f[y0][:, x0] + wx * f[y0][:, x1])
               + wy * ((1 - wx) * f[y1][:, x0] + wx * f[y1][:, x1]))
        assert np.abs(ours.astype(np.float64) - ref).max() <= 1.0


def test_shortest_side_rounding():
    assert shortest_side_size(375, 500, 256) == (256, 341)
    assert shortest_side_size(500, 333, 256) == (384, 256)
    assert shortest_side_size(512, 513, 256) == (256, 256)  # 256.5 -> 256 (half to even)
    assert shortest_side_size(515, 512, 256) == (258, 256)  # 257.5 -> 258
    assert shortest_side_size(100, 150, 256) == (256, 384)  # small images are enlarged


def test_preprocess_crop_normalisation_and_mode():
    # already 256 high: no resize; centre crop left = (260 - 256) // 2 = 2
    cols = np.tile(np.arange(260, dtype=np.uint8)[None, :, None], (256, 1, 3))
    x = preprocess_image(Image.fromarray(cols), 256)
    assert x.shape == (3, 256, 256) and x.dtype == torch.float32
    assert np.allclose(x[0, 0, :3].numpy(), (np.array([2, 3, 4]) / 127.5 - 1).astype(np.float32))
    # RGBA: alpha dropped; a constant image stays constant through resize
    rgba = Image.new("RGBA", (300, 200), (10, 200, 255, 0))
    x = preprocess_image(rgba, 64)
    want = torch.tensor([10, 200, 255], dtype=torch.float64) / 127.5 - 1
    assert torch.equal(x, want.float()[:, None, None].expand(3, 64, 64))
    # a vertical ramp after resize 200x300 -> 64x96 and crop of columns 16..80 (w direction only)
    ramp = np.tile(np.linspace(0, 255, 300).astype(np.uint8)[None, :, None], (200, 1, 3))
    x = preprocess_image(Image.fromarray(ramp), 64)
    expect = normalize_u8(resize_bilinear_u8(ramp, 64, 96)[:, 16:80])
    assert torch.equal(x, expect)
    with torch.device("meta"):  # preprocessing needs no weights
        tok = get_family("taming").build_tokenizer(get_family("taming").config_for("taming-1.4b"))
    assert torch.equal(tok.preprocess(Image.fromarray(ramp)), preprocess_image(Image.fromarray(ramp), 256))
    assert tok.preprocess_id == "taming:short256-cv2bilinear-u8:center256:x/127.5-1"


