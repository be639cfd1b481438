"""Messages that background workers post to the app: dataclasses (``Message.__post_init__``
initialises the message part) wrapping plain data."""

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
