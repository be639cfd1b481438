"""The RAR :class:`~visbpp.core.interfaces.Family`: configs per card, building and strict loading.

``config_for(id)`` = the base config of the card's tokenizer variant (``BASES``, the schema of
the conformance ``config.json``; the tokenizer card's ``arch["variant"]``) with the card's
generator sizes (``card.arch``) filled in. Every load is one ``core.build.build_and_load``:
the MaskGIT-VQGAN tokenizer and every generator are bare state dicts; the RobusTok tokenizer is
a training checkpoint (read by core's reader: its ``argparse.Namespace`` becomes plain data)
whose ``ema`` weights are the tokenizer (its raw ``model`` weights are checked for layout only,
as the official loader loads them strictly before the EMA weights).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.catalog import model_cards
from visbpp.core.registry.checkpoint_io import read_checkpoint, unwrap

from .. import config_for
from .config import typed_config
from .generator import RAR
from .maskgit_vqgan import MaskGITTokenizer
from .official import BASES  # noqa: F401 - re-exported
from .robusttok import RobusTokTokenizer, level_index

# keys of a RobusTok training checkpoint that inference does not use
ROBUSTTOK_DROP_PREFIXES = ("semantic_model.",)
ROBUSTTOK_DROP = ("quantize.ema_vocab_hit_SV",)
# reAR files (qyoo/reAR, safetensors): the RAR generator plus two training-only alignment heads
REAR_DROP_PREFIXES = ("encode_align_mlp.", "decode_align_mlp.")


def _refuse_generator_file(sd: dict, module: Any, path: str) -> dict:
    if "embeddings.weight" in sd and "encoder.conv_in.weight" not in sd:
        raise CheckpointError(f"{path}: this is a RAR generator file (rar_*.bin), not the MaskGIT-VQGAN "
                              f"tokenizer (maskgit-vqgan-imagenet-f16-256.bin)")
    return sd


def _refuse_tokenizer_file(sd: dict, module: Any, path: str) -> dict:
    if "encoder.conv_in.weight" in sd and "embeddings.weight" not in sd:
        raise CheckpointError(f"{path}: this is the MaskGIT-VQGAN tokenizer file, not a RAR generator (rar_*.bin)")
    return sd


def _robusttok_parts(obj: Mapping[str, Any], path: str) -> tuple[dict, dict]:
    """The ``ema`` (the tokenizer) and raw ``model`` state dicts of a RobusTok training checkpoint."""
    if not isinstance(obj.get("ema"), Mapping) or not isinstance(obj.get("model"), Mapping):
        top = ", ".join(sorted(map(str, obj))[:8])
        raise CheckpointError(f"{path}: expected a RobusTok training checkpoint with 'model' and 'ema' weights "
                              f"(main-train.pt / post-train.pt); top-level keys are [{top}]")
    return unwrap(obj, ("ema",), path), dict(obj["model"])


def _robusttok_check(cfg, raw: Mapping[str, Any]) -> Any:
    """After loading the EMA weights: the raw ``model`` weights have the module's layout (the official
    loader loads them strictly first), and the level-index buffers are the ones the config implies."""
    def check(module: Any, path: str) -> None:
        want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in raw.items()
               if k not in ROBUSTTOK_DROP and not k.startswith(ROBUSTTOK_DROP_PREFIXES) and hasattr(v, "shape")}
        if got != want:
            diff = sorted({k for k, _ in set(got.items()) ^ set(want.items())})
            raise CheckpointError(f"{path}: its raw 'model' weights do not have the layout of its 'ema' weights "
                                  f"(first differing keys: {', '.join(diff[:5])}); not a RobusTok training checkpoint")
        for name, lvl in (("encoder", level_index(cfg.num_patches + 1, cfg.num_latent_tokens)),
                          ("decoder", level_index(cfg.num_patches + 1, cfg.num_latent_tokens + 1))):
            if not torch.equal(getattr(module, name).lvl1LC, lvl):
                raise CheckpointError(f"{path}: buffer {name}.lvl1LC is not {cfg.num_patches + 1} zeros then ones; "
                                      f"wrong image/patch size in the config?")
    return check


class RARFamily:
    """Builds and loads RAR generators and their two tokenizers (MaskGIT-VQGAN, RobusTok)."""

    name = "rar"

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def parse_config(self, config: Mapping[str, Any], where: str = "RAR config") -> Mapping[str, Any]:
        """Check ``config`` (either variant) against its schema and for consistent sizes; errors name ``where``."""
        typed_config(config, where)
        return config

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def build_tokenizer(self, config: Mapping[str, Any]):
        p = typed_config(config)
        return MaskGITTokenizer(p.tokenizer) if p.variant == "maskgit" else RobusTokTokenizer(p.tokenizer)

    def build_transformer(self, config: Mapping[str, Any], tokenizer=None) -> RAR:
        p = typed_config(config)
        if tokenizer is not None and (tokenizer.tokens_per_image, tokenizer.vocab_size) != (
                p.generator.image_seq_len, p.generator.codebook_size):
            raise ConfigError(f"tokenizer gives {tokenizer.tokens_per_image} tokens of {tokenizer.vocab_size} codes, the "
                              f"generator expects {p.generator.image_seq_len} of {p.generator.codebook_size}")
        return RAR(p.generator)

    def load_tokenizer(self, path: str, config: Mapping[str, Any]):
        """MaskGIT-VQGAN: a bare state dict. RobusTok: a training checkpoint whose ``ema`` weights are the tokenizer."""
        p = typed_config(config)
        if p.variant == "maskgit":
            return build_and_load(path, lambda: MaskGITTokenizer(p.tokenizer), containers=(None,),
                                  select=_refuse_generator_file)
        ema, raw = _robusttok_parts(read_checkpoint(path), str(path))
        return build_and_load(path, lambda: RobusTokTokenizer(p.tokenizer), state_dict=ema,
                              drop=ROBUSTTOK_DROP, drop_prefixes=ROBUSTTOK_DROP_PREFIXES,
                              check=_robusttok_check(p.tokenizer, raw))

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer=None) -> RAR:
        """Every generator file (``rar_*.bin``, both releases; reAR's ``.safetensors``) is a bare state dict;
        reAR's training-only alignment heads are dropped."""
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer), containers=(None,),
                              select=_refuse_tokenizer_file, drop_prefixes=REAR_DROP_PREFIXES)


FAMILY = RARFamily()
