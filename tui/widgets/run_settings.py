"""Run settings: data dir (remembered between sessions), labels CSV, subset, batch size, device,
dtype, preprocessing protocol (official | paper), scoring order (random-order families), checkpoint
dir, your own models' extra files, and the switches of `visbpp run`: --unconditional, --recon, --force.
Posts ``Changed`` with the full ``UISettings`` on every edit."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Input, Label, Select, Static

from ..settings import DEVICES, DTYPES, ORDERS, PREPROCESSINGS, UISettings, flag

# (field, label, placeholder)
TEXT_FIELDS = (
    ("data_dir", "Data dir", "ImageNet val folder"),
    ("labels_csv", "Labels CSV", "flat layout only"),
    ("limit", "Limit", "all images"),
    ("per_class", "Per class", "all"),
    ("batch_size", "Batch size", "16 or auto"),
    ("checkpoint_dir", "Checkpoints", "cache"),
    ("extra_files", "Extra files (own model)", "NAME=PATH, ..."),
)
# (field, label): the switches of `visbpp run`
SWITCHES = (
    ("unconditional", "--unconditional"),      # + bits with the null class
    ("recon", "--recon (PSNR/SSIM)"),
    ("force", "--force (recompute)"),
)


class RunSettingsPanel(VerticalScroll):
    class Changed(Message):
        def __init__(self, settings: UISettings) -> None:
            super().__init__()
            self.settings = settings

    def __init__(self, settings: UISettings, **kw) -> None:
        super().__init__(**kw)
        self._settings = settings
        self._default_data: str | None = None
        self.border_title = "Run settings"

    def compose(self) -> ComposeResult:
        s = self._settings
        for name, label, placeholder in TEXT_FIELDS:
            yield Label(label, classes="field-label")
            yield Input(getattr(s, name), placeholder=placeholder, id=f"set-{name}", compact=True)
            if name == "data_dir":
                yield Static("", id="data-default", markup=False)
        yield Label("Device", classes="field-label")
        yield Select([(d, d) for d in DEVICES], value=s.device, allow_blank=False, id="set-device", compact=True)
        yield Label("Dtype", classes="field-label")
        yield Select([(d, d) for d in DTYPES], value=s.dtype, allow_blank=False, id="set-dtype", compact=True)
        yield Label("Preprocess", classes="field-label")
        yield Select([(p, p) for p in PREPROCESSINGS], value=s.preprocess, allow_blank=False, id="set-preprocess",
                     compact=True)
        yield Label("Order (ARPG, RandAR)", classes="field-label")
        yield Select([(o, o) for o in ORDERS], value=s.order, allow_blank=False, id="set-order", compact=True)
        for name, label in SWITCHES:
            yield Checkbox(label, flag(getattr(s, name)), id=f"set-{name}", compact=True)

    def show_default_data(self, path: str | None) -> None:
        """Show the data dir a run uses while the field is empty (the micro zoo's held-out digits)."""
        self.query_one("#set-data_dir", Input).placeholder = "empty: built-in data" if path else TEXT_FIELDS[0][2]
        hint = self.query_one("#data-default", Static)
        hint.update(f"empty → bundled held-out digits (micro): {path}" if path else "")
        self._default_data = path
        hint.display = bool(path) and not self._settings.data_dir.strip()

    @property
    def settings(self) -> UISettings:
        return self._settings

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        name = (event.input.id or "").removeprefix("set-")
        if name and getattr(self._settings, name, None) != event.value:
            self._settings = self._settings.updated(**{name: event.value})
            self.post_message(self.Changed(self._settings))
        if name == "data_dir":
            self.query_one("#data-default").display = bool(self._default_data) and not event.value.strip()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        name = (event.checkbox.id or "").removeprefix("set-")
        value = "on" if event.value else ""
        if name and getattr(self._settings, name, None) != value:
            self._settings = self._settings.updated(**{name: value})
            self.post_message(self.Changed(self._settings))

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        name = (event.select.id or "").removeprefix("set-")
        if name and isinstance(event.value, str) and getattr(self._settings, name, None) != event.value:
            self._settings = self._settings.updated(**{name: event.value})
            self.post_message(self.Changed(self._settings))
