"""The official FlexVAR configuration of every registered size, as plain data (no torch).

The schema is the conformance fixtures' ``config.json`` (upstream argument names): ``tokenizer``
(the FlexVAE = LlamaGen VQ-16 arguments, ``cnn`` = its encoder/decoder widths), ``transformer``
(the FlexVAR constructor arguments), ``image_size`` and ``scale_schedule``. The card's ``arch``
gives ``depth`` and ``scale_schedule``, the tokenizer card the codebook's size and code dimension.
``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.

The scale schedule decides the tokens (each scale is its own quantisation of the latent pooled
to that size), so :func:`token_config` puts it beside the ``tokenizer`` section in the token-cache
key, and it is part of every run's identity through that key.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

from visbpp.core.registry.cards.flexvar import SCHEDULES
from visbpp.core.registry.catalog import ModelCard, TokenizerCard

# The 10-step schedule: the constructor's and eval_c2i.py's default, the README's "Step 10" FIDs.
DEFAULT_SCHEDULE = SCHEDULES[10]
IMAGE_SIZE = 256
DOWNSAMPLE = 16

FLEXVAE = {   # + codebook_size and codebook_embed_dim of the tokenizer card
    "codebook_l2_norm": True,
    "codebook_show_usage": True,
    "commit_loss_beta": 0.25,
    "entropy_loss_ratio": 0.0,
    "encoder_ch_mult": [1, 1, 2, 2, 4],
    "decoder_ch_mult": [1, 1, 2, 2, 4],
    "z_channels": 256,
    "dropout_p": 0.0,
    "cnn": {"ch": 128, "num_res_blocks": 2, "norm_type": "group", "resamp_with_conv": True,
            "in_channels": 3, "out_channels": 3},
}


def _transformer(depth: int) -> dict[str, Any]:
    """``build_vae_var``'s FlexVAR arguments for a depth (eval_c2i.py)."""
    return {"num_classes": 1000, "depth": depth, "embed_dim": 64 * depth, "num_heads": depth, "mlp_ratio": 4.0,
            "drop_rate": 0.0, "attn_drop_rate": 0.0, "drop_path_rate": 0.1 * depth / 24, "norm_eps": 1e-6,
            "shared_aln": False, "cond_drop_rate": 0.1, "token_dropout_p": 0.05, "attn_l2_norm": True,
            "patch_nums": list(DEFAULT_SCHEDULE), "flash_if_available": True, "fused_if_available": True,
            "pos_grid": 32}


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The family's base config + the cards' values (``card.arch``: depth, scale_schedule; the
    tokenizer card's codebook size and code dimension)."""
    arch = dict(card.arch)
    return {
        "family": "flexvar",
        "model_id": card.id,
        "tokenizer": {"codebook_size": tokenizer.codebook_size, "codebook_embed_dim": tokenizer.code_dim,
                      **copy.deepcopy(FLEXVAE)},
        "transformer": _transformer(int(arch["depth"])),
        "image_size": IMAGE_SIZE,
        "downsample": DOWNSAMPLE,
        "num_classes": 1000,
        "scale_schedule": list(arch["scale_schedule"]),
        "dtype": "float32",
    }


def scale_schedule(config: Mapping[str, Any]) -> tuple[int, ...]:
    """The schedule a config scores with: ``scale_schedule``, else the transformer's constructor
    default ``patch_nums`` (upstream passes the schedule to ``forward``; the constructor's only sizes
    a mask buffer), else the 10-step default. Checked by the family when a model is built."""
    sched = config.get("scale_schedule")
    if sched is None:
        t = config.get("transformer")
        sched = t.get("patch_nums") if isinstance(t, Mapping) else None
    return tuple(sched) if sched is not None else DEFAULT_SCHEDULE


def token_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the tokens depend on besides the file, the input side and the preprocessing: the
    tokenizer section and the scale schedule (hashed into the tokenizer key)."""
    return {"tokenizer": config.get("tokenizer"), "scale_schedule": list(scale_schedule(config))}
