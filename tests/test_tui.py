"""TUI tests: pure UI logic, and Pilot-driven runs through the real scoring engine."""

from __future__ import annotations

import asyncio
import csv
import io

import numpy as np
import pytest
from textual import _time
from textual.widgets import Input

from tui_helpers import expected_bpp, make_imagefolder, slow_job, tiny_custom_model, wait_for, write_settings
from visbpp.core.engine import events as ev
from visbpp.core.registry.catalog import model_cards
from visbpp.tui import settings as st
from visbpp.tui.app import VisbppApp
from visbpp.tui.results_view import build_rows, export_table, fit_series, sort_rows
from visbpp.tui.state import RunView, family_members, picker_rows, toggle_family
from visbpp.tui.widgets.error_modal import ErrorModal
from visbpp.tui.widgets.model_picker import ModelPicker
from visbpp.tui.widgets.path_prompt import PathPrompt
from visbpp.tui.widgets.results_table import ResultsTable

pytestmark = pytest.mark.anyio


def make_app(home, **kw) -> VisbppApp:
    kw.setdefault("warm_torch", False)
    kw.setdefault("check_checkpoints", False)
    return VisbppApp(home=home, **kw)


# ------------------------------------------------------------------------------- pure logic


def test_settings_round_trip_and_bad_values(tmp_path):
    p = tmp_path / "s.json"
    s = st.UISettings(data_dir=str(tmp_path), limit="5", batch_size="auto", device="cpu", dtype="bf16")
    st.save_settings(s, p)
    assert st.load_settings(p) == (s, None)
    p.write_text("{not json")
    loaded, warning = st.load_settings(p)
    assert loaded == st.UISettings() and str(p) in warning
    rs = st.to_run_settings(s, cache_dir="/c")
    assert (rs.data, rs.limit, rs.per_class, rs.batch_size, rs.device, rs.dtype, rs.cache_dir) == (
        str(tmp_path), 5, None, "auto", "cpu", "bf16", "/c")
    for bad, field in ((s.updated(limit="x"), "limit"), (s.updated(batch_size="0"), "batch size"),
                       (s.updated(data_dir=str(tmp_path / "nope")), "data dir"), (s.updated(data_dir=""), "data dir")):
        with pytest.raises(st.SettingsError, match=field):
            st.to_run_settings(bad)


def test_picker_rows_group_families_and_toggle():
    cards = model_cards()
    rows = picker_rows(cards, {})
    fams = [r for r in rows if r.is_family]
    registry_order = list(dict.fromkeys(c.family for c in cards))
    assert [r.family for r in fams] == ["micro"] + [f for f in registry_order if f != "micro"]
    micro_s = next(r for r in rows if r.key == "micro-s")
    card = next(c for c in cards if c.id == "micro-s")
    assert micro_s.params == f"{card.params / 1e3:.0f}K" and micro_s.fid == f"{card.fid.value:.2f} µFID"
    assert fams[0].label == "Micro (4) · micro-FID"
    lg = family_members(rows, "llamagen")
    assert lg == [c.id for c in cards if c.family == "llamagen"]
    b256 = next(r for r in rows if r.key == "llamagen-b-256")
    assert (b256.params, b256.resolution, b256.fid, b256.rfid) == ("111M", "256", "8.69", "2.19")
    sel = toggle_family({"var-d16"}, lg)
    assert sel == {"var-d16", *lg}
    assert toggle_family(sel, lg) == {"var-d16"}


def test_run_view_folds_engine_events():
    v = RunView()
    v.start(["a", "b"])
    v.apply(ev.RunStarted("r1", ("a", "b"), 8))
    v.apply(ev.StageChanged("a", "loading", "tokenizer"))
    assert v.models["a"].stage == "loading" and v.models["b"].stage == "queued"
    v.apply(ev.Progress("a", "scoring", 4, 8, 2.0, 2.0))
    assert "4/8" in v.models["a"].stats and "00:02" in v.models["a"].stats
    v.apply(ev.StageChanged("", "writing", "/out"))
    assert "" not in v.models and v.message == "writing: /out"
    v.apply(ev.ModelFinished("a", 8, 0.0125, 3.5, {}))
    assert v.models["a"].stage == "done" and "0.0125000" in v.models["a"].stats
    v.apply(ev.RunFinished("r1", None, cancelled=True))
    assert v.finished and v.cancelled and not v.running
    assert v.models["b"].stage == "not run" and v.models["a"].stage == "done"  # b was still queued


