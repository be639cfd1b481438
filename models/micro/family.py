"""The micro Family: LlamaGen's modules and loaders with the micro zoo's configs."""

from __future__ import annotations

from typing import Any

from visbpp.core.registry.cards.micro import SIZES

from .. import config_for
from ..llamagen.family import LlamaGenFamily


class MicroFamily(LlamaGenFamily):
    """Builds and loads the micro zoo (``visbpp.core.interfaces.Family``); weights are float16 safetensors."""

    name = "micro"

    def size_ids(self) -> tuple[str, ...]:
        return tuple(SIZES)

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)


FAMILY = MicroFamily()
