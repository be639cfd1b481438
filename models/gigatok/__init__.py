"""GigaTok family: 1-D VQ tokenizers + class-conditional GPT with a learned position table (spec: shared/specs/gigatok.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "GigaTokConfig": ".config",
    "gigatok_config": ".config",
    "FAMILY": ".family",
    "ConfigError": "visbpp.core.errors",
    "GigaTokFamily": ".family",
    "GPT": ".gpt",
    "GPTConfig": ".gpt",
    "GigaTokTokenizer": ".tokenizer",
    "TokenizerConfig": ".tokenizer",
    "ViTSize": ".tokenizer",
}
__all__ = ['FAMILY', 'ConfigError', 'GPT', 'GPTConfig', 'GigaTokConfig', 'GigaTokFamily', 'GigaTokTokenizer', 'TokenizerConfig', 'ViTSize', 'gigatok_config']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
