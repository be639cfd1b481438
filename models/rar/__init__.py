"""RAR family: RAR generators on the MaskGIT-VQGAN tokenizer, and on RobusTok's ViT tokenizer (spec: shared/specs/rar.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "ConfigError": "visbpp.core.errors",
    "MaskGITConfig": ".config",
    "ParsedConfig": ".config",
    "RARConfig": ".config",
    "RobusTokConfig": ".config",
    "typed_config": ".config",
    "FAMILY": ".family",
    "RARFamily": ".family",
    "RAR": ".generator",
    "MaskGITTokenizer": ".maskgit_vqgan",
    "RobusTokTokenizer": ".robusttok",
}
__all__ = ['FAMILY', 'ConfigError', 'MaskGITConfig', 'MaskGITTokenizer', 'ParsedConfig', 'RAR', 'RARConfig', 'RARFamily', 'RobusTokConfig', 'RobusTokTokenizer', 'typed_config']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
