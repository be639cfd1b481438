"""The background work of ``VisbppApp`` (a mixin: the app's state lives there).

Harlequin's pattern: each job is a ``@work`` thread method that posts one typed message
(``messages.py``) with its outcome — the app handles the message, never the worker's return
value; a worker's name only titles its error (``app._worker_changed``). Workers of an exclusive
group post nothing once a newer one has replaced them. Every worker first runs
``launch.heavy_imports`` (first-time imports from several threads at once can deadlock).
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from textual import work
from textual.worker import get_current_worker

from visbpp.core.registry.catalog import ModelCard, model_cards

from .bits_view import load_report
from .launch import heavy_imports
from .messages import (
    BitsLoaded,
    BundleLoaded,
    CustomInfosLoaded,
    DefaultDataFound,
    FetchDone,
    FetchProgress,
    RunDone,
    StatusesLoaded,
)
from .results_view import load_bundle
from .run_worker import score_selection
from .state import checkpoint_status, custom_info


def _current() -> bool:
    """Whether the calling worker was not cancelled (replaced by a newer one of its group)."""
    return not get_current_worker().is_cancelled


class WorkersMixin:
    @work(thread=True, name="run", group="run", exit_on_error=False)
    def score_in_background(self, args: tuple) -> None:
        """``run_worker.score_selection(*args)``: one engine run of the selection."""
        heavy_imports()
        self.post_message(RunDone(score_selection(*args)))

    @work(thread=True, name="analysis", group="analysis", exclusive=True, exit_on_error=False)
    def load_analysis(self, home: str, model_set: str, live: list[dict], fid: str) -> None:
        heavy_imports()
        bundle = load_bundle(home, model_set, live, fid)
        if _current():
            self.post_message(BundleLoaded(bundle))

    @work(thread=True, name="statuses", group="statuses", exclusive=True)
    def load_statuses(self, checkpoint_dir: str) -> None:
        heavy_imports()
        statuses = {c.id: checkpoint_status(c, checkpoint_dir) for c in model_cards()}
        if _current():
            self.post_message(StatusesLoaded(statuses))

    @work(thread=True, name="custom-info", group="custom-info", exit_on_error=False)
    def load_custom_infos(self) -> None:
        self.post_message(CustomInfosLoaded({m.label: custom_info(m) for m in self.custom_models}))

    @work(thread=True, name="warm", group="warm")
    def warm_imports(self) -> None:
        heavy_imports()

    @work(thread=True, name="defaults", group="defaults", exclusive=True, exit_on_error=False)
    def find_default_data(self, families: Sequence[str]) -> None:
        """The data folder the selection's families ship (written on first use: the micro digits)."""
        from visbpp.models import common_data_dir

        path = common_data_dir(families) if families else None
        if _current():
            self.post_message(DefaultDataFound(path))

    @work(thread=True, name="bits", group="bits", exclusive=True, exit_on_error=False)
    def load_bits(self, model_id: str | None, home: str) -> None:
        """The Bits tab's report of ``model_id``'s stored run."""
        report = load_report(model_id, home)
        if _current():
            self.post_message(BitsLoaded(report))

    @work(thread=True, name="fetch", group="fetch", exclusive=True, exit_on_error=False)
    def fetch_checkpoints(self, fetch: Callable, cards: Sequence[ModelCard], cancel: threading.Event) -> None:
        """Download the cards' files with ``fetch`` (``state.fetch_function()``); progress as ``FetchProgress``,
        cancelled between chunks."""

        def progress(d, n, t):
            if cancel.is_set():
                raise InterruptedError("download cancelled; fetch again to resume it")
            self.post_message(FetchProgress(d, n, t))

        fetch(cards, progress=progress)
        self.post_message(FetchDone())