def test_a_model_cancelled_part_way_no_longer_reads_scoring():
    v = RunView()
    v.start(["a"])
    v.apply(ev.RunStarted("r1", ("a",), 290))
    v.apply(ev.Progress("a", "scoring", 144, 290, 50.0, 2.9))
    v.apply(ev.RunFinished("r1", None, cancelled=True))
    assert v.models["a"].stage == "cancelled"
    assert v.models["a"].stats == "cancelled at 144/290: run again to resume"


def test_rows_join_measured_sort_and_fit_lines():
    recs = [{"model_id": "m1", "group": "G", "resolution": 256, "fid": 5.0, "rfid": 1.0, "bpp": 0.02,
             "reference_bpp": 0.02, "measured_bpp": None},
            {"model_id": "m2", "group": "G", "resolution": 256, "fid": 3.0, "rfid": 1.0, "bpp": 0.01,
             "reference_bpp": 0.01, "measured_bpp": 0.011}]
    meas = [{"model_id": "m2", "bpp": 0.011, "bits_per_token": 2.5, "bpp_ci_low": 0.0105, "bpp_ci_high": 0.0115,
             "n_images": 9}, {"model_id": "custom", "family": "llamagen", "bpp": 0.03, "n_images": 4}]
    rows = build_rows(recs, meas)
    assert [r.model_id for r in rows] == ["m1", "m2", "custom"]
    assert rows[1].bits_per_token == 2.5 and rows[1].ci == "0.010500-0.011500" and rows[2].measured_bpp == 0.03
    assert [r.model_id for r in sort_rows(rows, "measured_bpp")] == ["m2", "custom", "m1"]  # empty last
    assert [r.model_id for r in sort_rows(rows, "measured_bpp", reverse=True)] == ["custom", "m2", "m1"]
    # the drawn line is the analysis' line: compare with an independent least-squares fit
    x, y = np.array([0.01, 0.02, 0.03]), np.array([3.0, 5.0, 6.5])
    slope, icpt = np.polyfit(x, y, 1)
    recs3 = [{"model_id": f"m{i}", "group": "G", "bpp": a, "fid": b} for i, (a, b) in enumerate(zip(x, y))]
    ser = fit_series(recs3, {"groups": [{"group": "G", "slope": slope, "intercept": icpt, "r2": 0.99,
                                         "pearson_r": 0.995}]})
    (x0, y0), (x1, y1) = ser[0].line
    assert (x0, x1) == (0.01, 0.03) and y0 == pytest.approx(icpt + slope * 0.01) and y1 == pytest.approx(
        icpt + slope * 0.03)
    assert "R²=0.990" in ser[0].label and "r=0.995" in ser[0].label and "ρ" not in ser[0].label


def test_export_csv_refuses_folder(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        export_table([], tmp_path)


# ------------------------------------------------------------------------------- Pilot


async def _loaded(pilot, app, n=1):
    await wait_for(pilot, lambda: app.analysis_loads >= n, 60, "the table and analysis")


async def test_opens_on_published_table_with_fits(home):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        table = app.query_one(ResultsTable)
        published = model_cards(published_only=True)
        assert [r.model_id for r in table.result_rows] == [c.id for c in published]
        assert [r.reference_bpp for r in table.result_rows] == [c.reference_bpp for c in published]
        labels = {s.group: s for s in app.bundle.series}
        assert labels["LlamaGen-384"].line is not None and "R²=0.979" in labels["LlamaGen-384"].label
        assert labels["LlamaGen-256"].line is None  # 2 models: listed, not fitted
        assert app.bundle.bilinear.short_title == "bilinear R² 0.746 (lin 0.446)"


async def test_select_with_keys_and_bad_settings_show_modal(home):
    write_settings(home, data_dir=str(home / "missing"))
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        picker = app.query_one(ModelPicker)
        assert app.focused is picker
        rows = picker.rows_data
        first_family = family_members(rows, rows[0].family)
        assert rows[0].family == "micro" and picker.ordered_selection() == ()  # the saved (empty) selection
        await pilot.press("space")       # first row is a family: selects all its sizes
        assert picker.ordered_selection() == tuple(first_family)
        second = len(first_family) + 1
        await pilot.press(*["down"] * second, "space")  # the second family's row
        assert rows[second].is_family
        assert picker.ordered_selection() == tuple(first_family + family_members(rows, rows[second].family))
        await pilot.press("n")
        assert picker.ordered_selection() == ()
        await pilot.press("down", "space", "r")
        await pilot.pause()
        assert isinstance(app.screen, ErrorModal)
        assert "Data dir" in str(app.screen.message) and "not a folder" in str(app.screen.message)
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorModal)


