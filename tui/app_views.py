"""The Models tab's detail pane, the Results tab's detail line and the Bits tab of ``VisbppApp`` (a mixin: the
app's state lives there)."""

from __future__ import annotations

from textual.css.query import NoMatches
from textual.widgets import DataTable

from .detail_view import card_detail, custom_detail
from .messages import BitsLoaded
from .widgets.bits_panel import BitsPanel
from .widgets.model_detail import ModelDetail
from .widgets.model_picker import ModelPicker
from .widgets.result_detail import ResultDetail
from .widgets.results_table import ResultsTable


class ViewsMixin:
    def _cursor_model(self, fallback: bool = False) -> str | None:
        """The model on the picker's cursor row; with ``fallback``, on a family row the first selected model."""
        picker = self.query_one(ModelPicker)
        if not picker.rows_data:
            return None
        r = picker.rows_data[min(picker.cursor_row, len(picker.rows_data) - 1)]
        if not r.is_family:
            return r.key
        sel = picker.ordered_selection()
        return sel[0] if fallback and sel else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        try:
            if event.data_table.id == "picker":
                self.show_detail()
            elif event.data_table.id == "results-table":
                table = self.query_one(ResultsTable)
                rows = {r.model_id: r for r in table.result_rows}
                self.query_one(ResultDetail).show_row(rows.get(event.row_key.value) if event.row_key else None)
        except NoMatches:   # the app is shutting down and its widgets are gone
            pass

    def show_detail(self) -> None:
        mid = self._cursor_model()
        detail = self.query_one(ModelDetail)
        custom = {m.label: m for m in self.custom_models}
        if mid is None:
            detail.show("A family row: space selects all its sizes; move down to a size for its card, "
                        "published figures with their sources, checkpoint files and measured runs.")
        elif mid in custom:
            detail.show(custom_detail(custom[mid]))
        else:
            from visbpp.core.registry.catalog import get_card

            measured = [m for m in (self.bundle.measured if self.bundle else []) if m.get("model_id") == mid]
            detail.show(card_detail(get_card(mid), self.statuses.get(mid), measured, self.ui_settings.checkpoint_dir))

    def _load_bits(self) -> None:
        self.load_bits(self._cursor_model(fallback=True), str(self.home))

    def on_bits_loaded(self, message: BitsLoaded) -> None:
        try:
            self.query_one(BitsPanel).show(message.report)
        except NoMatches:
            pass
