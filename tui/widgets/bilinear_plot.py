"""The bilinear model FID ~ BPP + rFID: observed FID on x (as in the CLI and the PNG figures),
fitted FID on y, the y = x line; R² of the linear and the bilinear model in the title."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from ..results_view import BilinearView


class BilinearPlot(PlotextPlot):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.view: BilinearView | None = None

    def on_mount(self) -> None:
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    def show(self, view: BilinearView | None) -> None:
        self.view = view
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
        plt.plot([lo, hi], [lo, hi], color="gray")   # y = x; no in-plot legend over the points
        plt.scatter(list(v.observed), list(v.predicted), color="cyan", marker="dot")
        self.refresh()
