"""Tables of the command line that never cut a cell: a table is shown only at a width where every
no-wrap cell fits whole and every other cell fits with its longest word whole; narrower, columns
are left out in a given order (and the caller says which) or the caller picks another layout.

Rich's own measurement lets wrapping columns shrink to one character (``mic…``), so the widths
are counted here from the cells' text.
"""

from __future__ import annotations

from typing import Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text


def _plain(cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def column_min_width(col: Column) -> int:
    """The narrowest width at which no cell of ``col`` (header included) is cut."""
    texts = [_plain(col.header), *(_plain(c) for c in col.cells)]
    if col.no_wrap:
        parts = [line for t in texts for line in t.split("\n")]
    else:
        parts = [word for t in texts for word in t.split()]
    return max([col.min_width or 0, *(cell_len(p) for p in parts)])


def table_min_width(table: Table) -> int:
    """Columns at their :func:`column_min_width`, plus padding, separators and edges."""
    n = len(table.columns)
    if not n:
        return 0
    pad = table.padding[1] + table.padding[3]
    lines = (n - 1 if table.show_lines or table.box else 0) + (2 if table.box and table.show_edge else 0)
    edge_pad = 0 if table.pad_edge else pad
    return sum(column_min_width(c) for c in table.columns) + n * pad - edge_pad + lines


def _natural_width(col: Column) -> int:
    texts = [_plain(col.header), *(_plain(c) for c in col.cells)]
    return max(cell_len(line) for t in texts for line in t.split("\n"))


def fits(console: Console, table: Table) -> bool:
    """Whether ``table`` can be shown at the console's width with no cell cut. When it can but not
    at the cells' natural widths, every column's width is fixed: its narrowest uncut width, the
    space left given to the wrapping columns (left to right, up to their natural widths)."""
    need = table_min_width(table)
    if need > console.width:
        return False
    mins = [column_min_width(c) for c in table.columns]
    naturals = [max(m, _natural_width(c)) for m, c in zip(mins, table.columns)]
    if need + sum(naturals) - sum(mins) <= console.width:
        return True   # Rich lays it out at natural widths: nothing is wrapped or cut
    spare = console.width - need
    for col, lo, hi in zip(table.columns, mins, naturals):
        extra = min(spare, hi - lo) if not col.no_wrap else 0
        col.width, spare = lo + extra, spare - extra
    return True


def fit_by_dropping(console: Console, table: Table, drop_order: Sequence[str]) -> list[str]:
    """Leave out columns (by header, in ``drop_order``) until ``table`` fits; the headers left out.
    If it does not fit even then, the remaining columns are shown folded, never with ``…``."""
    dropped: list[str] = []
    for header in drop_order:
        if fits(console, table):
            return dropped
        col = next((c for c in table.columns if _plain(c.header) == header), None)
        if col is not None:
            table.columns.remove(col)
            for i, c in enumerate(table.columns):  # Rich finds the first and last column (edge padding) by _index
                c._index = i
            dropped.append(header)
    if not fits(console, table):
        for col in table.columns:
            col.overflow = "fold"
    return dropped
