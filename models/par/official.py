"""The official PAR configuration of every registered size, as plain data (no torch).

LlamaGen's config of the same card (VQ-16 tokenizer, GPT trunk of ``card.arch``) plus PAR's GPT
arguments: ``ar_token_num`` n (the card's ``arch``) and ``spe_token_num`` = n - 1 (upstream builds
every model so). ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`.
"""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

from ..llamagen.official import config as llamagen_config


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """LlamaGen's config of the card + PAR's GPT arguments (``card.arch``: n_layer, n_head, dim, ar_token_num)."""
    config = llamagen_config(card, tokenizer)
    n = int(card.arch["ar_token_num"])
    config["family"] = "par"
    config["transformer"].update(spe_token_num=n - 1, ar_token_num=n)
    return config
