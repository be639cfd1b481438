"""The configuration of every micro zoo size (no torch): ``config.config`` with the card's ``arch``.
``visbpp.models.official_config(card, tokenizer)`` calls :func:`config`."""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

from . import config as zc


def config(card: ModelCard, tokenizer: TokenizerCard) -> dict[str, Any]:
    return zc.config(card.id, card.arch)
