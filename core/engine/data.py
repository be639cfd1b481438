"""Image datasets for scoring: the ImageFolder and flat-val + CSV layouts, subsets, robust decoding.

Layouts
-------
* **ImageFolder**: ``root/<class>/<image>``. Files directly in ``root`` are ignored; files
  nested deeper inside a class folder belong to that class.
* **Flat + CSV**: ``root/<image>`` plus Kaggle's ``LOC_val_solution.csv`` (columns
  ``ImageId,PredictionString``). The class of an image is the *first* synset of its
  PredictionString. Images without a CSV row are not scored: they are listed in
  ``Dataset.unlabeled`` and the engine reports them as skipped ("no label in the CSV") when the
  whole folder is scored (no ``--limit`` / ``--per-class``).

Labels: with the models' class names (``class_names``, index order: the 1000 ImageNet synset
ids, or the micro zoo's digits, ``visbpp.core.registry.class_names``) the label of an image is
the index of its class NAME (folder name or CSV synset) among them, so a folder holding any
subset of the classes is labelled right; a name that is not one of the classes is a
``DataError`` naming it. Without class names (models of unknown classes) the label is the
position of the name in the sorted list of all class folders (empty ones included) or of all
synsets of the CSV.

Image paths in results are relative to ``root`` (POSIX separators). Hidden files (``.*``) are
never listed; every other file is, and non-images are reported as skipped with a reason.

Subsets are deterministic: ``per_class`` keeps the first K images of every class by relative
path; then ``limit`` takes N images round-robin over the classes (class order, within a class
by relative path): the first image of every class, then the second of every class, and so on,
so that a small ``--limit`` covers as many classes as it can. The selection is returned in
the global order (class index, then relative path).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Callable, Sequence

from visbpp.core.errors import DataError  # noqa: F401 - re-exported
from visbpp.core.registry.class_names import describe

IMAGE_DECODE_ERRORS = "truncated or corrupt image"


@dataclass(frozen=True)
class Sample:
    path: str    # absolute path
    image: str   # path relative to the data root, POSIX
    label: int   # class index


@dataclass(frozen=True)
class Dataset:
    root: str
    layout: str                 # "imagefolder" | "flat-csv"
    classes: tuple[str, ...]    # class names in index order
    samples: tuple[Sample, ...]  # in global order: (label, image)
    unlabeled: tuple[str, ...] = ()  # flat layout: files without a CSV row (relative paths, sorted)
    relabelled: bool = False    # the labels (by class name) differ from the sorted positions of ``classes``


def _relabelled(label: dict[str, int]) -> bool:
    return any(label[c] != i for i, c in enumerate(sorted(label)))


def _dir_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _walk_files(folder: str, root: str, seen: set) -> list[tuple[str, str]]:
    """Files under ``folder``, following links to folders but never into a folder already visited
    (``seen``: (device, inode) of visited folders), so a link loop lists nothing twice."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        keep = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            ident = _dir_id(os.path.join(dirpath, d))
            if ident is not None and ident not in seen:
                seen.add(ident)
                keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            if f.startswith("."):
                continue
            p = os.path.join(dirpath, f)
            out.append((p, os.path.relpath(p, root).replace(os.sep, "/")))
    return out


def _check_root(root: str) -> None:
    if os.path.isfile(root):
        raise DataError(f"{root}: is a file, not a folder; pass --data DIR: the folder holding one subfolder "
                        f"per class (ImageFolder) or the flat val folder (with --labels-csv)")
    if not os.path.isdir(root):
        raise DataError(f"{root}: data folder not found (pass --data DIR: an ImageFolder root or the flat val folder)")


def class_index(names: Sequence[str], class_names: Sequence[str] | None, where: str, what: str) -> dict[str, int]:
    """name -> class index: its position among ``class_names`` (every name must be one of them,
    else a ``DataError`` naming it), or, without class names, its position in ``sorted(names)``."""
    if class_names is None:
        return {c: i for i, c in enumerate(sorted(names))}
    index = {c: i for i, c in enumerate(class_names)}
    unknown = sorted(set(names) - set(index))
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise DataError(f"{where}: {what} {unknown[0]!r}{more} is not a class of the model: its classes are "
                        f"{describe(tuple(class_names))}; labels come from these names, so rename or remove "
                        f"{'them' if more else 'it'} (or score a model of these classes)")
    return {c: index[c] for c in names}


