"""IBQ family: build configs per size id, build and load the tokenizer and the AR model.

Files are Lightning checkpoints ``{"state_dict": sd}``. The AR files carry the tokenizer under
``first_stage_model.*``; the AR configuration loads the tokenizer file's EMA copies
(``use_ema: True``: ``model_ema.<key without dots>``), so that is what a tokenizer file gives.
"""

from __future__ import annotations

from typing import Any

from ..seedvoken_common import SeedVokenFamily
from .tokenizer import IBQTokenizer, TokenizerConfig
from .transformer import AdaLNGPT, GPTConfig

NAME = "ibq"
LABEL = "IBQ"

SIZE_FIELDS = ("n_embd", "n_head", "n_layer", "alng")  # transformer arguments per size
CODEBOOK_SIZE = 16384
# card id -> values of SIZE_FIELDS
SIZES: dict[str, tuple[int, int, int, float]] = {
    "ibq-b-256": (1024, 16, 16, 1e-3),
    "ibq-l-256": (1280, 20, 20, 1e-3),
    "ibq-xl-256": (1536, 24, 24, 1e-4),
    "ibq-xxl-256": (1920, 30, 30, 1e-5),
}
TOKENIZER_ID = "ibq-16384"

_BASE: dict[str, Any] = {
    "family": NAME,
    "tokenizer": {
        "ckpt_path": None,
        "n_embed": 16384,
        "embed_dim": 256,
        "l2_normalize": False,
        "use_entropy_loss": True,
        "entropy_temperature": 0.01,
        "beta": 0.25,
        "use_ema": True,
        "stage": "transformer",
        "ddconfig": {"double_z": False, "resolution": 256, "in_channels": 3, "out_ch": 3, "dropout": 0.0,
                     "ch": 128, "ch_mult": [1, 1, 2, 2, 4], "num_res_blocks": 4, "attn_resolutions": [16],
                     "z_channels": 256},
        "lossconfig": "src.IBQ.modules.losses.DummyLoss",
    },
    "transformer": {
        "vocab_size": 16384,
        "block_size": 256,
        "resid_dropout_p": 0.1,
        "ffn_dropout_p": 0.1,
        "token_drop": 0.1,
        "drop_path_rate": 0.0,
        "class_num": 1000,
        "multiple_of": 256,
    },
    "transformer_defaults": {
        "cls_token_num": 1, "rope_base": 10000, "norm_eps": 1e-05, "n_kv_head": None, "shared_aln": False,
        "use_pretrained_codebook": False, "ffn_dim_multiplier": None, "attn_dropout_p": 0.0, "embd_pdrop": 0.0,
        "head_nm_rmsnorm_eps": 1e-05, "multiple_of": 256,
    },
    "image_size": 256,
    "num_classes": 1000,
    "token_grid": [16, 16],
    "tokens_per_image": 256,
    "tokenizer_container": "state_dict",
    "transformer_container": "state_dict",
    "dtype": "float32",
    "input_normalisation": "x = uint8/127.5 - 1.0 (range [-1, 1]), NCHW, RGB",
}


class IBQFamily(SeedVokenFamily):
    name = NAME
    label = LABEL
    sizes = SIZES
    size_fields = SIZE_FIELDS
    base_config = _BASE
    codebook_size = CODEBOOK_SIZE
    tokenizer_id = TOKENIZER_ID
    default_use_ema = True
    tokenizer_cls, tokenizer_config_cls = IBQTokenizer, TokenizerConfig
    transformer_cls, transformer_config_cls = AdaLNGPT, GPTConfig


FAMILY = IBQFamily()
config_for = FAMILY.config_for
