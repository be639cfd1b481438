"""The official IBQ configuration of every registered size, as plain data (no torch).

``BASE`` is the family's config in the fixture schema, sizes aside; :func:`config` adds the
cards' codebook size and transformer sizes (``seedvoken_official.size_config``).
"""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

from ..seedvoken_official import size_config

NAME = "ibq"

BASE: dict[str, Any] = {
    "family": NAME,
    "tokenizer": {
        "ckpt_path": None,
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


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict:
    """Official configuration of a size (``seedvoken_official.size_config``)."""
    return size_config(card, tokenizer, BASE)
