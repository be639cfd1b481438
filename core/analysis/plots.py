"""Plot *data* of an analysis (points, fit lines, predicted vs observed, the bilinear equation),
shared by the terminal plots, the TUI and the matplotlib figures. No plotting library is
imported here.

Every front-end draws each fit group with its own marker (``MARKERS`` by group position) and
Cook's-distance outliers with a marker no group uses (``OUTLIER_MARKER``), fit lines under the
points, the legend outside the data, and points labelled with the model size (:func:`size_label`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - the TUI imports this module at start: no statsmodels/pandas then
    import pandas as pd

    from visbpp.core.analysis.fits import AnalysisResult

# plotext marker names, one per group position (then again with another colour); "o" is the outliers'
MARKERS = ("dot", "x", "+", "*", "#", "@", "$", "%")
MARKER_GLYPHS = ("•", "x", "+", "*", "#", "@", "$", "%")   # how each looks, for legends outside the plot
OUTLIER_MARKER = "o"
COLORS = ("cyan", "magenta", "green", "orange", "blue", "red", "yellow", "gray")   # plotext colour names
RICH_COLORS = {"orange": "dark_orange", "gray": "grey50"}   # where Rich's name of a colour differs
MPL_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<")     # matplotlib's, by group position (outliers: a red ring)


def style(i: int) -> tuple[str, str, str]:
    """(plotext marker, its glyph, plotext colour) of group position ``i``: the marker by position, the
    colour shifted by one every full round of markers, so that no two of the first 64 groups look alike."""
    m = i % len(MARKERS)
    return MARKERS[m], MARKER_GLYPHS[m], COLORS[(i + i // len(MARKERS)) % len(COLORS)]


@dataclass(frozen=True)
class Points:
    name: str                    # group name (or "all")
    x: tuple[float, ...]
    y: tuple[float, ...]
    labels: tuple[str, ...]      # the analysis' label of each point (model id)
    sizes: tuple[str, ...] = ()  # the short size label of each point ("B", "d16")


@dataclass(frozen=True)
class Line:
    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]


def label_place(x: float, lo: float, hi: float, cells: int) -> tuple[float, str]:
    """Where a text label of a point at ``x`` goes in a terminal plot ``cells`` wide over [lo, hi]:
    two cells to the right of the marker, or to its left in the right fifth (never off the plot)."""
    dx = 2 * (hi - lo) / max(1, cells - 10)
    return (x - dx, "right") if x > lo + 0.8 * (hi - lo) else (x + dx, "left")


def size_label(size: str) -> str:
    """A point label from the table's size: the letter in parentheses ("111M_256 (B)" -> "B"), else the size."""
    s = str(size or "")
    if "(" in s and s.endswith(")"):
        return s[s.rindex("(") + 1:-1]
    return s.split("_")[0][:6]


def _sizes(sub: "pd.DataFrame") -> tuple[str, ...]:
    col = sub["size"] if "size" in sub.columns else sub["label"]
    return tuple(size_label(v) for v in col)


def group_points(result: AnalysisResult) -> list[Points]:
    """FID vs BPP points, one series per group, in table order."""
    df = result.table
    out = []
    for g in result.groups:
        sub = df[df["group"] == g.group]
        out.append(Points(g.group, tuple(sub["bpp"].astype(float)), tuple(sub["fid"].astype(float)),
                          tuple(sub["label"]), _sizes(sub)))
    return out


def group_fit_lines(result: AnalysisResult, steps: int = 2) -> list[Line]:
    """Each fitted group's line FID = intercept + slope * bpp over the group's BPP range."""
    df = result.table
    out = []
    for g in result.groups:
        if not g.fitted:
            continue
        xs = df.loc[df["group"] == g.group, "bpp"].astype(float)
        x = np.linspace(xs.min(), xs.max(), max(steps, 2))
        out.append(Line(g.group, tuple(x), tuple(g.intercept + g.slope * x)))
    return out


def global_fit_line(result: AnalysisResult, steps: int = 50) -> Line:
    """The global FID ~ bpp fit over the full BPP range."""
    fit = result.global_.linear.fit
    xs = result.table["bpp"].astype(float)
    import pandas as pd

    x = np.linspace(xs.min(), xs.max(), max(steps, 2))
    y = fit.predict(pd.DataFrame({"bpp": x}))
    return Line("FID ~ bpp", tuple(x), tuple(float(v) for v in y))


def outlier_labels(result: AnalysisResult) -> set[str]:
    """Labels flagged by Cook's distance in the global linear or bilinear model."""
    out = set(result.global_.linear.outliers) if result.global_.linear else set()
    if result.global_.bilinear is not None:
        out |= set(result.global_.bilinear.outliers)
    return out


def bilinear_points(result: AnalysisResult) -> list[Points]:
    """Observed FID (x) vs the bilinear model's fitted FID (y), one series per group; [] without that fit."""
    b = result.global_.bilinear
    if b is None:
        return []
    df = result.table.assign(_fitted=[float(v) for v in b.fit.fittedvalues])
    out = []
    for g in result.groups:
        sub = df[df["group"] == g.group]
        out.append(Points(g.group, tuple(sub["fid"].astype(float)), tuple(sub["_fitted"]), tuple(sub["label"]),
                          _sizes(sub)))
    return out


def _num(v: float) -> str:
    """Four significant digits, no exponent below 1e7."""
    s = f"{v:.4g}"
    return f"{v:.0f}" if "e" in s and abs(v) >= 1 else s


def bilinear_equation(result: AnalysisResult, metric: str = "FID") -> str | None:
    """The fitted bilinear model with its 95% CIs, e.g. ``FID = 7.581 − 290.8·BPP + 1.991·rFID;
    95% CIs: intercept [1.311, 13.85], BPP [−530.6, −51.03], rFID [0.7762, 3.205]``; None without that fit."""
    b = result.global_.bilinear
    if b is None:
        return None

    def signed(v: float) -> str:
        return f"{'−' if v < 0 else '+'} {_num(abs(v))}"

    def ci(name: str) -> str:
        lo, hi = b.conf_int[name]
        return f"[{_num(lo)}, {_num(hi)}]".replace("-", "−")

    a = _num(b.coef["Intercept"]).replace("-", "−")
    return (f"{metric} = {a} {signed(b.coef['bpp'])}·BPP {signed(b.coef['rfid'])}·rFID; "
            f"95% CIs: intercept {ci('Intercept')}, BPP {ci('bpp')}, rFID {ci('rfid')}")
