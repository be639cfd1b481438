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

import copy
from pathlib import Path
from typing import Any, Mapping

import torch

from visbpp.core.checkpoint_io import CheckpointError, strict_load, unwrap
from visbpp.core.registry import get_card

from . import config as _config
from .ckpt import read_lightning_checkpoint
from .gpt import ClassConditionalGPT, GPTConfig, structural_mask
from .vqgan import VQGAN, VQGANConfig

FIRST_STAGE = "first_stage_model."
TRANSFORMER = "transformer."
LOSS = "loss."


def _state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    return unwrap(read_lightning_checkpoint(path), ("state_dict", None), str(path))


def _first_keys(keys, n: int = 5) -> str:
    return ", ".join(list(keys)[:n])


class TamingFamily:
    name = "taming"

    # ------------------------------------------------------------------ configs
    def config_for(self, model_id: str) -> dict[str, Any]:
        card = get_card(model_id)
        if card.family != self.name or card.id not in _config.REAL_CONFIGS:
            raise KeyError(f"{model_id!r} is not a taming size; taming sizes: {', '.join(_config.REAL_CONFIGS)}")
        return copy.deepcopy(_config.REAL_CONFIGS[card.id])

    # ------------------------------------------------------------------ building
    def build_tokenizer(self, config: Mapping[str, Any]) -> VQGAN:
        return VQGAN(VQGANConfig.from_config(config)).eval()

    def build_transformer(self, config: Mapping[str, Any], tokenizer: VQGAN | None = None) -> ClassConditionalGPT:
        cfg = GPTConfig.from_config(config)
        if tokenizer is not None and tokenizer.vocab_size != cfg.vocab_size:
            raise ValueError(f"taming: GPT vocab_size {cfg.vocab_size} != tokenizer codebook {tokenizer.vocab_size}")
        return ClassConditionalGPT(cfg).eval()

    # ------------------------------------------------------------------ loading
    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> VQGAN:
        """From the VQGAN file (``loss.*`` dropped) or the cin transformer file (``first_stage_model.*``)."""
        sd = _state_dict(path)
        if any(k.startswith(FIRST_STAGE) for k in sd):
            others = [k for k in sd if not k.startswith((FIRST_STAGE, TRANSFORMER))]
            if others:
                raise CheckpointError(f"{path}: unexpected key(s) beside first_stage_model.* and transformer.*, "
                                      f"first: {_first_keys(others)}")
            sd = {k[len(FIRST_STAGE):]: v for k, v in sd.items() if k.startswith(FIRST_STAGE)}
        config, diffs = _config.resolve(config, path, "tokenizer")
        with torch.device("meta"):
            model = VQGAN(VQGANConfig.from_config(config))
        strict_load(model, sd, str(path), drop_prefixes=(LOSS,))
        model.config_disagreements = diffs
        return model.eval().requires_grad_(False)

    def load_transformer(self, path: str, config: Mapping[str, Any],
                         tokenizer: VQGAN | None = None) -> ClassConditionalGPT:
        """From the cin transformer file; its ``first_stage_model.*`` part is the tokenizer's."""
        sd = _state_dict(path)
        if not any(k.startswith(TRANSFORMER) for k in sd):
            raise CheckpointError(f"{path}: no 'transformer.*' keys, so this is not a taming class-conditional "
                                  f"transformer checkpoint (first keys: {_first_keys(sd)}). A VQGAN file only "
                                  "holds the tokenizer.")
        config, diffs = _config.resolve(config, path, "transformer")
        with torch.device("meta"):
            model = self.build_transformer(config, tokenizer)
        strict_load(model, sd, str(path), drop_prefixes=(FIRST_STAGE,))
        want = structural_mask(model.cfg.block_size, model.cfg.n_unmasked)
        for i, block in enumerate(model.transformer.blocks):
            if not torch.equal(block.attn.mask.cpu(), want):
                raise CheckpointError(f"{path}: transformer.blocks.{i}.attn.mask is not the causal mask of "
                                      f"block_size {model.cfg.block_size} (n_unmasked {model.cfg.n_unmasked})")
        model.config_disagreements = diffs
        return model.eval().requires_grad_(False)


FAMILY = TamingFamily()
