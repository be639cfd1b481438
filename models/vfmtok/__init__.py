"""VFMTok family: frozen-DINOv2 region-adaptive VQ tokenizer + LlamaGen's class-conditional GPT
(spec: shared/specs/vfmtok.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "ConfigError": "visbpp.core.errors",
    "FAMILY": ".family",
    "VFMTokFamily": ".family",
    "VFMTokGPT": ".gpt",
    "VFMTokTokenizer": ".tokenizer",
    "VFMTokConfig": ".tokenizer",
    "MSDeformAttn": ".deformable",
    "reference_points": ".deformable",
    "tokenizer_config": ".config",
    "transformer_config": ".config",
}
__all__ = ['FAMILY', 'ConfigError', 'MSDeformAttn', 'VFMTokConfig', 'VFMTokFamily', 'VFMTokGPT', 'VFMTokTokenizer',
           'reference_points', 'tokenizer_config', 'transformer_config']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
