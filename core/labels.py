"""The one label policy of every family: class labels lie in [0, num_classes).

Class-conditional models keep one extra "null" class row (index ``num_classes``) for
classifier-free guidance; it is never scored as a real label.
"""

from __future__ import annotations

import torch

from .errors import DataError


def check_label_range(labels: torch.Tensor, num_classes: int) -> None:
    """Raise :class:`DataError` unless every label is in [0, num_classes)."""
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise DataError(
            f"class labels must lie in [0, {num_classes}) (index {num_classes} is the null/CFG class, never "
            f"scored as a real label); got min {int(labels.min())}, max {int(labels.max())}"
        )
