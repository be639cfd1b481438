"""The VAR :class:`~visbpp.core.interfaces.Family`: configs per size id, building and strict loading.

A config is a mapping in the conformance ``config.json`` schema: ``tokenizer`` (official
VQVAE arguments), ``transformer`` (official VAR arguments), ``image_size``, ``patch_nums``,
``num_classes``, ``tokens_per_image``, ``vocab_size``. Both released checkpoint files are bare
state dicts (a CCA fine-tuning checkpoint keeps the transformer's under ``"trainer"``). Loading is strict except for the documented leniency of the official VQVAE loader:
a stored ``quantize.ema_vocab_hit_SV`` whose first dimension differs from the module's is
replaced by the module's own buffer (usage statistics, never used in a forward).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from .schema import SCHEMA
from .transformer import VAR, VARConfig, block_causal_bias, scale_of_positions
from .vqvae import DOWNSAMPLE, VQVAE, VQVAEConfig

EMA_KEY = "quantize.ema_vocab_hit_SV"


def _tokenizer_config(config: Mapping[str, Any]) -> VQVAEConfig:
    FAMILY.parse_config(config)
    if "tokenizer" not in config:
        raise ValueError(f"VAR config has no 'tokenizer' section (keys: {sorted(config)})")
    cfg = VQVAEConfig.from_mapping(config["tokenizer"])
    S = cfg.v_patch_nums[-1] * DOWNSAMPLE
    if "image_size" in config and int(config["image_size"]) != S:
        raise ValueError(f"VAR config: image_size {config['image_size']} does not match the last scale "
                         f"{cfg.v_patch_nums[-1]} x {DOWNSAMPLE} = {S}")
    return cfg


def _transformer_config(config: Mapping[str, Any]) -> VARConfig:
    if "transformer" not in config:
        raise ValueError(f"VAR config has no 'transformer' section (keys: {sorted(config)})")
    tok = _tokenizer_config(config)
    cfg = VARConfig.from_mapping(config["transformer"], vocab_size=tok.vocab_size, Cvae=tok.z_channels)
    if tuple(cfg.patch_nums) != tuple(tok.v_patch_nums):
        raise ValueError(f"VAR config: transformer patch_nums {cfg.patch_nums} differ from the tokenizer's "
                         f"v_patch_nums {tok.v_patch_nums}")
    return cfg


CONTAINERS = (None,)  # both released files are bare state dicts
# Transformer files: bare (var_d*.pth, the released CCA fine-tunes VAR_d*_CCA.pth) or the CCA fine-tuning run's
# own checkpoint {"epoch", "iter", "trainer": state_dict, "args"} (its trainer's state_dict is the model's).
TRANSFORMER_CONTAINERS = (None, "trainer")


class VARFamily:
    """Builds and loads VAR tokenizers and transformers."""

    name = "var"

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "VAR config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, SCHEMA, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> VQVAE:
        return VQVAE(_tokenizer_config(config))

    def build_transformer(self, config: Mapping[str, Any], tokenizer: VQVAE | None = None) -> VAR:
        model = VAR(_transformer_config(config))
        if tokenizer is not None:
            model.attach_tokenizer(tokenizer)
        return model

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> VQVAE:
        def select(sd: dict, model: VQVAE, path: str) -> dict:
            if "class_emb.weight" in sd and "encoder.conv_in.weight" not in sd:
                raise CheckpointError(f"{path}: this is a VAR transformer file (var_d*.pth), not the VQVAE tokenizer "
                                      f"(vae_ch160v4096z32.pth)")
            own = model.quantize.ema_vocab_hit_SV
            stored = sd.get(EMA_KEY)
            if stored is not None and stored.dim() >= 1 and stored.shape[0] != own.shape[0]:
                sd[EMA_KEY] = torch.zeros(own.shape)  # same leniency as the official loader; never used
            return sd

        return build_and_load(path, lambda: self.build_tokenizer(config), containers=CONTAINERS, select=select)

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: VQVAE | None = None) -> VAR:
        path = str(path)
        if tokenizer is None:
            raise ValueError("VAR needs its tokenizer to score (the transformer input is built from the VQVAE "
                             "codebook and phi convolutions): load_transformer(path, config, tokenizer)")

        def select(sd: dict, _model: VAR, path: str) -> dict:
            if "encoder.conv_in.weight" in sd and "class_emb.weight" not in sd:
                raise CheckpointError(f"{path}: this is the VAR VQVAE tokenizer file, not a VAR transformer "
                                      f"(var_d*.pth)")
            return sd

        return build_and_load(path, lambda: self.build_transformer(config, tokenizer),
                              containers=TRANSFORMER_CONTAINERS, select=select, check=_check_structural_buffers)


def _check_structural_buffers(model: VAR, path: str) -> None:
    """The stored scale index and mask must equal the ones the patch schedule defines."""
    pn = model.patch_nums
    if not torch.equal(model.lvl_1L.cpu(), scale_of_positions(pn)):
        raise CheckpointError(f"{path}: buffer lvl_1L does not match patch_nums {tuple(pn)}; wrong resolution/config?")
    if not torch.equal(model.attn_bias_for_masking.cpu(), block_causal_bias(pn)):
        raise CheckpointError(f"{path}: buffer attn_bias_for_masking is not the block-causal mask of patch_nums "
                              f"{tuple(pn)}; wrong resolution/config?")
    for i, b in enumerate(model.blocks):
        if torch.count_nonzero(b.attn.zero_k_bias):
            raise CheckpointError(f"{path}: buffer blocks.{i}.attn.zero_k_bias is not all zeros")


FAMILY = VARFamily()
