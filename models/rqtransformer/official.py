"""The official RQ-Transformer configuration of every registered size, as plain data (no torch).

The schema is the conformance ``config.json``: ``tokenizer`` is the stage-1 ``arch`` section
(``hparams`` + ``ddconfig``), ``transformer`` the stage-2 ``arch`` section with the upstream
defaults merged, plus ``image_size``, ``num_classes``, ``code_shape``, ``tokens_per_image``,
``vocab_size``, ``downsample_factor`` and ``checkpoint_container``; the card's ``arch`` gives
the stage-2 sizes. ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

_RQVAE_8x8x4 = {
    "ema": None,
    "hparams": {
        "loss_type": "mse", "restart_unused_codes": True, "use_padding_idx": False, "masked_dropout": 0.0,
        "bottleneck_type": "rq", "embed_dim": 256, "n_embed": 16384, "latent_shape": [8, 8, 256],
        "code_shape": [8, 8, 4], "shared_codebook": True, "decay": 0.99, "latent_loss_weight": 0.25,
    },
    "checkpointing": False,
    "type": "rq-vae",
    "code_hier": 1,
    "ddconfig": {
        "double_z": False, "z_channels": 256, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
        "ch_mult": [1, 1, 2, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [8], "dropout": 0.0,
    },
}


def _block(C: int, n_head: int) -> dict:
    return {"embed_dim": C, "n_head": n_head, "mlp_bias": True, "attn_bias": True, "attn_pdrop": 0.0,
            "resid_pdrop": 0.1, "gelu": "v1"}


def _stage2(C: int, body_layers: int, head_layers: int, n_head: int) -> dict:
    return {
        "type": "rq-transformer", "ema": None, "ar_hierarchy": None, "vocab_size": 16384, "block_size": [8, 8, 4],
        "vocab_size_cond": 1000, "block_size_cond": 1, "embed_dim": C, "input_embed_dim": 256,
        "use_padding_emb": False, "input_emb_vqvae": True, "head_emb_vqvae": True, "scaled_head_emb_vqvae": False,
        "cumsum_depth_ctx": True, "shared_tok_emb": True, "embd_pdrop": 0.0,
        "body": {"n_layer": body_layers, "block": _block(C, n_head)},
        "head": {"n_layer": head_layers, "block": _block(C, n_head)},
        "shared_cls_emb": True,
    }


def _config(card_id: str, arch: Mapping[str, Any]) -> dict:
    C, body, head, n_head = arch["embed_dim"], arch["body_layers"], arch["head_layers"], arch["n_head"]
    return {
        "tokenizer": copy.deepcopy(_RQVAE_8x8x4),
        "transformer": _stage2(C, body, head, n_head),
        "image_size": 256,
        "num_classes": 1000,
        "code_shape": [8, 8, 4],
        "tokens_per_image": 256,
        "vocab_size": 16384,
        "downsample_factor": 32,
        "checkpoint_container": "state_dict",
        "model_id": card_id,
    }


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The family's base config + the card's stage-2 sizes (``card.arch``)."""
    return _config(card.id, card.arch)
