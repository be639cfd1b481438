"""The GigaTok ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``).

``tokenizer`` holds every ``VQVitModelPlusArgs`` field, ``transformer`` every ``ModelArgs`` field
of the 1-D GPT. Types only: which values the implementation supports (upstream switches that no
released model uses must keep their released value) is checked by ``config.py``.
"""

_VIT_OVERRIDE = {"width": "int>0", "num_layers": "int>0", "num_heads": "int>0"}

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "downsample": "int>0", "cnn_grid": "ints>0",
    "num_tokens": "int>0", "seq_len": "int>0", "labels": "ints", "tokenizer_id": "str",
    "tokenizer_container": "str?", "transformer_container": "str?",
    "tokenizer": {
        "codebook_size": "int>0", "codebook_embed_dim": "int>0", "codebook_l2_norm": "bool",
        "codebook_show_usage": "bool", "commit_loss_beta": "float", "entropy_loss_ratio": "float",
        "use_lfq": "bool", "bernoulli_sample": "bool", "eval_deterministic": "bool", "simvq": "bool",
        "codebook_transform": "any", "freeze_codebook": "bool", "encoder_ch_mult": "ints>0",
        "decoder_ch_mult": "ints>0", "model_size": "str?", "encoder_size": "str", "decoder_size": "str",
        "num_latent_tokens": "int>0", "z_channels": "int>0", "dropout_p": "float>=0", "use_rope": "bool",
        "use_qk_norm": "bool", "use_flash_attn": "bool", "multi_level_query_init": "bool",
        "learnable_1d_query_init": "bool", "rope_1d": "bool", "last_level_2d_query_init": "bool",
        "multi_level_2d_query_init": "bool", "learnable_2d_query_init": "bool", "adaptive_gn": "bool",
        "d2s_up": "bool", "res_up_down_sample": "bool", "downsample_match_channel": "bool",
        "upsample_match_channel": "bool", "res_codebook_updown_sample": "bool", "downsample_improve": "bool",
        "use_attn": "bool", "rope_2d": "bool", "rot": "bool", "stochastic": "bool",
        "stochastic_temperature": "float", "distill_depth": "int>0", "encoder_2d_distill": "bool",
        "out_inner_dim": "int>0", "fea_rec_loss_type": "str", "fea_rec_loss_weight": "float",
        "with_prior_model": "bool", "prior_model_config": "any",
    },
    # tiny fixtures rebuild the hard-wired sub-module sizes (the released files use the ViT size names)
    "tokenizer_size_overrides": {
        "cnn": {"ch": "int>0", "num_res_blocks": "int>0"},
        "s2to1encoder": _VIT_OVERRIDE,
        "s1to2decoder": _VIT_OVERRIDE,
    },
    "transformer": {
        "dim": "int>0", "n_layer": "int>0", "n_head": "int>0", "n_kv_head": "int>0?", "multiple_of": "int>0",
        "ffn_dim_multiplier": "float>0?", "norm_eps": "float>0", "initializer_range": "float>=0",
        "token_dropout_p": "float>=0", "attn_dropout_p": "float>=0", "resid_dropout_p": "float>=0",
        "ffn_dropout_p": "float>=0", "drop_path_rate": "float>=0", "rope": "bool", "use_qk_norm": "bool",
        "use_flash_attn": "bool", "use_adaLN": "bool", "use_simple_adaLN": "bool", "no_adaLN_before": "any",
        "num_classes": "int>0", "caption_dim": "int>0", "class_dropout_prob": "float>=0", "model_type": "str",
        "vocab_size": "int>0", "cls_token_num": "int>0", "block_size": "int>0", "max_batch_size": "int>0",
        "max_seq_len": "int>0",
    },
}
