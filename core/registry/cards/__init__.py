"""Card data of the registry, one module per family (see ``visbpp.core.registry.catalog``).

:data:`CARD_MODULES` is the one list of families: the registry reads the cards of these modules
(in this order, the display order), its families are the cards' ``family`` values, and each
family's code is the package of that name in ``visbpp.models`` (found by name, no second list).
Adding a family = its card module here + one line below + its ``models/<family>/`` package.
"""

from __future__ import annotations

import importlib
from types import ModuleType

CARD_MODULES = (
    "taming",
    "rqtransformer",
    "llamagen",
    "var",
    "openmagvit2",
    "ibq",
    "rar",
    "gigatok",
    "hita",
    "par",
    "flexvar",
    "alitok",
    "vfmtok",
    "arpg",
    "randar",
    "cca",      # fine-tunes: cards of the llamagen and var families
    "micro",
)

# The published table (FID, rFID, BPP per model) that this project reproduces is the paper's
# table, measured by the paper's own code; every card that carries one of its values cites it so.
PAPER_TITLE = "Compression of Visual Tokens Represents Image Generation Quality Linearly"
PAPER_REPOSITORY = "github.com/Const1357/vision-compression-intelligence"
PUBLISHED_TABLE = f'published table (FID/rFID/BPP) of "{PAPER_TITLE}" ({PAPER_REPOSITORY})'
# What is known of how the published table's figures were measured, where its row gives nothing more.
TABLE_FID_PROTOCOL = ("sampling protocol not stated by the table; matches no upstream README row we could "
                      "identify (the README's values are kept as alternates)")
TABLE_RFID_PROTOCOL = "tokenizer reconstruction FID on ImageNet val as quoted by the table (its settings not stated)"


def modules() -> list[ModuleType]:
    """The card modules of :data:`CARD_MODULES`, in order."""
    return [importlib.import_module(f"{__name__}.{name}") for name in CARD_MODULES]