def scan_imagefolder(root: str, class_names: Sequence[str] | None = None) -> Dataset:
    root = os.path.abspath(root)
    _check_root(root)
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise DataError(
            f"{root}: no class subfolders. For an ImageFolder, put images in one folder per class; "
            f"for the flat ImageNet val folder pass --labels-csv LOC_val_solution.csv"
        )
    label = class_index(classes, class_names, root, "class folder")
    samples = []
    seen = {_dir_id(root)} | {_dir_id(os.path.join(root, c)) for c in classes}
    for c in classes:
        for p, rel in sorted(_walk_files(os.path.join(root, c), root, seen), key=lambda t: t[1]):
            samples.append(Sample(p, rel, label[c]))
    samples.sort(key=lambda s: (s.label, s.image))
    return Dataset(root, "imagefolder", tuple(classes), tuple(samples), relabelled=_relabelled(label))


def read_labels_csv(csv_path: str) -> dict[str, str]:
    """Kaggle LOC_val_solution.csv -> {ImageId: first synset of PredictionString}."""
    if not os.path.isfile(csv_path):
        raise DataError(f"{csv_path}: labels CSV not found (Kaggle's LOC_val_solution.csv is expected)")
    out: dict[str, str] = {}
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        if "ImageId" not in cols or "PredictionString" not in cols:
            raise DataError(f"{csv_path}: expected columns ImageId,PredictionString (Kaggle LOC_val_solution.csv); found {cols}")
        for n, row in enumerate(reader, start=2):
            parts = (row["PredictionString"] or "").split()
            if not parts:
                raise DataError(f"{csv_path}:{n}: empty PredictionString for {row['ImageId']!r}")
            out[row["ImageId"].strip()] = parts[0]
    if not out:
        raise DataError(f"{csv_path}: no rows")
    return out


def scan_flat(root: str, csv_path: str, class_names: Sequence[str] | None = None) -> Dataset:
    root = os.path.abspath(root)
    _check_root(root)
    labels = read_labels_csv(csv_path)
    classes = tuple(sorted(set(labels.values())))
    index = class_index(classes, class_names, csv_path, "synset")
    samples = []
    unlabeled = []
    for e in os.scandir(root):
        dangling = e.is_symlink() and not os.path.exists(e.path)  # listed: decoding says why it is skipped
        if not (e.is_file() or dangling) or e.name.startswith("."):
            continue
        stem = os.path.splitext(e.name)[0]
        syn = labels.get(stem, labels.get(e.name))
        if syn is None:
            unlabeled.append(e.name)
            continue
        samples.append(Sample(os.path.join(root, e.name), e.name, index[syn]))
    if not samples:
        raise DataError(f"{root}: no file matches an ImageId of {csv_path} (names like ILSVRC2012_val_00000001.JPEG expected)")
    samples.sort(key=lambda s: (s.label, s.image))
    return Dataset(root, "flat-csv", classes, tuple(samples), tuple(sorted(unlabeled)), _relabelled(index))


def scan(root: str, labels_csv: str | None = None, class_names: Sequence[str] | None = None) -> Dataset:
    """The images of ``root`` with their labels (the layouts and label rule of the module doc)."""
    return scan_flat(root, labels_csv, class_names) if labels_csv else scan_imagefolder(root, class_names)


def select(samples: Sequence[Sample], limit: int | None = None, per_class: int | None = None) -> list[Sample]:
    """Deterministic subset: first ``per_class`` per class by relative path, then ``limit`` images
    round-robin over the classes (class order; within a class by relative path), returned in
    the global (class, path) order of ``samples``."""
    out = list(samples)
    if per_class is not None:
        if per_class < 1:
            raise DataError(f"--per-class must be >= 1, got {per_class}")
        count: dict[int, int] = {}
        kept = []
        for s in out:
            if count.get(s.label, 0) < per_class:
                kept.append(s)
                count[s.label] = count.get(s.label, 0) + 1
        out = kept
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be >= 1, got {limit}")
        by_class: dict[int, list[int]] = {}
        for i, s in enumerate(out):
            by_class.setdefault(s.label, []).append(i)
        queues = [by_class[c] for c in sorted(by_class)]
        picked: list[int] = []
        depth = 0
        while len(picked) < limit and any(depth < len(q) for q in queues):
            picked += [q[depth] for q in queues if depth < len(q)][: limit - len(picked)]
            depth += 1
        out = [out[i] for i in sorted(picked)]
    return out


