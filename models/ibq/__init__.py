"""IBQ: index-backpropagation VQ tokenizer (16384 codes) + class-conditional AdaLN llama AR."""

from .family import FAMILY, IBQFamily, config_for
from .tokenizer import IBQTokenizer, TokenizerConfig
from .transformer import AdaLNGPT, GPTConfig

__all__ = ["FAMILY", "IBQFamily", "config_for", "IBQTokenizer", "TokenizerConfig", "AdaLNGPT", "GPTConfig"]
