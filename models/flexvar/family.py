"""The FlexVAR :class:`~visbpp.core.interfaces.Family`: configs per size id, building and strict loading.

Containers (spec): the tokenizer file is ``{"model": state_dict}`` (``build_vae_var`` reads
``["model"]``, never an ``ema`` copy; a bare re-saved state dict is accepted too); a transformer
file is a bare state dict or a ``train.py`` checkpoint, whose model is
``["trainer"]["var_wo_ddp"]``. The stored ``attn_bias_for_masking`` is dropped: it holds whatever
mask the last training step left (any shape); the mask comes from the schedule.

Training-only arguments of the config (``cond_drop_rate``, drop rates, ``token_dropout_p``,
``flash_if_available``/``fused_if_available``) are accepted and never used: scoring never drops a label.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from .official import scale_schedule
from .schema import SCHEMA
from .tokenizer import FlexVAE, FlexVAEConfig
from .transformer import FlexVAR, FlexVARConfig

TOKENIZER_CONTAINERS = ("model", None)
TRANSFORMER_CONTAINERS = (None, "trainer")
STALE_MASK = "attn_bias_for_masking"


def _section(config: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if not isinstance(config.get(key), Mapping):
        raise ConfigError(f"FlexVAR config lacks the {key!r} section (see the conformance config.json for the schema)")
    return config[key]


def vae_config(config: Mapping[str, Any]) -> FlexVAEConfig:
    """The tokenizer part of a config (+ image_size and the scale schedule) -> :class:`FlexVAEConfig`."""
    t = _section(config, "tokenizer")
    cnn = t.get("cnn") or {}
    if cnn.get("norm_type", "group") != "group" or not cnn.get("resamp_with_conv", True):
        raise ConfigError("FlexVAR tokenizer: only norm_type 'group' with resamp_with_conv true (the VQ-16 network)")
    if "image_size" not in config:
        raise ConfigError("FlexVAR config lacks 'image_size' (the side S the tokenizer runs at)")
    try:
        return FlexVAEConfig(
            codebook_size=int(t["codebook_size"]),
            codebook_embed_dim=int(t["codebook_embed_dim"]),
            codebook_l2_norm=bool(t.get("codebook_l2_norm", True)),
            codebook_show_usage=bool(t.get("codebook_show_usage", True)),
            encoder_ch_mult=tuple(t.get("encoder_ch_mult", (1, 1, 2, 2, 4))),
            decoder_ch_mult=tuple(t.get("decoder_ch_mult", (1, 1, 2, 2, 4))),
            z_channels=int(t.get("z_channels", 256)),
            ch=int(cnn.get("ch", 128)),
            num_res_blocks=int(cnn.get("num_res_blocks", 2)),
            in_channels=int(cnn.get("in_channels", 3)),
            out_channels=int(cnn.get("out_channels", 3)),
            image_size=int(config["image_size"]),
            scale_schedule=scale_schedule(config),
        )
    except KeyError as e:
        raise ConfigError(f"FlexVAR tokenizer config lacks {e.args[0]!r}") from None


def var_config(config: Mapping[str, Any]) -> FlexVARConfig:
    """The transformer part of a config (+ the tokenizer's V, Cvae and the schedule) -> :class:`FlexVARConfig`."""
    t = _section(config, "transformer")
    vae = vae_config(config)
    if t.get("shared_aln", False):
        raise ConfigError("FlexVAR transformer: shared_aln true is not supported (every released file has "
                          "per-block AdaLN, shared_aln false)")
    try:
        cfg = FlexVARConfig(
            num_classes=int(t["num_classes"]), depth=int(t["depth"]), embed_dim=int(t["embed_dim"]),
            num_heads=int(t["num_heads"]), mlp_ratio=float(t.get("mlp_ratio", 4.0)),
            norm_eps=float(t.get("norm_eps", 1e-6)), attn_l2_norm=bool(t.get("attn_l2_norm", True)),
            pos_grid=int(t.get("pos_grid", 32)), vocab_size=vae.codebook_size, Cvae=vae.codebook_embed_dim,
            scale_schedule=vae.scale_schedule,
        )
    except KeyError as e:
        raise ConfigError(f"FlexVAR transformer config lacks {e.args[0]!r}") from None
    for key in ("num_classes", "pos_grid"):  # also written at the top level of fixture configs
        if key in config and int(config[key]) != getattr(cfg, key):
            raise ConfigError(f"FlexVAR config: {key} {config[key]} differs from transformer.{key} {getattr(cfg, key)}")
    if cfg.embed_dim % cfg.num_heads:
        raise ConfigError(f"FlexVAR transformer: embed_dim {cfg.embed_dim} is not divisible by num_heads {cfg.num_heads}")
    return cfg


class FlexVARFamily:
    """Builds and loads FlexVAR tokenizers and transformers."""

    name = "flexvar"

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' values in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "FlexVAR config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, SCHEMA, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> FlexVAE:
        return FlexVAE(vae_config(self.parse_config(config)))

    def build_transformer(self, config: Mapping[str, Any], tokenizer: FlexVAE | None = None) -> FlexVAR:
        model = FlexVAR(var_config(self.parse_config(config)))
        if tokenizer is not None:
            model.attach_tokenizer(tokenizer)
        return model

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> FlexVAE:
        cfg = vae_config(self.parse_config(config))
        return build_and_load(path, lambda: FlexVAE(cfg), containers=TOKENIZER_CONTAINERS, select=_tokenizer_only)

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: FlexVAE | None = None) -> FlexVAR:
        if tokenizer is None:
            raise ValueError("FlexVAR needs its tokenizer to score (the transformer input is built from the "
                             "codebook): load_transformer(path, config, tokenizer)")
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer),
                              containers=TRANSFORMER_CONTAINERS, select=_transformer_only, drop=(STALE_MASK,),
                              check=_check_zero_k_bias)