# --------------------------------------------------------------------------- decoding


class BadImage(Exception):
    """An image that cannot be scored; ``str(e)`` is the reason recorded in the results."""


def to_rgb8(img):
    """Any PIL mode -> 8-bit RGB exactly as the official pipelines do it: PIL ``convert("RGB")``
    (grayscale, CMYK, palette, alpha dropped; 16-bit and float values are clipped to 0..255 by
    PIL, not rescaled), so the engine and every family's ``preprocess`` agree on every file."""
    mode = img.mode
    if mode == "P" and "transparency" in img.info:  # same pixels; avoids PIL's palette warning
        img = img.convert("RGBA")
    if mode == "RGB":
        return img
    return img.convert("RGB")


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF", b"\x00\x00\x00\x0cjP")


def has_image_signature(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(16)
    return head.startswith(_SIGNATURES)


def load_image(path: str):
    """Decode ``path`` fully to an 8-bit RGB PIL image, or raise :class:`BadImage` with the reason."""
    from PIL import Image, UnidentifiedImageError

    if os.path.islink(path) and not os.path.exists(path):
        raise BadImage(f"dangling symbolic link (to {os.readlink(path)})")
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise BadImage(f"unreadable file ({e.strerror})") from None
    if size == 0:
        raise BadImage("empty file")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb8(im)
    except UnidentifiedImageError:
        if has_image_signature(path):
            raise BadImage(f"{IMAGE_DECODE_ERRORS} (image signature but unreadable header)") from None
        raise BadImage("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise BadImage(f"{IMAGE_DECODE_ERRORS} ({e})") from None


class ImageDataset:
    """torch-style map dataset: index -> (position, tensor | None, reason | None).

    Decoding and the family's preprocessing run here, i.e. in DataLoader workers.
    """

    def __init__(self, samples: Sequence[Sample], preprocess: Callable, decode: Callable | None = None):
        self.samples = list(samples)
        self.preprocess = preprocess
        self.decode = decode or load_image  # path -> PIL image, raises BadImage

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        try:
            img = self.decode(s.path)
        except BadImage as e:
            return i, None, str(e)
        try:
            x = self.preprocess(img)
        except Exception as e:  # noqa: BLE001 - an image the family cannot preprocess is skipped
            return i, None, f"preprocessing failed ({type(e).__name__}: {e})"
        return i, x, None


def collate(items):
    """-> (positions of good images, stacked tensor or None, [(position, reason)] of bad ones)."""
    import torch

    good = [(i, x) for i, x, r in items if r is None]
    bad = [(i, r) for i, x, r in items if r is not None]
    x = torch.stack([x for _, x in good]) if good else None
    return [i for i, _ in good], x, bad


class MultiImageDataset:
    """Decode once, preprocess for several tokenizers: index -> (position, [tensor | None], [reason | None]).

    ``transforms[g]`` is tokenizer group g's preprocessing; ``wanted[i]`` the groups that need
    sample i (the others get ``None`` and no work). A file that cannot be decoded is bad for
    every group that wanted it, with the same reason.
    """

    def __init__(self, samples: Sequence[Sample], decode: Callable, transforms: Sequence[Callable],
                 wanted: Sequence[Sequence[int]]):
        self.samples, self.decode, self.transforms, self.wanted = list(samples), decode, list(transforms), list(wanted)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        n = len(self.transforms)
        xs, reasons = [None] * n, [None] * n
        try:
            img = self.decode(self.samples[i].path)
        except BadImage as e:
            for g in self.wanted[i]:
                reasons[g] = str(e)
            return i, xs, reasons
        for g in self.wanted[i]:
            try:
                xs[g] = self.transforms[g](img)
            except Exception as e:  # noqa: BLE001 - an image a family cannot preprocess is skipped by it
                reasons[g] = f"preprocessing failed ({type(e).__name__}: {e})"
        return i, xs, reasons


def collate_multi(items):
    """-> per group g: (positions of its good images, stacked tensor or None, [(position, reason)])."""
    import torch

    out = []
    for g in range(len(items[0][1]) if items else 0):
        good = [(i, xs[g]) for i, xs, _ in items if xs[g] is not None]
        bad = [(i, rs[g]) for i, _, rs in items if rs[g] is not None]
        out.append(([i for i, _ in good], torch.stack([x for _, x in good]) if good else None, bad))
    return out
