"""Snapshot tests of the TUI (pytest-textual-snapshot): fixed terminal sizes, pinned memory
readings, an empty results store, no blinking cursor. Regenerate with ``--snapshot-update``
after checking the new SVGs by eye."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tui_helpers import wait_for
from visbpp.core.events import MemoryStats
from visbpp.tui.app import VisbppApp


def fixed_memory():
    return [MemoryStats("cuda:0", allocated=3 << 30, reserved=4 << 30, peak=5 << 30, total=80 << 30),
            MemoryStats("host", rss=1536 << 20)]


class SnapshotApp(VisbppApp):
    def on_mount(self) -> None:
        super().on_mount()
        for i in self.query(Input):
            i.cursor_blink = False


@pytest.fixture
def app(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("VISBPP_HOME", str(home))
    monkeypatch.delenv("VISBPP_CHECKPOINTS", raising=False)  # checkpoint status: all missing
    return SnapshotApp(home=home, memory_probe=fixed_memory, warm_torch=False)


def ready(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.analysis_loads >= 1 and bool(app.statuses), 60, "table and statuses")
        for k in keys:
            await pilot.press(k)
        await pilot.pause(0.2)
    return run_before


def test_main_screen_results_and_plots_80x24(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready())


def test_results_and_plots_wide(app, snap_compare):
    assert snap_compare(app, terminal_size=(160, 40), run_before=ready("s", "s", "s", "s", "s", "s"))


def test_model_picker_with_selection(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready("1", "down", "space", "down", "down", "space"))


def test_run_tab_settings_progress_memory(app, snap_compare):
    assert snap_compare(app, terminal_size=(100, 30), run_before=ready("2"))
