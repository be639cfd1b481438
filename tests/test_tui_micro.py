"""TUI tests of the out-of-the-box path and of per-model updates.

* A fresh home: the app opens on the picker with the micro zoo preselected; with no data dir
  typed, ``r`` scores the micro models on the bundled held-out digits through the real engine and
  their rows (micro-FID, never plain FID) and plot group appear.
* A two-model run: the first model's row appears while the second is still scoring; cancel
  stops the rest of the selection.
"""

from __future__ import annotations

import json

import pytest

from tui_helpers import make_imagefolder, slow_job, wait_for, write_settings
from visbpp.core.registry.catalog import get_card
from visbpp.tui.app import VisbppApp
from visbpp.tui.widgets.model_picker import ModelPicker
from visbpp.tui.widgets.results_table import ResultsTable

pytestmark = pytest.mark.anyio


def _rows(app) -> dict:
    return {r.model_id: r for r in app.query_one(ResultsTable).result_rows}


async def test_fresh_start_scores_the_micro_zoo_on_the_bundled_digits(home):
    app = VisbppApp(home=home, warm_torch=False, check_checkpoints=False)
    micro = ("micro-s", "micro-m", "micro-l", "micro-xl")
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.query_one(ModelPicker)
        assert app.query_one("TabbedContent").active == "models" and app.focused is picker
        assert picker.ordered_selection() == micro           # nothing saved: the micro zoo is preselected
        assert [r.key for r in picker.rows_data[:5]] == ["family:micro", *micro]
        await wait_for(pilot, lambda: app.default_data is not None, 60, "the bundled data dir")
        # the held-out split is written into the visbpp home on first use, and shown in the settings
        assert app.default_data == str(home / "data" / "micro-digits-heldout")
        assert sum(1 for _ in (home / "data" / "micro-digits-heldout").rglob("*.png")) == 360
        assert app.default_data in str(app.query_one("#data-default").render())
        await pilot.press("2")                 # a data dir is not needed: focus goes to the progress panel
        assert app.focused.id == "progress"
        await pilot.press("1")
        await wait_for(pilot, lambda: app.analysis_loads >= 1, 60, "the table")
        assert not any(r.micro for r in _rows(app).values())  # nothing measured yet
        await pilot.press("n", "down", "space", "down", "space")  # micro-s and micro-m (the fast ones)
        assert picker.ordered_selection() == ("micro-s", "micro-m")
        await pilot.press("r")
        await pilot.pause()
        assert app.query_one("TabbedContent").active == "run" and app.focused.id == "progress"  # keys stay bindings
        await wait_for(pilot, lambda: app.run_view.finished and not app.running, 240, "the micro run")
        assert not app.run_view.cancelled
        await wait_for(pilot, lambda: all(m in _rows(app) and _rows(app)[m].measured_bpp is not None
                                          for m in ("micro-s", "micro-m")), 60, "the micro rows")
        rows = _rows(app)
        for mid in ("micro-s", "micro-m"):
            card, r = get_card(mid), rows[mid]
            # the training script measured the held-out BPP of the shipped weights independently
            assert r.measured_bpp == pytest.approx(card.reference_bpp, abs=2e-6)
            assert r.n_images == 360 and r.group == "Micro (digits 16px)" and r.fid_metric == "micro-FID"
            assert r.cells()[3] == f"{card.fid.value:.2f} µFID"   # FID column, labelled as micro-FID
            assert app.run_view.models[mid].stage == "done"
        assert rows["micro-m"].measured_bpp < rows["micro-s"].measured_bpp
        (group,) = app.bundle.micro_series
        assert group.group == "Micro (digits 16px)" and "micro-FID" in group.label and len(group.bpp) == 2
        assert app.query_one("#micro-plot").display
        assert all(s.group != "Micro (digits 16px)" for s in app.bundle.series)  # never fitted with FID
        assert "micro-FID" in str(app.query_one("#analysis-status").render())
    saved = json.loads((home / "tui_settings.json").read_text())
    assert saved["selection"] == "micro-s,micro-m" and saved["data_dir"] == ""


