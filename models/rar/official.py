"""The official RAR configuration of every registered model, as plain data (no torch).

``config(card, tokenizer)`` = the base config of the card's tokenizer variant (``BASES``, the schema of the
conformance ``config.json``; the tokenizer card's ``arch["variant"]``) with the card's generator
sizes (``card.arch``) filled in. ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

_GENERATOR_COMMON = {"dropout": 0.1, "attn_drop": 0.1, "class_label_dropout": 0.1, "image_seq_len": 256,
                     "condition_num_classes": 1000, "use_checkpoint": False}
# base config per tokenizer variant (a tokenizer card's ``arch["variant"]``): everything but the generator sizes
BASES: dict[str, dict[str, Any]] = {
    "rar": {
        "family": "rar",
        "tokenizer": {"channel_mult": [1, 1, 2, 2, 4], "num_resolutions": 5, "dropout": 0.0, "hidden_channels": 128,
                      "num_channels": 3, "num_res_blocks": 2, "resolution": 256, "z_channels": 256},
        "tokenizer_quantizer": {"num_embeddings": 1024, "embedding_dim": 256, "commitment_cost": 0.25},
        "transformer": {"model.generator": dict(_GENERATOR_COMMON), "model.vq_model.codebook_size": 1024},
        "image_size": 256, "num_classes": 1000, "downsample": 16, "token_grid": [16, 16], "seq_len": 256,
        "tokenizer_container": None, "transformer_container": None,
    },
    "rar-robusttok": {
        "family": "rar-robusttok",
        "tokenizer": {
            "ModelArgs": {"codebook_size": 4096, "codebook_embed_dim": 64, "codebook_l2_norm": True, "dropout_p": 0.0,
                          "v_patch_nums": [16], "enc_type": "dinov2", "dec_type": "dinov2", "semantic_guide": "dinov2",
                          "detail_guide": "none", "num_latent_tokens": 256,
                          "encoder_model": "vit_base_patch14_dinov2.lvd142m",
                          "decoder_model": "vit_base_patch14_dinov2.lvd142m", "abs_pos_embed": True, "product_quant": 1,
                          "codebook_drop": 0.1, "half_sem": False, "guide_type_1": "class", "guide_type_2": "class",
                          "lfq": False},
            "hard_coded_in_VQModel_real": {"img_size": 256, "patch_size": 16, "drop_path_rate": 0.1, "pretrained": True},
        },
        "transformer": {"model.generator": dict(_GENERATOR_COMMON), "model.vq_model.codebook_size": 4096},
        "image_size": 256, "patch_size": 16, "num_classes": 1000, "downsample": 16, "token_grid": [16, 16],
        "seq_len": 256, "tokenizer_container": "model+ema", "transformer_container": None,
    },
}


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The base config of the card's tokenizer variant + the card's generator sizes (``card.arch``)."""
    variant = dict(tokenizer.arch)["variant"]
    cfg = copy.deepcopy(BASES[variant])
    cfg["model_id"] = card.id
    cfg["transformer"]["model.generator"].update(copy.deepcopy(dict(card.arch)))
    return cfg
