"""Open-MAGVIT2 family: build configs per size id, build and load the tokenizer and the AR model.

Files are Lightning checkpoints ``{"state_dict": sd}``. The AR files carry the whole tokenizer
under ``first_stage_model.*``; the AR configuration tokenizes with the raw (non-EMA) weights
(``use_ema: False``), so a tokenizer file is read through its ``encoder.*``/``decoder.*`` keys
unless the config says ``use_ema: True`` (then ``model_ema.<key without dots>``).
"""

from __future__ import annotations

from typing import Any

from ..seedvoken_common import SeedVokenFamily
from .tokenizer import LFQTokenizer, TokenizerConfig
from .transformer import FactorizedGPT, GPTConfig

NAME = "openmagvit2"
LABEL = "Open-MAGVIT2"

SIZE_FIELDS = ("dim", "n_head", "spatial_n_layer", "factorized_n_layer")  # transformer arguments per size
CODEBOOK_SIZE = 262144
# card id -> values of SIZE_FIELDS
SIZES: dict[str, tuple[int, int, int, int]] = {
    "omg-b-256": (1024, 16, 24, 2),
    "omg-l-256": (1280, 20, 36, 3),
    "omg-xl-256": (1536, 24, 48, 4),
}
TOKENIZER_ID = "omg-lfq-256"

_BASE: dict[str, Any] = {
    "family": NAME,
    "tokenizer": {
        "ckpt_path": None,
        "n_embed": 262144,
        "embed_dim": 18,
        "use_ema": False,
        "stage": "transformer",
        "token_factorization": True,
        "factorized_bits": [6, 12],
        "ddconfig": {"double_z": False, "resolution": 128, "in_channels": 3, "out_ch": 3, "ch": 128,
                     "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 4, "z_channels": 18},
        "lossconfig": "src.Open_MAGVIT2.modules.losses.DummyLoss",
    },
    "transformer": {
        "vocab_size": 512,
        "block_size": 256,
        "factorized_bits": [6, 12],
        "token_drop": 0.1,
        "resid_dropout_p": 0.1,
        "token_factorization": True,
        "class_num": 1000,
        "multiple_of": 256,
    },
    "transformer_defaults": {
        "cls_token_num": 1, "rope_base": 10000, "norm_eps": 1e-05, "n_kv_head": None, "factorized_k": 2,
        "ffn_dim_multiplier": None, "ffn_dropout_p": 0.1, "attn_dropout_p": 0.0, "embd_pdrop": 0.0,
        "drop_path_rate": 0.0, "multiple_of": 256,
    },
    "image_size": 256,
    "num_classes": 1000,
    "token_grid": [16, 16],
    "tokens_per_image": 256,
    "factorized_bits": [6, 12],
    "subtoken_vocab": [64, 4096],
    "tokenizer_container": "state_dict",
    "transformer_container": "state_dict",
    "dtype": "float32",
    "input_normalisation": "x = uint8/127.5 - 1.0 (range [-1, 1]), NCHW, RGB",
}


class OpenMagvit2Family(SeedVokenFamily):
    name = NAME
    label = LABEL
    sizes = SIZES
    size_fields = SIZE_FIELDS
    base_config = _BASE
    codebook_size = CODEBOOK_SIZE
    tokenizer_id = TOKENIZER_ID
    default_use_ema = False
    tokenizer_cls, tokenizer_config_cls = LFQTokenizer, TokenizerConfig
    transformer_cls, transformer_config_cls = FactorizedGPT, GPTConfig


FAMILY = OpenMagvit2Family()
config_for = FAMILY.config_for
