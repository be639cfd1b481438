"""The Hita Family: configs of registered ids (base config + the cards' architecture data),
building, and strict loading (``ema`` weights; the DINOv2 backbone from its own file)."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch

from visbpp.core.checkpoint_io import CheckpointError, read_checkpoint, strict_load, unwrap
from visbpp.core.checkpoints import MissingCheckpointError
from visbpp.core.registry import get_card, get_tokenizer_card

from ..taming.ckpt import read_lightning_checkpoint as read_with_extras
from .config import ConfigError, parse_config
from .gpt import HitaGPT
from .tokenizer import BACKBONE_PREFIX, HitaTokenizer

# The released tokenizer (configs/hita_vqgan*.yaml + VQ_16(z_channels=512, slots dim 12)); the
# decoder's enable_vfm_recon comes from the tokenizer card.
_HOLO = {"layer_type": "normal", "image_size": 336, "patch_size": 16, "dim": 512, "depth": 3, "num_head": 8,
         "mlp_dim": 2048, "dim_head": 64, "dropout": 0.1, "n_carrier": 128}
BASE_TOKENIZER = {
    "codebook_size": 16384, "codebook_embed_dim": 8, "codebook_slots_embed_dim": 12, "codebook_l2_norm": True,
    "codebook_show_usage": True, "commit_loss_beta": 0.25, "entropy_loss_ratio": 0.0,
    "encoder_ch_mult": [1, 1, 2, 2, 4], "decoder_ch_mult": [1, 1, 2, 2, 4], "z_channels": 512, "dropout_p": 0.0,
    "transformer_config": {
        "encoder_config": {"params": {**_HOLO, "in_channels": 1024}},
        "decoder_config": {"params": {**_HOLO, "shift_k": 4, "enable_vfm_recon": False}},
    },
    "cnn_encoder_decoder_args": {"ch": 128, "num_res_blocks": 2, "norm_type": "group", "resamp_with_conv": True,
                                 "in_channels": 3, "out_channels": 3},
    "backbone": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "img_size": 518, "patch_size": 14, "mlp_ratio": 4,
                 "num_register_tokens": 4, "ffn_layer": "mlp", "interpolate_antialias": True,
                 "interpolate_offset": 0.0, "qkv_bias": True, "proj_bias": True, "ffn_bias": True, "in_chans": 3},
}
BASE_TRANSFORMER = {"n_kv_head": None, "multiple_of": 256, "ffn_dim_multiplier": None, "rope_base": 10000,
                    "norm_eps": 1e-05, "num_classes": 1000, "class_dropout_prob": 0.1, "model_type": "c2i",
                    "vocab_size": 16384, "cls_token_num": 1, "block_size": 441, "num_slots": 128}
EXTRA_FILES = {"backbone": ("the DINOv2 ViT-L/14 with 4 registers the tokenizer's holistic encoder runs on "
                            "(dinov2_vitl14_reg4_pretrain.pth, "
                            "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth; "
                            "the conformance fixtures ship a tiny one as backbone.pt)")}
_CONTAINERS = ("ema", None)  # the EMA weights (the GPTs were trained on EMA-tokenizer tokens); never "model"


def _finish(module: torch.nn.Module) -> torch.nn.Module:
    module.eval()
    module.requires_grad_(False)
    return module


class HitaFamily:
    """Builds and loads Hita tokenizers and GPTs (``visbpp.core.interfaces.Family``)."""

    name = "hita"
    extra_files = EXTRA_FILES

    def config_for(self, model_id: str) -> dict[str, Any]:
        card = get_card(model_id)
        if card.family != "hita":
            raise KeyError(f"{model_id!r} is not a Hita model")
        tcard = get_tokenizer_card(card.tokenizer_id)
        tok = copy.deepcopy(BASE_TOKENIZER)
        tok["transformer_config"]["decoder_config"]["params"].update(dict(tcard.arch))
        return {"family": "hita", "model_id": card.id, "tokenizer_id": tcard.id, "tokenizer": tok,
                "transformer": {**BASE_TRANSFORMER, **dict(card.arch)}, "image_size": card.resolution,
                "tokenizer_container": tcard.file.container, "transformer_container": card.files[0].container}

    def build_tokenizer(self, config: Mapping[str, Any]) -> HitaTokenizer:
        return HitaTokenizer(parse_config(config, need_transformer=False)[0])

    def build_transformer(self, config: Mapping[str, Any], tokenizer: HitaTokenizer | None = None) -> HitaGPT:
        vq, gpt = parse_config(config)
        if tokenizer is not None and getattr(tokenizer, "cfg", None) != vq:
            have = getattr(getattr(tokenizer, "cfg", None), "variant", type(tokenizer).__name__)
            raise ConfigError(
                f"this GPT was trained on tokens of the {vq.variant} Hita tokenizer ({config.get('tokenizer_id', 'its config')}) "
                f"but the given tokenizer is a {have} one: pair each GPT with the tokenizer of its own directory "
                f"(vanilla/ with hita-tok.pt, ultra/ with hita-ultra.pt)")
        return HitaGPT(gpt)

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> HitaTokenizer:
        backbone = (config.get("extra_files") or {}).get("backbone")
        if not backbone:
            raise MissingCheckpointError(
                f"the Hita tokenizer needs the extra file 'backbone': {EXTRA_FILES['backbone']}; "
                f"pass --extra backbone=PATH")
        with torch.device("meta"):
            module = self.build_tokenizer(config)
        sd = unwrap(read_with_extras(path), _CONTAINERS, str(path))  # trainer files also carry "args" (a Namespace)
        bb_keys = [k for k in module.state_dict() if k.startswith(BACKBONE_PREFIX)]
        # the released files carry no backbone keys; any there are ignored for the backbone file's
        strict_load(module, sd, str(path), drop_prefixes=(BACKBONE_PREFIX,), optional=bb_keys)
        bb = unwrap(read_checkpoint(backbone), (None,), str(backbone))
        try:
            strict_load(module.backbone, bb, str(backbone))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (expected the DINOv2 ViT with registers of this config as a bare state dict)") from None
        return _finish(module)

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: HitaTokenizer | None = None) -> HitaGPT:
        with torch.device("meta"):
            module = self.build_transformer(config, tokenizer)
        sd = unwrap(read_with_extras(path), _CONTAINERS, str(path))
        strict_load(module, sd, str(path), drop=("freqs_cis", "causal_mask"))
        return _finish(module)


FAMILY = HitaFamily()
