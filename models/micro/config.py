"""Configurations of the micro zoo: one tokenizer and four AR sizes built from LlamaGen's code.

The configs use the LlamaGen config schema (the conformance ``config.json`` format), so the
micro models load through exactly the same code as the real LlamaGen checkpoints.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from .data import IMAGE_SIZE, NUM_CLASSES

CODEBOOK_SIZE = 128   # codes of the micro VQ tokenizer
DOWNSAMPLE = 2        # 16x16 images -> 8x8 = 64 tokens
GRID = IMAGE_SIZE // DOWNSAMPLE
LABEL_DROPOUT = 0.1   # labels replaced by the null class in training, as the real families were trained

TOKENIZER = {
    "codebook_size": CODEBOOK_SIZE,
    "codebook_embed_dim": 8,
    "codebook_l2_norm": True,
    "codebook_show_usage": False,   # no 65536-float usage buffer in the shipped file
    "encoder_ch_mult": [1, 1],
    "decoder_ch_mult": [1, 1],
    "z_channels": 32,
    "dropout_p": 0.0,
}
ENCODER_DECODER = {"ch": 32, "num_res_blocks": 1, "norm_type": "group", "resamp_with_conv": True,
                   "in_channels": 3, "out_channels": 3}

def config(model_id: str, arch: Mapping[str, Any]) -> dict[str, Any]:
    """Full LlamaGen-schema config of a micro size: the zoo's base config with the size's ``arch``
    (``dim``, ``n_layer``, ``n_head``; the cards' ``arch``, from ``visbpp.core.registry.cards.micro.SIZES``)."""
    dim, n_layer, n_head = int(arch["dim"]), int(arch["n_layer"]), int(arch["n_head"])
    return {
        "family": "micro",
        "model_id": model_id,
        "tokenizer": copy.deepcopy(TOKENIZER),
        "tokenizer_encoder_decoder_args": dict(ENCODER_DECODER),
        "transformer": {
            "dim": dim, "n_layer": n_layer, "n_head": n_head, "n_kv_head": None, "multiple_of": 32,
            "ffn_dim_multiplier": None, "rope_base": 10000, "norm_eps": 1e-5, "num_classes": NUM_CLASSES,
            "class_dropout_prob": LABEL_DROPOUT, "model_type": "c2i", "vocab_size": CODEBOOK_SIZE, "cls_token_num": 1,
            "block_size": GRID * GRID,
        },
        "image_size": IMAGE_SIZE,
        "num_classes": NUM_CLASSES,
        "tokenizer_container": None,
        "transformer_container": None,
        "dtype": "float16 on disk, float32 in use",
    }
