"""The configuration of every micro zoo size (no torch): ``config.config`` with the card's ``arch``.
``FAMILY.config_for`` is :func:`config_for`."""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.catalog import get_card

from . import config as zc


def config_for(model_id: str) -> dict[str, Any]:
    card = get_card(model_id)
    return zc.config(card.id, card.arch)
