"""``visbpp-tui``: pick models, score them in a background worker with live progress and memory
panels, and read the FID-vs-BPP fits beside the results table.

The app only wires widgets to the pure logic in ``state`` / ``results_view`` / ``settings`` and to
the engine (``visbpp.core.engine.entry.score``, the same call as ``visbpp run``). Background work
runs in ``@work`` thread methods (``app_workers.py``) that post typed messages (``messages.py``);
the ``Worker.StateChanged`` handler only reports their errors.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Callable, Iterable, Sequence

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Input, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from visbpp.core.engine import events as ev
from visbpp.core.registry.catalog import model_cards
from visbpp.models.jobs import JobPlan

from . import settings as st
from .app_actions import TABS, ActionsMixin
from .app_views import ViewsMixin
from .app_workers import WorkersMixin
from .launch import heavy_imports
from .memory import probe_memory
from .messages import (
    BundleLoaded,
    CustomInfosLoaded,
    DefaultDataFound,
    EngineEvent,
    FetchDone,
    FetchProgress,
    RunDone,
    StatusesLoaded,
)
from .results_view import Bundle, analysis_warnings, toast_line
from .state import (
    CustomModel,
    RunView,
    default_selection,
    fetch_function,
    fmt_bytes,
    fmt_eta,
    picker_rows,
    readable_error,
    selection_families,
)
from .stats_view import outliers
from .widgets.bilinear_plot import BilinearPlot
from .widgets.bits_panel import BitsPanel
from .widgets.error_modal import ErrorModal
from .widgets.fit_legend import FitLegend
from .widgets.fit_plot import FitPlot
from .widgets.memory_panel import MemoryPanel
from .widgets.missing_modal import MissingCheckpointsModal
from .widgets.model_detail import ModelDetail
from .widgets.model_picker import ModelPicker
from .widgets.progress_panel import ProgressPanel
from .widgets.result_detail import ResultDetail
from .widgets.results_table import ResultsTable
from .widgets.run_settings import RunSettingsPanel
from .widgets.runs_panel import RunsChanged, RunsPanel
from .widgets.stats_panel import StatsPanel

__all__ = ["TABS", "VisbppApp", "heavy_imports", "main"]


class VisbppApp(ActionsMixin, ViewsMixin, WorkersMixin, App):
    """The TUI. Every external dependency is a constructor argument so tests can pin them."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses elsewhere keep it
    TITLE = "visbpp"
    SUB_TITLE = "bpp = bits / (3·H·W) vs FID"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("escape", "leave_field", "Esc leaves field", show=True),
        Binding("q", "quit", "Quit"),
        Binding("r", "run", "Run"),
        Binding("c", "cancel", "Cancel"),
        Binding("e", "export_csv", "CSV"),
        Binding("j", "export_json", "JSON"),
        Binding("m", "toggle_model_set", "BPP"),
        Binding("f", "toggle_fid_source", "FID"),
        Binding("g", "zoom_group", "Zoom"),
        *(Binding(str(i), f"tab('{t}')", t.title(), show=False) for i, t in enumerate(TABS, start=1)),
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
        switches: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.home = Path(home) if home else st.visbpp_home()
        self.settings_file = st.settings_path(self.home)
        self.ui_settings, self._settings_warning = st.load_settings(self.settings_file)
        self._saved = self.ui_settings   # the last valid settings written (or read)
        self.ui_settings = self.ui_settings.updated(force="", **(switches or {}))   # visbpp-tui --unconditional ...
        self.custom_models = list(custom_models)
        self.memory_probe, self.memory_interval = memory_probe, memory_interval
        self.runner = runner
        self.check_checkpoints, self.warm_torch = check_checkpoints, warm_torch
        self.model_set = "published"
        self.fid_source = "paper"   # which published FID set is fitted (paper, readme, noguidance)
        self.run_view = RunView()
        self.bundle: Bundle | None = None
        self.live_measured: list[dict] = []     # summaries of models finished in this session's runs
        self.statuses: dict = {}
        self.analysis_loads = 0                 # completed table/analysis refreshes (tests wait on it)
        self._cancel = threading.Event()
        self._fetch_cancel = threading.Event()
        self._run_worker: Worker | None = None
        self._quit_after_run = False
        self._quit_clean = False   # set by quit_now: only read-only workers were left
        self.custom_infos: dict[str, tuple[str, str]] = {}
        self._fetch_seen: dict[str, tuple[float, int]] = {}   # description -> (start time, start bytes)
        self.default_data: str | None = None    # data dir used when the field is empty (micro digits)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with TabbedContent(initial="models", id="tabs"):
            with TabPane("1 Models", id="models"):
                with Horizontal(id="models-body"):
                    yield ModelPicker(id="picker")
                    yield ModelDetail(id="detail")
                yield Static("", id="selection-summary", markup=False)
            with TabPane("2 Run", id="run"):
                with Horizontal(id="run-body"):
                    yield RunSettingsPanel(self.ui_settings, id="settings")
                    with Vertical(id="run-side"):
                        yield ProgressPanel(id="progress")
                        yield MemoryPanel(self.memory_probe, self.memory_interval, id="memory")
            with TabPane("3 Results", id="results"):
                with Vertical(id="results-body"):
                    yield ResultsTable(id="results-table")
                    yield ResultDetail(id="result-detail")
            with TabPane("4 Plots", id="plots"):
                with Vertical(id="plots-col"):
                    with Horizontal(id="plots-row"):
                        yield FitPlot(id="fit-plot")
                        yield BilinearPlot(id="bilinear-plot")
                        yield FitPlot(title="micro-FID vs BPP (micro zoo)", ylabel="micro-FID", id="micro-plot")
                    yield FitLegend(id="fit-legend")
            with TabPane("5 Stats", id="stats"):
                yield StatsPanel(id="stats-panel")
            with TabPane("6 Bits", id="bits"):
                yield BitsPanel(id="bits-panel")
            with TabPane("7 Runs", id="runs"):
                yield RunsPanel(str(self.home), id="runs-panel")
        yield Static("loading the published table…", id="analysis-status")
        yield Footer(compact=True, show_command_palette=False)   # ctrl+p still opens it: 80 columns hold the keys

    def on_mount(self) -> None:
        self._fill_picker()
        saved = self.ui_settings.selected_ids
        picker = self.query_one(ModelPicker)
        if self.custom_models:   # your own checkpoints: selected, at the top
            picker.set_selected([m.label for m in self.custom_models], quiet=True)
            self.load_custom_infos()
        else:
            picker.set_selected(default_selection(model_cards()) if saved is None else saved, quiet=True)
        self._update_summary(picker.ordered_selection())
        self._resolve_default_data(picker.ordered_selection())
        self.refresh_analysis()
        if self.check_checkpoints:
            self.load_statuses(self.ui_settings.checkpoint_dir)
        if self.warm_torch:
            self.warm_imports()
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
        self.query_one(ModelPicker).set_rows(picker_rows(model_cards(), self.statuses, self.custom_models,
                                                         self.custom_infos))
        self.show_detail()

    def _update_summary(self, selected: Sequence[str]) -> None:
        typed = self.ui_settings.data_dir.strip()
        shipped = bool(selected) and self.default_data is not None and not typed   # the selection's data ships
        where = (" · r scores them on the bundled data" if shipped else
                 f" · r scores them on {typed}" if selected and typed else "  ·  space toggles, r runs")
        txt = f"{len(selected)} selected" + (f": {', '.join(selected[:4])}{' …' if len(selected) > 4 else ''}"
                                              if selected else "") + where
        self.query_one("#selection-summary", Static).update(txt)

    # ------------------------------------------------------------------ run
    def _settings_error(self, message: str, field: str | None = None) -> None:
        """Show a settings error; closing it puts the focus in the field it names."""
        self.action_tab("run")

        def focus(_=None) -> None:
            try:
                self.query_one(f"#set-{field}").focus()
            except NoMatches:
                pass

        self.push_screen(ErrorModal("Run settings", readable_error(message)), focus if field else None)

    def _clear_progress(self) -> None:
        """Nothing ran (a validation or missing-checkpoint popup): no queued rows left behind."""
        self.run_view = RunView()
        self.query_one(ProgressPanel).reset(self.run_view)

    def abandon_workers_on_exit(self) -> bool:
        """True when, at the moment q quit, no worker that writes (run, fetch, the bundled data on first use)
        was still going."""
        return self._quit_clean

    def quit_now(self) -> None:
        # the bundled data is written beside its folder and renamed in: leaving it half-done is safe
        self._quit_clean = not (self.running or self._busy("fetch"))
        self.exit()

    def _busy(self, group: str) -> bool:
        return any(w.group == group and w.state in (WorkerState.PENDING, WorkerState.RUNNING) for w in self.workers)

    @property
    def fetching(self) -> bool:
        return self._busy("fetch")

    @property
    def running(self) -> bool:
        """A run worker that has not posted its ``RunDone`` yet."""
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
                self._settings_error(str(e), st.ui_field(e))
                return
        self._cancel = threading.Event()
        self.run_view.start(selected)
        self.query_one(ProgressPanel).reset(self.run_view)
        self.action_tab("run")
        self._run_worker = self.score_in_background((selected, list(self.custom_models), self.ui_settings, str(self.home),
                                                     lambda e: self.post_message(EngineEvent(e)), self._cancel, self.runner))

    # ------------------------------------------------------------------ background work
    def refresh_analysis(self) -> None:
        self.load_analysis(str(self.home), self.model_set, list(self.live_measured), self.fid_source)

    def _fetch(self, model_ids: Sequence[str]) -> None:
        from visbpp.core.registry.catalog import get_card

        self._fetch_cancel = threading.Event()
        self._fetch_seen = {}
        self.notify(f"Fetching checkpoints of {len(model_ids)} models… (c cancels)")
        self.action_tab("run")
        self.fetch_checkpoints(fetch_function(), [get_card(m) for m in model_ids], self._fetch_cancel)

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
            if w.name == "fetch":
                self.query_one(ProgressPanel).fetch_line("")
            if isinstance(err, st.SettingsError):
                self._settings_error(str(err), st.ui_field(err))
            elif isinstance(err, InterruptedError):
                self.notify(readable_error(err))
            else:
                title = {"fetch": "Download failed", "run": "Run failed"}.get(w.name or "", f"{w.name} failed")
                self.push_screen(ErrorModal(title, readable_error(err)))
            if w.name == "run":
                started = any(p.stage != "queued" for p in self.run_view.models.values())
                if started:
                    self.run_view.running = False
                    self.query_one(ProgressPanel).show(self.run_view, None)
                else:
                    self._clear_progress()
                self._maybe_quit()
            return
        if state == WorkerState.CANCELLED and w.name == "run":
            self._maybe_quit()

    # worker outcomes (messages from app_workers.py); the app may be shutting down, its widgets gone
    def on_bundle_loaded(self, message: BundleLoaded) -> None:
        with suppress(NoMatches):
            self._apply_bundle(message.bundle)

    def on_statuses_loaded(self, message: StatusesLoaded) -> None:
        self.statuses = message.statuses
        with suppress(NoMatches):
            self._fill_picker()

    def on_custom_infos_loaded(self, message: CustomInfosLoaded) -> None:
        self.custom_infos = message.infos
        with suppress(NoMatches):
            self._fill_picker()

    def on_fetch_done(self, message: FetchDone) -> None:
        with suppress(NoMatches):
            self.query_one(ProgressPanel).fetch_line("")
            self.notify("Checkpoints fetched.")
            self.load_statuses(self.ui_settings.checkpoint_dir)

    def on_default_data_found(self, message: DefaultDataFound) -> None:
        self.default_data = message.path
        with suppress(NoMatches):
            self.query_one(RunSettingsPanel).show_default_data(message.path)
            self._update_summary(self.query_one(ModelPicker).ordered_selection())

    def on_run_done(self, message: RunDone) -> None:
        self._run_worker = None   # its last act was posting this message
        with suppress(NoMatches):
            self._run_done(message.result)

    def _run_done(self, result) -> None:
        if isinstance(result, JobPlan):  # nothing ran: files missing or models that cannot be built
            self._clear_progress()
            self._maybe_quit()
            if result.errors:
                msg = "\n".join(f"{m}: {readable_error(e)}" for m, e in result.errors)
                self.push_screen(ErrorModal("Could not prepare the run", msg))
            if result.missing:
                ids = [m for m, _ in result.missing]
                self.push_screen(MissingCheckpointsModal(result.missing), lambda go: self._fetch(ids) if go else None)
            return
        if self.run_view.running:  # the engine ended without a RunFinished event
            self.run_view.running, self.run_view.finished = False, True
            self.run_view.cancelled = bool(getattr(result, "cancelled", False))
        self.query_one(ProgressPanel).show(self.run_view, None)
        self.refresh_analysis()
        self._maybe_quit()

    def _maybe_quit(self) -> None:
        if self._quit_after_run:
            self.quit_now()

    def _apply_bundle(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.query_one(ResultsTable).set_rows(bundle.rows)
        flagged = outliers(bundle.analysis)
        self.query_one("#fit-plot", FitPlot).show(bundle.series, outliers=flagged)
        micro = self.query_one("#micro-plot", FitPlot)
        micro.show(bundle.micro_series, color_offset=len(bundle.series))
        micro.display = bool(bundle.micro_series)
        self.query_one(FitLegend).show(list(bundle.series) + list(bundle.micro_series), sorted(flagged))
        self.query_one(BilinearPlot).show(bundle.bilinear)
        warns = analysis_warnings(bundle)
        self.query_one(StatsPanel).show(bundle.analysis, self.fid_source, warns, bundle.runs_used)
        n_meas = sum(r.measured_bpp is not None for r in bundle.rows)
        fit = "published BPP" if self.model_set == "published" else "measured BPP where available"
        micro = " · µFID = micro-FID (digits), not FID" if any(r.micro for r in bundle.rows) else ""
        text = (f"{len(bundle.rows)} models, {n_meas} measured · fits on {fit}, FID {self.fid_source}{micro} · "
                f"4 plots, 5 stats, s sorts")
        status = Text(bundle.error, style="red") if bundle.error else Text(text)
        if warns and not bundle.error:
            status = Text(f"⚠ {len(warns)} fit warning(s) (5 Stats) · ", style="yellow") + status
            mixes = analysis_warnings(bundle, skip_kinds=("bpp_provenance",))   # standing notes do not pop up
            if mixes:   # one line over the plots; the full text is in the Stats tab
                self.notify(toast_line(mixes), title="fit warning", severity="warning", timeout=8)
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
        now = time.monotonic()
        t0, b0 = self._fetch_seen.setdefault(message.description, (now, message.done))
        rate = (message.done - b0) / (now - t0) if now - t0 > 0.5 else 0.0
        total = f" / {fmt_bytes(message.total)}" if message.total else ""
        eta = fmt_eta((message.total - message.done) / rate) if rate and message.total else "-"
        line = (f"download {message.description}: {fmt_bytes(message.done)}{total}"
                f" · {fmt_bytes(int(rate)) + '/s' if rate else '- /s'} · ETA {eta} · c cancels")
        self.query_one(ProgressPanel).fetch_line(line)
        if message.total and message.done >= message.total:
            self.notify(f"fetched {message.description}")

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        # the data dir field only when a run needs it typed (it swallows the single-key bindings)
        ready = self.run_view.running or self.ui_settings.data_dir or self.default_data
        run_target = "#progress" if ready else "#set-data_dir"
        target = {"models": "#picker", "run": run_target, "results": "#results-table",
                  "stats": "#stats-panel", "bits": "#bits-panel", "runs": "#runs-panel"}.get(event.pane.id or "")
        if target:
            self.query_one(target).focus()
        if event.pane.id == "bits":
            self._load_bits()
        self.refresh_bindings()   # m, f, g make way for the Runs tab's keys there
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
        self.find_default_data(selection_families(selected, self.query_one(ModelPicker).rows_data, self.custom_models))

    def _save_settings(self, settings: st.UISettings | None = None) -> None:
        """Write the settings; only valid values reach the file (``savable``)."""
        settings = st.savable(settings or self.ui_settings, self._saved)
        self._saved = settings
        try:
            st.save_settings(settings, self.settings_file)
        except OSError as e:
            self.notify(f"could not save settings to {self.settings_file}: {e}", severity="warning")

    @on(RunSettingsPanel.Changed)
    def _settings_changed(self, message: RunSettingsPanel.Changed) -> None:
        old_ck, last_good = self.ui_settings.checkpoint_dir, self._saved
        self.ui_settings = message.settings.updated(selection=self.ui_settings.selection)
        bad = st.field_errors(self.ui_settings)
        for name in st.VALIDATED:
            self.query_one(f"#set-{name}", Input).set_class(name in bad, "-invalid")
        self._save_settings(st.savable(self.ui_settings, last_good))
        self._update_summary(self.query_one(ModelPicker).ordered_selection())   # where r scores them
        if self.check_checkpoints and message.settings.checkpoint_dir != old_ck:
            self.load_statuses(self.ui_settings.checkpoint_dir)


from .launch import main, parse_args  # noqa: E402,F401 - the entry point lives there
