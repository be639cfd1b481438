"""RQ-Transformer family: RQ-VAE 8x8x4 tokenizer + class-conditional RQ-Transformer."""

from .family import FAMILY, RQTransformerFamily
from .rqvae import RQVAE, RQVAEConfig
from .transformer import RQTransformer, RQTransformerConfig

__all__ = ["FAMILY", "RQTransformerFamily", "RQVAE", "RQVAEConfig", "RQTransformer", "RQTransformerConfig"]
