"""AliTok family: a 1-D ViT tokenizer aligned with causal modelling (P prefix tokens + a G x G grid) and
its RoPE AR models, plus the ORT variant of the AR model (spec: shared/specs/alitok.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "ConfigError": "visbpp.core.errors",
    "ARConfig": ".config",
    "AliTokConfig": ".config",
    "TokenizerConfig": ".config",
    "alitok_config": ".config",
    "FAMILY": ".family",
    "AliTokFamily": ".family",
    "AliTokTokenizer": ".tokenizer",
    "AliTokAR": ".transformer",
    "ORTAR": ".transformer",
    "rope_table": ".transformer",
}
__all__ = ['ARConfig', 'AliTokAR', 'AliTokConfig', 'AliTokFamily', 'AliTokTokenizer', 'ConfigError', 'FAMILY', 'ORTAR',
           'TokenizerConfig', 'alitok_config', 'rope_table']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
