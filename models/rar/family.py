"""The RAR :class:`~visbpp.core.interfaces.Family`: configs per card, building and strict loading.

``config_for(id)`` = the base config of the card's tokenizer (``TOKENIZER_BASES``, the schema of
the conformance ``config.json``) with the card's generator sizes (``card.arch``) filled in.
Files: the MaskGIT-VQGAN tokenizer and every generator are bare state dicts; the RobusTok
tokenizer is a training checkpoint whose ``ema`` weights are the tokenizer (its ``model``
weights are checked for layout, then replaced, as the official loader does).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch

from visbpp.core.checkpoint_io import CheckpointError, read_checkpoint, strict_load, unwrap
from visbpp.core.registry import get_card

from .ckpt import read_training_checkpoint
from .config import parse_config
from .generator import RAR
from .maskgit_vqgan import MaskGITTokenizer
from .robusttok import RobusTokTokenizer, level_index

_GENERATOR_COMMON = {"dropout": 0.1, "attn_drop": 0.1, "class_label_dropout": 0.1, "image_seq_len": 256,
                     "condition_num_classes": 1000, "use_checkpoint": False}
# base config per tokenizer card id (everything but the generator sizes)
TOKENIZER_BASES: dict[str, dict[str, Any]] = {
    "rar-maskgit-vqgan": {
        "family": "rar",
        "tokenizer": {"channel_mult": [1, 1, 2, 2, 4], "num_resolutions": 5, "dropout": 0.0, "hidden_channels": 128,
                      "num_channels": 3, "num_res_blocks": 2, "resolution": 256, "z_channels": 256},
        "tokenizer_quantizer": {"num_embeddings": 1024, "embedding_dim": 256, "commitment_cost": 0.25},
        "transformer": {"model.generator": dict(_GENERATOR_COMMON), "model.vq_model.codebook_size": 1024},
        "image_size": 256, "num_classes": 1000, "downsample": 16, "token_grid": [16, 16], "seq_len": 256,
        "tokenizer_container": None, "transformer_container": None,
    },
    "robusttok-main-train": {
        "family": "rar-robusttok",
        "tokenizer": {
            "ModelArgs": {"codebook_size": 4096, "codebook_embed_dim": 64, "codebook_l2_norm": True, "dropout_p": 0.0,
                          "v_patch_nums": [16], "enc_type": "dinov2", "dec_type": "dinov2", "semantic_guide": "dinov2",
                          "detail_guide": "none", "num_latent_tokens": 256,
                          "encoder_model": "vit_base_patch14_dinov2.lvd142m",
                          "decoder_model": "vit_base_patch14_dinov2.lvd142m", "abs_pos_embed": True, "product_quant": 1,
                          "codebook_drop": 0.1, "half_sem": False, "guide_type_1": "class", "guide_type_2": "class",
                          "lfq": False},
            "hard_coded_in_VQModel_real": {"img_size": 256, "patch_size": 16, "drop_path_rate": 0.1, "pretrained": True},
        },
        "transformer": {"model.generator": dict(_GENERATOR_COMMON), "model.vq_model.codebook_size": 4096},
        "image_size": 256, "patch_size": 16, "num_classes": 1000, "downsample": 16, "token_grid": [16, 16],
        "seq_len": 256, "tokenizer_container": "model+ema", "transformer_container": None,
    },
}
# keys of a RobusTok training checkpoint that inference does not use
ROBUSTTOK_DROP_PREFIXES = ("semantic_model.",)
ROBUSTTOK_DROP = ("quantize.ema_vocab_hit_SV",)


def _finish(module: torch.nn.Module) -> torch.nn.Module:
    module.eval()
    module.requires_grad_(False)
    return module


def _bare(path: str) -> dict[str, torch.Tensor]:
    return unwrap(read_checkpoint(path), (None,), path)


class RARFamily:
    """Builds and loads RAR generators and their two tokenizers (MaskGIT-VQGAN, RobusTok)."""

    name = "rar"

    def check_config(self, config: Mapping[str, Any], path: str) -> None:
        """Validate a user's config file before any work (errors name ``path`` and the key)."""
        parse_config(config, path)

    def config_for(self, model_id: str) -> dict[str, Any]:
        card = get_card(model_id)
        if card.family != self.name or card.tokenizer_id not in TOKENIZER_BASES or not card.arch:
            raise KeyError(f"{model_id!r} is not a RAR model")
        cfg = copy.deepcopy(TOKENIZER_BASES[card.tokenizer_id])
        cfg["model_id"] = card.id
        cfg["transformer"]["model.generator"].update(copy.deepcopy(dict(card.arch)))
        return cfg

    def build_tokenizer(self, config: Mapping[str, Any]):
        p = parse_config(config)
        return MaskGITTokenizer(p.tokenizer) if p.variant == "maskgit" else RobusTokTokenizer(p.tokenizer)

    def build_transformer(self, config: Mapping[str, Any], tokenizer=None) -> RAR:
        p = parse_config(config)
        if tokenizer is not None and (tokenizer.tokens_per_image, tokenizer.vocab_size) != (
                p.generator.image_seq_len, p.generator.codebook_size):
            raise ValueError(f"tokenizer gives {tokenizer.tokens_per_image} tokens of {tokenizer.vocab_size} codes, the "
                             f"generator expects {p.generator.image_seq_len} of {p.generator.codebook_size}")
        return RAR(p.generator)

    def load_tokenizer(self, path: str, config: Mapping[str, Any]):
        path = str(path)
        p = parse_config(config)
        with torch.device("meta"):  # every tensor comes from the file
            module = self.build_tokenizer(config)
        if p.variant == "maskgit":
            sd = _bare(path)
            if "embeddings.weight" in sd and "encoder.conv_in.weight" not in sd:
                raise CheckpointError(f"{path}: this is a RAR generator file (rar_*.bin), not the MaskGIT-VQGAN "
                                      f"tokenizer (maskgit-vqgan-imagenet-f16-256.bin)")
            strict_load(module, sd, path)
        else:
            obj = read_training_checkpoint(path)
            if "ema" not in obj or "model" not in obj:
                top = ", ".join(sorted(map(str, obj))[:8])
                raise CheckpointError(f"{path}: expected a RobusTok training checkpoint with 'model' and 'ema' weights "
                                      f"(main-train.pt / post-train.pt); top-level keys are [{top}]")
            kw = dict(drop=ROBUSTTOK_DROP, drop_prefixes=ROBUSTTOK_DROP_PREFIXES)
            raw = unwrap(obj, ("model",), path)
            strict_load(module, raw, f"{path} ['model']", **kw)   # the official loader loads 'model' first...
            strict_load(module, unwrap(obj, ("ema",), path), f"{path} ['ema']", **kw)  # ...and ends on the EMA weights
            cfg = p.tokenizer
            for name, want in (("encoder", level_index(cfg.num_patches + 1, cfg.num_latent_tokens)),
                               ("decoder", level_index(cfg.num_patches + 1, cfg.num_latent_tokens + 1))):
                if not torch.equal(getattr(module, name).lvl1LC, want):
                    raise CheckpointError(f"{path}: buffer {name}.lvl1LC is not {cfg.num_patches + 1} zeros then ones; "
                                          f"wrong image/patch size in the config?")
        return _finish(module)

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer=None) -> RAR:
        path = str(path)
        sd = _bare(path)
        if "encoder.conv_in.weight" in sd and "embeddings.weight" not in sd:
            raise CheckpointError(f"{path}: this is the MaskGIT-VQGAN tokenizer file, not a RAR generator (rar_*.bin)")
        with torch.device("meta"):
            module = self.build_transformer(config, tokenizer)
        strict_load(module, sd, path)
        return _finish(module)


FAMILY = RARFamily()
