"""The official GigaTok configuration of every registered model, as plain data (no torch): the
shared tokenizer and GPT arguments with the sizes of the model card (GPT) and its tokenizer card
(encoder/decoder ViTs). ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`."""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

# Shared init_args of the five released tokenizer yamls (sizes come from each tokenizer card).
TOKENIZER_BASE = {
    "codebook_size": 16384, "codebook_embed_dim": 8, "codebook_l2_norm": True, "codebook_show_usage": True,
    "commit_loss_beta": 0.25, "encoder_ch_mult": [1, 1, 2, 2, 4], "decoder_ch_mult": [1, 1, 2, 2, 4],
    "model_size": None, "num_latent_tokens": 256, "z_channels": 256, "dropout_p": 0.0,
    "multi_level_query_init": True, "last_level_2d_query_init": False, "multi_level_2d_query_init": False,
    "adaptive_gn": True, "d2s_up": True, "rot": True, "use_attn": False, "fea_rec_loss_type": "mse",
    "fea_rec_loss_weight": 1.0, "distill_depth": 3, "out_inner_dim": 768,
}
# The GPT constructor call of the official scoring/sampling scripts (n_layer, n_head, dim from the card).
TRANSFORMER_BASE = {
    "n_kv_head": None, "multiple_of": 256, "ffn_dim_multiplier": None, "norm_eps": 1e-05, "rope": False,
    "use_qk_norm": False, "use_adaLN": False, "use_simple_adaLN": False, "num_classes": 1000,
    "class_dropout_prob": 0.1, "model_type": "c2i", "vocab_size": 16384, "cls_token_num": 1, "block_size": 256,
}


def config(card: ModelCard, tcard: TokenizerCard) -> dict[str, Any]:
    """The base config + the model card's GPT sizes and its tokenizer card's encoder/decoder sizes."""
    ta = dict(tcard.arch)
    return {
        "family": "gigatok",
        "model_id": card.id,
        "tokenizer_id": tcard.id,
        "tokenizer": {**copy.deepcopy(TOKENIZER_BASE), "encoder_size": ta["encoder_size"],
                      "decoder_size": ta["decoder_size"], "entropy_loss_ratio": ta["entropy_loss_ratio"]},
        "tokenizer_size_overrides": {
            "s2to1encoder": {"width": ta["encoder_width"], "num_layers": ta["encoder_layers"],
                             "num_heads": ta["encoder_heads"]},
            "s1to2decoder": {"width": ta["decoder_width"], "num_layers": ta["decoder_layers"],
                             "num_heads": ta["decoder_heads"]},
        },
        "transformer": {**TRANSFORMER_BASE, **dict(card.arch)},  # n_layer, n_head, dim
        "image_size": card.resolution,
        "tokenizer_container": tcard.file.container,
        "transformer_container": card.files[0].container,
        "dtype": "float32",
    }
