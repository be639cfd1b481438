"""RAR family: RAR generators on the MaskGIT-VQGAN tokenizer, and on RobusTok's ViT tokenizer (spec: shared/specs/rar.md)."""

from visbpp.core.errors import ConfigError

from .config import MaskGITConfig, ParsedConfig, RARConfig, RobusTokConfig, typed_config
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
    "typed_config",
]
