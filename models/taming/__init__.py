"""Taming Transformers: VQGAN f16 tokenizer + class-conditional minGPT (spec: shared/specs/taming.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "ProjectConfigWarning": ".config",
    "FAMILY": ".family",
    "TamingFamily": ".family",
    "GPT": ".gpt",
    "ClassConditionalGPT": ".gpt",
    "GPTConfig": ".gpt",
    "VQGAN": ".vqgan",
    "VectorQuantizer": ".vqgan",
    "VQGANConfig": ".vqgan",
}
__all__ = ['FAMILY', 'TamingFamily', 'VQGAN', 'VQGANConfig', 'VectorQuantizer', 'GPT', 'GPTConfig', 'ClassConditionalGPT', 'ProjectConfigWarning']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
