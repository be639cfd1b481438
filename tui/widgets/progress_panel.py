"""Progress panel: one row per model (stage, bar, images/s, ETA) under a run status line."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import ProgressBar, Static

from ..state import ModelProgress, RunView

IDLE = "No run yet: select models (Models tab), press r. The micro models need no data dir; others need one."
STAGE_STYLE = {"loading": "yellow", "encoding": "cyan", "scoring": "magenta", "writing": "blue", "done": "green"}


class ModelProgressRow(Vertical):
    """Label + stage, a bar, and the numbers of one model."""

    def __init__(self, model_id: str, progress: ModelProgress | None = None, **kw) -> None:
        super().__init__(classes="model-progress", **kw)
        self.model_id, self.progress = model_id, progress
        self._composed = False

    def compose(self) -> ComposeResult:
        yield Static(self.model_id, classes="mp-title", markup=False)
        yield ProgressBar(total=None, show_eta=False, show_percentage=True, classes="mp-bar")
        yield Static("", classes="mp-stats", markup=False)

    def on_mount(self) -> None:
        self._composed = True
        if self.progress is not None:
            self.show(self.progress)

    def show(self, p: ModelProgress) -> None:
        self.progress = p
        if not self._composed:   # drawn by on_mount once its children exist
            return
        style = STAGE_STYLE.get(p.stage, "dim")
        title = Text.assemble((p.model_id, "bold"), "  ", (p.stage, style))
        if p.detail and p.stage != "done":
            title.append(f"  {p.detail}", style="dim")
        self.query_one(".mp-title", Static).update(title)
        bar = self.query_one(ProgressBar)
        if p.total:
            bar.update(total=p.total, progress=p.done)
        self.query_one(".mp-stats", Static).update(p.stats)


class ProgressPanel(VerticalScroll):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "Progress"

    def compose(self) -> ComposeResult:
        yield Static(IDLE, id="run-status", markup=False)
        yield Static("", id="fetch-status", markup=False)

    def fetch_line(self, text: str) -> None:
        """The download line (bytes, rate, ETA) while checkpoints are fetched; empty hides it."""
        line = self.query_one("#fetch-status", Static)
        line.update(text)
        line.display = bool(text)

    def status_text(self, view: RunView) -> str:
        if view.running:
            return f"Running {view.run_id or ''}  ·  c cancels between batches"
        if view.cancelled:
            return "Run cancelled (finished models are kept)."
        if view.finished:
            skipped = f", {len(view.skipped)} images skipped" if view.skipped else ""
            where = f" → {view.out_dir}" if view.out_dir else ""
            note = f" ({view.message})" if "already finished" in view.message else ""
            return f"Run finished{skipped}{where}.{note}"
        return IDLE

    def reset(self, view: RunView) -> None:
        for row in self.query(ModelProgressRow):
            row.remove()
        for mid, p in view.models.items():
            self.mount(ModelProgressRow(mid, p))
        self.query_one("#run-status", Static).update(self.status_text(view))

    def show(self, view: RunView, model_id: str | None) -> None:
        self.query_one("#run-status", Static).update(self.status_text(view))
        if model_id is None:
            if view.cancelled:  # queued models turned "not run"
                for row in self.query(ModelProgressRow):
                    if row.model_id in view.models:
                        row.show(view.models[row.model_id])
            return
        for row in self.query(ModelProgressRow):
            if row.model_id == model_id:
                row.show(view.models[model_id])
                return
        self.mount(ModelProgressRow(model_id, view.models[model_id]))
