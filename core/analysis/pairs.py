"""Same tokenizer, different factorisation: models compared on one token code.

Two rows of a table form a pair when they score the same tokens with AR models of one size class:

* **fine-tune**: one row's ``base_model`` is the other's model id (a fine-tune and the checkpoint it
  started from: same modules, same tokenizer); oriented base → fine-tune;
* **same size**: the same tokenizer card at the same resolution (one token code; the same VQ at
  another resolution gives other token sequences) and AR parameter counts within a factor
  :data:`SIZE_RATIO` of each other; oriented in table order.

Tokenizer, resolution and parameters come from the table's columns (``tokenizer_id``,
``resolution``, ``params``) or, where a column is missing, from the registry card of the row's
``model_id``; nothing here lists model ids. Δ = second − first. Over the comparable pairs (both
BPPs from the same source, both FIDs with the same guidance): how often ΔBPP and ΔFID have the same
sign (exact binomial test against 1/2) and, from 3 pairs, Pearson r of ΔBPP and ΔFID (scipy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

SIZE_RATIO = 1.5
FINE_TUNE, SAME_SIZE = "fine-tune", "same size"


@dataclass(frozen=True)
class TokenizerPair:
    a: str
    b: str
    kind: str              # FINE_TUNE | SAME_SIZE
    tokenizer: str         # "<tokenizer card>@<resolution>"
    bpp_a: float
    bpp_b: float
    fid_a: float
    fid_b: float
    bpp_source_a: str = ""
    bpp_source_b: str = ""
    fid_guidance_a: str = ""
    fid_guidance_b: str = ""

    @property
    def d_bpp(self) -> float:
        return self.bpp_b - self.bpp_a

    @property
    def d_fid(self) -> float:
        return self.fid_b - self.fid_a

    @property
    def comparable(self) -> bool:
        """Both BPPs from the same source and both FIDs with the same guidance."""
        return self.bpp_source_a == self.bpp_source_b and self.fid_guidance_a == self.fid_guidance_b

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "kind": self.kind, "tokenizer": self.tokenizer, "bpp_a": self.bpp_a,
                "bpp_b": self.bpp_b, "d_bpp": self.d_bpp, "fid_a": self.fid_a, "fid_b": self.fid_b,
                "d_fid": self.d_fid, "bpp_source_a": self.bpp_source_a, "bpp_source_b": self.bpp_source_b,
                "fid_guidance_a": self.fid_guidance_a, "fid_guidance_b": self.fid_guidance_b,
                "comparable": self.comparable}


@dataclass(frozen=True)
class PairsResult:
    pairs: tuple[TokenizerPair, ...]
    n_comparable: int = 0
    same_sign: int | None = None         # comparable pairs with sign(ΔBPP) == sign(ΔFID), both non-zero
    sign_n: int | None = None            # comparable pairs with both differences non-zero
    sign_p: float | None = None          # two-sided exact binomial test of same_sign / sign_n against 1/2
    pearson_r: float | None = None
    pearson_p: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {"size_ratio": SIZE_RATIO, "pairs": [p.to_dict() for p in self.pairs], "n_comparable": self.n_comparable,
                "same_sign": self.same_sign, "sign_n": self.sign_n, "sign_p": self.sign_p,
                "pearson_r": self.pearson_r, "pearson_p": self.pearson_p, "note": self.note}


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


@dataclass(frozen=True)
class _Row:
    mid: str
    tokenizer: str | None
    resolution: int | None
    params: float | None
    base: str
    bpp: float
    fid: float
    bpp_source: str
    guidance: str


def _rows(table: pd.DataFrame) -> list[_Row]:
    from visbpp.core.registry import catalog

    out = []
    for _, r in table.iterrows():
        mid = _text(r.get("model_id")) or _text(r.get("label"))
        try:
            card = catalog.get_card(mid) if mid else None
        except catalog.UnknownModelError:
            card = None
        tok = _text(r.get("tokenizer_id")) or (card.tokenizer_id if card else "")
        res = r.get("resolution")
        res = int(res) if res is not None and not pd.isna(res) else (card.resolution if card else None)
        params = pd.to_numeric(r.get("params"), errors="coerce")
        params = float(params) if pd.notna(params) else (float(card.params) if card else None)
        base = _text(r.get("base_model")) or (card.base_model or "" if card else "")
        out.append(_Row(mid, tok or None, res, params, base, float(r["bpp"]), float(r["fid"]),
                        _text(r.get("bpp_source")), _text(r.get("fid_guidance"))))
    return out


def _same_size(x: _Row, y: _Row) -> bool:
    if not x.params or not y.params:
        return False
    return max(x.params, y.params) / min(x.params, y.params) <= SIZE_RATIO


def _pair(x: _Row, y: _Row, kind: str) -> TokenizerPair:
    tok = f"{x.tokenizer or '?'}@{x.resolution or '?'}"
    return TokenizerPair(x.mid, y.mid, kind, tok, x.bpp, y.bpp, x.fid, y.fid, x.bpp_source, y.bpp_source,
                         x.guidance, y.guidance)


def _near_misses(rows: list[_Row]) -> list[str]:
    """Same tokenizer card and size class at different resolutions (different token codes)."""
    out = []
    for i, x in enumerate(rows):
        for y in rows[i + 1:]:
            if x.tokenizer and x.tokenizer == y.tokenizer and x.resolution != y.resolution and _same_size(x, y):
                out.append(f"{x.mid} / {y.mid} ({x.tokenizer} at {x.resolution} vs {y.resolution} px)")
    return out


def shared_tokenizer_pairs(table: pd.DataFrame) -> PairsResult:
    """Every pair of a table's rows (columns model_id or label, bpp, fid; see the module doc)."""
    rows = _rows(table)
    by_id = {x.mid: x for x in rows}
    pairs: list[TokenizerPair] = []
    done: set[frozenset] = set()
    for y in rows:   # fine-tunes first, base -> fine-tune
        x = by_id.get(y.base)
        if x is not None and x is not y:
            pairs.append(_pair(x, y, FINE_TUNE))
            done.add(frozenset((x.mid, y.mid)))
    for i, x in enumerate(rows):
        for y in rows[i + 1:]:
            if frozenset((x.mid, y.mid)) in done or not x.tokenizer or x.tokenizer != y.tokenizer:
                continue
            if x.resolution == y.resolution and _same_size(x, y):
                pairs.append(_pair(x, y, SAME_SIZE))
    note = ""
    if not pairs:
        miss = _near_misses(rows)
        note = ("no two models share a tokenizer (card and resolution) at one size class"
                + (f"; same tokenizer card, different resolution: {'; '.join(miss)}" if miss else ""))
    comp = [p for p in pairs if p.comparable]
    res = PairsResult(tuple(pairs), len(comp), note=note)
    signed = [p for p in comp if p.d_bpp != 0 and p.d_fid != 0]
    if signed:
        same = sum((p.d_bpp > 0) == (p.d_fid > 0) for p in signed)
        res = PairsResult(res.pairs, res.n_comparable, same, len(signed),
                          float(stats.binomtest(same, len(signed), 0.5).pvalue), note=note)
    if len(comp) >= 3:
        d_bpp = np.array([p.d_bpp for p in comp])
        d_fid = np.array([p.d_fid for p in comp])
        if np.ptp(d_bpp) > 0 and np.ptp(d_fid) > 0:
            r = stats.pearsonr(d_bpp, d_fid)
            res = PairsResult(res.pairs, res.n_comparable, res.same_sign, res.sign_n, res.sign_p,
                              float(r.statistic), float(r.pvalue), note)
    return res
