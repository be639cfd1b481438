"""Data layouts, subsets and robust decoding (visbpp.core.engine.data)."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from visbpp.core.engine import data as D


def _png(path, shape=(6, 5, 3), mode=None, value=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    a = np.full(shape, 7, np.uint8) if value is None else value
    Image.fromarray(a, mode).save(path) if mode else Image.fromarray(a).save(path)


def test_imagefolder_class_index_counts_empty_folders(tmp_path):
    for c, names in {"n02": ["b.png", "a.png"], "n01": [], "n03": ["z.png"]}.items():
        os.makedirs(tmp_path / c, exist_ok=True)
        for n in names:
            _png(str(tmp_path / c / n))
    (tmp_path / "toplevel.png").write_bytes(b"")  # files in the root are not samples
    (tmp_path / "n03" / ".DS_Store").write_bytes(b"x")  # hidden files are never listed
    ds = D.scan(str(tmp_path))
    assert ds.classes == ("n01", "n02", "n03")
    assert [(s.image, s.label) for s in ds.samples] == [("n02/a.png", 1), ("n02/b.png", 1), ("n03/z.png", 2)]


def test_flat_layout_with_kaggle_csv(tmp_path):
    root = tmp_path / "val"
    for i in (1, 2, 3, 4):
        _png(str(root / f"ILSVRC2012_val_{i:08d}.JPEG"))
    csv = tmp_path / "LOC_val_solution.csv"
    csv.write_text(
        "ImageId,PredictionString\n"
        "ILSVRC2012_val_00000001,n09999999 1 2 3 4 n01000000 5 6 7 8\n"
        "ILSVRC2012_val_00000002,n01000000 1 2 3 4\n"
        "ILSVRC2012_val_00000003,n05000000 0 0 1 1 n05000000 2 2 3 3\n"
        "ILSVRC2012_val_00000005,n07000000 0 0 1 1\n"  # row without a file: fine
    )
    ds = D.scan(str(root), str(csv))
    # synsets sorted over the whole CSV: n01000000=0, n05000000=1, n07000000=2, n09999999=3
    assert ds.classes == ("n01000000", "n05000000", "n07000000", "n09999999")
    got = {s.image: s.label for s in ds.samples}
    assert got == {"ILSVRC2012_val_00000001.JPEG": 3, "ILSVRC2012_val_00000002.JPEG": 0,
                   "ILSVRC2012_val_00000003.JPEG": 1}  # image 4 has no CSV row
    assert [s.image for s in ds.samples][0] == "ILSVRC2012_val_00000002.JPEG"  # ordered by (label, name)


def test_flat_layout_bad_csv(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    os.makedirs(tmp_path / "val")
    with pytest.raises(D.DataError, match="ImageId,PredictionString"):
        D.scan(str(tmp_path / "val"), str(tmp_path / "x.csv"))
    with pytest.raises(D.DataError, match="not found"):
        D.scan(str(tmp_path / "nope"))


def test_subsets_deterministic(tmp_path):
    for c, n in enumerate([3, 1, 2]):
        for i in range(n):
            _png(str(tmp_path / f"k{c}" / f"{9 - i}.png"))
    s = D.scan(str(tmp_path)).samples
    assert [x.image for x in D.select(s, per_class=2)] == ["k0/7.png", "k0/8.png", "k1/9.png", "k2/8.png", "k2/9.png"]
    assert [x.image for x in D.select(s, limit=2)] == ["k0/7.png", "k1/9.png"]  # round-robin over classes
    assert [x.image for x in D.select(s, limit=5)] == ["k0/7.png", "k0/8.png", "k1/9.png", "k2/8.png", "k2/9.png"]
    assert [x.image for x in D.select(s, limit=3, per_class=1)] == ["k0/7.png", "k1/9.png", "k2/8.png"]
    with pytest.raises(D.DataError):
        D.select(s, limit=0)


def test_limit_spreads_over_classes_and_is_stable(tmp_path):
    sizes = [40, 3, 0, 25, 1, 12]  # class k3 empty
    for c, n in enumerate(sizes):
        os.makedirs(tmp_path / f"k{c}", exist_ok=True)
        for i in range(n):
            (tmp_path / f"k{c}" / f"f{(i * 7) % n:03d}-{i}.png").write_bytes(b"")  # created out of name order
    s = D.scan(str(tmp_path)).samples
    sub = D.select(s, limit=12)
    # round 1: the first file of k0, k1, k3, k4, k5; round 2: the second of k0, k1, k3, k5; round 3: third of k0, ...
    by_class = {c: sorted(x.image for x in s if x.label == c) for c in range(len(sizes))}
    want = [by_class[c][r] for r in range(3) for c in range(len(sizes)) if r < len(by_class[c])][:12]
    assert [x.image for x in sub] == sorted(want, key=lambda im: (int(im[1]), im))
    assert {x.label for x in sub} == {0, 1, 3, 4, 5}
    assert D.select(D.scan(str(tmp_path)).samples, limit=12) == sub  # a new scan selects the same
    assert D.select(s, limit=12) == sub and len(D.select(s, limit=1000)) == len(s)
    # rounds: 5 + 4 + 4 + 9 x 3 = 40 images, 12 of class k0 (before: all 40 were k0)
    assert [x.label for x in D.select(s, limit=40)].count(0) == 12


def test_bad_images_have_reasons(tmp_path):
    _png(str(tmp_path / "good.png"))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image at all")
    full = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(full, quality=95)
    (tmp_path / "trunc.jpg").write_bytes(full.read_bytes()[:400])
    png = tmp_path / "good.png"
    (tmp_path / "corrupt.png").write_bytes(png.read_bytes()[:20] + b"\x00" * 40)
    assert D.load_image(str(png)).mode == "RGB"
    with pytest.raises(D.BadImage, match="empty file"):
        D.load_image(str(tmp_path / "empty.png"))
    with pytest.raises(D.BadImage, match="not an image"):
        D.load_image(str(tmp_path / "notes.txt"))
    with pytest.raises(D.BadImage, match="truncated or corrupt"):
        D.load_image(str(tmp_path / "trunc.jpg"))
    with pytest.raises(D.BadImage, match="truncated or corrupt"):
        D.load_image(str(tmp_path / "corrupt.png"))


def test_mode_conversions_to_rgb8(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(g, "L").save(tmp_path / "gray.png")
    Image.fromarray(np.stack([g] * 4, -1), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(g, "L").convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.stack([g] * 3, -1)).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pal.png")
    for name in ("gray.png", "rgba.png", "cmyk.jpg", "pal.png"):
        im = D.load_image(str(tmp_path / name))
        assert im.mode == "RGB" and im.size == (4, 3), name
        a = np.asarray(im)
        if name != "cmyk.jpg":  # jpeg is lossy
            assert np.array_equal(a[..., 0], g), name
        assert np.array_equal(a[..., 0], a[..., 1]), name


@pytest.mark.parametrize("kind", ["I;16", "F"])
def test_16bit_and_float_images_convert_like_the_official_pipelines(tmp_path, kind):
    """PIL convert("RGB") (values clipped, not rescaled), the same in the engine and in preprocess."""

    if kind == "I;16":
        a = np.array([[0, 7, 255, 256], [1000, 4000, 65535, 30]], np.uint16)
        Image.fromarray(a).save(tmp_path / "x.png")  # 16-bit grayscale PNG
        path, expect = tmp_path / "x.png", np.minimum(a, 255)
    else:
        a = np.array([[0.0, 0.4, 1.0, 17.9], [254.2, 255.0, 300.5, 2.5]], np.float32)
        Image.fromarray(a, "F").save(tmp_path / "x.tif")
        path, expect = tmp_path / "x.tif", np.asarray(Image.fromarray(a, "F").convert("L"))
    raw = Image.open(path)
    assert raw.mode.startswith("I") if kind == "I;16" else raw.mode == "F"
    im = D.load_image(str(path))
    assert im.mode == "RGB" and np.array_equal(np.asarray(im)[..., 0], expect)
    assert np.array_equal(np.asarray(im), np.asarray(raw.convert("RGB")))
    import importlib

    for fam in ("llamagen", "var", "rqtransformer", "taming", "openmagvit2", "ibq"):
        mod = importlib.import_module(f"visbpp.models.{fam}.preprocess")
        pre = getattr(mod, "preprocess_image", None) or mod.preprocess
        assert torch.equal(pre(Image.open(path), 16), pre(im, 16)), fam


def test_dataset_returns_reason_instead_of_raising(tmp_path):
    _png(str(tmp_path / "c" / "a.png"))
    (tmp_path / "c" / "b.png").write_bytes(b"")
    ds = D.scan(str(tmp_path))
    items = [D.ImageDataset(ds.samples, lambda im: __import__("torch").zeros(3, 2, 2))[i] for i in range(2)]
    pos, x, bad = D.collate(items)
    assert pos == [0] and tuple(x.shape) == (1, 3, 2, 2) and bad == [(1, "empty file")]
