"""The image preprocessing protocol of a run: each family's own (``official``) or the paper's.

* ``official`` (default): the family's own evaluation transform (``ImageTokenizer.preprocess``:
  its resize filter, centre crop and normalisation), images decoded by
  :func:`visbpp.core.engine.data.load_image`.
* ``paper``: the pipeline the published table was measured with, the same for every family:
  the file is opened with PIL and converted with ``convert("RGB")`` (PIL's own mode
  conversion, as an ImageFolder loader does), the *whole* image is resized to S x S with PIL's
  bicubic filter (aspect ratio not kept, no crop; PIL antialiases when shrinking), then
  ``uint8 / 255`` in float32 and ``(x - 0.5) / 0.5``. S is the tokenizer's input side (256,
  384 for the LlamaGen @384 models).

The protocol is part of the run id, of the token-cache key (through :attr:`Preprocessing.id`)
and of every result the run writes.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from visbpp.core.engine import data as D
from visbpp.core.errors import SettingsError
from visbpp.core.store.runs import DEFAULT_PREPROCESSING

if TYPE_CHECKING:  # pragma: no cover
    import torch

PREPROCESSINGS = (DEFAULT_PREPROCESSING, "paper")


class PreprocessingError(SettingsError):
    """An unknown preprocessing name."""


def check(name: str) -> str:
    """``name`` if it is a known protocol, else :class:`PreprocessingError` naming the choices."""
    if name not in PREPROCESSINGS:
        raise PreprocessingError(f"--preprocess {name!r}: expected one of {', '.join(PREPROCESSINGS)} "
                                 f"(official: each family's own eval transform; paper: the published table's)", "preprocess")
    return name


def paper_id(size: int) -> str:
    return f"paper:pil-convert-rgb|pil-bicubic-whole-{int(size)}x{int(size)}|x/255|(x-0.5)/0.5"


def load_image_plain(path: str):
    """Open ``path`` with PIL and ``convert("RGB")`` (no other mode handling), or :class:`BadImage`."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise D.BadImage(f"unreadable file ({e.strerror})") from None
    if size == 0:
        raise D.BadImage("empty file")
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except UnidentifiedImageError:
        if D.has_image_signature(path):
            raise D.BadImage(f"{D.IMAGE_DECODE_ERRORS} (image signature but unreadable header)") from None
        raise D.BadImage("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise D.BadImage(f"{D.IMAGE_DECODE_ERRORS} ({e})") from None


def paper_transform(image, size: int) -> torch.Tensor:
    """An RGB PIL image -> float32 (3, size, size): PIL bicubic resize of the whole image, /255, (x-0.5)/0.5."""
    import numpy as np
    import torch
    from PIL import Image

    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    a = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()
    x = a.to(torch.float32).div(255)
    return x.sub(0.5).div(0.5)


@dataclass(frozen=True)
class Preprocessing:
    """How a run turns an image file into the tokenizer's input."""

    name: str                                   # "official" | "paper"
    id: str                                     # part of the token-cache key
    decode: Callable[[str], object]             # path -> PIL image (raises BadImage)
    transform: Callable[[object], "torch.Tensor"]  # PIL image -> float32 (3, S, S)


def for_tokenizer(name: str, tok) -> Preprocessing:
    """The protocol ``name`` applied to tokenizer ``tok`` (its ``image_size`` is S)."""
    check(name)
    if name == "paper":
        size = int(tok.image_size)
        return Preprocessing(name, paper_id(size), load_image_plain, functools.partial(paper_transform, size=size))
    return Preprocessing(name, tok.preprocess_id, D.load_image, tok.preprocess)
