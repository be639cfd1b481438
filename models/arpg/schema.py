"""The ARPG ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``)."""

from ..vq16 import SECTION

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "downsample": "int>0", "token_grid": "ints>0", "seq_len": "int>0",
    "labels": "any", "file_format": "any", "tokenizer_container": "str?", "transformer_container": "str?",
    "order": "any",   # "raster" | "perm:K" (models/orders.config_order)
    "tokenizer": SECTION,
    "transformer": {
        "dim": "int>0", "n_layer": "int>0", "n_head": "int>0", "multiple_of": "int>0", "ffn_dim_multiplier": "float>0?",
        "rope_base": "float>0", "norm_eps": "float>0", "initializer_range": "float>=0", "token_dropout_p": "float>=0",
        "attn_dropout_p": "float>=0", "resid_dropout_p": "float>=0", "ffn_dropout_p": "float>=0",
        "drop_path_rate": "float>=0", "num_classes": "int>0", "class_dropout_prob": "float>=0", "model_type": "str",
        "vocab_size": "int>0", "cls_token_num": "int>0", "block_size": "int>0",
    },
}
