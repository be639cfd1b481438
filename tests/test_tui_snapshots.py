"""Snapshot tests of the TUI (pytest-textual-snapshot): fixed terminal sizes, pinned memory
readings, animations off, no blinking cursor, a fresh visbpp home per test (``tmp_path``, with an
empty results store) shown on screen under one fixed name. Regenerate with ``--snapshot-update``
after checking the new SVGs by eye."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tui_helpers import wait_for
from visbpp.core.engine.events import MemoryStats
from visbpp.tui.app import VisbppApp
from visbpp.tui.widgets.run_settings import RunSettingsPanel


def fixed_memory():
    return [MemoryStats("cuda:0", allocated=3 << 30, reserved=4 << 30, peak=5 << 30, total=80 << 30),
            MemoryStats("host", rss=1536 << 20)]


SHOWN_HOME = "/tmp/visbpp-tui-snapshot-home"  # the name the per-test home gets on screen


class SnapshotApp(VisbppApp):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.animation_level = "none"

    def on_mount(self) -> None:
        super().on_mount()
        for i in self.query(Input):
            i.cursor_blink = False


@pytest.fixture
def app(monkeypatch, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("VISBPP_HOME", str(home))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    show = RunSettingsPanel.show_default_data
    monkeypatch.setattr(RunSettingsPanel, "show_default_data",
                        lambda self, path: show(self, path and path.replace(str(home), SHOWN_HOME)))
    monkeypatch.delenv("VISBPP_CHECKPOINTS", raising=False)  # checkpoint status: all missing
    return SnapshotApp(home=home, memory_probe=fixed_memory, warm_torch=False)


def ready(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: app.analysis_loads >= 1 and bool(app.statuses) and app.default_data is not None,
                       60, "table, statuses and the bundled data dir")
        for k in keys:
            await pilot.press(k)
        await pilot.pause(0.2)
    return run_before


def test_opening_screen_micro_zoo_preselected_80x24(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready())


def test_main_screen_results_and_plots_80x24(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready("3"))


def test_results_and_plots_wide(app, snap_compare):
    assert snap_compare(app, terminal_size=(160, 40), run_before=ready("3", "s", "s", "s", "s", "s", "s"))


def test_model_picker_with_selection(app, snap_compare):
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready("n", "down", "space", "down", "down", "space"))


def test_run_tab_settings_progress_memory(app, snap_compare):
    assert snap_compare(app, terminal_size=(100, 30), run_before=ready("2"))


def test_results_with_measured_micro_group(app, snap_compare):
    """Measured micro rows (values: the registry's held-out BPP, as a run reproduces them): the
    FID column says µFID and the micro zoo gets its own micro-FID plot and legend entry."""
    from visbpp.core.registry.catalog import model_cards

    async def run_before(pilot) -> None:
        await ready()(pilot)
        a = pilot.app
        a.live_measured = [{"model_id": c.id, "bpp": c.reference_bpp, "n_images": 360, "bits_per_token":
                            c.reference_bpp * 3 * 16 * 16 / c.tokens_per_image} for c in model_cards("micro")]
        n = a.analysis_loads
        a.refresh_analysis()
        await wait_for(pilot, lambda: a.analysis_loads > n, 60, "the table with the micro rows")
        await pilot.press("3")
        table = a.query_one("#results-table")
        table.move_cursor(row=table.row_count - 1)   # the micro rows are last
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


# ------------------------------------------------------------------ every view at the three sizes
SIZES = [(80, 24), (120, 40), (200, 60)]


def fake_run_events(app) -> None:
    """A run in progress, from fixed engine events (no timing on screen)."""
    from visbpp.core.engine import events as ev

    ids = ["micro-s", "micro-m"]
    app.run_view.start(ids)
    app.query_one("#progress").reset(app.run_view)
    for e in (ev.RunStarted("20260101-000000-abcd", tuple(ids), 360),
              ev.StageChanged("micro-s", "scoring", "batch 16"),
              ev.Progress("micro-s", "scoring", 120, 360, 85.0, 2.8)):
        app.on_engine_event(type("M", (), {"event": e})())


FIXED_BITS = {"model_id": "micro-s", "n_images": 360, "bpp": 0.0421, "bits_mean": 32.3,
              "spatial": [[(r * 4 + c) % 7 + 0.5 for c in range(4)] for r in range(4)],
              "by_group": {"rows 0-1": 18.1, "rows 2-3": 14.2},
              "per_class": [{"label": i, "n": 36, "bpp": 0.04 + i / 1000} for i in range(10)]}


def view(name: str):
    async def run_before(pilot) -> None:
        await ready()(pilot)
        a = pilot.app
        if name == "run":
            await pilot.press("2")
            fake_run_events(a)
            a.query_one("#progress").focus()
        elif name == "runs":
            from test_runs import MICRO, _store

            home = a.home
            _store(home, "0f3a9c2e7b1d4a56", 360, {m: 0.40 - 0.03 * i for i, m in enumerate(MICRO)},
                   "2026-01-02T03:04:05Z")
            _store(home, "9b2e44c01d7a3f18", 120, {"micro-s": 0.41}, "2026-01-03T04:05:06Z", preprocess="paper")
            await pilot.press("7")
            a.query_one("#runs-panel").reload()
        elif name == "bits":
            from visbpp.tui.bits_view import BitsReport

            await pilot.press("6")
            await pilot.pause(0.3)
            a.query_one("#bits-panel").show(BitsReport("micro-s", FIXED_BITS))
        else:
            await pilot.press({"models": "1", "results": "3", "plots": "4", "stats": "5"}[name])
        await pilot.pause(0.3)
    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["models", "run", "results", "plots", "stats", "bits", "runs"])
def test_view_at_size(app, snap_compare, name, size):
    assert snap_compare(app, terminal_size=size, run_before=view(name))
