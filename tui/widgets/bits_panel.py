"""Bits tab: mean bit map (heatmap + colour scale in bits), bits per scale/depth group and per-class
BPP of one model's stored run (see ``bits_view``)."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static

from ..bits_view import BitsReport, render


class BitsPanel(VerticalScroll):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.report: BitsReport | None = None

    def compose(self):
        yield Static("Select a model on the Models tab to see where its bits go.", id="bits-body")

    def show(self, report: BitsReport) -> None:
        self.report = report
        self.query_one("#bits-body", Static).update(render(report))
