"""Base model vs fine-tune per size (e.g. a CCA fine-tune and the checkpoint it started from).

Same architecture and tokenizer, so the change in BPP can be set against the change in FID: does
BPP follow FID when only the training objective changed? Computed from the rows of a merged or
user table that carry ``base_model`` (the fine-tune's base card id) and both rows' BPP and FID.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


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


def _str(row: pd.Series, col: str) -> str:
    v = row.get(col, "")
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def finetune_pairs(df: pd.DataFrame) -> list[FinetunePair]:
    """One pair per row with a ``base_model`` whose base row is in ``df``; both need BPP and FID."""
    if "base_model" not in df.columns or "model_id" not in df.columns:
        return []
    by_id = {str(r["model_id"]): r for _, r in df.iterrows() if isinstance(r.get("model_id"), str)}
    out = []
    for _, r in df.iterrows():
        base = _str(r, "base_model")
        b = by_id.get(base)
        if not base or b is None:
            continue
        vals = [r["bpp"], b["bpp"], r["fid"], b["fid"]]
        if any(pd.isna(v) for v in vals):
            continue
        out.append(FinetunePair(str(r["model_id"]), base, float(r["bpp"]), float(b["bpp"]), float(r["fid"]),
                                float(b["fid"]), _str(r, "bpp_source"), _str(b, "bpp_source"),
                                _str(r, "fid_guidance"), _str(b, "fid_guidance")))
    return out
