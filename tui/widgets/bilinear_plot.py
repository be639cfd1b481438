"""The bilinear model FID ~ BPP + rFID: observed FID on x (as in the CLI and the PNG figures),
fitted FID on y, each group with the fit plot's marker and colour, points labelled with the model
size where there is room, the y = x line under them; R² of the linear and the bilinear model in
the title and the fitted equation with its 95% CIs below the plot (outside the data)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from visbpp.core.analysis import plots

from ..results_view import BilinearView

LABELS_FROM_WIDTH = 60   # columns: narrower plots show markers only


class BilinearCanvas(PlotextPlot):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.view: BilinearView | None = None

    def on_mount(self) -> None:
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        v = self.view
        plt.xlabel("observed FID")
        plt.ylabel("fitted FID")
        if v is None or not v.observed:
            plt.title("bilinear model: no analysis yet")
            self.refresh()
            return
        w = self.size.width
        plt.title(v.title if w >= len(v.title) + 4 else v.short_title if w >= len(v.short_title) + 4
                  else f"bilinear R² {v.r2_bilinear:.3f}" if v.r2_bilinear is not None else "bilinear")
        lo, hi = min(v.observed + v.predicted), max(v.observed + v.predicted)
        plt.plot([lo, hi], [lo, hi], color="gray")   # y = x, under the markers
        for i, p in enumerate(v.series):
            marker, _, color = plots.style(i)
            if w >= LABELS_FROM_WIDTH:   # beside the marker, never on it
                for x, y, size in zip(p.x, p.y, p.sizes):
                    at, side = plots.label_place(x, lo, hi, w)
                    plt.text(size, at, y, color=color, background="default", alignment=side)
            plt.scatter(list(p.x), list(p.y), color=color, marker=marker)
        self.refresh()


class BilinearPlot(Vertical):
    """The canvas and, below it, the equation (the fit plot's legend names the markers)."""

    def compose(self) -> ComposeResult:
        yield BilinearCanvas(id="bilinear-canvas")
        yield Static("", id="bilinear-equation")

    def show(self, view: BilinearView | None) -> None:
        canvas = self.query_one(BilinearCanvas)
        canvas.view = view
        canvas.draw()
        eq = self.query_one("#bilinear-equation", Static)
        eq.update(view.equation if view is not None else "")
        eq.display = bool(view is not None and view.equation)
