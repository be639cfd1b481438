"""RandAR's MaskGIT-VQGAN tokenizer: RAR's module and weights with RandAR's own preprocessing.

The MaskGIT-token RandAR row was trained on tokens of ADM ``center_crop_arr`` at S, ToTensor, input
in [0, 1] (no normalisation) — not RAR's resize + centre crop, which changes tokens. Everything else
(encoder, plain-L2 quantiser, decoder, keys) is ``models/rar/maskgit_vqgan.py``.
"""

from __future__ import annotations

import torch

from ..llamagen.preprocess import center_crop_arr
from ..rar.config import MaskGITConfig
from ..rar.maskgit_vqgan import MaskGITTokenizer
from ..rar.preprocess import to_unit


def preprocess_id(size: int) -> str:
    return f"randar-maskgit:center_crop_arr(box-halving,bicubic,round)-S{size}:totensor[0,1]"


class RandARMaskGIT(MaskGITTokenizer):
    """:class:`~visbpp.core.interfaces.ImageTokenizer`: RAR's MaskGIT-VQGAN fed RandAR's [0, 1] ADM crop."""

    family = "randar"

    def __init__(self, cfg: MaskGITConfig):
        super().__init__(cfg)
        self.preprocess_id = preprocess_id(cfg.image_size)

    def preprocess(self, image) -> torch.Tensor:
        return to_unit(center_crop_arr(image.convert("RGB"), self.image_size))
