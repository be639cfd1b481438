"""A token layout as stored with a run (``layout_to_dict`` / ``layout_from_dict``), the per-position
NLL of layouts with parts (sub-tokens, scoring orders), and the scoring-order option of families
with an order axis: shared by the store (which writes per-token NLL), the analysis (which folds
it), the jobs (which resolve ``--order``) and the families (which score each order)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visbpp.core.errors import ConfigError
from visbpp.core.interfaces import TokenLayout


def layout_to_dict(layout: TokenLayout) -> dict:
    """Plain JSON data; ``mean_parts`` only for an order layout and ``groups`` (names, per-position
    index) only for a layout with named position groups: the stored layouts of other models stay as they were."""
    d = {"kind": layout.kind, "grid": list(layout.grid) if layout.grid else None, "scales": list(layout.scales),
         "depth": layout.depth, "parts": layout.parts, "part_names": list(layout.part_names)}
    if layout.mean_parts:
        d["mean_parts"] = layout.mean_parts
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
                       mean_parts=int(d.get("mean_parts", 0)), group_names=tuple(groups.get("names", ())),
                       group_of=tuple(int(g) for g in groups.get("of", ())))


def check_shape(nll: np.ndarray, layout: TokenLayout) -> None:
    want = (layout.length,) + ((layout.parts,) if layout.parts > 1 else ())
    if tuple(nll.shape[1:]) != want:
        raise ValueError(f"per-token NLL of shape {tuple(nll.shape)} does not fit the token layout {layout} "
                         f"(expected (N, {', '.join(map(str, want))}))")


def position_nll(nll: np.ndarray, layout: TokenLayout | None = None) -> np.ndarray:
    """(N, L, K) stored NLL -> (N, L) per position ((N, L) is returned as it is).

    Sub-tokens: the float32 sum the model's token_nll returns (per-image bits are float64 sums of
    these fp32 values, so the sub-token totals differ from them by the fp32 rounding of each
    position's sum, ~1e-7 relative). Scoring orders (``layout.mean_parts``): the headline, see
    :func:`order_headline`.
    """
    if nll.ndim != 3:
        return nll
    if layout is not None and layout.mean_parts:
        return order_headline(nll, layout.mean_parts)
    return nll.astype(np.float32).sum(-1, dtype=np.float32)


def order_headline(parts, mean_parts: int):
    """(..., K) NLL per scoring order -> (...) float64 mean of the first ``mean_parts`` orders.

    The one formula of the headline, for a numpy array (stored runs) or a torch tensor (the engine):
    per-image bits are float64 sums of it, i.e. the mean over the orders of each order's bits.
    """
    head = parts[..., :mean_parts]
    head = head.double() if hasattr(head, "double") else np.asarray(head, dtype=np.float64)
    return head.mean(-1)


# --------------------------------------------------------------------------- scoring orders

RASTER = "raster"
ORDER_SYNTAX = "raster | perm:K"


@dataclass(frozen=True)
class Order:
    """A scoring order option: ``raster`` (permutations = 0), or ``perm:K``: K seeded permutations
    sigma_k = torch.randperm(L, generator=manual_seed(k)), k = 0..K-1, the same for every image, whose
    mean is the headline, with the raster order scored beside them."""

    permutations: int = 0

    @property
    def text(self) -> str:
        return f"perm:{self.permutations}" if self.permutations else RASTER

    @property
    def seeds(self) -> tuple[int | None, ...]:
        """Seed per stored part, in order; None = the raster order."""
        return tuple(range(self.permutations)) + (None,) if self.permutations else (None,)

    @property
    def part_names(self) -> tuple[str, ...]:
        return tuple(RASTER if s is None else f"perm seed {s}" for s in self.seeds)


RASTER_ORDER = Order()


def parse_order(text: object, where: str = "--order") -> Order:
    """``"raster"`` or ``"perm:K"`` (K >= 1) -> :class:`Order`; anything else is a ConfigError naming ``where``."""
    t = text.strip().lower() if isinstance(text, str) else None
    if t == RASTER:
        return Order()
    if t is not None and t.startswith("perm:") and t[5:].isdigit() and int(t[5:]) >= 1:
        return Order(int(t[5:]))
    raise ConfigError(f"{where}: {text!r} is not a scoring order; expected {ORDER_SYNTAX} (raster order, or the "
                      f"mean over K seeded permutations with raster beside it), e.g. perm:4")


def order_layout(grid: tuple[int, int], order: Order) -> TokenLayout:
    """The layout of a raster-grid model scored in ``order``: raster alone is a plain raster layout;
    ``perm:K`` stores K + 1 orders per raster cell, the first K averaged into the headline."""
    if not order.permutations:
        return TokenLayout("raster", tuple(grid))
    return TokenLayout("raster", tuple(grid), parts=len(order.seeds), part_names=order.part_names,
                       mean_parts=order.permutations)
