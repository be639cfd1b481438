"""IBQ: index-backpropagation VQ tokenizer (16384 codes) + class-conditional AdaLN llama AR.

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "IBQFamily": ".family",
    "IBQTokenizer": ".tokenizer",
    "TokenizerConfig": ".tokenizer",
    "AdaLNGPT": ".transformer",
    "GPTConfig": ".transformer",
}
__all__ = ['FAMILY', 'IBQFamily', 'IBQTokenizer', 'TokenizerConfig', 'AdaLNGPT', 'GPTConfig']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
