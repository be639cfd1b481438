"""The AliTok Family: config of a registered model (base config + its cards' architecture data),
building, and strict loading through ``core/build.build_and_load``.

Files: the tokenizer (``AliTok.pth``) and the AR models (``alitok_{b,l,xl}.bin``) are bare state dicts
with exactly the official keys. The ORT files (HF donglixu/ORT) are bare or under ``model``, with
keys possibly prefixed ``_orig_mod.`` (torch.compile); their two position tables must be there. A
file of the other kind is refused with a message naming it, never loaded partly: an ORT file read
as AliTok's model would lose its position tables and score several nats per token wrong.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from torch import nn

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.catalog import model_cards

from .. import config_for
from .config import ORT, alitok_config
from .official import GENERATOR_BASE, HARDCODED, TOKENIZER_BASE  # noqa: F401 - re-exported
from .tokenizer import AliTokTokenizer
from .transformer import ORTAR, AliTokAR

ORT_TABLES = ("pos_embed", "target_aware_pos_embed")
COMPILED_PREFIX = "_orig_mod."


def _refuse_ar_file(sd: dict, module: nn.Module, path: str) -> dict:
    if "embeddings.weight" in sd and "latent_tokens" not in sd:
        raise CheckpointError(f"{path}: this is an AliTok AR model file (alitok_*.bin or an ORT file), not the "
                              f"tokenizer (AliTok.pth)")
    return sd


def _ar_select(ort: bool):
    """Select hook of the AR loaders: strip ``_orig_mod.`` (ORT), refuse a file of the other kind."""

    def select(sd: dict, module: nn.Module, path: str) -> dict:
        if ort:
            sd = {k[len(COMPILED_PREFIX):] if k.startswith(COMPILED_PREFIX) else k: v for k, v in sd.items()}
        if "latent_tokens" in sd:
            raise CheckpointError(f"{path}: this is the AliTok tokenizer (AliTok.pth), not an AR model file")
        tables = [k for k in ORT_TABLES if k in sd]
        if not ort and tables:
            raise CheckpointError(
                f"{path}: holds ORT's position tables ({', '.join(tables)}): this is an ORT model file (HF "
                f"donglixu/ORT), not AliTok's ARModel. Score it with its ORT card (`visbpp models`: ort-*, "
                f"alitok-xl-baseline-*) or set transformer.model.generator.type to {ORT!r} in the config; read as "
                f"AliTok's model it would lose the tables and score wrongly.")
        if ort and not tables and "embeddings.weight" in sd:
            raise CheckpointError(
                f"{path}: has no {' / '.join(ORT_TABLES)}: this is an AliTok ARModel file (alitok_*.bin), not an "
                f"ORT model. Score it with its AliTok card, or leave transformer.model.generator.type out of the config.")
        return sd

    return select


class AliTokFamily:
    """Builds and loads the AliTok tokenizer, AliTok's AR models and the ORT variant (``visbpp.core.interfaces.Family``)."""

    name = "alitok"

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' values in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "AliTok config") -> Mapping[str, Any]:
        """Check ``config`` (schema, sizes, tokenizer/AR agreement); errors name ``where`` and the field."""
        alitok_config(config, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any], with_decoder: bool = True) -> AliTokTokenizer:
        cfg = alitok_config(config).tokenizer
        if cfg is None:
            raise ConfigError("AliTok config: the 'tokenizer' section is missing")
        return AliTokTokenizer(cfg, with_decoder=with_decoder)

    def build_transformer(self, config: Mapping[str, Any], tokenizer: AliTokTokenizer | None = None) -> AliTokAR:
        cfg = alitok_config(config).transformer
        if cfg is None:
            raise ConfigError("AliTok config: the 'transformer' section is missing")
        if tokenizer is not None and (tokenizer.tokens_per_image, tokenizer.vocab_size) != (cfg.image_seq_len,
                                                                                            cfg.codebook_size):
            raise ConfigError(f"the tokenizer gives {tokenizer.tokens_per_image} tokens of {tokenizer.vocab_size} codes, "
                              f"the AR model expects {cfg.image_seq_len} of {cfg.codebook_size}")
        return ORTAR(cfg) if cfg.ort else AliTokAR(cfg)

    def load_tokenizer(self, path: str, config: Mapping[str, Any], with_decoder: bool = False) -> AliTokTokenizer:
        """Strict load of a bare state dict; ``with_decoder=False`` keeps only the encode path in memory (all
        scoring needs) and loads the decoder from the same file on the first ``decode`` (``--recon``)."""
        tok = build_and_load(path, lambda: self.build_tokenizer(config, with_decoder), containers=(None,),
                             select=_refuse_ar_file, drop_prefixes=() if with_decoder else ("decoder.",))
        if not with_decoder:
            tok.decoder_source = functools.partial(self.load_tokenizer, path, config, True)
        return tok

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: AliTokTokenizer | None = None) -> AliTokAR:
        """AliTok: a bare state dict. ORT: bare or ``{"model": ...}``, ``_orig_mod.`` prefixes stripped. Strict."""
        cfg = alitok_config(config).transformer
        ort = cfg is not None and cfg.ort
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer),
                              containers=("model", None) if ort else (None,), select=_ar_select(ort))


FAMILY = AliTokFamily()
