"""The VFMTok ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``).

``tokenizer`` = VQModel ModelArgs + ``transformer_config`` (the structure of
configs/vit_transformer.yaml) + ``cnn_decoder_args`` (the pixel decoder) + ``backbone`` (DINOv2 ViT
args); ``transformer`` = LlamaGen GPT ModelArgs; ``dino_input_side`` and ``dino_levels`` are the
values fixed in the upstream code. Training-only arguments are accepted (and not read); the keys
whose only supported value is the released one are Hita's :data:`~visbpp.models.hita.schema.FIXED`
(the same upstream lineage).
"""

_PARAMS = {
    "target": "str", "layer_type": "str", "image_size": "int>0", "patch_size": "int>0", "dim": "int>0",
    "depth": "int>0", "num_head": "int>0", "mlp_dim": "int>0", "dim_head": "int>0", "dropout": "float>=0",
    "n_carrier": "int>0",
}
_VISUAL_ENCODER = {
    "target": "str", "is_trainable": "bool",
    "params": {"pretrained_enc_arch": "str", "pretrained_enc_path": "str", "pretrained_enc_withproj": "bool",
               "proj_dim": "int>0"},
}

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "num_tokens": "int>0", "carrier_grid": "ints>0",
    "dino_input_side": "int>0", "dino_levels": "ints", "labels": "any", "order": "any", "tokenizer_id": "str",
    "extra_files": "free",  # name -> path, filled in by the job (``--extra`` or the tokenizer card)
    "containers": "free", "hard_coded_upstream": "free", "generation_stats": "free", "torch_version": "any",
    "tokenizer": {
        "codebook_size": "int>0", "codebook_embed_dim": "int>0", "codebook_slots_embed_dim": "int>0",
        "codebook_l2_norm": "bool", "codebook_show_usage": "bool", "commit_loss_beta": "float",
        "entropy_loss_ratio": "float", "encoder_ch_mult": "ints>0", "decoder_ch_mult": "ints>0",
        "z_channels": "int>0", "dropout_p": "float>=0",
        "transformer_config": {
            "encoder_config": {"target": "str", "params": {
                **_PARAMS, "in_channels": "int>0", "enc_n_points": "int>0", "visual_encoder_config": _VISUAL_ENCODER}},
            "decoder_config": {"target": "str", "params": _PARAMS},
        },
        "cnn_decoder_args": {
            "ch": "int>0", "num_res_blocks": "int>0", "norm_type": "str", "resamp_with_conv": "bool",
            "out_channels": "int>0",
        },
        "backbone": {
            "embed_dim": "int>0", "depth": "int>0", "num_heads": "int>0", "img_size": "int>0", "patch_size": "int>0",
            "mlp_ratio": "float>0", "num_register_tokens": "int>=0", "in_chans": "int>0", "ffn_layer": "str",
            "interpolate_antialias": "bool", "interpolate_offset": "float", "qkv_bias": "bool", "proj_bias": "bool",
            "ffn_bias": "bool", "init_values": "float?", "block_chunks": "int>=0", "class": "str", "block_fn": "str",
            "real_counterpart": "str",
        },
    },
    "transformer": {
        "dim": "int>0", "n_layer": "int>0", "n_head": "int>0", "n_kv_head": "int>0?", "multiple_of": "int>0",
        "ffn_dim_multiplier": "float>0?", "rope_base": "float>0", "norm_eps": "float>0",
        "initializer_range": "float>=0", "token_dropout_p": "float>=0", "attn_dropout_p": "float>=0",
        "resid_dropout_p": "float>=0", "ffn_dropout_p": "float>=0", "drop_path_rate": "float>=0",
        "num_classes": "int>0", "caption_dim": "int>0", "class_dropout_prob": "float>=0", "model_type": "str",
        "vocab_size": "int>0", "cls_token_num": "int>0", "block_size": "int>0", "max_batch_size": "int>0",
        "max_seq_len": "int>0",
    },
}
