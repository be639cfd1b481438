"""The GigaTok Family: config of a registered model (base config + its cards' architecture data),
building, and strict loading of the official containers through ``core/build.build_and_load``.

Tokenizer files: the state dict under ``ema``, else ``model``, else ``state_dict`` (else a bare
state dict); it must hold exactly the official keys, or exactly the encode-path keys (then the
tokenizer encodes but cannot decode). GPT files: ``model``, ``module``, ``state_dict`` (else
bare); exactly the official keys (a stray top-level ``freqs_cis`` is dropped). A LlamaGen GPT
(2-D RoPE, no ``positional_embedding``) is refused with a message saying so. Training extras
such as an argparse ``args`` entry are read as plain data by core's reader, never executed.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from torch import nn

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load, build_on_meta
from visbpp.core.registry.catalog import model_cards

from .. import config_for
from .config import gigatok_config
from .gpt import GPT
from .official import TOKENIZER_BASE, TRANSFORMER_BASE  # noqa: F401 - re-exported
from .tokenizer import ENCODE_PREFIXES, GigaTokTokenizer, TokenizerConfig

TOKENIZER_CONTAINERS = ("ema", "model", "state_dict", None)
TRANSFORMER_CONTAINERS = ("model", "module", "state_dict", None)
# keys a GPT trained with an upstream switch that no released model uses would carry
_SWITCH_KEYS = ("q_norm", "k_norm", "adaLN", "ada_gss")


def _tokenizer_select(cfg: TokenizerConfig, with_decoder: bool):
    """Select hook: a full file or one with exactly the encode path; for encoding only, the decoder-side
    entries of a full file are left out (never loaded into memory)."""

    def select(sd: dict, module: nn.Module, path: str) -> dict:
        full = set(build_on_meta(lambda: GigaTokTokenizer(cfg, with_decoder=True)).state_dict())
        encode = {k for k in full if k.startswith(ENCODE_PREFIXES)}
        decode_side = full - encode  # post_quant_conv, s1to2decoder (+ distillation head), decoder, codebook_used
        keys = set(sd)
        if keys == encode and with_decoder:
            raise CheckpointError(f"{path}: holds only the encode path of the tokenizer; decoding needs the full file")
        if with_decoder or not keys & decode_side:
            return sd  # strict loading names any other mismatch
        if not decode_side <= keys:
            missing = sorted(decode_side - keys)
            raise CheckpointError(f"{path}: holds only part of the tokenizer's decoder ({len(missing)} decoder key(s) "
                                  f"missing, first: {', '.join(missing[:5])}); give the full official file")
        return {k: v for k, v in sd.items() if k not in decode_side}

    return select


def _refuse_rope_gpt(sd: dict, module: nn.Module, path: str) -> dict:
    """Refuse, never drop: a GPT without the position table (LlamaGen, 2-D RoPE) or with keys of upstream
    switches that no released model uses is a different model."""
    if "positional_embedding" not in sd and "tok_embeddings.weight" in sd:
        raise CheckpointError(
            f"{path}: has no 'positional_embedding': this is not a GigaTok 1-D GPT (a LlamaGen GPT with 2-D RoPE?). "
            f"Score it with --family llamagen, or give the GigaTok GPT file.")
    switches = [k for k in sd if any(f".{s}" in f".{k}" for s in _SWITCH_KEYS)]
    if switches:
        raise CheckpointError(
            f"{path}: keys of a GPT trained with qk-norm/adaLN switches that the released models do not use "
            f"(first: {', '.join(switches[:3])}); this implementation does not support them.")
    return sd


class GigaTokFamily:
    """Builds and loads GigaTok tokenizers and GPTs (``visbpp.core.interfaces.Family``)."""

    name = "gigatok"

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "GigaTok config") -> Mapping[str, Any]:
        """Check ``config`` (schema, released switch values, tokenizer/GPT agreement); errors name ``where``."""
        gigatok_config(config, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any], with_decoder: bool = True) -> GigaTokTokenizer:
        cfg = gigatok_config(config).tokenizer
        if cfg is None:
            raise ConfigError("GigaTok config: the 'tokenizer' section is missing")
        return GigaTokTokenizer(cfg, with_decoder=with_decoder)

    def build_transformer(self, config: Mapping[str, Any], tokenizer: GigaTokTokenizer | None = None) -> GPT:
        cfg = gigatok_config(config).transformer
        if cfg is None:
            raise ConfigError("GigaTok config: the 'transformer' section is missing")
        if tokenizer is not None and tokenizer.tokens_per_image != cfg.block_size:
            raise ConfigError(
                f"tokenizer gives {tokenizer.tokens_per_image} tokens per image but the transformer's block_size is {cfg.block_size}")
        return GPT(cfg)

    def load_tokenizer(self, path: str, config: Mapping[str, Any], with_decoder: bool = False) -> GigaTokTokenizer:
        """Strict load; ``with_decoder=False`` keeps only the encode path in memory (all scoring needs) and
        loads the decoder side from the same file on the first ``decode`` (``visbpp run --recon``)."""
        cfg = gigatok_config(config).tokenizer
        if cfg is None:
            raise ConfigError("GigaTok config: the 'tokenizer' section is missing")
        tok = build_and_load(path, lambda: GigaTokTokenizer(cfg, with_decoder=with_decoder),
                             containers=TOKENIZER_CONTAINERS, select=_tokenizer_select(cfg, with_decoder))
        if not with_decoder:
            tok.decoder_source = functools.partial(self.load_tokenizer, path, config, True)
        return tok

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: GigaTokTokenizer | None = None) -> GPT:
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer),
                              containers=TRANSFORMER_CONTAINERS, select=_refuse_rope_gpt,
                              drop=("freqs_cis",))  # a RoPE table some samplers leave in; the model has none


FAMILY = GigaTokFamily()
