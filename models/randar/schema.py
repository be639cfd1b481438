"""The RandAR ``config.json`` schemas, one per ``tokenizer_kind`` (upstream names; see
``visbpp.core.registry.config_schema``): ``llamagen`` (LlamaGen's VQ arguments, ``models/vq16.py``)
or ``maskgit`` (the arguments of RandAR's ``MaskGITTokenizer``)."""

from __future__ import annotations

from typing import Any

from ..vq16 import SECTION as VQ16_SECTION

MASKGIT_SECTION = {
    "channel_mult": "ints>0", "num_resolutions": "int>0", "dropout": "float>=0", "hidden_channels": "int>0",
    "num_channels": "int>0", "num_res_blocks": "int>0", "resolution": "int>0", "z_channels": "int>0",
    "num_embeddings": "int>0", "embedding_dim": "int>0", "commitment_cost": "float>=0", "class": "str", "note": "any",
}
TRANSFORMER = {
    "dim": "int>0", "n_layer": "int>0", "n_head": "int>0", "n_kv_head": "int>0?", "multiple_of": "int>0",
    "ffn_dim_multiplier": "float>0?", "rope_base": "float>0", "norm_eps": "float>0", "initializer_range": "float>=0",
    "token_dropout_p": "float>=0", "attn_dropout_p": "float>=0", "resid_dropout_p": "float>=0",
    "ffn_dropout_p": "float>=0", "drop_path_rate": "float>=0", "caption_dim": "int>0", "class_dropout_prob": "float>=0",
    "model_type": "str", "cls_token_num": "int>0", "max_batch_size": "int>0", "max_seq_len": "int>0",
    "position_order": "str", "num_inference_steps": "int", "zero_class_qk": "bool", "grad_checkpointing": "bool",
    "num_classes": "int>0", "vocab_size": "int>0", "block_size": "int>0",
}
_COMMON: dict[str, Any] = {
    "image_size": "int>0", "num_classes": "int>0", "downsample": "int>0", "token_grid": "ints>0", "seq_len": "int>0",
    "labels": "any", "file_format": "any", "tokenizer_container": "str?", "transformer_container": "str?",
    "tokenizer_kind": "str", "order": "any",   # "raster" | "perm:K" (models/orders.config_order)
    "transformer": TRANSFORMER,
}
# tokenizer_kind -> schema
SCHEMAS: dict[str, dict[str, Any]] = {
    "llamagen": {**_COMMON, "tokenizer": VQ16_SECTION},
    "maskgit": {**_COMMON, "tokenizer": MASKGIT_SECTION},
}
