"""LlamaGen family: VQ-16 tokenizer + class-conditional GPT with 2-D RoPE (spec: shared/specs/llamagen.md).

Exports are imported on first use (``models/lazy.py``), so ``official.py`` (the registered sizes'
configurations) imports without torch.
"""

from ..lazy import lazy_exports

_EXPORTS = {
    "FAMILY": ".family",
    "ConfigError": "visbpp.core.errors",
    "LlamaGenFamily": ".family",
    "gpt_config": ".family",
    "vq_config": ".family",
    "GPT": ".gpt",
    "GPTConfig": ".gpt",
    "precompute_freqs_cis_2d": ".gpt",
    "center_crop_arr": ".preprocess",
    "preprocess": ".preprocess",
    "VQConfig": ".tokenizer",
    "VQTokenizer": ".tokenizer",
}
__all__ = ['FAMILY', 'ConfigError', 'GPT', 'GPTConfig', 'LlamaGenFamily', 'VQConfig', 'VQTokenizer', 'center_crop_arr', 'gpt_config', 'precompute_freqs_cis_2d', 'preprocess', 'vq_config']
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
