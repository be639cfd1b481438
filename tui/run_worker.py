"""The body of the TUI's run worker (no textual): the selection as jobs, scored in ONE engine run.

The selected ids become jobs in one pass (``visbpp.models.jobs.plan_jobs``, the same planning as
`visbpp run`); with no data dir typed, the data is the folder the planned models' family ships.
The jobs then go to ``visbpp.core.engine.entry.score`` — the same call, with the same run id, as
``visbpp run --model A --model B`` — so each image is decoded once for every tokenizer, and a run
finished by either front-end is reused by the other. The engine's events are posted as they
come: ``ModelFinished`` as each model finishes (the table updates model by model); cancel stops
the run between batches and keeps what was scored for the next run of the same selection.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from . import settings as st
from .state import CustomModel, own_jobs


def score_selection(selected: Sequence[str], custom: Sequence[CustomModel], ui: st.UISettings, cache_dir: str,
                    post: Callable[[object], None], cancel: threading.Event, runner: Callable | None = None):
    """The engine's ``RunResult``, or the ``JobPlan`` when models could not be planned (missing
    checkpoints, unbuildable configs: nothing runs). ``runner`` replaces ``engine.entry.score``
    (tests); a ``SettingsError`` (no data dir and no data shipped by the family) propagates."""
    from visbpp.models.jobs import plan_jobs

    plan = plan_jobs(selected, ui.checkpoint_dir or None, own_jobs(custom, st.parse_extras(ui.extra_files)),
                     st.order_option(ui))
    if plan.missing or plan.errors:
        return plan
    settings = st.to_run_settings(ui, cache_dir=cache_dir, default_data=None if ui.data_dir.strip() else plan.data_dir())
    if runner is None:
        from visbpp.core.engine.entry import score as runner
    return runner(plan.jobs, settings, on_event=post, cancel=cancel)
