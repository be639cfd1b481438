"""The AliTok ``config.json`` schema (see ``visbpp.core.registry.config_schema``).

The layout of the conformance fixtures' ``config.json``: ``tokenizer`` holds the constants that
upstream hard-codes in the tokenizer's constructors (named as in the fixtures, descriptive
suffixes included), ``transformer`` the upstream YAML keys (``model.generator`` and
``model.vq_model.codebook_size``) plus ``hardcoded``, the RoPE / FFN / norm constants that upstream
writes into ``ARModel``'s constructor. ``model.generator.type`` = ``"ort"`` selects the ORT variant
of the AR model (two learned position tables). Types only: consistency is checked by ``config.py``.
"""

_VIT = {"width": "int>0", "num_layers": "int>0", "num_heads": "int>0", "mlp_ratio": "float>0", "mlp_width": "int>0"}

SCHEMA = {
    "image_size": "int>0", "num_classes": "int>0", "labels": "ints", "seq_len": "int>0", "prefix_tokens": "int>=0",
    "token_grid": "ints>0", "order": "any", "tokenizer_id": "str", "file_format": "any",
    "tokenizer_container": "str?", "transformer_container": "str?",
    # "center" (default): ADM centre crop at S; "tencrop-center": the centre view of the ten-crop pretokenisation
    "preprocess": "str",
    "ort": "free",  # the fixtures' description of their ORT-layout model
    "tokenizer": {
        "image_size": "int>0", "patch_size": "int>0", "grid_size": "int>0", "aux_tokens (prefix tokens)": "int>=0",
        "num_latent_tokens": "int>0", "token_size (code dim)": "int>0", "codebook_size": "int>0",
        "use_l2_norm": "bool", "commitment_cost": "float>=0", "layernorm_eps": "float>0",
        "encoder": _VIT,
        "decoder": {**_VIT, "class_embedding_tokens": "int>0", "kept_tokens": "any"},
    },
    "transformer": {
        "model.generator": {
            "type": "str",  # "ort": the ORT variant (HF donglixu/ORT); absent: AliTok's ARModel
            "hidden_size": "int>0", "num_hidden_layers": "int>0", "num_attention_heads": "int>0",
            "dropout": "float>=0", "attn_drop": "float>=0", "tok_dropout": "float>=0",
            "class_label_dropout": "float>=0", "image_seq_len": "int>0", "condition_num_classes": "int>0",
            "use_checkpoint": "bool",
        },
        "model.vq_model.codebook_size": "int>0",
        "hardcoded": {
            "rope_prefix_positions (1-D, = aux_tokens)": "int>=0", "rope_2d_grid": "int>0",
            "rope_2d_start (= aux_tokens)": "int>=0", "rope_base": "float>0", "ffn_multiple_of": "int>0",
            "rmsnorm_eps": "float>0",
        },
    },
}
