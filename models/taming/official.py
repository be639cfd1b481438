"""The official taming configuration of every registered size (no torch): the base config of
``config.py`` with the card's GPT sizes. ``FAMILY.config_for`` is :func:`config_for`."""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import get_card, model_cards

from .config import config_for_card


def config_for(model_id: str) -> dict[str, Any]:
    """The family's base config + the card's GPT sizes (``card.arch``)."""
    card = get_card(model_id)
    if card.family != "taming":
        ids = ", ".join(c.id for c in model_cards("taming"))
        raise KeyError(f"{model_id!r} is not a taming size; taming sizes: {ids}")
    return config_for_card(card.arch)
