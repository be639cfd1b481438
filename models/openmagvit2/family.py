"""Open-MAGVIT2 family: build configs per size id, build and load the tokenizer and the AR model.

Files are Lightning checkpoints ``{"state_dict": sd}``. The AR files carry the whole tokenizer
under ``first_stage_model.*``; the AR configuration tokenizes with the raw (non-EMA) weights
(``use_ema: False``), so a tokenizer file is read through its ``encoder.*``/``decoder.*`` keys
unless the config says ``use_ema: True`` (then ``model_ema.<key without dots>``).
"""

from __future__ import annotations

from ..seedvoken_common import SeedVokenFamily
from ..seedvoken_schema import OPENMAGVIT2_SCHEMA
from .official import BASE, NAME
from .tokenizer import LFQTokenizer, TokenizerConfig
from .transformer import FactorizedGPT, GPTConfig


class OpenMagvit2Family(SeedVokenFamily):
    name = NAME
    base_config = BASE
    schema = OPENMAGVIT2_SCHEMA
    default_use_ema = False
    tokenizer_cls, tokenizer_config_cls = LFQTokenizer, TokenizerConfig
    transformer_cls, transformer_config_cls = FactorizedGPT, GPTConfig


FAMILY = OpenMagvit2Family()
