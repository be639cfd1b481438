"""RAR family: RAR generators on the MaskGIT-VQGAN tokenizer, and on RobusTok's ViT tokenizer (spec: shared/specs/rar.md)."""

from .config import ConfigError, MaskGITConfig, ParsedConfig, RARConfig, RobusTokConfig, parse_config
from .family import FAMILY, RARFamily
from .generator import RAR
from .maskgit_vqgan import MaskGITTokenizer
from .robusttok import RobusTokTokenizer

__all__ = [
    "FAMILY",
    "ConfigError",
    "MaskGITConfig",
    "MaskGITTokenizer",
    "ParsedConfig",
    "RAR",
    "RARConfig",
    "RARFamily",
    "RobusTokConfig",
    "RobusTokTokenizer",
    "parse_config",
]
