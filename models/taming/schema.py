"""The taming ``config.json`` schema (upstream argument names; see ``visbpp.core.config_schema``)."""

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "latent_hw": "ints>0", "tokens_per_image": "int>0",
    "tokenizer": {
        "target": "str", "quantizer": "str", "n_embed": "int>0", "embed_dim": "int>0", "lossconfig": "free",
        "ddconfig": {
            "double_z": "bool", "z_channels": "int>0", "resolution": "int>0", "in_channels": "int>0", "out_ch": "int>0",
            "ch": "int>0", "ch_mult": "ints>0", "num_res_blocks": "int>0", "attn_resolutions": "ints>0",
            "dropout": "float>=0",
        },
    },
    "transformer": {
        "target": "str", "vocab_size": "int>0", "block_size": "int>0", "n_layer": "int>0", "n_head": "int>0",
        "n_embd": "int>0", "embd_pdrop": "float>=0", "resid_pdrop": "float>=0", "attn_pdrop": "float>=0",
        "n_unmasked": "int>=0",
    },
    "net2net": "free",
}
