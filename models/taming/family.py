"""The taming :class:`~visbpp.core.interfaces.Family`: configs, building and strict loading.

Checkpoint files (Lightning, weights under ``"state_dict"``):

- VQGAN ``last.ckpt``: ``encoder.*``, ``quant_conv.*``, ``quantize.embedding.weight``,
  ``post_quant_conv.*``, ``decoder.*`` plus the training loss networks ``loss.*``
  (perceptual loss and discriminator), which are dropped explicitly;
- cin transformer ``last.ckpt``: the whole model, ``first_stage_model.*`` (the VQGAN
  above without ``loss.*``) + ``transformer.*`` (the GPT, one ``attn.mask`` buffer per
  block). This file alone is enough to score: :meth:`TamingFamily.load_tokenizer`
  accepts it as well as the VQGAN file.

Everything else must match exactly; modules are built on the meta device and the file's
tensors assigned (cast to float32).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from . import config as _config
from .gpt import ClassConditionalGPT, GPTConfig, structural_mask
from .schema import SCHEMA
from .vqgan import VQGAN, VQGANConfig

FIRST_STAGE = "first_stage_model."
TRANSFORMER = "transformer."
LOSS = "loss."


CONTAINERS = ("state_dict", None)  # Lightning ``{"state_dict": sd}``; a bare state dict is accepted


def _first_keys(keys, n: int = 5) -> str:
    return ", ".join(list(keys)[:n])


class TamingFamily:
    name = "taming"

    # ------------------------------------------------------------------ configs
    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

    # ------------------------------------------------------------------ building
    def parse_config(self, config: Mapping[str, Any], where: str = "taming config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, SCHEMA, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> VQGAN:
        return VQGAN(VQGANConfig.from_config(self.parse_config(config))).eval()

    def build_transformer(self, config: Mapping[str, Any], tokenizer: VQGAN | None = None) -> ClassConditionalGPT:
        cfg = GPTConfig.from_config(self.parse_config(config))
        if tokenizer is not None and tokenizer.vocab_size != cfg.vocab_size:
            raise ValueError(f"taming: GPT vocab_size {cfg.vocab_size} != tokenizer codebook {tokenizer.vocab_size}")
        return ClassConditionalGPT(cfg).eval()

    # ------------------------------------------------------------------ loading
    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> VQGAN:
        """From the VQGAN file (``loss.*`` dropped) or the cin transformer file (``first_stage_model.*``)."""
        config, diffs = _config.resolve(self.parse_config(config), path, "tokenizer")
        cfg = VQGANConfig.from_config(config)
        model = build_and_load(path, lambda: VQGAN(cfg), containers=CONTAINERS, select=_tokenizer_part,
                               drop_prefixes=(LOSS,))
        model.config_disagreements = diffs
        return model

    def load_transformer(self, path: str, config: Mapping[str, Any],
                         tokenizer: VQGAN | None = None) -> ClassConditionalGPT:
        """From the cin transformer file; its ``first_stage_model.*`` part is the tokenizer's."""
        config, diffs = _config.resolve(self.parse_config(config), path, "transformer")
        model = build_and_load(path, lambda: self.build_transformer(config, tokenizer), containers=CONTAINERS,
                               select=_require_transformer, drop_prefixes=(FIRST_STAGE,), check=_check_masks)
        model.config_disagreements = diffs
        return model


def _tokenizer_part(sd: dict, _model: object, path: str) -> dict:
    """The VQGAN file as is, or the ``first_stage_model.*`` part of a cin transformer file."""
    if not any(k.startswith(FIRST_STAGE) for k in sd):
        return sd
    others = [k for k in sd if not k.startswith((FIRST_STAGE, TRANSFORMER))]
    if others:
        raise CheckpointError(f"{path}: unexpected key(s) beside first_stage_model.* and transformer.*, "
                              f"first: {_first_keys(others)}")
    return {k[len(FIRST_STAGE):]: v for k, v in sd.items() if k.startswith(FIRST_STAGE)}


def _require_transformer(sd: dict, _model: object, path: str) -> dict:
    if not any(k.startswith(TRANSFORMER) for k in sd):
        raise CheckpointError(f"{path}: no 'transformer.*' keys, so this is not a taming class-conditional "
                              f"transformer checkpoint (first keys: {_first_keys(sd)}). A VQGAN file only "
                              "holds the tokenizer.")
    return sd


def _check_masks(model: ClassConditionalGPT, path: str) -> None:
    """Every block's stored ``attn.mask`` must be the causal mask the config defines."""
    want = structural_mask(model.cfg.block_size, model.cfg.n_unmasked)
    for i, block in enumerate(model.transformer.blocks):
        if not torch.equal(block.attn.mask.cpu(), want):
            raise CheckpointError(f"{path}: transformer.blocks.{i}.attn.mask is not the causal mask of "
                                  f"block_size {model.cfg.block_size} (n_unmasked {model.cfg.n_unmasked})")


FAMILY = TamingFamily()
