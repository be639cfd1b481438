"""The one way the front-ends run the engine (``visbpp run`` and the TUI's run worker).

:func:`score` returns a run found finished without importing torch when that can be decided
(``finished.finished_without_torch``: the same result and events as the engine's), else it runs
``runner.run``. Both front-ends therefore make the same run of the same selection, with the
same run id, and reuse each other's finished runs.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from visbpp.core.engine.events import Event
from visbpp.core.engine.finished import finished_without_torch
from visbpp.core.engine.run_types import RunResult, RunSettings, ScoringJob


def score(jobs: Sequence[ScoringJob], settings: RunSettings, on_event: Callable[[Event], None] | None = None,
          cancel: threading.Event | None = None) -> RunResult:
    """Score ``jobs`` in one run (see the module docstring)."""
    result = finished_without_torch(jobs, settings, on_event)
    if result is not None:
        return result
    from visbpp.core.engine.runner import run

    return run(jobs, settings, on_event, cancel)
