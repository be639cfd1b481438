"""LlamaGen's VQ-16 tokenizer as the random-order families on its tokens configure it (ARPG, RandAR).

Their configs hold the VQ arguments in one ``tokenizer`` section, the encoder/decoder width and
depth (``ch``, ``num_res_blocks``; the released file hard-wires 128 and 2) included; the
registered models use LlamaGen's own section, so their tokens share LlamaGen-256's token cache.
The tokenizer is LlamaGen's (``models/llamagen``): the same modules, preprocessing and loader rule.
``SECTION`` imports without torch (the families' schemas read it); the builders import LlamaGen's
modules when called.
"""

from __future__ import annotations

from typing import Any, Mapping

from visbpp.core.errors import ConfigError

from .llamagen.schema import SCHEMA as _LLAMAGEN

_WIDTH_DEPTH = {"ch": "int>0", "num_res_blocks": "int>0", "norm_type": "str"}
_NOTES = {"class": "str", "note": "any"}
# the ``tokenizer`` section: LlamaGen's VQ arguments, plus the width/depth and provenance notes
SECTION = {**_LLAMAGEN["tokenizer"], **_WIDTH_DEPTH, **_NOTES}
CONTAINERS = ("model", "module", "state_dict", None)   # the official tokenizer loaders' order (``{"model": sd}``)


def config(cfg: Mapping[str, Any], where: str):
    """The ``tokenizer`` section and ``image_size`` of a config -> LlamaGen's ``VQConfig``."""
    from .llamagen.family import vq_config

    section = cfg.get("tokenizer")
    if not isinstance(section, Mapping) or "image_size" not in cfg:
        raise ConfigError(f"{where}: needs a 'tokenizer' section and 'image_size'")
    vq = {k: v for k, v in section.items() if k not in {**_WIDTH_DEPTH, **_NOTES}}
    width_depth = {k: section[k] for k in _WIDTH_DEPTH if k in section}
    try:
        return vq_config({"tokenizer": vq, "tokenizer_encoder_decoder_args": width_depth, "image_size": cfg["image_size"]})
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def load(path: str, vq, container: Any = "model"):
    """LlamaGen's ``VQTokenizer`` of ``vq`` (a VQConfig) from ``path``, strictly (the config's container first)."""
    from visbpp.core.registry.build import build_and_load

    from .llamagen.tokenizer import VQTokenizer

    containers = tuple(dict.fromkeys(([container] if container in CONTAINERS else []) + list(CONTAINERS)))
    return build_and_load(path, lambda: VQTokenizer(vq), containers=containers)
