"""The ARPG Family: configs per card, building and strict loading (spec: shared/specs/arpg.md).

A config (the conformance ``config.json`` schema, upstream names) holds LlamaGen's VQ-16 tokenizer
section (``models/vq16.py``), the generator's ``ModelArgs`` in ``transformer`` and the scoring
``order`` (``raster`` | ``perm:K``; default :data:`official.DEFAULT_ORDER`). The tokenizer is
LlamaGen's; generator files are ``{"state_dict": sd}`` (also accepted: ``model``, ``module``, a bare
dict), loaded strictly (upstream loads non-strictly); a stray ``freqs_cis`` entry is dropped.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.catalog import model_cards
from visbpp.core.registry.config_schema import check_config

from .. import config_for, vq16
from ..orders import config_order
from . import official
from .model import ARPG, ARPGConfig
from .schema import SCHEMA

_CONTAINERS = ("state_dict", "model", "module", None)


def arpg_config(config: Mapping[str, Any], where: str = "ARPG config") -> ARPGConfig:
    """The ``transformer`` section -> :class:`ARPGConfig` (checked, and against the tokenizer)."""
    t = config.get("transformer")
    if not isinstance(t, Mapping):
        raise ConfigError(f"{where}: lacks the 'transformer' section (see the conformance config.json)")
    if t.get("model_type", "c2i") != "c2i":
        raise ConfigError(f"{where}: only class-conditional ARPG models (model_type 'c2i'), got {t['model_type']!r}")
    try:
        cfg = ARPGConfig(**{k: t[k] for k in ("dim", "n_layer", "n_head", "vocab_size", "num_classes", "block_size")},
                         **{k: t[k] for k in ("multiple_of", "ffn_dim_multiplier", "rope_base", "norm_eps",
                                              "cls_token_num") if k in t})
        cfg.validate()
    except KeyError as e:
        raise ConfigError(f"{where}: transformer lacks {e.args[0]!r}") from None
    except ValueError as e:
        raise ConfigError(f"{where}: transformer: {e}") from None
    if "tokenizer" in config:
        vq = vq16.config(config, where)
        if vq.grid ** 2 != cfg.block_size or vq.codebook_size != cfg.vocab_size:
            raise ConfigError(f"{where}: the tokenizer gives {vq.grid}x{vq.grid} tokens of {vq.codebook_size} codes, "
                              f"the generator expects block_size {cfg.block_size} of vocab_size {cfg.vocab_size}")
    return cfg


def _refuse_tokenizer_file(sd: dict, module: Any, path: str) -> dict:
    if "quantize.embedding.weight" in sd and "embeddings.weight" not in sd:
        raise CheckpointError(f"{path}: this is a VQ tokenizer file (vq_ds16_c2i.pt), not an ARPG generator (arpg_*.pt)")
    return sd


class ARPGFamily:
    """Builds and loads ARPG generators on LlamaGen's tokenizer (``visbpp.core.interfaces.Family``)."""

    name = "arpg"
    tokenizer_family = "llamagen"  # its tokenizer code and cached tokens are LlamaGen's (``--config`` runs too)

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def config_for(self, model_id: str) -> dict[str, Any]:
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "ARPG config") -> Mapping[str, Any]:
        """Keys and types (the schema), sizes and the scoring order; errors name ``where`` and the field."""
        check_config(config, SCHEMA, where)
        arpg_config(config, where)
        config_order(config, where, official.DEFAULT_ORDER)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]):
        from ..llamagen.tokenizer import VQTokenizer

        return VQTokenizer(vq16.config(self.parse_config(config), "ARPG config"))

    def build_transformer(self, config: Mapping[str, Any], tokenizer=None) -> ARPG:
        cfg = arpg_config(self.parse_config(config))
        if tokenizer is not None and (tokenizer.tokens_per_image, tokenizer.vocab_size) != (cfg.block_size, cfg.vocab_size):
            raise ConfigError(f"tokenizer gives {tokenizer.tokens_per_image} tokens of {tokenizer.vocab_size} codes, the "
                              f"generator expects {cfg.block_size} of {cfg.vocab_size}")
        return ARPG(cfg, config_order(config, "ARPG config", official.DEFAULT_ORDER))

    def load_tokenizer(self, path: str, config: Mapping[str, Any]):
        return vq16.load(path, vq16.config(self.parse_config(config), "ARPG config"),
                         config.get("tokenizer_container", "model"))

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer=None) -> ARPG:
        preferred = config.get("transformer_container", "state_dict")
        containers = tuple(dict.fromkeys(([preferred] if preferred in _CONTAINERS else []) + list(_CONTAINERS)))
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer), containers=containers,
                              select=_refuse_tokenizer_file, drop=("freqs_cis",))


FAMILY = ARPGFamily()
