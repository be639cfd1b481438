"""The body of the TUI's run worker (no textual): score the selection one model per engine run.

The engine reports ``ModelFinished`` once the whole run is written, so scoring the selection as
one run would show nothing until the last model is done. One run per model lets the table and
plots update as each model finishes; models that share a tokenizer still encode once, through
the engine's on-disk token cache. Cancel stops the current model between batches and skips the
rest of the selection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

from visbpp.core.engine import events as ev

from . import settings as st
from .state import CustomModel, JobPlan, plan_jobs, shipped_data_dir


@dataclass
class SelectionResult:
    """What the worker returns when every job was handed to the engine."""

    results: list = field(default_factory=list)   # one engine RunResult per model run
    cancelled: bool = False
    data_dir: str = ""


def score_selection(selected: Sequence[str], custom: Sequence[CustomModel], ui: st.UISettings, cache_dir: str,
                    post: Callable[[object], None], cancel: threading.Event,
                    runner: Callable | None = None) -> JobPlan | SelectionResult:
    """Plan the jobs, then run them one at a time through ``runner`` (default: the engine's ``run``).

    ``post`` receives engine events; the ``RunFinished`` of every model run but the last (or a
    cancelled one) is held back so the progress panel shows one run over the whole selection.
    A SettingsError (no data dir and no data shipped by the family) propagates to the caller."""
    default = None if ui.data_dir.strip() else shipped_data_dir(selected, custom)
    settings = st.to_run_settings(ui, cache_dir=cache_dir, default_data=default)
    plan = plan_jobs(selected, custom, ui.checkpoint_dir, st.order_option(ui))
    if plan.missing or plan.errors:
        return plan
    if runner is None:
        from visbpp.core.engine.runner import run as runner
    out = SelectionResult(data_dir=settings.data)
    for i, job in enumerate(plan.jobs):
        if cancel.is_set():
            out.cancelled = True
            post(ev.RunFinished("", None, cancelled=True))
            break
        last = i == len(plan.jobs) - 1

        def forward(e, last=last):
            if isinstance(e, ev.RunFinished) and not last and not e.cancelled:
                return
            post(e)

        result = runner([job], settings, on_event=forward, cancel=cancel)
        out.results.append(result)
        if getattr(result, "already_finished", False):
            # a finished run is not scored again and reports no ModelFinished: report its summary
            for m in getattr(result, "models", []) or []:
                post(ev.ModelFinished(m["model_id"], int(m.get("n_images") or 0), float(m["bpp"]),
                                      float(m.get("bits_per_token") or 0.0), dict(m)))
        if getattr(result, "cancelled", False):
            out.cancelled = True
            break
    return out
