"""The VAR ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``)."""

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "patch_nums": "ints>0", "tokens_per_image": "int>0",
    "vocab_size": "int>0", "phi_index_per_scale": "ints", "scale_boundaries": "any",
    "tokenizer_file_container": "str?", "transformer_file_container": "str?",
    "tokenizer": {
        "vocab_size": "int>0", "z_channels": "int>0", "ch": "int>0", "dropout": "float>=0", "beta": "float",
        "using_znorm": "bool", "quant_conv_ks": "int>0", "quant_resi": "float", "share_quant_resi": "int>=0",
        "default_qresi_counts": "int>=0", "v_patch_nums": "ints>0", "test_mode": "bool",
    },
    "transformer": {
        "num_classes": "int>0", "depth": "int>0", "embed_dim": "int>0", "num_heads": "int>0", "mlp_ratio": "float>0",
        "drop_rate": "float>=0", "attn_drop_rate": "float>=0", "drop_path_rate": "float>=0", "norm_eps": "float>0",
        "shared_aln": "bool", "cond_drop_rate": "float>=0", "attn_l2_norm": "bool", "patch_nums": "ints>0",
        "flash_if_available": "bool", "fused_if_available": "bool",
    },
}
