"""Memory panel: per-GPU allocated / reserved / peak / total, or host RSS; refreshed every second."""

from __future__ import annotations

from typing import Callable, Sequence

from rich.table import Table
from textual.widgets import Static

from visbpp.core.engine.events import MemoryStats

from ..state import fmt_bytes


def render_memory(stats: Sequence[MemoryStats]) -> Table:
    t = Table(box=None, pad_edge=False, expand=True, show_edge=False)
    for h in ("device", "alloc", "reserved", "peak", "total/RSS"):
        t.add_column(h, justify="left" if h == "device" else "right", no_wrap=True)
    for s in stats:
        if s.device == "host":
            t.add_row("host RSS", "", "", "", fmt_bytes(s.rss))
        else:
            t.add_row(s.device, fmt_bytes(s.allocated), fmt_bytes(s.reserved), fmt_bytes(s.peak), fmt_bytes(s.total))
    return t


class MemoryPanel(Static):
    def __init__(self, probe: Callable[[], Sequence[MemoryStats]], interval: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.probe = probe
        self.interval = interval
        self.samples = 0
        self.last: list[MemoryStats] = []
        self.border_title = "Memory"

    def on_mount(self) -> None:
        self.sample()
        self.set_interval(self.interval, self.sample)

    def sample(self) -> None:
        self.samples += 1
        self.last = list(self.probe())
        self.update(render_memory(self.last))
