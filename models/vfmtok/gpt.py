"""VFMTok's class-conditional GPT: LlamaGen's c2i transformer, byte-identical upstream code
(``models/llamagen/gpt.py``), on the 16 x 16 carrier grid (``block_size`` = n_carrier, the 2-D RoPE
over the carrier raster). Only its family name differs."""

from __future__ import annotations

from ..llamagen.gpt import GPT


class VFMTokGPT(GPT):
    """LlamaGen's GPT unchanged (implements ``visbpp.core.interfaces.ARModel``)."""

    family = "vfmtok"
