"""Path prompt modal (CSV / JSON export)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class PathPrompt(ModalScreen[str | None]):
    """Asks for a file path; the field starts empty with the default as placeholder, so no keystroke
    replaces anything: enter on the empty field accepts the default, escape cancels (returns None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, default: str) -> None:
        super().__init__(classes="modal")
        self.title_text, self.default = title, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal-box"):
            yield Label(self.title_text, classes="modal-title")
            yield Label(f"Enter saves to {self.default}; type a path to save elsewhere; Escape cancels.",
                        classes="field-label")
            yield Input("", placeholder=self.default, id="path-input")
            with Horizontal(classes="modal-buttons"):
                yield Button("Save", variant="primary", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or self.default)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.dismiss(self.query_one(Input).value.strip() or self.default)
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
