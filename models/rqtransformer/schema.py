"""The RQ-Transformer ``config.json`` schema (upstream argument names; see ``visbpp.core.registry.config_schema``)."""

from ..common import DDCONFIG_SCHEMA

_BLOCK = {"embed_dim": "int>0", "n_head": "int>0", "mlp_bias": "bool", "attn_bias": "bool", "attn_pdrop": "float>=0",
          "resid_pdrop": "float>=0", "gelu": "str"}
_STACK = {"n_layer": "int>0", "block": _BLOCK}

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "code_shape": "ints>0", "tokens_per_image": "int>0",
    "vocab_size": "int>0", "downsample_factor": "int>0", "checkpoint_container": "str?",
    "tokenizer": {
        "ema": "any", "checkpointing": "bool", "type": "str", "code_hier": "int>0",
        "hparams": {
            "loss_type": "str", "restart_unused_codes": "bool", "use_padding_idx": "bool", "masked_dropout": "float>=0",
            "bottleneck_type": "str", "embed_dim": "int>0", "n_embed": "int>0", "latent_shape": "ints>0",
            "code_shape": "ints>0", "shared_codebook": "bool", "decay": "float", "latent_loss_weight": "float",
        },
        "ddconfig": DDCONFIG_SCHEMA,
    },
    "transformer": {
        "type": "str", "ema": "any", "ar_hierarchy": "any", "vocab_size": "int>0", "block_size": "ints>0",
        "vocab_size_cond": "int>0", "block_size_cond": "int>0", "embed_dim": "int>0", "input_embed_dim": "int>0",
        "use_padding_emb": "bool", "input_emb_vqvae": "bool", "head_emb_vqvae": "bool",
        "scaled_head_emb_vqvae": "bool", "cumsum_depth_ctx": "bool", "shared_tok_emb": "bool",
        "embd_pdrop": "float>=0", "body": _STACK, "head": _STACK, "shared_cls_emb": "bool",
    },
}
