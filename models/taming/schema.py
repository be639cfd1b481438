"""The taming ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``)."""

from ..common import DDCONFIG_SCHEMA

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "latent_hw": "ints>0", "tokens_per_image": "int>0",
    "tokenizer": {
        "target": "str", "quantizer": "str", "n_embed": "int>0", "embed_dim": "int>0", "lossconfig": "free",
        "ddconfig": DDCONFIG_SCHEMA,
    },
    "transformer": {
        "target": "str", "vocab_size": "int>0", "block_size": "int>0", "n_layer": "int>0", "n_head": "int>0",
        "n_embd": "int>0", "embd_pdrop": "float>=0", "resid_pdrop": "float>=0", "attn_pdrop": "float>=0",
        "n_unmasked": "int>=0",
    },
    "net2net": "free",
}
