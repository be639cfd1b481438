"""The FlexVAR ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``).

Read to build: ``tokenizer`` (with ``cnn``), ``transformer``, ``image_size``, ``scale_schedule``.
The other keys describe a fixture set (bounds, lengths, containers in words, statistics).
"""

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "downsample": "int>0", "latent_grid": "ints>0",
    "null_class_index": "int>=0", "labels": "any", "scale_schedule": "ints>0", "scale_schedule_alt": "ints>0",
    "scale_bounds": "any", "scale_bounds_alt": "any", "seq_len": "int>0", "seq_len_alt": "int>0",
    "image_size_2x": "int>0", "token_order": "any", "tokenizer_container": "any", "transformer_container": "any",
    "stored_attn_bias_for_masking_shape": "any", "stored_attn_bias_note": "any", "pos_grid": "int>0",
    "pos_grid_note": "any", "preprocess": "any", "scoring": "any", "generation_stats": "free",
    "tokenizer": {
        "codebook_size": "int>0", "codebook_embed_dim": "int>0", "codebook_l2_norm": "bool",
        "codebook_show_usage": "bool", "commit_loss_beta": "float", "entropy_loss_ratio": "float",
        "encoder_ch_mult": "ints>0", "decoder_ch_mult": "ints>0", "z_channels": "int>0", "dropout_p": "float>=0",
        "cnn": {"ch": "int>0", "num_res_blocks": "int>0", "norm_type": "str", "resamp_with_conv": "bool",
                "in_channels": "int>0", "out_channels": "int>0"},
    },
    "transformer": {
        "num_classes": "int>0", "depth": "int>0", "embed_dim": "int>0", "num_heads": "int>0", "mlp_ratio": "float>0",
        "drop_rate": "float>=0", "attn_drop_rate": "float>=0", "drop_path_rate": "float>=0", "norm_eps": "float>0",
        "shared_aln": "bool", "cond_drop_rate": "float>=0", "token_dropout_p": "float>=0", "attn_l2_norm": "bool",
        "patch_nums": "ints>0", "flash_if_available": "bool", "fused_if_available": "bool", "pos_grid": "int>0",
    },
}
