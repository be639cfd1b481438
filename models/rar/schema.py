"""The RAR ``config.json`` schemas, one per variant (upstream argument names; see
``visbpp.core.registry.config_schema``).

A config's ``family`` names the variant: ``"rar"`` (MaskGIT-VQGAN tokenizer: Encoder/Decoder
arguments in ``tokenizer``, VectorQuantizer arguments in ``tokenizer_quantizer``) or
``"rar-robusttok"`` (RobusTok ViT tokenizer: ``tokenizer.ModelArgs`` plus the ViT arguments).
Both share the generator section ``transformer`` (the upstream YAML keys ``model.generator`` and
``model.vq_model.codebook_size``).
"""

from __future__ import annotations

from typing import Any

GENERATOR = {
    "hidden_size": "int>0", "num_hidden_layers": "int>0", "num_attention_heads": "int>0", "intermediate_size": "int>0",
    "dropout": "float>=0", "attn_drop": "float>=0", "class_label_dropout": "float>=0", "image_seq_len": "int>0",
    "condition_num_classes": "int>0", "use_checkpoint": "bool",
}
_COMMON: dict[str, Any] = {
    "image_size": "int>0", "num_classes": "int>0", "downsample": "int>0", "token_grid": "ints>0", "seq_len": "int>0",
    "patch_size": "int>0", "labels": "any", "file_format": "any",
    "tokenizer_container": "str?", "transformer_container": "str?",
    "transformer": {"model.generator": GENERATOR, "model.vq_model.codebook_size": "int>0"},
}
MASKGIT_SCHEMA: dict[str, Any] = {
    **_COMMON,
    "tokenizer": {
        "channel_mult": "ints>0", "num_resolutions": "int>0", "dropout": "float>=0", "hidden_channels": "int>0",
        "num_channels": "int>0", "num_res_blocks": "int>0", "resolution": "int>0", "z_channels": "int>0",
    },
    "tokenizer_quantizer": {"num_embeddings": "int>0", "embedding_dim": "int>0", "commitment_cost": "float>=0"},
}
_VIT = {"img_size": "int>0", "patch_size": "int>0", "drop_path_rate": "float>=0", "pretrained": "bool",
        "embed_dim": "int>0", "depth": "int>0", "num_heads": "int>0"}
ROBUSTTOK_SCHEMA: dict[str, Any] = {
    **_COMMON,
    "tokenizer": {
        "ModelArgs": {
            "codebook_size": "int>0", "codebook_embed_dim": "int>0", "codebook_l2_norm": "bool", "dropout_p": "float>=0",
            "v_patch_nums": "ints>0", "enc_type": "str", "dec_type": "str", "semantic_guide": "str",
            "detail_guide": "str", "num_latent_tokens": "int>0", "encoder_model": "str", "decoder_model": "str",
            "abs_pos_embed": "bool", "product_quant": "int>0", "codebook_drop": "float>=0", "half_sem": "bool",
            "guide_type_1": "str", "guide_type_2": "str", "lfq": "bool",
        },
        "hard_coded_in_VQModel_real": _VIT,   # what the official VQModel passes to the ViT
        "fixture_vit_override": _VIT,         # a smaller ViT (the conformance fixture); wins over the above
        "vit_registry_name": "str",
    },
}
# variant name (a config's ``family``) -> schema
SCHEMAS: dict[str, dict[str, Any]] = {"rar": MASKGIT_SCHEMA, "rar-robusttok": ROBUSTTOK_SCHEMA}
SCHEMA = MASKGIT_SCHEMA  # the base variant's schema
