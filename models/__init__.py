"""Model families: one module per family (modules, checkpoint loading, build config per size id).

Families are imported lazily, on first use, so that listing the registry never imports torch
modules of every family.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from visbpp.core.registry import family_name

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
    "micro": "micro",
}


def get_family(name: str) -> "Family":
    """The Family object of ``name`` (module name or display label)."""
    key = name if name in FAMILY_MODULES else family_name(name)
    if key not in FAMILY_MODULES:
        raise KeyError(f"no family module for {name!r}; known: {', '.join(FAMILY_MODULES)}")
    mod = importlib.import_module(f"{__name__}.{FAMILY_MODULES[key]}")
    return mod.FAMILY
