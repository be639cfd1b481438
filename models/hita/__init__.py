"""Hita family: holistic+patch VQ tokenizer with a DINOv2 branch + LlamaGen-derived c2i GPT (spec: shared/specs/hita.md)."""

from visbpp.core.errors import ConfigError

from .config import model_configs
from .family import FAMILY, HitaFamily
from .gpt import HitaGPT, HitaGPTConfig
from .tokenizer import HitaTokenizer, HitaVQConfig
from .vit import DinoViT, ViTConfig, dino_input

__all__ = ["FAMILY", "ConfigError", "DinoViT", "HitaFamily", "HitaGPT", "HitaGPTConfig", "HitaTokenizer", "HitaVQConfig",
           "ViTConfig", "dino_input", "model_configs"]
