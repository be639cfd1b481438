"""The official AliTok configuration of every registered model, as plain data (no torch).

The layout of the conformance ``config.json`` (``schema.py``): the constants upstream hard-codes
(tokenizer constructors, the RoPE table and FFN rounding of ``ARModel``) as the base, the tokenizer
card's encoder/decoder ViT sizes and the model card's generator sizes (``arch``; ``type: ort`` for
the ORT releases) and the tokenizer card's codebook size and code dimension filled in.
``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

# modeling/alitok.py: 256 px, patch 16, 17 prefix + 256 grid tokens, no l2 norm (codes: the tokenizer card's)
TOKENIZER_BASE: dict[str, Any] = {
    "image_size": 256, "patch_size": 16, "grid_size": 16, "aux_tokens (prefix tokens)": 17, "num_latent_tokens": 273,
    "use_l2_norm": False, "commitment_cost": 0.25, "layernorm_eps": 1e-05,
}
# configs/alitok_{b,l,xl}.yaml, everything but the sizes
GENERATOR_BASE: dict[str, Any] = {
    "dropout": 0.1, "attn_drop": 0.1, "tok_dropout": 0.1, "class_label_dropout": 0.1, "image_seq_len": 273,
    "condition_num_classes": 1000, "use_checkpoint": False,
}
# modeling/ar.py constructor: RoPE over 17 prefix positions + a 16 x 16 grid from 17, base 10000; FFN multiple 256
HARDCODED: dict[str, Any] = {
    "rope_prefix_positions (1-D, = aux_tokens)": 17, "rope_2d_grid": 16, "rope_2d_start (= aux_tokens)": 17,
    "rope_base": 10000, "ffn_multiple_of": 256, "rmsnorm_eps": 1e-05,
}


def config(card: ModelCard, tcard: TokenizerCard) -> dict[str, Any]:
    """The base config + the tokenizer card's codes and ViT sizes + the model card's generator sizes."""
    codes = {"token_size (code dim)": tcard.code_dim, "codebook_size": tcard.codebook_size}
    return {
        "family": "alitok",
        "model_id": card.id,
        "tokenizer_id": tcard.id,
        "tokenizer": {**copy.deepcopy(TOKENIZER_BASE), **codes, **copy.deepcopy(dict(tcard.arch))},  # encoder, decoder
        "transformer": {
            "model.generator": {**GENERATOR_BASE, **dict(card.arch)},  # hidden_size, num_hidden_layers, ... (type)
            "model.vq_model.codebook_size": tcard.codebook_size,
            "hardcoded": dict(HARDCODED),
        },
        "image_size": card.resolution,
        "tokenizer_container": tcard.file.container,
        "transformer_container": card.files[0].container,
        "dtype": "float32",
    }
