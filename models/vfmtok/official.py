"""The official VFMTok configuration of every registered model, as plain data (no torch): the one
released tokenizer (``VQ_16(codebook_size=16384, codebook_slots_embed_dim=12, z_channels=512,
transformer_config=configs/vit_transformer.yaml)``) and the LlamaGen GPT arguments of
``test_net.py`` with the model card's size. ``visbpp.models.official_config(card, tokenizer)`` calls
:func:`config`."""

from __future__ import annotations

import copy
from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

# configs/vit_transformer.yaml (the decoder's params are references to the encoder's)
_ENC = {"layer_type": "normal", "image_size": 336, "patch_size": 16, "dim": 512, "depth": 6, "num_head": 8,
        "mlp_dim": 2048, "dim_head": 64, "dropout": 0.1, "n_carrier": 256}
BASE_TOKENIZER = {
    "codebook_size": 16384, "codebook_embed_dim": 8, "codebook_slots_embed_dim": 12, "codebook_l2_norm": True,
    "codebook_show_usage": True, "commit_loss_beta": 0.25, "entropy_loss_ratio": 0.0,
    "encoder_ch_mult": [1, 1, 2, 2, 4], "decoder_ch_mult": [1, 1, 2, 2, 4], "z_channels": 512, "dropout_p": 0.0,
    "transformer_config": {
        "encoder_config": {"params": {**_ENC, "in_channels": 1024, "enc_n_points": 4}},
        "decoder_config": {"params": dict(_ENC)},
    },
    # the pixel decoder VQModel builds: Decoder(ch_mult=decoder_ch_mult, z_channels=z_channels) with its defaults
    "cnn_decoder_args": {"ch": 128, "num_res_blocks": 1, "norm_type": "group", "resamp_with_conv": True,
                         "out_channels": 3},
    # dinov2_vitl14_reg(pretrained=False)
    "backbone": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "img_size": 518, "patch_size": 14, "mlp_ratio": 4,
                 "num_register_tokens": 4, "ffn_layer": "mlp", "interpolate_antialias": True,
                 "interpolate_offset": 0.0, "qkv_bias": True, "proj_bias": True, "ffn_bias": True, "in_chans": 3},
}
# GPT_models[name](vocab_size=16384, block_size=256, num_classes=1000, cls_token_num=1, model_type="c2i")
BASE_TRANSFORMER = {"n_kv_head": None, "multiple_of": 256, "ffn_dim_multiplier": None, "rope_base": 10000,
                    "norm_eps": 1e-05, "num_classes": 1000, "class_dropout_prob": 0.1, "model_type": "c2i",
                    "vocab_size": 16384, "cls_token_num": 1, "block_size": 256}
# values fixed in the upstream code (SelfSupervisedCondtionEmbedder): the DINOv2 input side and its taps
DINO_INPUT_SIDE = 336
DINO_LEVELS = [5, 11, 17, 23]


def config(card: ModelCard, tcard: TokenizerCard) -> dict[str, Any]:
    """The base config + the model card's GPT size (``card.arch``)."""
    return {"family": "vfmtok", "model_id": card.id, "tokenizer_id": tcard.id,
            "tokenizer": copy.deepcopy(BASE_TOKENIZER), "transformer": {**BASE_TRANSFORMER, **dict(card.arch)},
            "image_size": card.resolution, "dino_input_side": DINO_INPUT_SIDE, "dino_levels": list(DINO_LEVELS)}
