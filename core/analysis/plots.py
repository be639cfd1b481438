"""Plot *data* of an analysis (points, fit lines, predicted vs observed), shared by the
terminal plots, the TUI and the matplotlib figures. No plotting library is imported here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from visbpp.core.analysis.fits import AnalysisResult


@dataclass(frozen=True)
class Points:
    name: str                    # group name (or "all")
    x: tuple[float, ...]
    y: tuple[float, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Line:
    name: str
    x: tuple[float, ...]
    y: tuple[float, ...]


def group_points(result: AnalysisResult) -> list[Points]:
    """FID vs BPP points, one series per group, in table order."""
    df = result.table
    out = []
    for g in result.groups:
        sub = df[df["group"] == g.group]
        out.append(Points(g.group, tuple(sub["bpp"].astype(float)), tuple(sub["fid"].astype(float)),
                          tuple(sub["label"])))
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
    x = np.linspace(xs.min(), xs.max(), max(steps, 2))
    y = fit.predict(pd.DataFrame({"bpp": x}))
    return Line("FID ~ bpp", tuple(x), tuple(float(v) for v in y))


def bilinear_points(result: AnalysisResult) -> Points | None:
    """Observed FID (x) vs the bilinear model's fitted FID (y); None without that fit."""
    b = result.global_.bilinear
    if b is None:
        return None
    return Points("FID ~ bpp + rfid", tuple(result.table["fid"].astype(float)),
                  tuple(float(v) for v in b.fit.fittedvalues), tuple(result.table["label"]))
