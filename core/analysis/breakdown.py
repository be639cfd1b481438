"""Where the bits go: fold per-token NLL into bit maps, per-group totals and bits vs position.

Input: per-token NLL in nats as stored by the engine (``core/store/token_store.py``), shape
``(N, L)``, or ``(N, L, K)`` for a :class:`~visbpp.core.interfaces.TokenLayout` with ``K``
sub-tokens per position; everything is converted to bits and summed in float64, so each
breakdown of an image sums to its bits (up to float64 rounding).

- ``by_position`` (N, L): bits per sequence position (sub-tokens summed);
- ``spatial`` (N, h, w): bits per grid cell (depth / sub-tokens summed) for grid layouts,
  ``None`` for VAR's scales (their maps have different sizes);
  or a ``"sequence"`` (a model that describes no layout);
- ``by_group`` name -> (N,): per scale (``"1x1"``, ``"2x2"``...), per depth (``"depth 0"``...),
  per sub-token or per scoring order (the layout's part names; orders are alternatives, each a
  whole image's bits, and positions then hold the headline: the mean of the averaged orders),
  or ``{"all": bits}`` for a plain raster; a layout with named position groups
  (``TokenLayout.group_names``) gets those instead of the kind's own and its sub-tokens, with its
  scoring orders (if any) beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visbpp.core.interfaces import TokenLayout
from visbpp.core.layout import check_shape, position_nll
from visbpp.core.units import LN2


@dataclass
class Breakdown:
    bits: np.ndarray                    # (N,) float64 bits per image
    by_position: np.ndarray             # (N, L) float64
    spatial: np.ndarray | None          # (N, h, w) float64 or None
    by_group: dict[str, np.ndarray]     # name -> (N,) float64


def fold(nll: np.ndarray, layout: TokenLayout) -> Breakdown:
    """(N, L[, K]) nats -> :class:`Breakdown` in bits (float64)."""
    check_shape(nll, layout)
    nll = np.asarray(nll)
    n = nll.shape[0]
    groups: dict[str, np.ndarray] = {}
    if layout.parts > 1:
        names = layout.part_names or tuple(f"part {k}" for k in range(layout.parts))
        for k, name in enumerate(names):
            groups[name] = nll[:, :, k].astype(np.float64).sum(1) / LN2
        nll = position_nll(nll, layout)
    orders = dict(groups) if layout.mean_parts else {}
    b = nll.astype(np.float64) / LN2
    bits = b.sum(1)
    spatial = None
    if layout.kind == "sequence":   # a model that describes no layout: positions only
        groups["all"] = bits.copy()
    elif layout.kind == "scales":
        start = 0
        for s in layout.scales:
            groups[f"{s}x{s}"] = b[:, start:start + s * s].sum(1)
            start += s * s
    else:
        h, w = layout.grid
        cells = b.reshape(n, h, w, layout.depth)
        spatial = cells.sum(3)
        if layout.kind == "depth":
            for d in range(layout.depth):
                groups[f"depth {d}"] = cells[:, :, :, d].sum((1, 2))
        elif not groups:
            groups["all"] = bits.copy()
    if layout.group_names:  # the model's named position groups replace the kind's own; scoring orders stay beside
        of = np.asarray(layout.group_of)
        groups = {name: b[:, of == g].sum(1) for g, name in enumerate(layout.group_names)} | orders
    return Breakdown(bits, b, spatial, groups)


def mean_breakdown(nll: np.ndarray, layout: TokenLayout, rows_per_step: int = 4096) -> dict:
    """Mean over images of every breakdown, reading ``nll`` (e.g. a memory map) a slice at a time."""
    n = nll.shape[0]
    acc: dict = {}
    for s in range(0, n, rows_per_step):
        bd = fold(np.asarray(nll[s:s + rows_per_step]), layout)
        part = {"bits": bd.bits.sum(), "by_position": bd.by_position.sum(0),
                "spatial": None if bd.spatial is None else bd.spatial.sum(0),
                "by_group": {k: v.sum() for k, v in bd.by_group.items()}}
        if not acc:
            acc = part
            continue
        acc["bits"] += part["bits"]
        acc["by_position"] = acc["by_position"] + part["by_position"]
        if part["spatial"] is not None:
            acc["spatial"] = acc["spatial"] + part["spatial"]
        for k, v in part["by_group"].items():
            acc["by_group"][k] += v
    if not n:
        return {"bits": float("nan"), "by_position": [], "spatial": None, "by_group": {}}
    return {"bits": float(acc["bits"] / n), "by_position": (acc["by_position"] / n).tolist(),
            "spatial": None if acc["spatial"] is None else (acc["spatial"] / n).tolist(),
            "by_group": {k: float(v / n) for k, v in acc["by_group"].items()}}
