"""The PAR Family: LlamaGen's tokenizer (inherited), PAR's GPT, strict loading.

Configs use the LlamaGen schema (upstream argument names) with PAR's GPT arguments
``ar_token_num`` (n) and ``spe_token_num`` (n - 1) in ``transformer``. The tokenizer is LlamaGen's
VQ-16 built and loaded by LlamaGen's code, so its tokens (and the token cache) are LlamaGen's.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Mapping

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.config_schema import check_config

from ..llamagen.family import LlamaGenFamily, gpt_config
from ..llamagen.tokenizer import VQTokenizer
from .gpt import PARGPT, PARConfig
from .schema import SCHEMA

# The official sampler's order (never an ``ema`` entry); a bare state dict last.
CONTAINERS = ("model", "module", "state_dict", None)
SPECIAL_KEY = "spe_tok_embeddings.special_embeddings.weight"


def par_config(config: Mapping[str, Any]) -> PARConfig:
    """The transformer part of a config -> :class:`PARConfig` (LlamaGen's trunk checks, then PAR's)."""
    base = gpt_config(config)
    t = config["transformer"]
    if "ar_token_num" not in t:
        raise ConfigError("PAR config lacks transformer.ar_token_num (n, tokens per parallel step: 4 for the "
                          "4x models, 16 for PAR-3B-16x; n - 1 = rows of the file's special-token table)")
    n = int(t["ar_token_num"])
    cfg = PARConfig(**{f.name: getattr(base, f.name) for f in fields(base)}, ar_token_num=n,
                    spe_token_num=int(t.get("spe_token_num", n - 1)))
    try:
        cfg.validate()
    except ValueError as e:
        raise ConfigError(f"PAR transformer config: {e}") from None
    return cfg


def _special_table(cfg: PARConfig):
    """``select`` of the transformer load: the file must be a PAR file with this config's n."""

    def check(sd: dict, module: Any, path: str) -> dict:
        if SPECIAL_KEY not in sd:
            raise CheckpointError(f"{path}: no special-token table {SPECIAL_KEY}: not a PAR model (a LlamaGen GPT, "
                                  f"raster order?); score a LlamaGen file with --family llamagen")
        rows = int(sd[SPECIAL_KEY].shape[0])
        if rows != cfg.spe_token_num:
            raise CheckpointError(f"{path}: its special-token table has {rows} rows, a PAR model with n = {rows + 1} "
                                  f"tokens per parallel step; the config says ar_token_num {cfg.ar_token_num}: set "
                                  f"transformer.ar_token_num {rows + 1} (PAR-3B-16x: 16, the 4x models: 4)")
        return sd

    return check


class PARFamily(LlamaGenFamily):
    """Builds and loads PAR transformers; tokenizers are LlamaGen's (``visbpp.core.interfaces.Family``)."""

    name = "par"
    tokenizer_family = "llamagen"  # its tokenizer code and cached tokens are LlamaGen's

    def parse_config(self, config: Mapping[str, Any], where: str = "PAR config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, SCHEMA, where)
        return config

    def build_transformer(self, config: Mapping[str, Any], tokenizer: VQTokenizer | None = None) -> PARGPT:
        cfg = par_config(self.parse_config(config))
        if tokenizer is not None and tokenizer.tokens_per_image != cfg.block_size:
            raise ConfigError(f"tokenizer gives {tokenizer.tokens_per_image} tokens per image but the transformer's "
                              f"block_size is {cfg.block_size}")
        return PARGPT(cfg)

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: VQTokenizer | None = None) -> PARGPT:
        cfg = par_config(self.parse_config(config))
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer), containers=CONTAINERS,
                              select=_special_table(cfg))


FAMILY = PARFamily()
