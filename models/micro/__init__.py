"""Micro zoo: tiny LlamaGen-architecture models trained in the repo on the sklearn digits.

``config.py`` (sizes), ``data.py`` (dataset and split), ``classifier.py`` (micro-FID features),
``train.py`` (``visbpp zoo train``), ``family.py`` (the Family object).
"""

from .family import FAMILY, MicroFamily

__all__ = ["FAMILY", "MicroFamily"]
