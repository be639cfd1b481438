"""The official LlamaGen configuration of every registered size, as plain data (no torch).

The schema is the conformance fixtures' ``config.json`` (upstream argument names): the VQ-16
tokenizer, its encoder/decoder arguments and the GPT arguments, with the card's ``arch``
(``dim``, ``n_layer``, ``n_head``) filled in. ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

VQ16_TOKENIZER = {
    "codebook_size": 16384,
    "codebook_embed_dim": 8,
    "codebook_l2_norm": True,
    "codebook_show_usage": True,
    "commit_loss_beta": 0.25,
    "entropy_loss_ratio": 0.0,
    "encoder_ch_mult": [1, 1, 2, 2, 4],
    "decoder_ch_mult": [1, 1, 2, 2, 4],
    "z_channels": 256,
    "dropout_p": 0.0,
}
VQ16_ENCODER_DECODER = {
    "ch": 128,
    "num_res_blocks": 2,
    "norm_type": "group",
    "resamp_with_conv": True,
    "in_channels": 3,
    "out_channels": 3,
}
GPT_COMMON = {
    "n_kv_head": None,
    "multiple_of": 256,
    "ffn_dim_multiplier": None,
    "rope_base": 10000,
    "norm_eps": 1e-05,
    "initializer_range": 0.02,
    "token_dropout_p": 0.1,
    "attn_dropout_p": 0.0,
    "resid_dropout_p": 0.1,
    "ffn_dropout_p": 0.1,
    "drop_path_rate": 0.0,
    "num_classes": 1000,
    "class_dropout_prob": 0.1,
    "model_type": "c2i",
    "vocab_size": 16384,
    "cls_token_num": 1,
}


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The family's base config + the card's architecture (``card.arch``: n_layer, n_head, dim)."""
    grid = card.resolution // 16
    arch = dict(card.arch)
    transformer = {"dim": arch["dim"], "n_layer": arch["n_layer"], "n_head": arch["n_head"], **GPT_COMMON,
                   "block_size": grid * grid}
    return {
        "family": "llamagen",
        "model_id": card.id,
        "tokenizer": copy.deepcopy(VQ16_TOKENIZER),
        "tokenizer_encoder_decoder_args": dict(VQ16_ENCODER_DECODER),
        "transformer": transformer,
        "image_size": card.resolution,
        "num_classes": 1000,
        "downsample": 16,
        "token_grid": [grid, grid],
        "seq_len": grid * grid,
        "tokenizer_container": "model",
        "transformer_container": card.files[0].container,
        "dtype": "float32",
    }
