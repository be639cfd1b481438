"""Model families: one module per family (modules, checkpoint loading, build config per size id).

Families are imported lazily, on first use, so that listing the registry never imports torch
modules of every family. Each family's ``official`` module (the configs of its registered sizes)
and ``data`` module (micro) import without torch: jobs of registered models are built without it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from visbpp.core.registry.catalog import family_name, get_card

if TYPE_CHECKING:  # pragma: no cover
    from visbpp.core.interfaces import Family

# family name -> module in this package defining ``FAMILY`` (a visbpp.core.interfaces.Family)
FAMILY_MODULES = {
    "llamagen": "llamagen",
    "var": "var",
    "rqtransformer": "rqtransformer",
    "taming": "taming",
    "openmagvit2": "openmagvit2",
    "ibq": "ibq",
    "rar": "rar",
    "gigatok": "gigatok",
    "hita": "hita",
    "arpg": "arpg",
    "randar": "randar",
    "micro": "micro",
}


def get_family(name: str) -> "Family":
    """The Family object of ``name`` (module name or display label)."""
    key = name if name in FAMILY_MODULES else family_name(name)
    if key not in FAMILY_MODULES:
        raise KeyError(f"no family module for {name!r}; known: {', '.join(FAMILY_MODULES)}")
    mod = importlib.import_module(f"{__name__}.{FAMILY_MODULES[key]}")
    return mod.FAMILY


def official_config(model_id: str) -> dict:
    """The official config of a registered model, from its family's torch-free ``official`` module
    (the same as ``get_family(card.family).config_for(model_id)``, without importing torch)."""
    family = get_card(model_id).family
    return importlib.import_module(f"{__name__}.{FAMILY_MODULES[family]}.official").config_for(model_id)


def default_order(name: str) -> str | None:
    """The scoring order a family's models use unless ``--order`` says otherwise (``DEFAULT_ORDER`` of
    its torch-free ``official`` module), or None for a family without an order axis."""
    key = name if name in FAMILY_MODULES else family_name(name)
    return getattr(importlib.import_module(f"{__name__}.{FAMILY_MODULES[key]}.official"), "DEFAULT_ORDER", None)


def shipped_data_dir(name: str):
    """The data folder a family ships (``default_data_dir()`` of its ``data`` module or of its
    ``FAMILY``; e.g. the micro zoo's held-out digits, written on first use), or None when the family
    needs the user's data (ImageNet). A ``data`` module is looked up first: it needs no torch."""
    key = name if name in FAMILY_MODULES else family_name(name)
    if key not in FAMILY_MODULES:
        return None
    module = f"{__name__}.{FAMILY_MODULES[key]}.data"
    fn = None
    if importlib.util.find_spec(module) is not None:
        fn = getattr(importlib.import_module(module), "default_data_dir", None)
    if fn is None:
        fn = getattr(get_family(key), "default_data_dir", None)
    return fn() if fn is not None else None
