"""Taming Transformers: VQGAN f16 tokenizer + class-conditional minGPT (spec: shared/specs/taming.md)."""

from .config import ProjectConfigWarning
from .family import FAMILY, TamingFamily
from .gpt import GPT, ClassConditionalGPT, GPTConfig
from .vqgan import VQGAN, VectorQuantizer, VQGANConfig

__all__ = ["FAMILY", "TamingFamily", "VQGAN", "VQGANConfig", "VectorQuantizer", "GPT", "GPTConfig",
           "ClassConditionalGPT", "ProjectConfigWarning"]
