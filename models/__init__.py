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
    "rar": "rar",
    "gigatok": "gigatok",
    "hita": "hita",
    "micro": "micro",
}


def get_family(name: str) -> "Family":
    """The Family object of ``name`` (module name or display label)."""
    key = name if name in FAMILY_MODULES else family_name(name)
    if key not in FAMILY_MODULES:
        raise KeyError(f"no family module for {name!r}; known: {', '.join(FAMILY_MODULES)}")
    mod = importlib.import_module(f"{__name__}.{FAMILY_MODULES[key]}")
    return mod.FAMILY


def shipped_data_dir(name: str):
    """The data folder a family ships (``default_data_dir()`` of its ``FAMILY`` or of its ``data``
    module; e.g. the micro zoo's held-out digits, written on first use), or None when the family
    needs the user's data (ImageNet)."""
    key = name if name in FAMILY_MODULES else family_name(name)
    if key not in FAMILY_MODULES:
        return None
    fn = getattr(get_family(key), "default_data_dir", None)
    if fn is None:
        try:
            fn = getattr(importlib.import_module(f"{__name__}.{FAMILY_MODULES[key]}.data"), "default_data_dir", None)
        except ImportError:
            fn = None
    return fn() if fn is not None else None
