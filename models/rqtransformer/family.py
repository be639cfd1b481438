"""The RQ-Transformer Family: configurations per registered size, building and strict loading.

A configuration is a dict in the schema of the conformance ``config.json``: ``tokenizer`` is
the stage-1 ``arch`` section (``hparams`` + ``ddconfig``), ``transformer`` the stage-2 ``arch``
section with the upstream defaults merged, plus ``image_size``, ``num_classes``,
``code_shape``, ``tokens_per_image``, ``vocab_size``, ``downsample_factor`` and
``checkpoint_container``. Registered sizes and user files share this one code path.

Checkpoints are ``{"state_dict": sd}`` dicts (a bare state dict is accepted too);
``ema=True`` selects ``state_dict_ema`` instead, explicitly.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.checkpoint_io import CheckpointError, read_checkpoint, unwrap
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from .rqvae import RQVAE, RQVAEConfig
from .schema import SCHEMA
from .transformer import RQTransformer, RQTransformerConfig


def _tokenizer_config(config: Mapping[str, Any]) -> RQVAEConfig:
    FAMILY.parse_config(config)
    if "tokenizer" not in config:
        raise ValueError(f"RQ-Transformer config: missing 'tokenizer' section (keys: {sorted(config)})")
    cfg = RQVAEConfig.from_arch(config["tokenizer"])
    if "image_size" in config and int(config["image_size"]) != cfg.resolution:
        raise ValueError(f"RQ-Transformer config: image_size {config['image_size']} != tokenizer resolution {cfg.resolution}")
    return cfg


def _transformer_config(config: Mapping[str, Any]) -> RQTransformerConfig:
    FAMILY.parse_config(config)
    if "transformer" not in config:
        raise ValueError(f"RQ-Transformer config: missing 'transformer' section (keys: {sorted(config)})")
    return RQTransformerConfig.from_arch(config["transformer"])


def _state_dict(path: str, ema: bool) -> dict:
    obj = read_checkpoint(path)
    if ema:
        if "state_dict_ema" not in obj:
            raise CheckpointError(
                f"{path}: no 'state_dict_ema' in this file (top-level keys: {', '.join(sorted(map(str, obj))[:8])}); "
                f"load it without the EMA option to use 'state_dict'"
            )
        return unwrap(obj, ("state_dict_ema",), path)
    return unwrap(obj, ("state_dict", None), path)


def _check_aliases(model: RQVAE, sd: Mapping[str, torch.Tensor], path: str) -> None:
    """With a shared codebook every ``quantizer.codebooks.<d>.*`` name must hold the same values."""
    books = model.quantizer.codebooks
    if not all(b is books[0] for b in books):
        return
    for leaf in ("weight", "cluster_size_ema", "embed_ema"):
        names = [f"quantizer.codebooks.{d}.{leaf}" for d in range(len(books))]
        tensors = [sd[n] for n in names if n in sd]
        if len(tensors) != len(names):
            return  # strict_load reports the missing names
        first = tensors[0]
        for n, t in zip(names[1:], tensors[1:]):
            same = t.data_ptr() == first.data_ptr() and t.shape == first.shape
            if not same and (t.shape != first.shape or not torch.equal(t, first)):
                raise CheckpointError(
                    f"{path}: the RQ-VAE codebook is shared by all depths, but {n} differs from {names[0]}; "
                    f"this file does not come from a shared-codebook RQ-VAE with this config"
                )


class RQTransformerFamily:
    """Builds and loads the RQ-VAE and the RQ-Transformer (see the module docstring)."""

    name = "rqtransformer"

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "RQ-Transformer config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema (unknown keys and wrong types are errors)."""
        check_config(config, SCHEMA, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> RQVAE:
        return RQVAE(_tokenizer_config(config)).eval()

    def build_transformer(self, config: Mapping[str, Any], tokenizer: RQVAE | None = None) -> RQTransformer:
        return RQTransformer(_transformer_config(config), tokenizer).eval()

    def load_tokenizer(self, path: str | os.PathLike, config: Mapping[str, Any], *, ema: bool = False) -> RQVAE:
        """RQ-VAE from ``path`` (``{"state_dict": sd}``; ``ema=True``: ``state_dict_ema``), float32, eval."""
        path = os.fspath(path)
        cfg = _tokenizer_config(config)

        def select(sd: dict, model: RQVAE, path: str) -> dict:
            _check_aliases(model, sd, path)
            return sd

        return build_and_load(path, lambda: RQVAE(cfg), state_dict=_state_dict(path, ema), select=select)

    def load_transformer(
        self, path: str | os.PathLike, config: Mapping[str, Any], tokenizer: RQVAE | None = None, *, ema: bool = False
    ) -> RQTransformer:
        """RQ-Transformer from ``path``; ``tokenizer`` (the RQ-VAE of the same archive) embeds the codes."""
        path = os.fspath(path)
        if tokenizer is None:
            raise ValueError(
                "RQ-Transformer has no token embedding of its own; pass the RQ-VAE tokenizer of the same "
                "archive: load_transformer(path, config, tokenizer)"
            )
        cfg = _transformer_config(config)
        model = build_and_load(path, lambda: RQTransformer(cfg), state_dict=_state_dict(path, ema))
        model.attach_tokenizer(tokenizer)
        return model


FAMILY = RQTransformerFamily()
