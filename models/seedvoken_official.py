"""The official configuration of a SEED-Voken size (Open-MAGVIT2, IBQ), as plain data (no torch).

Each family's ``official.py`` holds its base config (the fixture schema, sizes aside); a size's
config is that base with the tokenizer card's codebook size, the model card's transformer sizes
and a ``derived`` section.
"""

from __future__ import annotations

import copy
from typing import Mapping

from visbpp.core.registry.catalog import ModelCard, TokenizerCard

from .widths import swiglu_hidden


def size_config(card: ModelCard, tokenizer: TokenizerCard, base_config: Mapping) -> dict:
    """Official configuration of a size, fixture schema: the family's base config + the tokenizer
    card's codebook size + the model card's transformer sizes (``card.arch``; the first is the width)."""
    values = dict(card.arch)
    dim = next(iter(values.values()))
    cfg = copy.deepcopy(dict(base_config))
    cfg["tokenizer"]["n_embed"] = tokenizer.codebook_size
    cfg["transformer"].update(values, cond_dim=dim)
    cfg["derived"] = {"head_dim": dim // values["n_head"], "ffn_hidden_dim": swiglu_hidden(dim, 256),
                      "class_embedding_rows": 1001, "null_class_index": 1000, "codebook_size": tokenizer.codebook_size}
    cfg["model_id"] = card.id
    return cfg
