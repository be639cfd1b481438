"""Pieces shared by the two SEED-Voken families (Open-MAGVIT2 and IBQ).

- the llama block and 2-D RoPE of ``models/llama.py`` (re-exported);
- the class embedding (``class_emb.embedding_table``);
- checkpoint helpers: Lightning ``{"state_dict": sd}`` files that carry the tokenizer
  either alone (raw ``encoder.*`` + EMA copies ``model_ema.<key without dots>``) or under
  ``first_stage_model.*`` of an AR file.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from visbpp.core.labels import check_label_range
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.catalog import family_label
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.registry.config_schema import check_config

from . import config_for
from .llama import Block, Rope2D  # noqa: F401 - the shared llama block and RoPE, re-exported


class ClassEmbedder(nn.Module):
    """``embedding_table`` with ``num_classes + 1`` rows (the last is the unused null class)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.embedding_table(labels)[:, None]  # (B, 1, D)


def check_labels(labels: torch.Tensor, num_classes: int, batch: int, null_class: int | None = None) -> torch.Tensor:
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    check_label_range(labels, num_classes, null_class)
    return labels.long()


def check_tokens(tokens: torch.Tensor, length: int, vocab: int) -> torch.Tensor:
    if tokens.dim() != 2 or tokens.shape[1] != length:
        raise ValueError(f"tokens must have shape (B, {length}), got {tuple(tokens.shape)}")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab):
        raise ValueError(f"token values must lie in [0, {vocab}); got min {int(tokens.min())}, max {int(tokens.max())}")
    return tokens.long()


# --------------------------------------------------------------------------- checkpoints

AR_TOKENIZER_PREFIX = "first_stage_model."
EMA_PREFIX = "model_ema."


CONTAINERS = ("state_dict", None)  # Lightning ``{"state_dict": sd}``; a bare state dict is accepted


def tokenizer_state_dict(sd: Mapping[str, torch.Tensor], module: nn.Module, path: str, use_ema: bool,
                         family_label: str) -> tuple[dict, str]:
    """Pick the tokenizer weights out of an AR file or a tokenizer file.

    AR file (keys ``first_stage_model.*``): those, prefix removed. Tokenizer file: the EMA
    copies (``model_ema.`` + module key without dots) when ``use_ema``, else the raw
    module keys; ``loss.*`` and the other copy are dropped. Returns (state dict, source).
    """
    if any(k.startswith(AR_TOKENIZER_PREFIX) for k in sd):
        n = len(AR_TOKENIZER_PREFIX)
        return {k[n:]: v for k, v in sd.items() if k.startswith(AR_TOKENIZER_PREFIX)}, "ar-file first_stage_model"
    own = list(module.state_dict().keys())
    if use_ema:
        if not any(k.startswith(EMA_PREFIX) for k in sd):
            raise CheckpointError(
                f"{path}: no {EMA_PREFIX}* weights and no {AR_TOKENIZER_PREFIX}* weights: not a {family_label} "
                f"tokenizer or AR file (first keys: {', '.join(list(sd)[:5])})")
        out, missing = {}, []
        for k in own:
            ek = EMA_PREFIX + k.replace(".", "")
            if ek in sd:
                out[k] = sd[ek]
            else:
                missing.append(ek)
        if missing:
            raise CheckpointError(f"{path}: {len(missing)} EMA tokenizer tensor(s) missing, first: "
                                  f"{', '.join(missing[:5])}. Is this the {family_label} tokenizer file?")
        return out, "tokenizer-file ema"
    return ({k: v for k, v in sd.items() if not k.startswith((EMA_PREFIX, "loss."))}, "tokenizer-file raw")


def transformer_state_dict(sd: Mapping[str, torch.Tensor], path: str, family_label: str) -> dict:
    """``transformer.*`` of an AR file, prefix removed; a clear error when there is none."""
    out = {k[len("transformer."):]: v for k, v in sd.items() if k.startswith("transformer.")}
    if not out:
        raise CheckpointError(
            f"{path}: no transformer.* weights: not a {family_label} AR checkpoint (a tokenizer file or another "
            f"family's file?); first keys: {', '.join(list(sd)[:5])}")
    return out


class SeedVokenFamily:
    """Family object shared by the SEED-Voken families (Open-MAGVIT2, IBQ): Lightning files, the
    tokenizer readable from its own file (raw or EMA copies) or from an AR file's ``first_stage_model.*``.

    Subclasses set the class attributes below.
    """

    name: str
    default_use_ema: bool                # which tokenizer copy the official AR configuration uses
    tokenizer_cls: type                  # (TokenizerConfig) -> module, with ``TokenizerConfig.from_config``
    tokenizer_config_cls: type
    transformer_cls: type
    transformer_config_cls: type

    schema: dict                         # the config.json schema (``visbpp.core.registry.config_schema``)
    base_config: dict                    # official config of the family in the fixture schema, sizes aside

    @property
    def label(self) -> str:
        """The family's display label (its cards' ``family_label``)."""
        return family_label(self.name)

    def config_for(self, model_id: str) -> dict:
        """The official config of a registered id (``visbpp.models.config_for``: the cards in
        ``official.config``, fixture schema)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping, where: str | None = None) -> Mapping:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, self.schema, where or f"{self.label} config")
        return config

    def build_tokenizer(self, config: Mapping) -> nn.Module:
        return self.tokenizer_cls(self.tokenizer_config_cls.from_config(self.parse_config(config))).eval()

    def build_transformer(self, config: Mapping, tokenizer: object = None) -> nn.Module:
        return self.transformer_cls(self.transformer_config_cls.from_config(self.parse_config(config))).eval()

    def load_tokenizer(self, path: str, config: Mapping) -> nn.Module:
        """From the tokenizer file (raw or EMA weights per ``use_ema``) or an AR file (``first_stage_model.*``)."""
        use_ema = bool(config["tokenizer"].get("use_ema", self.default_use_ema))
        source = []

        def select(sd: dict, module: nn.Module, path: str) -> dict:
            sub, src = tokenizer_state_dict(sd, module, path, use_ema, self.label)
            source.append(src)
            return sub

        tok = build_and_load(path, lambda: self.build_tokenizer(config), containers=CONTAINERS, select=select)
        tok.weights_source = source[0]
        return tok

    def load_transformer(self, path: str, config: Mapping, tokenizer: object = None) -> nn.Module:
        """From an AR file (``transformer.*``; its ``first_stage_model.*`` is the tokenizer's business)."""
        return build_and_load(path, lambda: self.build_transformer(config), containers=CONTAINERS,
                              select=lambda sd, _m, p: transformer_state_dict(sd, p, self.label))
