"""``visbpp-tui``: pick models, score them in a background worker with live progress and memory
panels, and read the FID-vs-BPP fits beside the results table.

The app only wires widgets to the pure logic in ``state`` / ``results_view`` / ``settings`` and to
the engine (``visbpp.core.engine.run``, the same as ``visbpp run``). Background work runs in
thread workers that return plain data or post dataclass messages; one ``Worker.StateChanged``
handler routes their results and errors.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from visbpp.core import events as ev
from visbpp.core.registry import model_cards

from . import settings as st
from .memory import probe_memory
from .messages import EngineEvent, FetchProgress
from .results_view import Bundle, analysis_warnings, export_json, export_table, load_bundle
from .run_worker import score_selection
from .state import (
    CustomModel,
    JobPlan,
    RunView,
    checkpoint_status,
    default_selection,
    fetch_function,
    picker_rows,
    shipped_data_dir,
)
from .widgets.bilinear_plot import BilinearPlot
from .widgets.error_modal import ErrorModal
from .widgets.fit_legend import FitLegend
from .widgets.fit_plot import FitPlot
from .widgets.memory_panel import MemoryPanel
from .widgets.missing_modal import MissingCheckpointsModal
from .widgets.model_picker import ModelPicker
from .widgets.path_prompt import PathPrompt
from .widgets.progress_panel import ProgressPanel
from .widgets.results_table import ResultsTable
from .widgets.run_settings import RunSettingsPanel
from .widgets.runs_panel import RunsChanged, RunsPanel

TABS = ("models", "run", "results")


class VisbppApp(App):
    """The TUI. Every external dependency is a constructor argument so tests can pin them."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses elsewhere keep it
    TITLE = "visbpp"
    SUB_TITLE = "bpp = bits / (3·H·W) vs FID"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (140, "-wide")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("r", "run", "Run"),
        Binding("c", "cancel", "Cancel"),
        Binding("e", "export_csv", "CSV"),
        Binding("j", "export_json", "JSON"),
        Binding("m", "toggle_model_set", "Fit set"),
        Binding("p", "toggle_plots", "Plots"),
        Binding("escape", "leave_field", "Leave field", show=False),
        Binding("1", "tab('models')", "Models", show=False),
        Binding("2", "tab('run')", "Run", show=False),
        Binding("3", "tab('results')", "Results", show=False),
        Binding("4", "tab('runs')", "Runs", show=False),
    ]

    def __init__(
        self,
        *,
        home: str | Path | None = None,
        custom_models: Sequence[CustomModel] = (),
        memory_probe: Callable[[], Iterable[ev.MemoryStats]] = probe_memory,
        memory_interval: float = 1.0,
        runner: Callable | None = None,
        check_checkpoints: bool = True,
        warm_torch: bool = True,
    ) -> None:
        super().__init__()
        self.home = Path(home) if home else st.visbpp_home()
        self.settings_file = st.settings_path(self.home)
        self.ui_settings, self._settings_warning = st.load_settings(self.settings_file)
        self.custom_models = list(custom_models)
        self.memory_probe, self.memory_interval = memory_probe, memory_interval
        self.runner = runner
        self.check_checkpoints, self.warm_torch = check_checkpoints, warm_torch
        self.model_set = "published"
        self.run_view = RunView()
        self.bundle: Bundle | None = None
        self.live_measured: list[dict] = []     # summaries of models finished in this session's runs
        self.statuses: dict = {}
        self.analysis_loads = 0                 # completed table/analysis refreshes (tests wait on it)
        self._cancel = threading.Event()
        self._run_worker: Worker | None = None
        self.default_data: str | None = None    # data dir used when the field is empty (micro digits)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with TabbedContent(initial="models", id="tabs"):
            with TabPane("Models [1]", id="models"):
                yield ModelPicker(id="picker")
                yield Static("", id="selection-summary", markup=False)
            with TabPane("Run [2]", id="run"):
                with Horizontal(id="run-body"):
                    yield RunSettingsPanel(self.ui_settings, id="settings")
                    with Vertical(id="run-side"):
                        yield ProgressPanel(id="progress")
                        yield MemoryPanel(self.memory_probe, self.memory_interval, id="memory")
            with TabPane("Results [3]", id="results"):
                with Vertical(id="results-body"):
                    yield ResultsTable(id="results-table")
                    with Vertical(id="plots-col"):
                        with Horizontal(id="plots"):
                            yield FitPlot(id="fit-plot")
                            yield BilinearPlot(id="bilinear-plot")
                            yield FitPlot(title="micro-FID vs BPP (micro zoo)", ylabel="micro-FID",
                                          id="micro-plot")
                        yield FitLegend(id="fit-legend")
                yield Static("loading the published table…", id="analysis-status")
            with TabPane("Runs [4]", id="runs"):
                yield RunsPanel(str(self.home), id="runs-panel")
        yield Footer()

    def on_mount(self) -> None:
        self._fill_picker()
        saved = self.ui_settings.selected_ids
        picker = self.query_one(ModelPicker)
        picker.set_selected(default_selection(model_cards()) if saved is None else saved, quiet=True)
        self._update_summary(picker.ordered_selection())
        self._resolve_default_data(picker.ordered_selection())
        self.refresh_analysis()
        if self.check_checkpoints:
            self.run_worker(self._statuses_job, name="statuses", group="statuses", thread=True, exclusive=True)
        if self.warm_torch:
            self.run_worker(heavy_imports, name="warm", group="warm", thread=True)
        if self._settings_warning:
            self.notify(self._settings_warning, severity="warning")
        self._store_signature = self._results_signature()
        self.set_interval(5.0, self._poll_store)

    def _results_signature(self) -> tuple:
        """Run folders of the results store with the mtime of their results.json (cheap listing)."""
        sig = []
        try:
            with os.scandir(self.home / "results") as it:
                for e in it:
                    try:
                        sig.append((e.name, os.stat(os.path.join(e.path, "results.json")).st_mtime_ns))
                    except OSError:
                        continue
        except OSError:
            return ()
        return tuple(sorted(sig))

    def _poll_store(self) -> None:
        """Results written by another process (``visbpp run`` in a shell) appear without a restart."""
        sig = self._results_signature()
        if sig != self._store_signature:
            self._store_signature = sig
            self.refresh_analysis()

    def _fill_picker(self) -> None:
        self.query_one(ModelPicker).set_rows(picker_rows(model_cards(), self.statuses, self.custom_models))

    def _update_summary(self, selected: Sequence[str]) -> None:
        micro = bool(selected) and self.default_data is not None   # the selection's family ships its data
        txt = f"{len(selected)} selected" + (f": {', '.join(selected[:4])}{' …' if len(selected) > 4 else ''}"
                                              if selected else "") + (
            " · r scores them, no set-up" if micro else "  ·  space toggles, r runs")
        self.query_one("#selection-summary", Static).update(txt)

    # ------------------------------------------------------------------ palette
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Run selected models", "Score the selection in the background", self.action_run)
        yield SystemCommand("Cancel run", "Stop the run between batches", self.action_cancel)
        yield SystemCommand("Export table to CSV", "Merged results table as CSV", self.action_export_csv)
        yield SystemCommand("Export analysis to JSON", "Fits, ANCOVA, global models", self.action_export_json)
        yield SystemCommand("Toggle fit set", "Fit published BPP or measured BPP", self.action_toggle_model_set)
        yield SystemCommand("Reload results", "Re-read the results store", self.refresh_analysis)
        yield SystemCommand("Toggle plots", "Give the results table the whole height", self.action_toggle_plots)
        for tab in TABS:
            yield SystemCommand(f"Show {tab}", f"Switch to the {tab} tab", lambda t=tab: self.action_tab(t))

    # ------------------------------------------------------------------ actions
    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_leave_field(self) -> None:
        """Escape from a text field so the single-key bindings (r, c, q, 1-3) work again."""
        if self.query_one(TabbedContent).active == "run":
            self.query_one(ProgressPanel).focus()

    @property
    def running(self) -> bool:
        return self._run_worker is not None and self._run_worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    def action_run(self) -> None:
        if self.running:
            self.notify("A run is already in progress (c cancels it).", severity="warning")
            return
        selected = self.query_one(ModelPicker).ordered_selection()
        if not selected:
            self.notify("Nothing selected: pick models on the Models tab (space toggles).", severity="warning")
            self.action_tab("models")
            return
        if self.ui_settings.data_dir.strip():  # a typed data dir is checked at once; the default in the worker
            try:
                st.to_run_settings(self.ui_settings, cache_dir=str(self.home))
            except st.SettingsError as e:
                self.push_screen(ErrorModal("Run settings", str(e)))
                self.action_tab("run")
                return
        self._cancel = threading.Event()
        self.run_view.start(selected)
        self.query_one(ProgressPanel).reset(self.run_view)
        self.action_tab("run")
        args = (selected, list(self.custom_models), self.ui_settings, str(self.home),
                lambda e: self.post_message(EngineEvent(e)), self._cancel, self.runner)
        self._run_worker = self.run_worker(lambda: (heavy_imports(), score_selection(*args))[1], name="run",
                                           group="run", thread=True, exit_on_error=False)

    def action_cancel(self) -> None:
        if not self.running:
            self.notify("No run in progress.")
            return
        self._cancel.set()
        self.notify("Cancelling after the current batch…")

    def action_toggle_plots(self) -> None:
        """Hide/show the plots so the table gets the whole height (handy at 80x24)."""
        self.query_one("#results-body").toggle_class("-table-only")
        self.action_tab("results")

    def action_toggle_model_set(self) -> None:
        self.model_set = "all" if self.model_set == "published" else "published"
        self.notify(f"Fitting {'measured BPP where available' if self.model_set == 'all' else 'published BPP'}.")
        self.refresh_analysis()

    def action_export_csv(self) -> None:
        default = str(Path.cwd() / "visbpp_results.csv")

        def done(path: str | None) -> None:
            if path:
                self._export(lambda: export_table(self.bundle.measured if self.bundle else [], path), "table")

        self.push_screen(PathPrompt("Export the results table to CSV", default), done)

    def action_export_json(self) -> None:
        default = str(Path.cwd() / "visbpp_analysis.json")

        def done(path: str | None) -> None:
            if path:
                self._export(lambda: export_json(self.bundle.analysis if self.bundle else None, path), "analysis")

        self.push_screen(PathPrompt("Export the analysis to JSON", default), done)

    def _export(self, fn: Callable[[], Path], what: str) -> None:
        try:
            p = fn()
        except (OSError, ValueError) as e:
            self.push_screen(ErrorModal(f"Export of the {what} failed", str(e)))
            return
        self.notify(f"Wrote the {what} to {p}")

    # ------------------------------------------------------------------ background work
    def refresh_analysis(self) -> None:
        model_set, live, home = self.model_set, list(self.live_measured), str(self.home)
        self.run_worker(lambda: (heavy_imports(), load_bundle(home, model_set, live))[1], name="analysis", group="analysis",
                        thread=True, exclusive=True, exit_on_error=False)

    def _statuses_job(self) -> dict:
        heavy_imports()
        ckdir = self.ui_settings.checkpoint_dir
        return {c.id: checkpoint_status(c, ckdir) for c in model_cards()}

    def _fetch(self, model_ids: Sequence[str]) -> None:
        fetch = fetch_function()
        if fetch is None:
            return
        from visbpp.core.registry import get_card

        cards = [get_card(m) for m in model_ids]

        def job():
            return fetch(cards, progress=lambda d, n, t: self.post_message(FetchProgress(d, n, t)))

        self.notify(f"Fetching checkpoints of {len(cards)} models…")
        self.run_worker(job, name="fetch", group="fetch", thread=True, exclusive=True, exit_on_error=False)

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        w, state = event.worker, event.state
        if state == WorkerState.ERROR:
            if w.name == "warm":
                return
            err = w.error
            if w.name == "defaults":
                self.notify(f"no built-in data for the selection: {err}", severity="warning")
                return
            if isinstance(err, st.SettingsError):
                self.push_screen(ErrorModal("Run settings", str(err)))
            else:
                self.push_screen(ErrorModal(f"{w.name} failed", f"{type(err).__name__}: {err}"))
            if w.name == "run":
                self.run_view.running = False
                self.query_one(ProgressPanel).show(self.run_view, None)
            return
        if state != WorkerState.SUCCESS:
            return
        try:
            self._worker_succeeded(w)
        except NoMatches:  # the app is shutting down and its widgets are gone
            pass

    def _worker_succeeded(self, w: Worker) -> None:
        if w.name == "analysis":
            self._apply_bundle(w.result)
        elif w.name == "statuses":
            self.statuses = w.result
            self._fill_picker()
        elif w.name == "fetch":
            self.notify("Checkpoints fetched.")
            self.run_worker(self._statuses_job, name="statuses", group="statuses", thread=True, exclusive=True)
        elif w.name == "run":
            self._run_done(w.result)
        elif w.name == "defaults":
            self.default_data = w.result
            self.query_one(RunSettingsPanel).show_default_data(w.result)
            self._update_summary(self.query_one(ModelPicker).ordered_selection())

    def _run_done(self, result) -> None:
        if isinstance(result, JobPlan):
            self.run_view.running = False
            self.query_one(ProgressPanel).show(self.run_view, None)
            if result.errors:
                msg = "\n".join(f"{m}: {e}" for m, e in result.errors)
                self.push_screen(ErrorModal("Could not prepare the run", msg))
            if result.missing:
                ids = [m for m, _ in result.missing]
                self.push_screen(MissingCheckpointsModal(result.missing, fetch_function() is not None),
                                 lambda go: self._fetch(ids) if go else None)
            return
        if self.run_view.running:  # the engine ended without a RunFinished event
            self.run_view.running, self.run_view.finished = False, True
            self.run_view.cancelled = bool(getattr(result, "cancelled", False))
        self.query_one(ProgressPanel).show(self.run_view, None)
        self.refresh_analysis()

    def _apply_bundle(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.query_one(ResultsTable).set_rows(bundle.rows)
        self.query_one("#fit-plot", FitPlot).show(bundle.series)
        micro = self.query_one("#micro-plot", FitPlot)
        micro.show(bundle.micro_series, color_offset=len(bundle.series))
        micro.display = bool(bundle.micro_series)
        self.query_one(FitLegend).show(list(bundle.series) + list(bundle.micro_series))
        self.query_one(BilinearPlot).show(bundle.bilinear)
        n_meas = sum(r.measured_bpp is not None for r in bundle.rows)
        fit = "published BPP" if self.model_set == "published" else "measured BPP where available"
        micro = " · µFID = micro-FID (digits), not FID" if any(r.micro for r in bundle.rows) else ""
        text = f"{len(bundle.rows)} models, {n_meas} measured · fits on {fit}{micro} · s sorts, e CSV, j JSON, m fit set"
        warns = analysis_warnings(bundle)
        status = Text(bundle.error, style="red") if bundle.error else Text(text)
        if warns and not bundle.error:
            status = Text(f"⚠ {len(warns)} warning(s): {warns[0]}  ", style="yellow") + status
            for w in warns:  # mixed FID protocols / evaluation resolutions / BPP sources, listed by model
                self.notify(w, title="fit warning", severity="warning", timeout=12)
        self.query_one("#analysis-status", Static).update(status)
        self.analysis_loads += 1

    # ------------------------------------------------------------------ engine events
    def on_engine_event(self, message: EngineEvent) -> None:
        e = message.event
        changed = self.run_view.apply(e)
        self.query_one(ProgressPanel).show(self.run_view, changed)
        if isinstance(e, ev.ModelFinished):
            self.live_measured.append({"model_id": e.model_id, "bpp": e.bpp, "bits_per_token": e.bits_per_token,
                                       "n_images": e.n_images, **(e.summary or {})})
            self.refresh_analysis()
        elif isinstance(e, ev.RunFinished) and e.cancelled:
            self.notify("Run cancelled.")
        if isinstance(e, ev.RunFinished):
            self.query_one(RunsPanel).reload()

    def on_runs_changed(self, message: RunsChanged) -> None:
        self.refresh_analysis()

    def on_fetch_progress(self, message: FetchProgress) -> None:
        if message.total and message.done >= message.total:
            self.notify(f"fetched {message.description}")

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # the data dir field only when a run needs it typed (it swallows the single-key bindings)
        ready = self.run_view.running or self.ui_settings.data_dir or self.default_data
        run_target = "#progress" if ready else "#set-data_dir"
        target = {"models": "#picker", "run": run_target, "results": "#results-table",
                  "runs": "#runs-panel"}.get(event.pane.id or "")
        if target:
            self.query_one(target).focus()

    # ------------------------------------------------------------------ picker / settings
    @on(ModelPicker.SelectionChanged)
    def _selection_changed(self, message: ModelPicker.SelectionChanged) -> None:
        self.default_data = None   # until the worker below has looked at the new selection
        self._update_summary(message.selected)
        self.ui_settings = self.ui_settings.updated(selection=",".join(message.selected))
        self._save_settings()
        self._resolve_default_data(message.selected)

    def _resolve_default_data(self, selected: Sequence[str]) -> None:
        """Find (and write on first use) the data the selection's family ships, off the UI thread;
        the run settings show it as the data dir used while the field is empty."""
        sel, custom = tuple(selected), list(self.custom_models)
        self.run_worker(lambda: shipped_data_dir(sel, custom) if sel else None, name="defaults", group="defaults",
                        thread=True, exclusive=True, exit_on_error=False)

    def _save_settings(self) -> None:
        try:
            st.save_settings(self.ui_settings, self.settings_file)
        except OSError as e:
            self.notify(f"could not save settings to {self.settings_file}: {e}", severity="warning")

    @on(RunSettingsPanel.Changed)
    def _settings_changed(self, message: RunSettingsPanel.Changed) -> None:
        old_ck = self.ui_settings.checkpoint_dir
        self.ui_settings = message.settings.updated(selection=self.ui_settings.selection)
        self._save_settings()
        if self.check_checkpoints and message.settings.checkpoint_dir != old_ck:
            self.run_worker(self._statuses_job, name="statuses", group="statuses", thread=True, exclusive=True)

    async def action_quit(self) -> None:
        self._cancel.set()
        self.exit()


_IMPORT_LOCK = threading.Lock()


def heavy_imports() -> None:
    """Import torch, pandas and statsmodels off the UI thread, one thread at a time.

    Every worker calls this first: first-time imports of these libraries from several threads at
    once can end in the import system's deadlock error (seen at start-up: analysis, checkpoint
    status and the torch warm-up all start together). After the first call it costs nothing.
    """
    with _IMPORT_LOCK:
        import pandas  # noqa: F401
        import statsmodels.formula.api  # noqa: F401
        import torch  # noqa: F401

        import visbpp.core.analysis  # noqa: F401
        import visbpp.core.checkpoints  # noqa: F401
        import visbpp.core.engine  # noqa: F401


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="visbpp-tui", description="Interactive visbpp: pick models, score, compare.")
    p.add_argument("--family", help="family of a custom checkpoint (with --config/--tokenizer/--transformer)")
    p.add_argument("--config", help="config JSON with the official constructor argument names")
    p.add_argument("--tokenizer", help="tokenizer checkpoint of the custom model")
    p.add_argument("--transformer", help="AR transformer checkpoint of the custom model")
    p.add_argument("--label", help="name of the custom model in the tables (default: the transformer file name)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    custom: list[CustomModel] = []
    given = [args.family, args.config, args.tokenizer, args.transformer]
    if any(given):
        if not all(given):
            raise SystemExit("visbpp-tui: a custom model needs all of --family, --config, --tokenizer, --transformer")
        label = args.label or Path(args.transformer).stem
        custom.append(CustomModel(label, args.family, args.config, args.tokenizer, args.transformer))
    VisbppApp(custom_models=custom).run()


if __name__ == "__main__":
    main()