async def test_each_model_shows_as_it_finishes_and_cancel_stops_the_selection(home, tmp_path):
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data), batch_size="1")
    fast, slow, after = slow_job(0.0, "fast-fake"), slow_job(0.6, "slow-fake"), slow_job(0.0, "after-fake")
    app = VisbppApp(home=home, custom_models=[fast, slow, after], warm_torch=False, check_checkpoints=False)
    expected = 3 * 16 / (3 * 64 * 64)   # 3 bits per token, 16 tokens, 64x64 RGB
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.analysis_loads >= 1, 60, "the table")
        app.query_one(ModelPicker).set_selected({fast.label, slow.label, after.label})
        await pilot.press("r")
        await wait_for(pilot, lambda: fast.label in _rows(app) and _rows(app)[fast.label].measured_bpp is not None,
                       60, "the first model's row")
        assert _rows(app)[fast.label].measured_bpp == pytest.approx(expected, rel=1e-7)  # fp32 log(8)
        assert app.running and app.run_view.models[slow.label].stage != "done"
        assert slow.label not in _rows(app)
        worker = app._run_worker
        await pilot.press("r")                     # one run at a time: no second worker
        assert app._run_worker is worker
        await wait_for(pilot, lambda: app.run_view.models[slow.label].done >= 1, 60, "the slow model to score")
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running, 30, "the run to stop")
        assert app.run_view.cancelled and not app.run_view.running
        assert app.run_view.models[after.label].stage == "not run"   # never started
        assert "not scored" in app.run_view.models[after.label].stats
        assert "cancelled" in str(app.query_one("#run-status").render()).lower()
    from visbpp.core.store.results import measured_results

    stored = {m["model_id"] for m in measured_results(str(home))}
    assert fast.label in stored and slow.label not in stored and after.label not in stored


def test_only_a_family_that_ships_data_gets_a_default(home):
    from visbpp.core.registry.catalog import model_cards
    from visbpp.models import common_data_dir
    from visbpp.tui.state import CustomModel, picker_rows, selection_families

    digits = str(home / "data" / "micro-digits-heldout")
    assert common_data_dir(["micro", "micro"]) == digits
    assert common_data_dir(["llamagen"]) is None                # ImageNet: the user's data dir
    assert common_data_dir(["micro", "llamagen"]) is None       # mixed: no common default
    assert common_data_dir([]) is None
    custom = [CustomModel("mine", "llamagen"), CustomModel("tiny", "micro")]
    rows = picker_rows(model_cards(), {}, custom)
    assert selection_families(["micro-s", "mine", "llamagen-b-256", "tiny"], rows, custom) == \
        ["micro", "llamagen", "llamagen", "micro"]


def test_mixed_protocol_fit_warning_reaches_the_tui(tmp_path):
    """Issue 13: the TUI, like the CLI, warns when a fit mixes FID protocols, listing them."""
    from visbpp.tui.results_view import analysis_warnings, load_bundle

    measured = [{"model_id": "llamagen-3b-384", "bpp": 0.0131, "n_images": 100, "bits_per_pixel": 0.0393,
                 "bits_per_token": 10.0, "bpp_ci_low": 0.013, "bpp_ci_high": 0.0132, "run_id": "r",
                 "family": "llamagen", "resolution": 384}]
    warns = analysis_warnings(load_bundle(str(tmp_path), "all", measured))
    assert any("mixes FID protocols" in w and "llamagen-3b-384" in w and "cfg 1.65" in w for w in warns)
    published = analysis_warnings(load_bundle(str(tmp_path), "published", []))
    assert not [w for w in published if "mixes" in w]   # one protocol; only the VAR table-BPP note remains
    assert len(published) == 1 and "10% label dropout" in published[0]