async def test_missing_checkpoints_say_where_to_put_them(home):
    data = make_imagefolder(home / "data")
    write_settings(home, data_dir=str(data))
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.query_one(ModelPicker)
        picker.set_selected({"llamagen-b-256"})
        await pilot.press("r")
        from visbpp.tui.widgets.missing_modal import MissingCheckpointsModal

        await wait_for(pilot, lambda: isinstance(app.screen, MissingCheckpointsModal), 60, "missing modal")
        (mid, msg), = app.screen.missing
        assert mid == "llamagen-b-256" and "c2i_B_256.pt" in msg and str(home) in msg
        assert not app.running
        await pilot.press("escape")


async def test_real_scoring_run_progress_new_row_and_csv_export(home, tmp_path):
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data))
    custom = tiny_custom_model()
    app = make_app(home, custom_models=[custom])
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("1")
        picker = app.query_one(ModelPicker)
        assert [r.key for r in picker.rows_data][:2] == ["family:custom", custom.label]  # first, and selected
        assert picker.ordered_selection() == (custom.label,)
        await wait_for(pilot, lambda: picker.rows_data[1].resolution == "64", 60, "params and resolution")
        assert picker.rows_data[1].params not in ("", "0")
        loads = app.analysis_loads
        await pilot.press("r")
        await wait_for(pilot, lambda: app.run_view.finished, 180, "the run to finish")
        assert not app.run_view.cancelled
        p = app.run_view.models[custom.label]
        assert p.stage == "done" and p.n_images == 4 and p.total == 4
        assert p.bpp == pytest.approx(expected_bpp(), abs=8e-3 / (4 * 3 * 64 * 64))
        await wait_for(pilot, lambda: app.analysis_loads > loads and not app.running, 60, "the refreshed table")
        row = next(r for r in app.query_one(ResultsTable).result_rows if r.model_id == custom.label)
        assert row.measured_bpp == pytest.approx(p.bpp, rel=1e-12) and row.n_images == 4
        assert row.ci_low is None and row.ci == "n<10"   # no interval below 10 images
        assert row.bits_per_token == pytest.approx(p.bpp * 3 * 64 * 64 / 16, rel=1e-9)

        out = tmp_path / "export" / "table.csv"
        await pilot.press("3", "e")
        assert isinstance(app.screen, PathPrompt)
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, out.exists, 10, "the CSV")
    with out.open(newline="") as f:
        recs = list(csv.DictReader(f))
    by_id = {r["model_id"]: r for r in recs}
    assert float(by_id[custom.label]["measured_bpp"]) == pytest.approx(p.bpp, rel=1e-12)
    for c in model_cards(published_only=True):
        assert float(by_id[c.id]["reference_bpp"]) == c.reference_bpp and by_id[c.id]["measured_bpp"] == ""
    # the result is in the store that `visbpp run` uses, so a new session shows it at start
    app2 = make_app(home, custom_models=[custom])
    async with app2.run_test(size=(100, 30)) as pilot:
        await _loaded(pilot, app2)
        assert any(r.model_id == custom.label and r.measured_bpp == pytest.approx(p.bpp)
                   for r in app2.query_one(ResultsTable).result_rows)


