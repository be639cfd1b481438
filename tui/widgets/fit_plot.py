"""FID vs BPP per fit group, with each group's fitted line and size labels on the points.

``g`` (the app's zoom action) cycles all groups -> one group at a time, so a group's own BPP range
fills the plot. Each group has its own marker and colour (``core.analysis.plots.style``), drawn over
its fit line; models flagged by Cook's distance get the outliers' own marker in red. The legend
(marker, R², Pearson r) is the ``FitLegend`` below the plot, outside the data."""

from __future__ import annotations

import math
from typing import Sequence

from textual_plotext import PlotextPlot

from visbpp.core.analysis import plots

from ..results_view import GroupSeries


class FitPlot(PlotextPlot):
    def __init__(self, title: str = "FID vs BPP per group (g zooms)", ylabel: str = "FID", **kw) -> None:
        super().__init__(**kw)
        self.series: list[GroupSeries] = []
        self.title, self.ylabel, self.color_offset = title, ylabel, 0
        self.zoom: str | None = None          # a group name: only that group, its range filling the plot
        self.outliers: set[str] = set()

    def on_mount(self) -> None:
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def show(self, series: Sequence[GroupSeries], color_offset: int = 0, outliers: set[str] | None = None) -> None:
        """Draw ``series``; colours and markers start at ``color_offset`` (to match a shared legend)."""
        self.series, self.color_offset = list(series), color_offset
        self.outliers = set(outliers or ())
        if self.zoom not in {s.group for s in self.series}:
            self.zoom = None
        self.draw()

    def next_zoom(self) -> str | None:
        names = [None] + [s.group for s in self.series]
        self.zoom = names[(names.index(self.zoom) + 1) % len(names)] if self.zoom in names else None
        self.draw()
        return self.zoom

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        title = self.title if self.zoom is None else f"{self.ylabel} vs BPP: {self.zoom} (g: next group)"
        plt.title(title if len(title) < self.size.width - 4 or not self.size.width else title.split(" (")[0])
        plt.xlabel("BPP")
        plt.ylabel(self.ylabel)
        labels = self.size.width >= 30
        shown = [s for s in self.series if self.zoom is None or s.group == self.zoom]
        xs = [x for s in shown for x in s.bpp]
        if xs and self.size.width:
            set_ticks(plt, min(xs), max(xs), max(2, self.size.width // 10))
        drawn = [(i, s) for i, s in enumerate(self.series, start=self.color_offset)
                 if self.zoom is None or s.group == self.zoom]
        for i, s in drawn:   # every line first: no line is drawn over a marker
            if s.line is not None:
                (x0, y0), (x1, y1) = s.line
                plt.plot([x0, x1], [y0, y1], color=plots.style(i)[2])
        for i, s in drawn:
            marker, _, color = plots.style(i)
            if labels and (self.zoom is not None or len(self.series) <= 3):
                for x, y, name in zip(s.bpp, s.fid, s.names):   # beside the marker, never on it
                    at, side = plots.label_place(x, min(xs), max(xs), self.size.width)
                    plt.text(name, at, y, color=color, background="default", alignment=side)
            plt.scatter(list(s.bpp), list(s.fid), color=color, marker=marker)
            flagged = [(x, y) for x, y, m in zip(s.bpp, s.fid, s.ids) if m in self.outliers]
            if flagged:
                plt.scatter([p[0] for p in flagged], [p[1] for p in flagged], color="red", marker=plots.OUTLIER_MARKER)
        self.refresh()


def set_ticks(plt, lo: float, hi: float, n: int) -> None:
    """``n`` evenly spaced x ticks with labels short enough not to collide."""
    if hi <= lo:
        return
    step = (hi - lo) / (n - 1)
    digits = max(0, -int(math.floor(math.log10(step))) + 1)
    ticks = [lo + i * step for i in range(n)]
    plt.xticks(ticks, [f"{t:.{digits}f}" for t in ticks])
