"""TUI input, settings validation, quitting, readable errors, the statistics and bit views."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from tui_helpers import make_imagefolder, slow_job, wait_for, write_settings
from visbpp.tui import settings as st
from visbpp.tui.app import VisbppApp
from visbpp.tui.state import readable_error
from visbpp.tui.widgets.confirm_modal import ConfirmModal
from visbpp.tui.widgets.error_modal import ErrorModal
from visbpp.tui.widgets.model_picker import ModelPicker
from visbpp.tui.widgets.path_prompt import PathPrompt
from visbpp.tui.widgets.progress_panel import ModelProgressRow

pytestmark = pytest.mark.anyio


def make_app(home, **kw) -> VisbppApp:
    kw.setdefault("warm_torch", False)
    kw.setdefault("check_checkpoints", False)
    return VisbppApp(home=home, **kw)


def text_of(renderable, width: int = 160) -> str:
    c = Console(width=width, record=True, color_system=None)
    c.print(renderable)
    return c.export_text()


async def test_export_prompts_never_eat_a_keystroke(home, tmp_path, monkeypatch):
    """e, Enter, j, Enter: both files land under their default names (nothing pre-selected to replace)."""
    monkeypatch.chdir(tmp_path)
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.analysis_loads >= 1, 60, "the analysis")
        await pilot.press("e")
        assert isinstance(app.screen, PathPrompt) and app.screen.query_one("#path-input").value == ""
        assert app.focused is app.screen.query_one("#path-input")
        await pilot.press("enter", "j")
        await pilot.pause()
        assert isinstance(app.screen, PathPrompt)
        await pilot.press("enter")
        await pilot.pause(0.3)
    assert (tmp_path / "visbpp_results.csv").is_file()
    doc = json.loads((tmp_path / "visbpp_analysis.json").read_text())
    assert "groups" in doc


def test_invalid_stored_values_are_reset_with_a_notice(tmp_path):
    p = tmp_path / "tui_settings.json"
    p.write_text(json.dumps({"batch_size": "0", "limit": "200", "per_class": "x", "device": "cpu"}))
    s, warning = st.load_settings(p)
    assert (s.batch_size, s.limit, s.per_class, s.device) == ("16", "200", "", "cpu")
    assert "batch size" in warning and "reset to 16" in warning and "per class" in warning
    assert st.parse_batch_size("") == 16        # the placeholder's default, not an error


async def test_invalid_stored_batch_size_reset_in_the_app(home):
    write_settings(home, batch_size="0")
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.ui_settings.batch_size == "16"
        assert any("batch size" in n.message and "reset" in n.message for n in app._notifications)


async def test_invalid_typed_value_is_not_saved(home):
    write_settings(home, batch_size="4")
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        field = app.query_one("#set-batch_size")
        field.value = "0"
        await pilot.pause()
        assert field.has_class("-invalid")
        assert json.loads((home / "tui_settings.json").read_text())["batch_size"] == "4"
        field.value = "8"
        await pilot.pause()
        assert not field.has_class("-invalid")
        assert json.loads((home / "tui_settings.json").read_text())["batch_size"] == "8"


async def test_settings_popup_focuses_the_field_it_names(home):
    write_settings(home, data_dir=str(home / "missing"))
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        picker = app.query_one(ModelPicker)
        picker.set_selected({"llamagen-b-256"})
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ErrorModal)
        assert "FetchError" not in app.screen.message and not app.screen.message.endswith("..")
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is app.query_one("#set-data_dir")
        assert app.check_action("leave_field", ()) is True     # the footer shows how to leave the field
        await pilot.press("escape")
        assert app.check_action("leave_field", ()) is False
        assert not list(app.query(ModelProgressRow))            # no stale "queued" rows


async def test_missing_checkpoint_popup_leaves_no_stale_progress(home):
    data = make_imagefolder(home / "data")
    write_settings(home, data_dir=str(data))
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(ModelPicker).set_selected({"llamagen-b-256"})
        await pilot.press("r")
        from visbpp.tui.widgets.missing_modal import MissingCheckpointsModal

        await wait_for(pilot, lambda: isinstance(app.screen, MissingCheckpointsModal), 60, "missing modal")
        assert not list(app.query(ModelProgressRow)) and not app.run_view.models
        assert "No run yet" in str(app.query_one("#run-status").render())


async def test_q_during_a_run_asks_then_cancels_and_quits(home, tmp_path):
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data), batch_size="1")
    job = slow_job(1.5)   # 4 images, one per batch: the run outlasts the keys below
    app = make_app(home, custom_models=[job])
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.run_view.models[job.label].stage == "scoring", 60, "scoring to start")
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and app.running
        await pilot.press("n")                                  # keep running
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal) and app.running and not app._cancel.is_set()
        await pilot.press("q", "y")
        await wait_for(pilot, lambda: not app.running, 30, "the run to stop")
        await pilot.pause(0.2)
        assert app.run_view.cancelled
    assert app.return_code == 0
    from visbpp.core.store.results import measured_results

    assert all(m["model_id"] != job.label for m in measured_results(str(home)))  # nothing partial kept


async def test_q_when_idle_quits_without_asking(home):
    app = make_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmModal)
    assert app.return_code == 0


def test_errors_read_as_one_sentence():
    class FetchError(RuntimeError):
        pass

    assert readable_error(FetchError("FetchError: no network.  ")) == "No network."
    assert readable_error(FetchError("download of x.pt failed: timed out.")) == "Download of x.pt failed: timed out."
    assert readable_error("a\n  b") == "A b."


def test_custom_model_first_with_params_and_resolution(tmp_path):
    import torch

    from visbpp.tui.state import CustomModel, custom_info, picker_rows

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"family": "llamagen", "transformer": {"dim": 8}, "image_size": 64}))
    ck = tmp_path / "m.pt"
    torch.save({"model": {"a": torch.zeros(3, 4), "b": torch.zeros(1000)}}, ck)
    m = CustomModel("mine", "llamagen", str(cfg), str(ck), str(ck))
    assert custom_info(m) == ("1K", "64")
    rows = picker_rows((), {}, [m], {"mine": custom_info(m)})
    assert rows[0].family == "custom" and (rows[1].key, rows[1].params, rows[1].resolution) == ("mine", "1K", "64")


def test_launcher_name_flag_and_label_alias():
    from visbpp.tui.launch import parse_args

    assert parse_args(["--name", "a"]).name == "a" and parse_args(["--label", "b"]).name == "b"


def test_statistics_panel_shows_statsmodels_numbers():
    """The panel's ANCOVA F, per-group slopes and bilinear coefficients equal statsmodels' own fits."""
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.table import fit_rows, merged_table
    from visbpp.tui.stats_view import statistics

    df, notes = fit_rows(merged_table([]))
    res = analyze(df, notes=notes, allow_mixed=True).to_dict()
    out = text_of(statistics(res), width=200)
    data = df.astype({"fid": float, "bpp": float, "rfid": float})
    fitted = data[data.groupby("group")["group"].transform("size") >= 3]   # groups with a slope to compare
    sep = smf.ols("fid ~ bpp * C(group)", fitted).fit()
    com = smf.ols("fid ~ bpp + C(group)", fitted).fit()
    f = anova_lm(com, sep)["F"].iloc[1]
    assert f"= {f:.2f}, p" in out
    bil = smf.ols("fid ~ bpp + rfid", data).fit()
    assert f"{bil.params['rfid']:.2f}" in out and f"{bil.rsquared:.3f}" in out and f"{bil.aic:.1f}" in out
    g = data[data["group"] == next(x["group"] for x in res["groups"] if x["fitted"])]
    one = smf.ols("fid ~ bpp", g).fit()
    assert f"{one.params['bpp']:.1f}" in out and f"{np.corrcoef(g['bpp'], g['fid'])[0, 1]:.3f}" in out
    assert "ρ" not in out and " r " in out


def test_bit_heatmap_scale_is_in_bits():
    from visbpp.tui.bits_view import BitsReport, heatmap, render

    out = text_of(heatmap([[1.0, 2.5], [4.0, 3.0]]))
    assert "1.00 bits" in out and "4.00 bits" in out
    rep = {"model_id": "m", "n_images": 2, "bpp": 0.5, "bits_mean": 10.0, "spatial": [[1.0, 2.0]],
           "by_group": {"scale 1": 1.0, "scale 2": 3.0}, "per_class": [{"label": 3, "n": 2, "bpp": 0.25}]}
    txt = text_of(render(BitsReport("m", rep)))
    assert "scale 2" in txt and "75.0%" in txt and "0.25000" in txt


async def test_download_shows_bytes_rate_eta_and_c_cancels(home, tmp_path, monkeypatch):
    """The fetch from the missing-checkpoint popup reports its bytes on the Run tab and stops on c."""
    import threading
    import time as _time

    from visbpp.tui import app as app_mod
    from visbpp.tui.widgets.missing_modal import MissingCheckpointsModal

    stopped = threading.Event()

    def fake_fetch(cards, progress=None):
        total, done = 1000 << 20, 0
        try:
            while True:                     # a slow download: 1 MiB per 20 ms until the callback stops it
                done = min(total, done + (1 << 20))
                progress("c2i_L_256.pt", done, total)
                _time.sleep(0.02)
        finally:
            stopped.set()

    monkeypatch.setattr(app_mod, "fetch_function", lambda: fake_fetch)
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data))
    app = make_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        app.query_one(ModelPicker).set_selected({"llamagen-l-256"})
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, MissingCheckpointsModal), 60, "missing modal")
        await pilot.press("f")
        line = app.query_one("#fetch-status")
        await wait_for(pilot, lambda: "/s" in str(line.render()) and "ETA" in str(line.render()), 30, "rate and ETA")
        text = str(line.render())
        assert "c2i_L_256.pt" in text and "1000.0 MiB" in text and "c cancels" in text
        await pilot.press("c")
        await wait_for(pilot, stopped.is_set, 30, "the download to stop")
        await wait_for(pilot, lambda: not app.fetching, 30, "the worker to end")
        await pilot.pause(0.1)
        assert not line.display
        assert not isinstance(app.screen, ErrorModal)          # a cancel is no error
        assert any("cancelled" in n.message for n in app._notifications)


async def test_bit_views_read_the_stored_per_token_nll(home, tmp_path):
    """After a run, the Bits tab shows the model's stored report: a uniform 8-symbol model gives
    3 bits per token, 16 tokens -> 48 bits per image."""
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data), batch_size="2")
    job = slow_job(0.0)
    app = make_app(home, custom_models=[job])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.run_view.finished, 60, "the run")
        await pilot.press("1", "down", "6")      # cursor on the custom model, then the Bits tab
        panel = app.query_one("#bits-panel")
        await wait_for(pilot, lambda: panel.report is not None and panel.report.report is not None, 30, "the report")
        rep = panel.report.report
        assert rep["model_id"] == job.label and rep["n_images"] == 4
        assert rep["bits_mean"] == pytest.approx(48.0, rel=1e-6)
        assert sum(rep["by_group"].values()) == pytest.approx(48.0, rel=1e-6)
