"""Micro zoo: tiny LlamaGen-architecture models trained in the repo on the sklearn digits.

``config.py`` (sizes), ``data.py`` (dataset and split), ``classifier.py`` (micro-FID features),
``train.py`` (``visbpp zoo train``), ``family.py`` (the Family object).
``official.py`` (configs per size id, no torch). Exports are imported on first use (``models/lazy.py``).
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "MicroFamily": ".family",
}
__all__ = ['FAMILY', 'MicroFamily']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
