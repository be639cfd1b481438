"""Messages that background workers post to the app (``app_workers.py``): dataclasses
(``Message.__post_init__`` initialises the message part) wrapping plain data. Each worker's
outcome reaches the app as one of these; only errors come as worker state changes."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass(eq=False)
class EngineEvent(Message):
    """One progress event of the scoring engine (``visbpp.core.engine.events``), posted from the run worker."""

    event: object


@dataclass(eq=False)
class FetchProgress(Message):
    """Bytes of a checkpoint download, posted from the fetch worker."""

    description: str
    done: int
    total: int | None


@dataclass(eq=False)
class BitsLoaded(Message):
    """The inspection report of one model's stored run (``bits_view.BitsReport``), posted from the bits worker."""

    report: object


@dataclass(eq=False)
class RunDone(Message):
    """The run worker's end: the engine's ``RunResult``, or the ``JobPlan`` of a selection that could
    not be planned (missing checkpoints, unbuildable models: nothing ran)."""

    result: object


@dataclass(eq=False)
class BundleLoaded(Message):
    """The table, fits and plots data (``results_view.Bundle``), posted from the analysis worker."""

    bundle: object


@dataclass(eq=False)
class StatusesLoaded(Message):
    """Model id -> ``state.CheckpointStatus``, posted from the checkpoint-status worker."""

    statuses: dict


@dataclass(eq=False)
class CustomInfosLoaded(Message):
    """Custom model label -> (params, resolution), posted from the custom-info worker."""

    infos: dict


@dataclass(eq=False)
class FetchDone(Message):
    """Every requested checkpoint was fetched, posted from the fetch worker."""


@dataclass(eq=False)
class DefaultDataFound(Message):
    """The data folder the selection's family ships (None: the user names the data), from the defaults worker."""

    path: str | None
