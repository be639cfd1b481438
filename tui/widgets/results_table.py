"""Results table: reference and measured BPP side by side with FID, rFID, bits_per_token, CI.
Sortable: ``s`` cycles the sort column, ``S`` reverses; clicking a header sorts by it."""

from __future__ import annotations

from typing import Sequence

from textual.binding import Binding
from textual.widgets import DataTable

from ..results_view import COLUMNS, NARROW_DROP, ResultRow, sort_rows

NARROW_BELOW = 135   # terminal columns: below this the table drops Group and Res and shows the CI as ±


class ResultsTable(DataTable):
    BINDINGS = [
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse", show=False),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.result_rows: list[ResultRow] = []
        self.sort_key: str | None = None
        self.sort_reverse = False
        self.narrow = False

    def columns_shown(self) -> list[tuple[str, str]]:
        if not self.narrow:
            return list(COLUMNS)
        return [(k, "±CI" if k == "ci" else lab) for k, lab in COLUMNS if k not in NARROW_DROP]

    def on_mount(self) -> None:
        self.narrow = self.app.size.width < NARROW_BELOW
        for key, label in self.columns_shown():
            self.add_column(label, key=key)

    def on_resize(self) -> None:
        narrow = self.app.size.width < NARROW_BELOW
        if narrow != self.narrow:
            self.narrow = narrow
            self.clear(columns=True)
            for key, label in self.columns_shown():
                self.add_column(label, key=key)
            self._redraw()

    def _header(self, key: str, label: str) -> str:
        if key != self.sort_key:
            return label
        return f"{label} {'▼' if self.sort_reverse else '▲'}"

    def set_rows(self, rows: Sequence[ResultRow]) -> None:
        self.result_rows = list(rows)
        self._redraw()

    def displayed(self) -> list[ResultRow]:
        return sort_rows(self.result_rows, self.sort_key, self.sort_reverse) if self.sort_key else list(self.result_rows)

    def _redraw(self) -> None:
        for key, label in self.columns_shown():
            self.columns[key].label = self._header(key, label)  # type: ignore[index]
        self.clear()
        for r in self.displayed():
            self.add_row(*r.cells(self.narrow), key=r.model_id)
        self.refresh()

    def sort_by(self, key: str, reverse: bool = False) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        self._redraw()

    def action_next_sort(self) -> None:
        keys = [k for k, _ in self.columns_shown()]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0]
        self.sort_by(nxt)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_key or COLUMNS[0][0], not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        self.sort_by(key, reverse=(key == self.sort_key and not self.sort_reverse))
