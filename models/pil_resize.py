"""Short-side resize and rounded centre crop of PIL images, as the ImageNet validation transforms
of RAR, VAR, RQ-Transformer and Open-MAGVIT2 do them (each with its own filter and short side).

- :func:`resize_short_side`: the shorter side becomes ``short``, the longer int(short * long / s)
  (truncated); the image is returned untouched when it already has that size;
- :func:`center_crop`: ``size`` x ``size`` at top = int(round((H - size) / 2)), left likewise
  (Python rounding, half to even).
"""

from __future__ import annotations

from visbpp.core.errors import DataError


def short_side_size(width: int, height: int, short: int) -> tuple[int, int]:
    """(new_width, new_height) with the shorter side ``short`` and the longer side truncated."""
    if min(width, height) < 1:
        raise DataError(f"cannot preprocess an empty image of size {width}x{height}")
    s, long = (width, height) if width <= height else (height, width)
    new_long = int(short * long / s)
    return (short, new_long) if width <= height else (new_long, short)


def resize_short_side(image, short: int, resample: int):
    """PIL image -> PIL image whose shorter side is ``short`` (PIL filter ``resample``); unchanged if it already is."""
    size = short_side_size(*image.size, short)
    return image if size == image.size else image.resize(size, resample)


def center_crop_offsets(height: int, width: int, size: int) -> tuple[int, int]:
    """(top, left) of the centred ``size`` x ``size`` crop."""
    return int(round((height - size) / 2.0)), int(round((width - size) / 2.0))


def center_crop(image, size: int):
    """The centred ``size`` x ``size`` crop of a PIL image; DataError when the image is smaller."""
    w, h = image.size
    if w < size or h < size:
        raise DataError(f"center crop: image {w}x{h} is smaller than the crop {size}x{size}")
    top, left = center_crop_offsets(h, w, size)
    return image.crop((left, top, left + size, top + size))
