"""FlexVAR family: FlexVAE (LlamaGen VQ-16, non-residual multi-scale tokens) + next-scale
transformer on VAR's blocks (spec: shared/specs/flexvar.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "FlexVARFamily": ".family",
    "FlexVAE": ".tokenizer",
    "FlexVAEConfig": ".tokenizer",
    "FlexVAR": ".transformer",
    "FlexVARConfig": ".transformer",
}
__all__ = ['FAMILY', 'FlexVAE', 'FlexVAEConfig', 'FlexVAR', 'FlexVARConfig', 'FlexVARFamily']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
