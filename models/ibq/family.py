"""IBQ family: build configs per size id, build and load the tokenizer and the AR model.

Files are Lightning checkpoints ``{"state_dict": sd}``. The AR files carry the tokenizer under
``first_stage_model.*``; the AR configuration loads the tokenizer file's EMA copies
(``use_ema: True``: ``model_ema.<key without dots>``), so that is what a tokenizer file gives.
"""

from __future__ import annotations

from ..seedvoken_common import SeedVokenFamily
from ..seedvoken_schema import IBQ_SCHEMA
from .official import BASE, NAME
from .tokenizer import IBQTokenizer, TokenizerConfig
from .transformer import AdaLNGPT, GPTConfig


class IBQFamily(SeedVokenFamily):
    name = NAME
    base_config = BASE
    schema = IBQ_SCHEMA
    default_use_ema = True
    tokenizer_cls, tokenizer_config_cls = IBQTokenizer, TokenizerConfig
    transformer_cls, transformer_config_cls = AdaLNGPT, GPTConfig


FAMILY = IBQFamily()
