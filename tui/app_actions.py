"""Key actions and command-palette entries of ``VisbppApp`` (a mixin: the app's state lives there)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from textual.app import SystemCommand
from textual.screen import Screen
from textual.widgets import Input, TabbedContent

from .results_view import export_json, export_table
from .widgets.confirm_modal import ConfirmModal
from .widgets.error_modal import ErrorModal
from .widgets.fit_plot import FitPlot
from .widgets.path_prompt import PathPrompt

TABS = ("models", "run", "results", "plots", "stats", "bits", "runs")


FIT_ACTIONS = ("toggle_model_set", "toggle_fid_source", "zoom_group")   # m, f, g: what the fits show


class ActionsMixin:
    """Actions bound to keys in ``VisbppApp.BINDINGS``."""

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)  # type: ignore[misc]
        yield SystemCommand("Run selected models", "Score the selection in the background", self.action_run)
        yield SystemCommand("Cancel run", "Stop the run (or download) between batches", self.action_cancel)
        yield SystemCommand("Export table to CSV", "Merged results table as CSV", self.action_export_csv)
        yield SystemCommand("Export analysis to JSON", "Fits, ANCOVA, global models", self.action_export_json)
        yield SystemCommand("Toggle fit set", "Fit published BPP or measured BPP", self.action_toggle_model_set)
        yield SystemCommand("Reload results", "Re-read the results store", self.refresh_analysis)
        yield SystemCommand("Zoom plot to next group", "Each group's BPP range fills the plot", self.action_zoom_group)
        for tab in TABS:
            yield SystemCommand(f"Show {tab}", f"Switch to the {tab} tab", lambda t=tab: self.action_tab(t))

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "leave_field":   # shown in the footer only while a text field has the focus
            return isinstance(self.focused, Input)
        if action in FIT_ACTIONS:     # the Runs tab's own keys (pin, unpin, remove) take their place there
            tabs = self.query(TabbedContent)
            return not tabs or tabs.first().active != "runs"
        return True

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_leave_field(self) -> None:
        """Escape from a text field so the single-key bindings (r, c, q, 1-6) work again."""
        if isinstance(self.focused, Input):
            self.query_one("#progress").focus() if self.query_one(TabbedContent).active == "run" else self.set_focus(None)

    def action_zoom_group(self) -> None:
        """Cycle the FID plot through all groups, then each group alone (its BPP range fills the plot)."""
        name = self.query_one("#fit-plot", FitPlot).next_zoom()
        self.notify(f"FID plot: {name or 'all groups'}")
        self.action_tab("plots")

    def action_toggle_model_set(self) -> None:
        self.model_set = "all" if self.model_set == "published" else "published"
        self.notify(f"Fitting {'measured BPP where available' if self.model_set == 'all' else 'published BPP'}.")
        self.refresh_analysis()

    def action_toggle_fid_source(self) -> None:
        order = ("paper", "readme", "noguidance")
        self.fid_source = order[(order.index(self.fid_source) + 1) % len(order)]
        self.notify(f"Fitting the {self.fid_source} FIDs (models without one are left out).")
        self.refresh_analysis()

    def action_export_csv(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self._export(lambda: export_table(self.bundle.measured if self.bundle else [], path, self.fid_source),
                             "table")

        self.push_screen(PathPrompt("Export the results table to CSV", str(Path.cwd() / "visbpp_results.csv")), done)

    def action_export_json(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self._export(lambda: export_json(self.bundle.analysis if self.bundle else None, path), "analysis")

        self.push_screen(PathPrompt("Export the analysis to JSON", str(Path.cwd() / "visbpp_analysis.json")), done)

    def _export(self, fn: Callable[[], Path], what: str) -> None:
        try:
            p = fn()
        except (OSError, ValueError) as e:
            self.push_screen(ErrorModal(f"Export of the {what} failed", str(e)))
            return
        self.notify(f"Wrote the {what} to {Path(p).resolve()}")

    def action_cancel(self) -> None:
        if self.fetching:
            self._fetch_cancel.set()
            self.notify("Cancelling the download (a later fetch resumes it)…")
            return
        if not self.running:
            self.notify("No run in progress.")
            return
        self._cancel.set()
        self.notify("Cancelling after the current batch…")

    async def action_quit(self) -> None:
        """Quit at once when idle; during a run ask first, then cancel it and quit when it has stopped."""
        if not self.running:
            self._fetch_cancel.set()
            self.quit_now()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._quit_after_run = True
                self._cancel.set()
                self.notify("Cancelling the run, then quitting…")
                self.set_timer(15.0, self.exit)   # a batch that never ends must not keep the app open

        self.push_screen(ConfirmModal("Quit during a run?", "A run is in progress. Cancel it (finished models are "
                                      "kept) and quit?", yes="Cancel run and quit (y)", no="Keep running (n)"), answer)
