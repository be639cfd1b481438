"""Detail pane of the Models tab: the card of the cursor row (see ``detail_view``)."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Static


class ModelDetail(VerticalScroll):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "Model"
        self.can_focus = False

    def compose(self):
        yield Static("", id="detail-body")

    def show(self, renderable) -> None:
        self.query_one("#detail-body", Static).update(renderable)
