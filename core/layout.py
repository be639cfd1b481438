"""A token layout as stored with a run (``layout_to_dict`` / ``layout_from_dict``) and the per-position
NLL of sub-token layouts: shared by the store (which writes per-token NLL) and the analysis (which
folds it)."""

from __future__ import annotations

import numpy as np

from visbpp.core.interfaces import TokenLayout


def layout_to_dict(layout: TokenLayout) -> dict:
    """Plain JSON data; ``groups`` (names, per-position index) only for a layout with named position groups."""
    d = {"kind": layout.kind, "grid": list(layout.grid) if layout.grid else None, "scales": list(layout.scales),
         "depth": layout.depth, "parts": layout.parts, "part_names": list(layout.part_names)}
    if layout.group_names:
        d["groups"] = {"names": list(layout.group_names), "of": list(layout.group_of)}
    return d


def layout_from_dict(d: dict | None, length: int = 0) -> TokenLayout:
    """The layout recorded with a run; ``None`` (a model without one) -> a plain sequence of ``length``."""
    if d is None:
        return TokenLayout("sequence", (1, length))
    groups = d.get("groups") or {}
    return TokenLayout(d["kind"], tuple(d["grid"]) if d.get("grid") else None, tuple(d.get("scales", ())),
                       int(d.get("depth", 1)), int(d.get("parts", 1)), tuple(d.get("part_names", ())),
                       tuple(groups.get("names", ())), tuple(int(g) for g in groups.get("of", ())))


def check_shape(nll: np.ndarray, layout: TokenLayout) -> None:
    want = (layout.length,) + ((layout.parts,) if layout.parts > 1 else ())
    if tuple(nll.shape[1:]) != want:
        raise ValueError(f"per-token NLL of shape {tuple(nll.shape)} does not fit the token layout {layout} "
                         f"(expected (N, {', '.join(map(str, want))}))")


def position_nll(nll: np.ndarray) -> np.ndarray:
    """(N, L, K) sub-token NLL -> (N, L) float32 per position: the fp32 sum the model's token_nll returns.

    Per-image bits are float64 sums of these fp32 values, so the sub-token totals (float64 sums of
    the parts) differ from them by the fp32 rounding of each position's sum (~1e-7 relative).
    """
    return nll.astype(np.float32).sum(-1, dtype=np.float32) if nll.ndim == 3 else nll
