"""GigaTok family: 1-D VQ tokenizers + class-conditional GPT with a learned position table (spec: shared/specs/gigatok.md)."""

from .config import GigaTokConfig, gigatok_config
from .family import FAMILY, ConfigError, GigaTokFamily
from .gpt import GPT, GPTConfig
from .tokenizer import GigaTokTokenizer, TokenizerConfig, ViTSize

__all__ = [
    "FAMILY",
    "ConfigError",
    "GPT",
    "GPTConfig",
    "GigaTokConfig",
    "GigaTokFamily",
    "GigaTokTokenizer",
    "TokenizerConfig",
    "ViTSize",
    "gigatok_config",
]
