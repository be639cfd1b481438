"""Missing-checkpoints modal: where each file goes, and a fetch offer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class MissingCheckpointsModal(ModalScreen[bool]):
    """Lists where each missing checkpoint must go and offers to fetch them.
    Dismisses with True when the user asks to fetch."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("f", "fetch", "Fetch")]

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        super().__init__(classes="modal")
        self.missing = missing

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label(f"Missing checkpoints ({len(self.missing)} models)", classes="modal-title")
            with VerticalScroll(classes="modal-body"):
                for mid, msg in self.missing:
                    yield Static(f"• {msg}", markup=False, classes="missing-item", name=mid)
            with Horizontal(classes="modal-buttons"):
                yield Button("Fetch (f)", variant="primary", id="fetch")
                yield Button("Close", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "fetch")

    def action_fetch(self) -> None:
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)
