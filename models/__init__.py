"""Model families: one package per family (modules, checkpoint loading, build config per size id).

The families are the registry's (``visbpp.core.registry.catalog.families()``: the ``family`` of
the cards in ``visbpp.core.registry.cards.CARD_MODULES``, the one list of families); a family's
code is the package of the same name here, found by that name. Families are imported lazily, on
first use, so that listing the registry never imports torch modules of every family. Each
family's ``official`` module (the configs of its registered sizes) and ``data`` module (micro)
import without torch: jobs of registered models are built without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from visbpp.core.registry.catalog import family_name, get_card

if TYPE_CHECKING:  # pragma: no cover
    from visbpp.core.interfaces import Family


def family_package(name: str) -> str:
    """The package of family ``name`` (module name or display label; ``UnknownModelError`` if the
    registry has no such family)."""
    return f"{__name__}.{family_name(name)}"


def get_family(name: str) -> "Family":
    """The Family object of ``name`` (module name or display label)."""
    return importlib.import_module(family_package(name)).FAMILY


def official_config(model_id: str) -> dict:
    """The official config of a registered model, from its family's torch-free ``official`` module
    (the same as ``get_family(card.family).config_for(model_id)``, without importing torch)."""
    return importlib.import_module(f"{family_package(get_card(model_id).family)}.official").config_for(model_id)


def shipped_data_dir(name: str):
    """The data folder a family ships (``default_data_dir()`` of its ``data`` module or of its
    ``FAMILY``; e.g. the micro zoo's held-out digits, written on first use), or None when the family
    needs the user's data (ImageNet). A ``data`` module is looked up first: it needs no torch."""
    package = family_package(name)
    fn = None
    if importlib.util.find_spec(f"{package}.data") is not None:
        fn = getattr(importlib.import_module(f"{package}.data"), "default_data_dir", None)
    if fn is None:
        fn = getattr(get_family(name), "default_data_dir", None)
    return fn() if fn is not None else None