def _tokenizer_only(sd: dict, model: FlexVAE, path: str) -> dict:
    if "class_emb.weight" in sd and "encoder.conv_in.weight" not in sd:
        raise CheckpointError(f"{path}: this is a transformer file (FlexVARd*.pth or VAR's var_d*.pth), not the "
                              f"FlexVAE tokenizer (FlexVAE.pth)")
    if any(k.startswith(("quantize.quant_resi.", "encoder.down.")) for k in sd):
        raise CheckpointError(f"{path}: this is VAR's multi-scale VQVAE (vae_ch160v4096z32.pth), not FlexVAE.pth "
                              f"(LlamaGen's VQ-16 network); score VAR files with --family var")
    book = sd.get("quantize.embedding.weight")
    want = tuple(model.quantize.embedding.weight.shape)
    if book is not None and tuple(book.shape) != want:
        raise CheckpointError(f"{path}: codebook {tuple(book.shape)} but the config's FlexVAE has {want} "
                              f"(FlexVAE.pth: 8912 x 32; LlamaGen's own VQ-16 files have 16384 x 8)")
    return sd


def _transformer_only(sd: dict, _model: FlexVAR, path: str) -> dict:
    inner = sd.get("var_wo_ddp")
    if isinstance(inner, Mapping):  # a train.py checkpoint: {"trainer": {"var_wo_ddp": ..., "vae_local": ...}}
        sd = dict(inner)
    if "lvl_embed.weight" in sd or "lvl_1L" in sd:
        raise CheckpointError(f"{path}: this is a VAR transformer (var_d*.pth: level embedding lvl_embed, "
                              f"per-position pos_1LC), not FlexVAR; score it with --family var")
    if "encoder.conv_in.weight" in sd and "class_emb.weight" not in sd:
        raise CheckpointError(f"{path}: this is a tokenizer file (FlexVAE.pth), not a FlexVAR transformer "
                              f"(FlexVARd*-epo*.pth)")
    return sd


def _check_zero_k_bias(model: FlexVAR, path: str) -> None:
    for i, b in enumerate(model.blocks):
        if torch.count_nonzero(b.attn.zero_k_bias):
            raise CheckpointError(f"{path}: buffer blocks.{i}.attn.zero_k_bias is not all zeros")


FAMILY = FlexVARFamily()
