"""The class names of the models, in their class-index order: what a data folder's class folders
(or a labels CSV's synsets) are matched against, so that an image is conditioned on its own class
whatever subset of the classes a folder holds.

* ImageNet (every family but the micro zoo): the 1000 WordNet synset ids in the standard index
  order (the sorted ids: 0 = n01440764, as the ImageNet folders of torchvision and every
  family's training code order them), shipped in ``assets/imagenet_synsets.txt``.
* The micro zoo: the digit names ``"0"`` .. ``"9"`` (``visbpp zoo data`` writes those folders).
"""

from __future__ import annotations

import functools
import os

from visbpp.core.registry.catalog import MICRO_FAMILY

IMAGENET_CLASSES = 1000
SYNSETS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "imagenet_synsets.txt")
DIGITS = tuple(str(d) for d in range(10))


@functools.lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1k synset ids in class-index order."""
    with open(SYNSETS_FILE) as f:
        names = tuple(line.strip() for line in f if line.strip())
    if len(names) != IMAGENET_CLASSES or list(names) != sorted(set(names)):
        raise RuntimeError(f"{SYNSETS_FILE}: expected the {IMAGENET_CLASSES} sorted synset ids; the installation is damaged")
    return names


def for_family(family: str) -> tuple[str, ...]:
    """The class names of a family's models, index order."""
    return DIGITS if family == MICRO_FAMILY else imagenet_synsets()


def for_config(family: str, config: dict) -> tuple[str, ...] | None:
    """The class names of a model built from ``config`` (its top-level ``num_classes``): the
    family's, or None for a model trained on another number of classes (whose names are unknown:
    its labels are then the positions of the sorted class-folder names)."""
    names = for_family(family)
    n = config.get("num_classes")
    return names if n is None or n == len(names) else None


def describe(names: tuple[str, ...]) -> str:
    """Short text naming a class-name set, for error messages."""
    if names == DIGITS:
        return "the digits 0..9"
    if len(names) == IMAGENET_CLASSES and names == imagenet_synsets():
        return f"the {IMAGENET_CLASSES} ImageNet synset ids ({names[0]} .. {names[-1]})"
    return f"{len(names)} classes ({names[0]} .. {names[-1]})"
