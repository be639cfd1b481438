"""Statistics tab: per-group fits, ANCOVA, global linear vs bilinear models, Cook's-distance outliers, and a
compact table per analysis beyond the straight line (forms, scaling, baseline, pairs, validity); it scrolls."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from ..stats_view import statistics


class StatsPanel(VerticalScroll):
    def compose(self):
        yield Static(statistics(None), id="stats-body")

    def show(self, analysis: dict | None, fid_source: str, warnings=(), runs_used=()) -> None:
        self.query_one("#stats-body", Static).update(statistics(analysis, fid_source, warnings, runs_used))
