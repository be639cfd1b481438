"""Error modal: shows what went wrong without stopping the app."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static


class ErrorModal(ModalScreen[None]):
    """Shows an error message; escape/enter closes it. The app keeps running underneath."""

    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("enter", "dismiss", "Close", show=False)]

    def __init__(self, title: str, message: str) -> None:
        super().__init__(classes="modal")
        self.title_text, self.message = title, message

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box error-box"):
            yield Label(self.title_text, classes="modal-title")
            with VerticalScroll(classes="modal-body"):
                yield Static(self.message, markup=False, id="error-message")
            yield Button("Close", variant="error", id="close")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None)

    async def action_dismiss(self, result=None) -> None:
        self.dismiss(None)
