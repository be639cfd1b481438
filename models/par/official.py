"""The official PAR configuration of every registered size, as plain data (no torch).

LlamaGen's config of the same card (VQ-16 tokenizer, GPT trunk of ``card.arch``) plus PAR's GPT
arguments: ``ar_token_num`` n (the card's ``arch``) and ``spe_token_num`` = n - 1 (upstream builds
every model so). ``FAMILY.config_for`` is :func:`config_for`.
"""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import get_card, model_cards

from ..llamagen.official import card_config


def config_for(model_id: str) -> dict[str, Any]:
    """The family's base config + the card's architecture (n_layer, n_head, dim, ar_token_num)."""
    card = get_card(model_id)
    if card.family != "par":
        ids = ", ".join(c.id for c in model_cards("par"))
        raise KeyError(f"{model_id!r} is not a PAR model; PAR ids: {ids}")
    config = card_config(card)
    n = int(card.arch["ar_token_num"])
    config["family"] = "par"
    config["transformer"].update(spe_token_num=n - 1, ar_token_num=n)
    return config
