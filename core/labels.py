"""The one label policy of every family: class labels lie in [0, num_classes).

Class-conditional models keep one extra "null" class row (index ``num_classes``) for
classifier-free guidance; it is never scored as a real label. Scoring *with* the null class
(``visbpp run --unconditional``: the class information a model uses) is an explicit request:
inside :func:`scoring_null_class` a model that has a null row (``null_class`` not None) accepts
that one index as well.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

import torch

from visbpp.core.errors import DataError

_NULL_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar("visbpp_null_class_allowed", default=False)


@contextlib.contextmanager
def scoring_null_class() -> Iterator[None]:
    """Within this block, models with a null row accept its index (``num_classes``) as a label."""
    token = _NULL_ALLOWED.set(True)
    try:
        yield
    finally:
        _NULL_ALLOWED.reset(token)


def check_label_range(labels: torch.Tensor, num_classes: int, null_class: int | None = None) -> None:
    """Raise :class:`DataError` unless every label is in [0, num_classes); the model's ``null_class``
    index is accepted only inside :func:`scoring_null_class`."""
    if not labels.numel():
        return
    lo, hi = int(labels.min()), int(labels.max())
    top = num_classes + 1 if _NULL_ALLOWED.get() and null_class == num_classes else num_classes
    if lo < 0 or hi >= top:
        raise DataError(
            f"class labels must lie in [0, {num_classes}) (index {num_classes} is the null/CFG class, never "
            f"scored as a real label); got min {lo}, max {hi}"
        )
