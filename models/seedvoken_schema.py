"""The ``config.json`` schemas of the SEED-Voken families (upstream argument names; see
``visbpp.core.registry.config_schema``)."""

from .common import DDCONFIG_SCHEMA as _DD

_TOKENIZER = {"ckpt_path": "any", "n_embed": "int>0", "embed_dim": "int>0", "use_ema": "bool", "stage": "str",
              "lossconfig": "any", "ddconfig": _DD, "learning_rate": "float", "batch_maximization_weight": "float",
              "sample_minimization_weight": "float", "scheduler_type": "any"}
_DEFAULTS = {"cls_token_num": "int>0", "rope_base": "float>0", "norm_eps": "float>0", "n_kv_head": "int>0?",
             "ffn_dim_multiplier": "float>0?", "attn_dropout_p": "float>=0", "embd_pdrop": "float>=0",
             "multiple_of": "int>0", "note": "any", "drop_path_rate": "float>=0", "ffn_dropout_p": "float>=0"}
_COMMON = {"image_size": "int>0", "num_classes": "int>0", "token_grid": "ints>0", "tokens_per_image": "int>0",
           "tokenizer_container": "str?", "transformer_container": "str?", "net2net": "free"}
_TRANSFORMER = {"vocab_size": "int>0", "block_size": "int>0", "resid_dropout_p": "float>=0",
                "ffn_dropout_p": "float>=0", "token_drop": "float>=0", "drop_path_rate": "float>=0",
                "class_num": "int>0", "multiple_of": "int>0", "n_head": "int>0", "cond_dim": "int>0",
                "rope_base": "float>0", "norm_eps": "float>0", "cls_token_num": "int>0", "n_kv_head": "int>0?",
                "ffn_dim_multiplier": "float>0?", "attn_dropout_p": "float>=0", "embd_pdrop": "float>=0"}

IBQ_SCHEMA = {
    **_COMMON,
    "tokenizer": {**_TOKENIZER, "l2_normalize": "bool", "use_entropy_loss": "bool", "entropy_temperature": "float",
                  "beta": "float"},
    "transformer": {**_TRANSFORMER, "n_embd": "int>0", "n_layer": "int>0", "alng": "float",
                    "head_nm_rmsnorm_eps": "float>0", "shared_aln": "bool", "use_pretrained_codebook": "bool"},
    "transformer_defaults": {**_DEFAULTS, "shared_aln": "bool", "use_pretrained_codebook": "bool",
                             "head_nm_rmsnorm_eps": "float>0"},
}

OPENMAGVIT2_SCHEMA = {
    **_COMMON,
    "factorized_bits": "ints>0", "subtoken_vocab": "ints>0",
    "tokenizer": {**_TOKENIZER, "token_factorization": "bool", "factorized_bits": "ints>0"},
    "transformer": {**_TRANSFORMER, "dim": "int>0", "spatial_n_layer": "int>0", "factorized_n_layer": "int>0",
                    "factorized_bits": "ints>0", "token_factorization": "bool", "factorized_k": "int>0"},
    "transformer_defaults": {**_DEFAULTS, "factorized_k": "int>0"},
}
