"""The Hita Family: configs of registered ids (base config + the cards' architecture data),
building, and loading through ``core/build.build_and_load`` (``ema`` weights; the DINOv2 backbone
from its own file)."""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.checkpoints import MissingCheckpointError
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from .config import model_configs
from .gpt import HitaGPT
from .official import BASE_TOKENIZER, BASE_TRANSFORMER  # noqa: F401 - re-exported
from .schema import SCHEMA
from .tokenizer import BACKBONE_PREFIX, HitaTokenizer
from .vit import DinoViT

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
        """The official config of a registered id (``visbpp.models.config_for``: the cards' ``arch`` in
        ``official.config``)."""
        return config_for(model_id, self.name)

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