async def test_cancel_a_run_between_batches(home, tmp_path):
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data), batch_size="1")
    job = slow_job(0.4)
    app = make_app(home, custom_models=[job])
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(ModelPicker).set_selected({job.label})
        await pilot.press("r")
        await wait_for(pilot, lambda: app.run_view.models[job.label].done >= 1
                       and app.run_view.models[job.label].stage == "scoring", 60, "scoring to start")
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running, 30, "the worker to stop")
        assert app.run_view.cancelled and app.run_view.models[job.label].done < 4
        assert "cancelled" in str(app.query_one("#run-status").render()).lower()
    from visbpp.core.store.results import measured_results

    assert all(m["model_id"] != job.label for m in measured_results(str(home)))


async def test_ui_stays_responsive_while_a_slow_scorer_runs(home, tmp_path):
    """Keys are handled, in order, while the scoring worker is blocked inside a batch: the worker
    never holds the message loop. No timing is asserted (the machine may be busy)."""
    import threading

    from tui_helpers import FakeTokenizer, SlowModel
    from visbpp.core.engine.runner import ScoringJob
    from visbpp.tui.state import CustomModel

    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data), batch_size="1")
    inside, release = threading.Event(), threading.Event()

    class BlockedModel(SlowModel):
        def token_nll(self, tokens, labels):
            inside.set()
            release.wait(120)  # held until the keys below have been handled
            return super().token_nll(tokens, labels)

    job = CustomModel("blocked-fake", "fake", job=ScoringJob(
        model_id="blocked-fake", family="fake", tokenizer_key="fake-tokenizer-blocked",
        load_tokenizer=FakeTokenizer, load_model=lambda tok: BlockedModel(0.0)))
    handled: list[str] = []

    class RecordingApp(VisbppApp):
        def on_tabbed_content_tab_activated(self, event) -> None:
            handled.append(event.pane.id)

    app = RecordingApp(home=home, custom_models=[job], warm_torch=False, check_checkpoints=False)
    keys = {"1": "models", "2": "run", "3": "results"}
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await _loaded(pilot, app)
            app.query_one(ModelPicker).set_selected({job.label})
            await pilot.press("r")
            await wait_for(pilot, inside.is_set, 60, "the scorer to enter its first batch")
            handled.clear()
            for i, key in enumerate("312312"):
                await pilot.press(key)
                await wait_for(pilot, lambda n=i + 1: len(handled) >= n, 30, f"key {key} while the worker is blocked")
            blocked_throughout = not release.is_set() and app.running
            release.set()
            app.action_cancel()
            await wait_for(pilot, lambda: not app.running, 60, "the run to stop")
    finally:
        release.set()
    assert blocked_throughout
    assert handled == [keys[k] for k in "312312"]


async def test_results_of_a_headless_run_appear_without_restart(home, tmp_path):
    """A run finished by another process (as `visbpp run` would) shows up through the store poll."""
    from visbpp.core.engine.runner import RunSettings, run

    data = make_imagefolder(tmp_path / "data")
    job = slow_job(0.0, label="headless-fake")
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(pilot, app)
        assert all(r.model_id != "headless-fake" for r in app.query_one(ResultsTable).result_rows)
        await asyncio.to_thread(run, [job.job], RunSettings(data=str(data), batch_size=2, device="cpu",
                                                            cache_dir=str(home)))
        app._poll_store()  # the 5 s timer's body, called now instead of waiting
        await wait_for(pilot, lambda: any(r.model_id == "headless-fake" and r.measured_bpp == pytest.approx(3 * 16 / (3 * 64 * 64))
                                          for r in app.query_one(ResultsTable).result_rows), 60, "the new row")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_results_table_shows_every_column_and_row(home, size):
    """At each size every column of the table fits the width and the 14 published rows the height;
    the plots have their own tab (p or 4)."""
    app = make_app(home)
    async with app.run_test(size=size) as pilot:
        await _loaded(pilot, app)
        await pilot.press("3")
        await pilot.pause()
        table = app.query_one(ResultsTable)
        widths = sum(c.get_render_width(table) for c in table.columns.values())
        assert widths <= table.size.width, (widths, table.size.width)
        assert len(table.columns) == (8 if size[0] < 135 else 13)   # narrow: the detail line has the baseline
        assert table.size.height >= table.row_count + 1
        await pilot.press("4")
        await pilot.pause()
        assert app.query_one("#tabs").active == "plots" and app.query_one("#fit-plot").size.height >= 10


