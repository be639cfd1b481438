"""Legend of the fit plot, outside the data: each group's marker in its colour with its R² and
Pearson r (or "no fit"), and the Cook's-distance outliers' own marker."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widgets import Static

from visbpp.core.analysis import plots

from ..results_view import GroupSeries


def legend_text(series: Sequence[GroupSeries], outliers: Sequence[str] = (), offset: int = 0) -> Text:
    t = Text()
    for i, s in enumerate(series, start=offset):
        if t.plain:
            t.append("  ")
        _, glyph, color = plots.style(i)
        t.append(glyph + " ", style=plots.RICH_COLORS.get(color, color))
        t.append(s.label.replace(" ", "\u00a0"), style="" if s.line else "dim")  # an entry never breaks
    if outliers:
        t.append("  " if t.plain else "")
        t.append(f"{plots.OUTLIER_MARKER}\u00a0", style="bold red")
        t.append(f"Cook's-distance\u00a0outlier: {', '.join(sorted(outliers))}")
    return t


class FitLegend(Static):
    def show(self, series: Sequence[GroupSeries], outliers: Sequence[str] = ()) -> None:
        self.update(legend_text(series, outliers))
