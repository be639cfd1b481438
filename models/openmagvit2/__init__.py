"""Open-MAGVIT2: LFQ tokenizer (2^18 codes) + class-conditional llama AR with next sub-token prediction.

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "OpenMagvit2Family": ".family",
    "LFQTokenizer": ".tokenizer",
    "TokenizerConfig": ".tokenizer",
    "FactorizedGPT": ".transformer",
    "GPTConfig": ".transformer",
}
__all__ = ['FAMILY', 'OpenMagvit2Family', 'LFQTokenizer', 'TokenizerConfig', 'FactorizedGPT', 'GPTConfig']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