async def test_export_analysis_json_matches_statsmodels(home, tmp_path):
    import json

    import pandas as pd
    import statsmodels.formula.api as smf

    out = tmp_path / "analysis.json"
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("j")
        assert isinstance(app.screen, PathPrompt)
        app.screen.query_one(Input).value = str(out)
        await pilot.press("enter")
        await wait_for(pilot, out.exists, 10, "the JSON")
    doc = json.loads(out.read_text())
    cards = [c for c in model_cards(published_only=True) if c.family == "llamagen" and c.resolution == 384]
    df = pd.DataFrame({"fid": [c.fid.value for c in cards], "bpp": [c.reference_bpp for c in cards]})
    fit = smf.ols("fid ~ bpp", df).fit()
    g = next(g for g in doc["groups"] if g["group"] == "LlamaGen-384")
    assert g["n"] == 4 and g["slope"] == pytest.approx(fit.params["bpp"], rel=1e-9)
    assert g["r2"] == pytest.approx(fit.rsquared, rel=1e-9)
    assert doc["global"]["bilinear"]["r2"] == pytest.approx(0.746, abs=1.5e-3)


async def test_typed_settings_are_remembered_between_sessions(home, tmp_path):
    write_settings(home)   # nothing selected: no bundled data to fall back on
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        assert app.focused.id == "set-data_dir"  # empty data dir, no default: the cursor starts there
        await pilot.press(*str(tmp_path))
        await pilot.press("escape", "1")      # escape leaves the field, so "1" switches tabs again
        assert app.query_one("TabbedContent").active == "models"
    saved, warning = st.load_settings(home / st.SETTINGS_FILE)
    assert warning is None and saved.data_dir == str(tmp_path)
    app2 = make_app(home)
    async with app2.run_test(size=(80, 24)) as pilot:
        assert app2.query_one("#set-data_dir", Input).value == str(tmp_path)


async def test_engine_error_shows_modal_and_app_stays_usable(home, tmp_path):
    empty = tmp_path / "empty"
    (empty / "c0").mkdir(parents=True)
    write_settings(home, data_dir=str(empty))
    job = slow_job(0.0)
    app = make_app(home, custom_models=[job])
    async with app.run_test(size=(80, 24)) as pilot:
        app.query_one(ModelPicker).set_selected({job.label})
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorModal), 60, "the error modal")
        assert "DataError" not in app.screen.message and str(empty) in app.screen.message  # one readable sentence
        assert app.screen.message.endswith("no images selected.")
        assert not app.running
        await pilot.press("escape", "3")
        assert app.query_one("TabbedContent").active == "results"


async def test_missing_checkpoints_fetch_offer_calls_the_fetcher(home, tmp_path, monkeypatch):
    """The modal's fetch hands exactly the missing models to the fetcher, then the picker re-checks
    the files (the fetcher here writes placeholder files where the cache expects them)."""
    from visbpp.core.registry import checkpoints as ck
    from visbpp.tui import app as app_mod
    from visbpp.tui.widgets.missing_modal import MissingCheckpointsModal

    asked = []

    def fake_fetch(cards, progress=None):
        asked.extend(c.id for c in cards)
        out = {}
        for c in cards:
            for f in ck.files_for(c):
                p = ck.cached_path(f)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(b"placeholder")
                out[f.filename] = p
        return out

    monkeypatch.setattr(app_mod, "fetch_function", lambda: fake_fetch)
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data))
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(ModelPicker).set_selected({"var-d16"})
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, MissingCheckpointsModal), 60, "missing modal")
        assert app.screen.query_one("#fetch")   # the fetch offer
        await pilot.press("f")
        await wait_for(pilot, lambda: app.statuses.get("var-d16") is not None
                       and app.statuses["var-d16"].state != "missing", 60, "re-checked statuses")
    assert asked == ["var-d16"]


