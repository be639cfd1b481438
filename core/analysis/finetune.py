"""Base model vs fine-tune per size (e.g. a CCA fine-tune and the checkpoint it started from).

Same architecture and tokenizer, so the change in BPP can be set against the change in FID: does
BPP follow FID when only the training objective changed? The pairs are the fine-tune pairs of the
shared-tokenizer comparison (``visbpp.core.analysis.pairs``): rows whose ``base_model`` (the
fine-tune's base card id) is another row of the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from visbpp.core.analysis.pairs import FINE_TUNE, shared_tokenizer_pairs


@dataclass(frozen=True)
class FinetunePair:
    model: str          # the fine-tune's id
    base: str           # its base model's id
    bpp: float
    base_bpp: float
    fid: float
    base_fid: float
    bpp_source: str     # "measured", "published table", ... of the fine-tune's BPP
    base_bpp_source: str
    fid_guidance: str   # guidance of the fine-tune's FID ("none", "cfg 2.0", ...)
    base_fid_guidance: str

    @property
    def d_bpp(self) -> float:
        return self.bpp - self.base_bpp

    @property
    def d_fid(self) -> float:
        return self.fid - self.base_fid

    @property
    def comparable(self) -> bool:
        """Both BPPs from the same source and both FIDs with the same guidance."""
        return self.bpp_source == self.base_bpp_source and self.fid_guidance == self.base_fid_guidance

    def to_dict(self) -> dict:
        return {"model": self.model, "base": self.base, "bpp": self.bpp, "base_bpp": self.base_bpp,
                "d_bpp": self.d_bpp, "fid": self.fid, "base_fid": self.base_fid, "d_fid": self.d_fid,
                "bpp_source": self.bpp_source, "base_bpp_source": self.base_bpp_source,
                "fid_guidance": self.fid_guidance, "base_fid_guidance": self.base_fid_guidance,
                "comparable": self.comparable}


def finetune_pairs(df: pd.DataFrame) -> list[FinetunePair]:
    """The fine-tune pairs of :func:`visbpp.core.analysis.pairs.shared_tokenizer_pairs` (base -> fine-tune)."""
    return [FinetunePair(p.b, p.a, p.bpp_b, p.bpp_a, p.fid_b, p.fid_a, p.bpp_source_b, p.bpp_source_a,
                         p.fid_guidance_b, p.fid_guidance_a)
            for p in shared_tokenizer_pairs(df).pairs if p.kind == FINE_TUNE]
