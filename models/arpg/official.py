"""The official ARPG configuration of every registered size, as plain data (no torch).

``config(card, tokenizer)`` = LlamaGen's VQ-16 tokenizer section (the very dict LlamaGen's configs carry, so
ARPG shares LlamaGen-256's cached tokens), the generator's ``ModelArgs`` defaults (upstream names)
and the card's ``arch`` (``n_layer``, ``n_head``, ``dim``). ``DEFAULT_ORDER`` is the scoring order
unless ``--order`` (or the config's ``order``) says otherwise. ``visbpp.models.official_config(card,
tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard
from visbpp.models.llamagen.official import VQ16_TOKENIZER

DEFAULT_ORDER = "perm:4"
MODEL_ARGS = {  # ``models/arpg.py:ModelArgs`` defaults; the sampler passes only vocab_size and num_classes
    "multiple_of": 256, "ffn_dim_multiplier": None, "rope_base": 10000, "norm_eps": 1e-05, "initializer_range": 0.02,
    "token_dropout_p": 0.1, "attn_dropout_p": 0.0, "resid_dropout_p": 0.1, "ffn_dropout_p": 0.1, "drop_path_rate": 0.0,
    "num_classes": 1000, "class_dropout_prob": 0.1, "model_type": "c2i", "vocab_size": 16384, "cls_token_num": 1,
}


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """LlamaGen's tokenizer section + ``MODEL_ARGS`` + the card's architecture (n_layer, n_head, dim)."""
    grid = card.resolution // 16
    return {
        "family": "arpg",
        "model_id": card.id,
        "tokenizer": copy.deepcopy(VQ16_TOKENIZER),
        "transformer": {**dict(card.arch), **MODEL_ARGS, "block_size": grid * grid},
        "image_size": card.resolution,
        "num_classes": 1000,
        "downsample": 16,
        "token_grid": [grid, grid],
        "seq_len": grid * grid,
        "tokenizer_container": "model",
        "transformer_container": card.files[0].container,
        "dtype": "float32",
    }
