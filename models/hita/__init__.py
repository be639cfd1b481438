"""Hita family: holistic+patch VQ tokenizer with a DINOv2 branch + LlamaGen-derived c2i GPT (spec: shared/specs/hita.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "ConfigError": "visbpp.core.errors",
    "model_configs": ".config",
    "FAMILY": ".family",
    "HitaFamily": ".family",
    "HitaGPT": ".gpt",
    "HitaGPTConfig": ".gpt",
    "HitaTokenizer": ".tokenizer",
    "HitaVQConfig": ".tokenizer",
    "DinoViT": ".vit",
    "ViTConfig": ".vit",
    "dino_input": ".vit",
}
__all__ = ['FAMILY', 'ConfigError', 'DinoViT', 'HitaFamily', 'HitaGPT', 'HitaGPTConfig', 'HitaTokenizer', 'HitaVQConfig', 'ViTConfig', 'dino_input', 'model_configs']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
