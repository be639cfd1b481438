"""Open-MAGVIT2: LFQ tokenizer (2^18 codes) + class-conditional llama AR with next sub-token prediction."""

from .family import FAMILY, OpenMagvit2Family, config_for
from .tokenizer import LFQTokenizer, TokenizerConfig
from .transformer import FactorizedGPT, GPTConfig

__all__ = ["FAMILY", "OpenMagvit2Family", "config_for", "LFQTokenizer", "TokenizerConfig", "FactorizedGPT",
           "GPTConfig"]
