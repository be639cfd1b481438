"""Runs view: the runs of the results store (``visbpp.core.store.runs``, as ``visbpp runs list``).

``p`` pins every model of the selected run to it, ``u`` unpins them, ``x`` twice removes the run
(its results and run state; cached tokens stay). Each change posts :class:`RunsChanged` so the
app refits with the same selection rule as ``analyze`` and ``export``."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

COLUMNS = ("run id", "models", "subset", "n", "preprocess", "dtype", "options", "device", "date", "complete",
           "pinned for")


class RunsChanged(Message):
    """Pins or runs changed: refit."""


class RunsPanel(DataTable):
    BINDINGS = [
        Binding("p", "pin", "Pin"),
        Binding("u", "unpin", "Unpin"),
        Binding("x", "remove", "Remove"),
    ]

    def __init__(self, home: str, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.home = home
        self.runs: list[dict] = []
        self._armed: str | None = None   # run id of a first ``x``

    def on_mount(self) -> None:
        for c in COLUMNS:
            self.add_column(c, key=c)
        self.reload()

    def reload(self) -> None:
        import warnings

        from visbpp.core.store import runs as RU

        keep = self._selected()   # the cursor stays on the same run (a pin or unpin never moves it)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # damaged entries: `visbpp runs list` names them
            self.runs, pins = RU.list_runs(self.home), RU.read_pins(self.home)
        self.clear()
        for r in self.runs:
            n = r["n_images"]
            self.add_row(r["run_id"], ", ".join(r["models"]), r["subset"], ", ".join(map(str, n)) if isinstance(n, list)
                         else str(n if n is not None else "-"), r["preprocess"], r["dtype"],
                         ", ".join(r.get("options", [])) or "-", str(r["device"]),
                         r["date"], "yes" if r["complete"] else "no",
                         ", ".join(sorted(m for m, rid in pins.items() if rid == r["run_id"])), key=r["run_id"])
        ids = [r["run_id"] for r in self.runs]
        if keep is not None and keep["run_id"] in ids:
            self.move_cursor(row=ids.index(keep["run_id"]))

    def _selected(self) -> dict | None:
        if not self.runs or self.cursor_row is None or not 0 <= self.cursor_row < len(self.runs):
            return None
        return self.runs[self.cursor_row]

    def _do(self, fn, done: str) -> None:
        from visbpp.core.errors import VisbppError

        try:
            fn()
        except VisbppError as e:
            self.app.notify(str(e), severity="error", timeout=10)
            return
        self.app.notify(done)
        self.reload()
        self.post_message(RunsChanged())

    def action_pin(self) -> None:
        from visbpp.core.store import runs as RU

        r = self._selected()
        if r is not None:
            self._do(lambda: [RU.pin(m, r["run_id"], self.home) for m in r["models"]],
                     f"pinned {', '.join(r['models'])} to run {r['run_id']}")

    def action_unpin(self) -> None:
        from visbpp.core.store import runs as RU

        r = self._selected()
        if r is not None:
            self._do(lambda: [RU.unpin(m, self.home) for m in r["models"]], f"unpinned {', '.join(r['models'])}")

    def action_remove(self) -> None:
        from visbpp.core.store import runs as RU

        r = self._selected()
        if r is None:
            return
        if self._armed != r["run_id"]:
            self._armed = r["run_id"]
            self.app.notify(f"press x again to remove run {r['run_id']} (its cached tokens stay)", severity="warning")
            return
        self._armed = None
        self._do(lambda: RU.remove_runs([r["run_id"]], self.home), f"removed run {r['run_id']}")