def test_memory_probe_reports_host_rss():
    from visbpp.tui.memory import probe_memory

    host = [m for m in probe_memory() if m.device == "host"]
    assert len(host) == 1
    status = open("/proc/self/status").read()
    vmrss = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]) * 1024
    assert host[0].rss == pytest.approx(vmrss, rel=0.2)


async def test_memory_panel_refreshes_every_second(home):
    calls = []

    def probe():
        calls.append(_time.get_time())
        return [ev.MemoryStats("host", rss=len(calls) << 20)]

    app = make_app(home, memory_probe=probe)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        n0 = len(calls)
        # behaviour, not timing (a busy machine delays timers): it keeps refreshing on its 1 s timer
        assert app.memory_interval == 1.0
        await wait_for(pilot, lambda: len(calls) - n0 >= 2, 60, "two more memory readings")
        from rich.console import Console

        from visbpp.tui.widgets.memory_panel import render_memory

        console = Console(width=60, record=True, file=io.StringIO())
        console.print(render_memory(app.query_one("#memory").last))
        assert f"host RSS {len(calls)}.0 MiB" in " ".join(console.export_text().split())


async def test_fid_set_toggle_refits_and_says_which(home):
    """`f` cycles the fitted FID set paper -> readme -> noguidance -> paper, as `analyze --fid` does."""
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await _loaded(pilot, app)
        assert app.bundle.analysis["fid_source"] == "paper"
        for n, want in enumerate(("readme", "noguidance", "paper"), start=2):
            await pilot.press("f")
            await _loaded(pilot, app, n)
            assert app.fid_source == want and app.bundle.analysis["fid_source"] == want
            rows = app.query_one(ResultsTable).result_rows
            assert {r.fid_choice for r in rows if r.fid is not None} == {want}
            if want == "readme":
                fids = {r.model_id: r.fid for r in rows}
                assert fids["llamagen-b-256"] == 5.46 and "taming-1.4b" not in fids
                assert any("no FID of source 'readme'" in n for n in app.bundle.analysis["notes"])


def test_toast_line_is_one_short_line():
    from visbpp.tui.results_view import toast_line

    long = ("not measured on the common image set (official preprocessing, /d (imagefolder), limit 20, n=20): "
            + ", ".join(f"m{i} (n=12, /d (imagefolder), limit 12)" for i in range(30)) + "; measure them again")
    line = toast_line([long, "another warning: with details"])
    assert "\n" not in line and len(line) <= 80
    assert line == "not measured on the common image set (official preprocessin… (+1 more) · 5 Stats"


async def test_fit_warnings_toast_one_line_the_stats_tab_has_them_in_full(home):
    """Runs on two image sets: the toast is one line; Stats shows the warning in full and which run
    each measured BPP comes from."""
    from test_runs import MICRO, _store

    _store(home, "runA", 20, {m: 0.40 - 0.03 * i for i, m in enumerate(MICRO[:3])}, "2026-01-01T00:00:00Z")
    _store(home, "runB", 12, {"micro-s": 0.45, "micro-xl": 0.3}, "2026-02-01T00:00:00Z")   # micro-xl: 12 images only
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, app)
        await pilot.press("m")   # fit measured BPP where available
        await _loaded(pilot, app, 2)
        await pilot.pause(0.2)
        toasts = [n.message for n in app._notifications if n.title == "fit warning"]
        assert toasts and all("\n" not in t and len(t) <= 80 and t.endswith("5 Stats") for t in toasts)
        await pilot.press("5")
        await pilot.pause(0.2)
        from rich.console import Console

        con = Console(width=300, record=True, file=io.StringIO())
        con.print(app.query_one("#stats-body").content)
        body = " ".join(con.export_text().split())
        assert "Measured BPP from" in body and "micro-s: 2 runs in the store; using run runA" in body
        assert "micro-l, micro-m: using run runA" in body and "not measured on the common image set" in body
