"""Results table: reference and measured BPP side by side with FID, rFID, bits_per_token, CI.
Sortable: ``s`` cycles the sort column, ``S`` reverses; clicking a header sorts by it."""

from __future__ import annotations

from typing import Sequence

from textual.binding import Binding
from textual.widgets import DataTable

from ..results_view import COLUMNS, ResultRow, sort_rows


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

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

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
        for key, label in COLUMNS:
            self.columns[key].label = self._header(key, label)  # type: ignore[index]
        self.clear()
        for r in self.displayed():
            self.add_row(*r.cells(), key=r.model_id)
        self.refresh()

    def sort_by(self, key: str, reverse: bool = False) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        self._redraw()

    def action_next_sort(self) -> None:
        keys = [k for k, _ in COLUMNS]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else keys[0]
        self.sort_by(nxt)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_key or COLUMNS[0][0], not self.sort_reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = event.column_key.value
        self.sort_by(key, reverse=(key == self.sort_key and not self.sort_reverse))
