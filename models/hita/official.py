"""The official Hita configuration of every registered model, as plain data (no torch): the
released tokenizer and GPT arguments with the model card's GPT sizes and the tokenizer card's
decoder settings. ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`."""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

# The released tokenizer (configs/hita_vqgan*.yaml + VQ_16(z_channels=512, slots dim 12)); the
# decoder's enable_vfm_recon comes from the tokenizer card.
_HOLO = {"layer_type": "normal", "image_size": 336, "patch_size": 16, "dim": 512, "depth": 3, "num_head": 8,
         "mlp_dim": 2048, "dim_head": 64, "dropout": 0.1, "n_carrier": 128}
BASE_TOKENIZER = {
    "codebook_size": 16384, "codebook_embed_dim": 8, "codebook_slots_embed_dim": 12, "codebook_l2_norm": True,
    "codebook_show_usage": True, "commit_loss_beta": 0.25, "entropy_loss_ratio": 0.0,
    "encoder_ch_mult": [1, 1, 2, 2, 4], "decoder_ch_mult": [1, 1, 2, 2, 4], "z_channels": 512, "dropout_p": 0.0,
    "transformer_config": {
        "encoder_config": {"params": {**_HOLO, "in_channels": 1024}},
        "decoder_config": {"params": {**_HOLO, "shift_k": 4, "enable_vfm_recon": False}},
    },
    "cnn_encoder_decoder_args": {"ch": 128, "num_res_blocks": 2, "norm_type": "group", "resamp_with_conv": True,
                                 "in_channels": 3, "out_channels": 3},
    "backbone": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "img_size": 518, "patch_size": 14, "mlp_ratio": 4,
                 "num_register_tokens": 4, "ffn_layer": "mlp", "interpolate_antialias": True,
                 "interpolate_offset": 0.0, "qkv_bias": True, "proj_bias": True, "ffn_bias": True, "in_chans": 3},
}
BASE_TRANSFORMER = {"n_kv_head": None, "multiple_of": 256, "ffn_dim_multiplier": None, "rope_base": 10000,
                    "norm_eps": 1e-05, "num_classes": 1000, "class_dropout_prob": 0.1, "model_type": "c2i",
                    "vocab_size": 16384, "cls_token_num": 1, "block_size": 441, "num_slots": 128}


def config(card: ModelCard, tcard: TokenizerCard) -> dict[str, Any]:
    """The base config + the cards' architecture (GPT: ``card.arch``; tokenizer decoder: ``tcard.arch``)."""
    tok = copy.deepcopy(BASE_TOKENIZER)
    tok["transformer_config"]["decoder_config"]["params"].update(dict(tcard.arch))
    return {"family": "hita", "model_id": card.id, "tokenizer_id": tcard.id, "tokenizer": tok,
            "transformer": {**BASE_TRANSFORMER, **dict(card.arch)}, "image_size": card.resolution,
            "tokenizer_container": tcard.file.container, "transformer_container": card.files[0].container}
