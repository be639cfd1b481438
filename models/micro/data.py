"""The micro zoo's dataset: scikit-learn's 8x8 handwritten digits (ships inside the package,
no download), 10 classes, upsampled to 16x16 RGB.

Split (deterministic): every 5th image (index % 5 == 0) is held out -> 360 held-out images,
1437 training images. Pixel values 0..16 become round(v * 255 / 16), the 8x8 picture is
resized to 16x16 with PIL bilinear and replicated to three channels.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SIZE = 16     # side of the micro images in pixels
NUM_CLASSES = 10    # digits 0..9
HOLDOUT_EVERY = 5   # index % 5 == 0 -> held-out split


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images.astype(np.float64), d.target.astype(np.int64)


def to_rgb16(img8: np.ndarray) -> np.ndarray:
    """(8, 8) float in [0, 16] -> (16, 16, 3) uint8."""
    u8 = np.rint(np.clip(img8, 0, 16) * 255.0 / 16.0).astype(np.uint8)
    big = np.asarray(Image.fromarray(u8, mode="L").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))
    return np.repeat(big[:, :, None], 3, axis=2)


def split(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``"train"`` or ``"heldout"`` -> (N, 16, 16, 3) uint8 images, (N,) int64 labels."""
    if name not in ("train", "heldout"):
        raise ValueError(f"unknown split {name!r}; use 'train' or 'heldout'")
    images, labels = _digits()
    idx = np.arange(len(labels))
    keep = (idx % HOLDOUT_EVERY == 0) if name == "heldout" else (idx % HOLDOUT_EVERY != 0)
    return np.stack([to_rgb16(im) for im in images[keep]]), labels[keep]


def write_imagefolder(root: str | os.PathLike, name: str = "heldout") -> Path:
    """Write a split as an ImageFolder (``<root>/<digit>/<index>.png``) for `visbpp run`.

    Idempotent: an existing complete folder (marker file) is left as it is. The folder is written
    beside ``root`` and renamed into place when complete, so a process ended part-way (the TUI quits
    without waiting for it) leaves no half-written data set, only a staging folder the next call removes.
    """
    root = Path(root)
    marker = root / ".complete"
    if marker.is_file():
        return root
    images, labels = split(name)
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in root.parent.glob(f".{root.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
    counters = [0] * NUM_CLASSES
    for c in range(NUM_CLASSES):
        (stage / str(c)).mkdir()
    for img, lab in zip(images, labels):
        Image.fromarray(img).save(stage / str(lab) / f"{counters[lab]:04d}.png")
        counters[lab] += 1
    (stage / ".complete").write_text(f"{name} split of the sklearn digits, {len(labels)} images\n")
    if root.exists() and not marker.is_file():   # a folder of an earlier version, written in place
        shutil.rmtree(root, ignore_errors=True)
    try:
        os.rename(stage, root)
    except OSError:   # another process put it in place first
        shutil.rmtree(stage, ignore_errors=True)
    return root


def default_data_dir() -> Path:
    """The held-out split as an ImageFolder in the cache dir (written on first use)."""
    from visbpp.core.files import cache_root

    return write_imagefolder(cache_root() / "data" / "micro-digits-heldout", "heldout")
