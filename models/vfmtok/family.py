"""The VFMTok Family: configs of registered ids (base config + the cards' architecture data),
building, and strict loading through ``core/build.build_and_load``.

Tokenizer file: the state dict under ``ema`` (the GPTs were trained on tokens of the EMA
tokenizer; a file with only ``model`` is refused), else a bare state dict; exactly the 430 keys
of the official module without the DINOv2 backbone, which loads strictly from its own file, the
extra file ``backbone`` (Hita's DINOv2 ViT-L/14-reg4, ``--extra backbone=PATH``). GPT files:
``ema``, else ``module``, else ``state_dict``, else bare; never ``model`` (the official sampler has
no such branch); a top-level ``freqs_cis`` is dropped. Trainer extras such as an argparse ``args``
entry are read as plain data by core's reader, never executed.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import CheckpointError, ConfigError
from visbpp.core.registry.build import build_and_load
from visbpp.core.registry.cards.hita import BACKBONE
from visbpp.core.registry.catalog import model_cards
from visbpp.core.registry.checkpoints import MissingCheckpointError
from visbpp.core.registry.config_schema import check_config

from .. import config_for
from .config import tokenizer_config, transformer_config
from .gpt import VFMTokGPT
from .official import BASE_TOKENIZER, BASE_TRANSFORMER  # noqa: F401 - re-exported
from .schema import SCHEMA
from .tokenizer import BACKBONE_PREFIX, VFMTokTokenizer
from .transformers import DinoLevels

EXTRA_FILES = {"backbone": (f"the frozen DINOv2 ViT-L/14 with 4 registers the tokenizer reads its four feature levels "
                            f"from ({BACKBONE.filename}, {BACKBONE.url}; the same file as Hita's; the conformance "
                            f"fixtures ship a tiny one as backbone.pt)")}
TOKENIZER_CONTAINERS = ("ema", None)
TRANSFORMER_CONTAINERS = ("ema", "module", "state_dict", None)


class VFMTokFamily:
    """Builds and loads VFMTok tokenizers and GPTs (``visbpp.core.interfaces.Family``)."""

    name = "vfmtok"
    extra_files = EXTRA_FILES

    def size_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in model_cards(self.name))

    def config_for(self, model_id: str) -> dict[str, Any]:
        """The official config of a registered id (``visbpp.models.config_for``: the card's GPT size in
        ``official.config``)."""
        return config_for(model_id, self.name)

    def parse_config(self, config: Mapping[str, Any], where: str = "VFMTok config") -> Mapping[str, Any]:
        """Check ``config`` against the family schema and read it (unknown keys, wrong types, unsupported
        values and disagreements between the parts are :class:`ConfigError` naming ``where`` and the field)."""
        check_config(config, SCHEMA, where)
        tok = tokenizer_config(config, where)
        if "transformer" in config:
            transformer_config(config, tok, where)
        return config

    def build_tokenizer(self, config: Mapping[str, Any]) -> VFMTokTokenizer:
        return VFMTokTokenizer(tokenizer_config(self.parse_config(config)))

    def build_transformer(self, config: Mapping[str, Any], tokenizer: VFMTokTokenizer | None = None) -> VFMTokGPT:
        if "transformer" not in self.parse_config(config):
            raise ConfigError("VFMTok config: lacks the section 'transformer'")
        tok = tokenizer_config(config)
        if tokenizer is not None and getattr(tokenizer, "cfg", None) != tok:
            raise ConfigError("the given tokenizer is not the one of this config: a VFMTok GPT scores the tokens of "
                              "the tokenizer it was trained on")
        return VFMTokGPT(transformer_config(config, tok))

    def load_backbone(self, config: Mapping[str, Any]) -> DinoLevels:
        """The frozen DINOv2 ViT from the ``backbone`` extra file (a bare state dict, loaded strictly)."""
        path = (config.get("extra_files") or {}).get("backbone")
        if not path:
            raise MissingCheckpointError(f"the VFMTok tokenizer needs the extra file 'backbone': "
                                         f"{EXTRA_FILES['backbone']}; pass --extra backbone=PATH")
        vit = tokenizer_config(self.parse_config(config)).vit
        try:
            return build_and_load(path, lambda: DinoLevels(vit), containers=(None,))
        except CheckpointError as e:
            raise CheckpointError(f"{e} (expected the DINOv2 ViT with registers of this config as a bare state dict; "
                                  f"--extra backbone=PATH)") from None

    def load_tokenizer(self, path: str, config: Mapping[str, Any]) -> VFMTokTokenizer:
        backbone = self.load_backbone(config)

        def with_backbone(sd: dict, module: VFMTokTokenizer, path: str) -> dict:
            # the trainer strips every backbone key before saving; any there give way to the backbone file's
            sd = {k: v for k, v in sd.items() if not k.startswith(BACKBONE_PREFIX)}
            sd.update({BACKBONE_PREFIX + k: v for k, v in backbone.state_dict().items()})
            return sd

        return build_and_load(path, lambda: self.build_tokenizer(config), containers=TOKENIZER_CONTAINERS,
                              select=with_backbone)

    def load_transformer(self, path: str, config: Mapping[str, Any],
                         tokenizer: VFMTokTokenizer | None = None) -> VFMTokGPT:
        return build_and_load(path, lambda: self.build_transformer(config, tokenizer),
                              containers=TRANSFORMER_CONTAINERS, drop=("freqs_cis",))  # a stray RoPE table


FAMILY = VFMTokFamily()
