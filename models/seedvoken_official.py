"""The official configuration of a SEED-Voken size (Open-MAGVIT2, IBQ), as plain data (no torch).

Each family's ``official.py`` holds its base config (the fixture schema, sizes aside); a size's
config is that base with the card's transformer sizes and a ``derived`` section.
"""

from __future__ import annotations

import copy
from typing import Mapping

from visbpp.core.registry.catalog import get_card, model_cards

from .widths import swiglu_hidden


def size_config(family: str, label: str, tokenizer_id: str, base_config: Mapping, codebook_size: int,
                model_id: str) -> dict:
    """Official configuration of a size id (or of the tokenizer id: the first size), fixture schema:
    the family's base config + the card's transformer sizes (``card.arch``; the first is the width)."""
    ids = [c.id for c in model_cards(family)]
    if model_id == tokenizer_id:
        model_id = ids[0]
    if model_id not in ids:
        raise KeyError(f"unknown {label} size id {model_id!r}; known: {', '.join(ids)}")
    values = dict(get_card(model_id).arch)
    dim = next(iter(values.values()))
    cfg = copy.deepcopy(dict(base_config))
    cfg["transformer"].update(values, cond_dim=dim)
    cfg["derived"] = {"head_dim": dim // values["n_head"], "ffn_hidden_dim": swiglu_hidden(dim, 256),
                      "class_embedding_rows": 1001, "null_class_index": 1000, "codebook_size": codebook_size}
    cfg["model_id"] = model_id
    return cfg
