"""Detail line under the Results table: the cursor row's token baseline (raw index rate, order-0
baseline with its Miller–Madow estimate, AR share), the columns the narrow table leaves out."""

from __future__ import annotations

from textual.widgets import Static

from ..results_view import ResultRow


class ResultDetail(Static):
    def __init__(self, **kw) -> None:
        super().__init__("", markup=False, **kw)

    def show_row(self, row: ResultRow | None) -> None:
        self.update("" if row is None else row.baseline_detail())
