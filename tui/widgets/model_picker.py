"""Model picker: families as group rows, sizes as checkbox rows (params, resolution, published
FID/rFID, checkpoint status). Keyboard: space/enter toggles a size, or a whole family on its row;
``a`` selects all, ``n`` clears."""

from __future__ import annotations

from typing import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from ..state import PickerRow, family_members, toggle_family

ON, OFF, SOME = "☑", "☐", "◧"


class ModelPicker(DataTable):
    BINDINGS = [
        Binding("space", "toggle", "Toggle", show=True),
        Binding("a", "select_all", "All", show=False),
        Binding("n", "select_none", "None", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    class SelectionChanged(Message):
        def __init__(self, selected: tuple[str, ...]) -> None:
            super().__init__()
            self.selected = selected

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.rows_data: list[PickerRow] = []
        self.selected: set[str] = set()

    def on_mount(self) -> None:
        for key, label in (("check", " "), ("model", "Model"), ("params", "Params"), ("res", "Res"),
                           ("fid", "FID"), ("rfid", "rFID")):
            self.add_column(label, key=key)
        self.add_column("Ckpt", key="ckpt", width=8)   # fixed: statuses arrive after the first fill

    # ------------------------------------------------------------ data
    def set_rows(self, rows: Sequence[PickerRow]) -> None:
        """(Re)populate, keeping the selection and the cursor position."""
        cursor = self.cursor_row
        self.rows_data = list(rows)
        valid = {r.key for r in rows if not r.is_family}
        self.selected &= valid
        self.clear()
        for r in self.rows_data:
            self.add_row(*self._cells(r), key=r.key)
        if self.row_count:
            self.move_cursor(row=min(cursor, self.row_count - 1))

    def _mark(self, r: PickerRow) -> str:
        if r.is_family:
            members = family_members(self.rows_data, r.family)
            n = sum(m in self.selected for m in members)
            return ON if members and n == len(members) else (SOME if n else OFF)
        return ON if r.key in self.selected else OFF

    def _cells(self, r: PickerRow) -> tuple:
        if r.is_family:
            return (self._mark(r), Text(r.label, style="bold"), "", "", "", "", "")
        status = Text(r.status, style="green" if r.status in ("ok", "verified") else "yellow")
        return (self._mark(r), "  " + r.label, r.params, r.resolution, r.fid, r.rfid, status)

    def _refresh_marks(self) -> None:
        for r in self.rows_data:
            self.update_cell(r.key, "check", self._mark(r))

    def set_selected(self, ids, quiet: bool = False) -> None:
        """Select exactly ``ids`` (unknown ids are dropped); ``quiet`` posts no SelectionChanged."""
        self.selected = {i for i in ids if any(r.key == i and not r.is_family for r in self.rows_data)}
        self._refresh_marks()
        if not quiet:
            self.post_message(self.SelectionChanged(self.ordered_selection()))

    def ordered_selection(self) -> tuple[str, ...]:
        return tuple(r.key for r in self.rows_data if not r.is_family and r.key in self.selected)

    # ------------------------------------------------------------ actions
    def action_toggle(self) -> None:
        if not self.rows_data:
            return
        r = self.rows_data[self.cursor_row]
        if r.is_family:
            new = toggle_family(self.selected, family_members(self.rows_data, r.family))
        else:
            new = set(self.selected) ^ {r.key}
        self.set_selected(new)

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))

    def action_select_all(self) -> None:
        self.set_selected({r.key for r in self.rows_data if not r.is_family})

    def action_select_none(self) -> None:
        self.set_selected(set())

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # a click selects the row: toggle it like the keyboard does
        self.action_toggle()
