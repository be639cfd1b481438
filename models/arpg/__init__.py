"""ARPG family: random-order generator (two-pass guided decoder) on LlamaGen's VQ-16 tokens (spec: shared/specs/arpg.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations and the default scoring order) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "ARPGFamily": ".family",
    "arpg_config": ".family",
    "ARPG": ".model",
    "ARPGConfig": ".model",
}
__all__ = ['ARPG', 'ARPGConfig', 'ARPGFamily', 'FAMILY', 'arpg_config']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
