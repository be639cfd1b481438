"""The Hita Family: configs of registered ids (base config + the cards' architecture data),
building, and loading through ``core/build.build_and_load`` (``ema`` weights; the DINOv2 backbone
from its own file)."""

from __future__ import annotations

import copy
from typing import Any, Mapping

from visbpp.core.build import build_and_load
from visbpp.core.checkpoints import MissingCheckpointError
from visbpp.core.config_schema import check_config
from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry import get_card, get_tokenizer_card

from .config import model_configs
from .gpt import HitaGPT
from .schema import SCHEMA
from .tokenizer import BACKBONE_PREFIX, HitaTokenizer
from .vit import DinoViT

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


class HitaFamily:
    """Builds and loads Hita tokenizers and GPTs (``visbpp.core.interfaces.Family``)."""

    name = "hita"
    extra_files = EXTRA_FILES

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The base config + the cards' architecture (GPT: ``card.arch``; tokenizer decoder: ``tcard.arch``)."""
        card = get_card(model_id)
        if card.family != self.name:
            raise KeyError(f"{model_id!r} is not a Hita model")
        tcard = get_tokenizer_card(card.tokenizer_id)
        tok = copy.deepcopy(BASE_TOKENIZER)
        tok["transformer_config"]["decoder_config"]["params"].update(dict(tcard.arch))
        return {"family": "hita", "model_id": card.id, "tokenizer_id": tcard.id, "tokenizer": tok,
                "transformer": {**BASE_TRANSFORMER, **dict(card.arch)}, "image_size": card.resolution,
                "tokenizer_container": tcard.file.container, "transformer_container": card.files[0].container}

    def parse_config(self, config: Mapping[str, Any], where: str = "Hita config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema and read it (unknown keys, wrong types, unsupported
        values and tokenizer/GPT disagreements are :class:`ConfigError` naming ``where`` and the field)."""
        check_config(config, SCHEMA, where)
        model_configs(config, where, need_transformer=False)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> HitaTokenizer:
        return HitaTokenizer(model_configs(self.parse_config(config), need_transformer=False)[0])

    def build_transformer(self, config: Mapping[str, Any], tokenizer: HitaTokenizer | None = None) -> HitaGPT:
        vq, gpt = model_configs(self.parse_config(config))
        if tokenizer is not None and getattr(tokenizer, "cfg", None) != vq:
            have = getattr(getattr(tokenizer, "cfg", None), "variant", type(tokenizer).__name__)
            raise ConfigError(
                f"this GPT was trained on tokens of the {vq.variant} Hita tokenizer ({config.get('tokenizer_id', 'its config')}) "
                f"but the given tokenizer is a {have} one: pair each GPT with the tokenizer of its own directory "
                f"(vanilla/ with hita-tok.pt, ultra/ with hita-ultra.pt)")
        return HitaGPT(gpt)

    def load_backbone(self, config: Mapping[str, Any]) -> DinoViT:
        """The frozen DINOv2 ViT from the ``backbone`` extra file (a bare state dict, loaded strictly)."""
        path = (config.get("extra_files") or {}).get("backbone")
        if not path:
            raise MissingCheckpointError(
                f"the Hita tokenizer needs the extra file 'backbone': {EXTRA_FILES['backbone']}; "
                f"pass --extra backbone=PATH")
        vit = model_configs(self.parse_config(config), need_transformer=False)[0].vit
        try:
            return build_and_load(path, lambda: DinoViT(vit), containers=(None,))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (expected the DINOv2 ViT with registers of this config as a bare state dict)") from None

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> HitaTokenizer:
        backbone = self.load_backbone(config)

        def with_backbone(sd: dict, module: HitaTokenizer, path: str) -> dict:
            # the released files carry no backbone keys (the trainer strips them); any there give way to the backbone file's
            sd = {k: v for k, v in sd.items() if not k.startswith(BACKBONE_PREFIX)}
            sd.update({BACKBONE_PREFIX + k: v for k, v in backbone.state_dict().items()})
            return sd

        return build_and_load(path, lambda: self.build_tokenizer(config), containers=_CONTAINERS, select=with_backbone)

    def load_transformer(self, path: str, config: Mapping[str, Any], tokenizer: HitaTokenizer | None = None) -> HitaGPT:
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer), containers=_CONTAINERS,
                              drop=("freqs_cis", "causal_mask"))  # buffers some trainer files carry


FAMILY = HitaFamily()
