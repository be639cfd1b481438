"""The RandAR Family: configs per card, building and strict loading (spec: shared/specs/randar.md).

A config (the conformance ``config.json`` schema, upstream names) names its ``tokenizer_kind``:
``llamagen`` (LlamaGen's VQ-16, ``models/vq16.py``: tokens in [-1, 1] from the ADM crop, the same as
LlamaGen's) or ``maskgit`` (RAR's MaskGIT-VQGAN with RandAR's preprocessing, ``tokenizer.py``); a
config without it is read by its tokenizer section. ``transformer`` holds the generator's
constructor arguments, ``order`` the scoring order (``raster`` | ``perm:K``; default
:data:`official.DEFAULT_ORDER`). Generator files are bare safetensors state dicts (a ``.pt`` of the
same dict also loads); tokenizer files ``{"model": sd}`` or bare, as the upstream loader reads them.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.catalog import model_cards
from visbpp.core.registry.config_schema import check_config

from .. import config_for, vq16
from ..llamagen.gpt import GPTConfig
from ..orders import config_order
from ..rar.config import MaskGITConfig
from . import official
from .model import RandAR
from .schema import SCHEMAS
from .tokenizer import RandARMaskGIT

_GPT_REQUIRED = ("dim", "n_layer", "n_head", "vocab_size", "num_classes", "block_size")
_GPT_OPTIONAL = ("n_kv_head", "class_dropout_prob", "cls_token_num", "multiple_of", "ffn_dim_multiplier", "rope_base",
                 "norm_eps")


def tokenizer_kind(config: Mapping[str, Any], where: str = "RandAR config") -> str:
    """``llamagen`` or ``maskgit``: the config's ``tokenizer_kind``, else read off its tokenizer section."""
    kind = config.get("tokenizer_kind")
    if kind is None:
        section = config.get("tokenizer") or {}
        kind = "maskgit" if "num_embeddings" in section else "llamagen"
    if kind not in SCHEMAS:
        raise ConfigError(f"{where}: tokenizer_kind {kind!r} is not one of {', '.join(SCHEMAS)}")
    return kind


def maskgit_config(config: Mapping[str, Any], where: str = "RandAR config") -> MaskGITConfig:
    """The ``tokenizer`` section of a ``maskgit`` config -> RAR's :class:`MaskGITConfig`."""
    t = config["tokenizer"]
    try:
        cfg = MaskGITConfig(hidden_channels=t["hidden_channels"], channel_mult=tuple(t["channel_mult"]),
                            num_res_blocks=t.get("num_res_blocks", 2), z_channels=t["z_channels"],
                            num_channels=t.get("num_channels", 3), codebook_size=t["num_embeddings"],
                            image_size=config["image_size"])
    except KeyError as e:
        raise ConfigError(f"{where}: the MaskGIT tokenizer config lacks {e.args[0]!r}") from None
    for key, want in (("num_resolutions", len(cfg.channel_mult)), ("embedding_dim", cfg.z_channels), ("dropout", 0.0)):
        if key in t and t[key] != want:
            raise ConfigError(f"{where}: tokenizer.{key} is {t[key]!r}, expected {want!r} for this tokenizer")
    if cfg.image_size % cfg.downsample:
        raise ConfigError(f"{where}: image_size {cfg.image_size} is not a multiple of the downsampling {cfg.downsample}")
    return cfg


def _tokenizer_config(config: Mapping[str, Any], where: str):
    return maskgit_config(config, where) if tokenizer_kind(config, where) == "maskgit" else vq16.config(config, where)


def gpt_config(config: Mapping[str, Any], where: str = "RandAR config") -> GPTConfig:
    """The ``transformer`` section -> LlamaGen's :class:`GPTConfig` (checked, and against the tokenizer)."""
    t = config.get("transformer")
    if not isinstance(t, Mapping):
        raise ConfigError(f"{where}: lacks the 'transformer' section (see the conformance config.json)")
    if t.get("model_type", "c2i") != "c2i":
        raise ConfigError(f"{where}: only class-conditional RandAR models (model_type 'c2i'), got {t['model_type']!r}")
    try:
        cfg = GPTConfig(**{k: t[k] for k in _GPT_REQUIRED}, **{k: t[k] for k in _GPT_OPTIONAL if k in t})
        cfg.validate()
    except KeyError as e:
        raise ConfigError(f"{where}: transformer lacks {e.args[0]!r}") from None
    except ValueError as e:
        raise ConfigError(f"{where}: transformer: {e}") from None
    if "tokenizer" in config:
        tok = _tokenizer_config(config, where)
        if tok.grid ** 2 != cfg.block_size or tok.codebook_size != cfg.vocab_size:
            raise ConfigError(f"{where}: the tokenizer gives {tok.grid}x{tok.grid} tokens of {tok.codebook_size} codes, "
                              f"the generator expects block_size {cfg.block_size} of vocab_size {cfg.vocab_size}")
    return cfg


class RandARFamily:
    """Builds and loads RandAR generators and their two tokenizers (``visbpp.core.interfaces.Family``)."""

    name = "randar"

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def config_for(self, model_id: str) -> dict[str, Any]:
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "RandAR config") -> Mapping[str, Any]:
        """Keys and types (the schema of its tokenizer kind), sizes and the scoring order; errors name ``where``."""
        if not isinstance(config, Mapping):
            raise ConfigError(f"{where}: a RandAR config must be a JSON object, got {type(config).__name__}")
        check_config(config, SCHEMAS[tokenizer_kind(config, where)], where)
        gpt_config(config, where)
        config_order(config, where, official.DEFAULT_ORDER)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]):
        from ..llamagen.tokenizer import VQTokenizer

        tok = _tokenizer_config(self.parse_config(config), "RandAR config")
        return RandARMaskGIT(tok) if isinstance(tok, MaskGITConfig) else VQTokenizer(tok)

    def build_transformer(self, config: Mapping[str, Any], tokenizer=None) -> RandAR:
        cfg = gpt_config(self.parse_config(config))
        if tokenizer is not None and (tokenizer.tokens_per_image, tokenizer.vocab_size) != (cfg.block_size, cfg.vocab_size):
            raise ConfigError(f"tokenizer gives {tokenizer.tokens_per_image} tokens of {tokenizer.vocab_size} codes, the "
                              f"generator expects {cfg.block_size} of {cfg.vocab_size}")
        return RandAR(cfg, config_order(config, "RandAR config", official.DEFAULT_ORDER))

    def load_tokenizer(self, path: str, config: Mapping[str, Any]):
        tok = _tokenizer_config(self.parse_config(config), "RandAR config")
        if isinstance(tok, MaskGITConfig):
            return build_and_load(path, lambda: RandARMaskGIT(tok), containers=("model", None))
        return vq16.load(path, tok, config.get("tokenizer_container", "model"))

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer=None) -> RandAR:
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer), containers=(None,),
                              drop=("freqs_cis", "causal_mask"))


FAMILY = RandARFamily()
