"""FID vs BPP per fit group, with each group's fitted line (R² / Pearson ρ are in ``FitLegend``)."""

from __future__ import annotations

from typing import Sequence

from textual_plotext import PlotextPlot

from ..results_view import GroupSeries

COLORS = ("cyan", "magenta", "green", "orange", "blue", "red", "yellow", "gray")
MARKERS = ("dot", "x", "+", "o", "*", "#", "@", "$")
MARKER_GLYPHS = ("•", "x", "+", "o", "*", "#", "@", "$")  # how each marker looks, for the legend


class FitPlot(PlotextPlot):
    def __init__(self, title: str = "FID vs BPP (per group fit)", ylabel: str = "FID", **kw) -> None:
        super().__init__(**kw)
        self.series: list[GroupSeries] = []
        self.title, self.ylabel, self.color_offset = title, ylabel, 0

    def on_mount(self) -> None:
        self.draw()

    def show(self, series: Sequence[GroupSeries], color_offset: int = 0) -> None:
        """Draw ``series``; colours and markers start at ``color_offset`` (to match a shared legend)."""
        self.series, self.color_offset = list(series), color_offset
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel("BPP")
        plt.ylabel(self.ylabel)
        for i, s in enumerate(self.series, start=self.color_offset):
            color, marker = COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]
            if s.line is not None:
                (x0, y0), (x1, y1) = s.line
                plt.plot([x0, x1], [y0, y1], color=color)
            plt.scatter(list(s.bpp), list(s.fid), color=color, marker=marker)  # markers over the line
        self.refresh()
