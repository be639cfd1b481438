"""The official taming configuration of every registered size (no torch): the base config of
``config.py`` with the card's GPT sizes. ``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`."""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

from .config import config_for_card


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    """The family's base config + the card's GPT sizes (``card.arch``)."""
    return config_for_card(card.arch)
