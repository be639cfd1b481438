"""The official RandAR configuration of every registered model, as plain data (no torch).

``config(card, tokenizer)`` = the base of the card's tokenizer (``BASES``, keyed by tokenizer card id:
LlamaGen's VQ-16 section, the very dict LlamaGen's configs carry, so the LlamaGen-token rows share
LlamaGen-256's cached tokens; or RandAR's ``MaskGITTokenizer`` arguments), the generator's
constructor defaults (upstream names) and the card's ``arch``. ``DEFAULT_ORDER`` is the scoring
order unless ``--order`` (or the config's ``order``) says otherwise. ``visbpp.models.official_config(card,
tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard
from visbpp.models.llamagen.official import VQ16_TOKENIZER

DEFAULT_ORDER = "perm:4"
CONSTRUCTOR = {  # RandARTransformer defaults and the configs' ``ar_model.params`` (no effect on scoring but the sizes)
    "n_kv_head": None, "multiple_of": 256, "ffn_dim_multiplier": None, "rope_base": 10000, "norm_eps": 1e-05,
    "initializer_range": 0.02, "token_dropout_p": 0.1, "attn_dropout_p": 0.0, "resid_dropout_p": 0.1,
    "ffn_dropout_p": 0.1, "drop_path_rate": 0.0, "caption_dim": 2048, "class_dropout_prob": 0.1, "model_type": "c2i",
    "cls_token_num": 1, "max_batch_size": 32, "max_seq_len": 2048, "position_order": "random",
    "num_inference_steps": 88, "zero_class_qk": True, "grad_checkpointing": True, "num_classes": 1000,
    "block_size": 256,
}
MASKGIT_TOKENIZER = {  # configs/tokenization/maskgit.yaml + the constructor's num_res_blocks / resolution
    "channel_mult": [1, 1, 2, 2, 4], "num_resolutions": 5, "dropout": 0.0, "hidden_channels": 128, "num_channels": 3,
    "num_res_blocks": 2, "resolution": 256, "z_channels": 256, "num_embeddings": 1024, "embedding_dim": 256,
    "commitment_cost": 0.25,
}
# tokenizer card id -> (tokenizer_kind, tokenizer section, vocab_size, tokenizer file container)
BASES: dict[str, tuple[str, dict[str, Any], int, str | None]] = {
    "llamagen-vq16": ("llamagen", VQ16_TOKENIZER, 16384, "model"),
    "randar-maskgit-vqgan": ("maskgit", MASKGIT_TOKENIZER, 1024, None),
}


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The base of the tokenizer card + ``CONSTRUCTOR`` + the card's architecture (n_layer, n_head, dim)."""
    kind, section, vocab, container = BASES[tokenizer.id]
    return {
        "family": "randar",
        "model_id": card.id,
        "tokenizer_kind": kind,
        "tokenizer": copy.deepcopy(section),
        "transformer": {**dict(card.arch), **CONSTRUCTOR, "vocab_size": vocab},
        "image_size": card.resolution,
        "num_classes": 1000,
        "downsample": 16,
        "token_grid": [16, 16],
        "seq_len": 256,
        "tokenizer_container": container,
        "transformer_container": card.files[0].container,
        "dtype": "float32",
    }
