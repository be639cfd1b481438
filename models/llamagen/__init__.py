"""LlamaGen family: VQ-16 tokenizer + class-conditional GPT with 2-D RoPE (spec: shared/specs/llamagen.md)."""

from .family import FAMILY, ConfigError, LlamaGenFamily, gpt_config, vq_config
from .gpt import GPT, GPTConfig, precompute_freqs_cis_2d
from .preprocess import center_crop_arr, preprocess
from .tokenizer import VQConfig, VQTokenizer

__all__ = [
    "FAMILY",
    "ConfigError",
    "GPT",
    "GPTConfig",
    "LlamaGenFamily",
    "VQConfig",
    "VQTokenizer",
    "center_crop_arr",
    "gpt_config",
    "precompute_freqs_cis_2d",
    "preprocess",
    "vq_config",
]
