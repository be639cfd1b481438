"""Legend of the fit plot: each group's marker colour with its R² and Pearson r (or "no fit")."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.widgets import Static

from ..results_view import GroupSeries
from .fit_plot import COLORS, MARKER_GLYPHS

# plotext colour names -> Rich colour names
RICH = {"orange": "dark_orange", "gray": "grey50"}


class FitLegend(Static):
    def show(self, series: Sequence[GroupSeries], outliers: Sequence[str] = ()) -> None:
        t = Text()
        for i, s in enumerate(series):
            if i:
                t.append("  ")
            color = COLORS[i % len(COLORS)]
            t.append(MARKER_GLYPHS[i % len(MARKER_GLYPHS)] + " ", style=RICH.get(color, color))
            t.append(s.label.replace(" ", "\u00a0"), style="" if s.line else "dim")  # an entry never breaks
        if outliers:
            t.append("  o", style="red")
            t.append(f"\u00a0Cook's-distance outlier: {', '.join(sorted(outliers))}")
        self.update(t)
