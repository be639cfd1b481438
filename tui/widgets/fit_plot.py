"""FID vs BPP per fit group, with each group's fitted line (R² / Pearson ρ are in ``FitLegend``)."""

from __future__ import annotations

from typing import Sequence

from textual_plotext import PlotextPlot

from ..results_view import GroupSeries

COLORS = ("cyan", "magenta", "green", "orange", "blue", "red", "yellow", "gray")
MARKERS = ("dot", "x", "+", "o", "*", "#", "@", "$")
MARKER_GLYPHS = ("•", "x", "+", "o", "*", "#", "@", "$")  # how each marker looks, for the legend


class FitPlot(PlotextPlot):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.series: list[GroupSeries] = []

    def on_mount(self) -> None:
        self.draw()

    def show(self, series: Sequence[GroupSeries]) -> None:
        self.series = list(series)
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("FID vs BPP (per group fit)")
        plt.xlabel("BPP")
        plt.ylabel("FID")
        for i, s in enumerate(self.series):
            color, marker = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
            plt.scatter(list(s.bpp), list(s.fid), color=color, marker=marker)
            if s.line is not None:
                (x0, y0), (x1, y1) = s.line
                plt.plot([x0, x1], [y0, y1], color=color)
        self.refresh()
