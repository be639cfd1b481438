"""TUI tests of the out-of-the-box path and of per-model updates.

* A fresh home: the app opens on the picker with the micro zoo preselected; with no data dir
  typed, ``r`` scores the micro models on the bundled held-out digits through the real engine and
  their rows (micro-FID, never plain FID) and plot group appear.
* A three-model run (one engine run): each model's row appears as it finishes; cancel stops the
  rest of the selection, and the next run of it resumes.
* The TUI's run worker and `visbpp run` make the same run of the same selection.
"""

from __future__ import annotations

import json
import threading

import pytest

from tui_helpers import counting_job, make_imagefolder, wait_for, write_settings
from visbpp.core.engine import events as ev
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
    """One engine run for the selection: each model's row appears as it finishes; a cancel that
    arrives while a model's last batch is being scored lets that batch finish (the model is complete
    and shown) and starts no further model; nothing is stored until the run is complete, and the
    next run of the selection (the same run id) resumes without scoring a finished model again."""
    data = make_imagefolder(tmp_path / "data")
    write_settings(home, data_dir=str(data), batch_size="4")   # the 4 images: one batch per model
    entered, release = threading.Event(), threading.Event()
    scored: dict[str, list] = {"fast-fake": [], "slow-fake": [], "after-fake": []}
    fast = counting_job("fast-fake", scored["fast-fake"])
    slow = counting_job("slow-fake", scored["slow-fake"], entered, release)
    after = counting_job("after-fake", scored["after-fake"])
    events: list = []

    def runner(jobs, settings, on_event, cancel):   # the app's engine call, with its events recorded
        from visbpp.core.engine.entry import score

        return score(jobs, settings, lambda e: (events.append(e), on_event(e)), cancel)

    app = VisbppApp(home=home, custom_models=[fast, slow, after], warm_torch=False, check_checkpoints=False,
                    runner=runner)
    expected = 3 * 16 / (3 * 64 * 64)   # 3 bits per token, 16 tokens, 64x64 RGB
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.analysis_loads >= 1, 60, "the table")
        app.query_one(ModelPicker).set_selected({fast.label, slow.label, after.label})
        await pilot.press("r")
        await wait_for(pilot, lambda: fast.label in _rows(app) and _rows(app)[fast.label].measured_bpp is not None,
                       60, "the first model's row")
        assert _rows(app)[fast.label].measured_bpp == pytest.approx(expected, rel=1e-7)  # fp32 log(8)
        await wait_for(pilot, entered.is_set, 60, "the slow model's batch")
        assert app.running and app.run_view.models[slow.label].stage != "done" and slow.label not in _rows(app)
        worker = app._run_worker
        await pilot.press("r")                     # one run at a time: no second worker
        assert app._run_worker is worker
        await pilot.press("c")                     # while the slow model's last batch is being scored
        release.set()
        await wait_for(pilot, lambda: not app.running, 60, "the run to stop")
        assert app.run_view.cancelled and not app.run_view.running
        assert app.run_view.models[slow.label].stage == "done"        # its batch finished: complete, shown
        assert app.run_view.models[after.label].stage == "not run"    # never started
        assert "not scored" in app.run_view.models[after.label].stats
        assert "cancelled" in str(app.query_one("#run-status").render()).lower()
        assert scored == {"fast-fake": [4], "slow-fake": [4], "after-fake": []}
        finished = [e.model_id for e in events if isinstance(e, ev.ModelFinished)]
        assert finished == [fast.label, slow.label]
        from visbpp.core.store.results import measured_results

        assert measured_results(str(home)) == []   # an incomplete run is not in the results store

        events.clear()
        await pilot.press("r")                     # the same selection again: the same run, resumed
        await wait_for(pilot, lambda: app.run_view.finished and not app.running, 60, "the resumed run")
        assert not app.run_view.cancelled
        assert scored == {"fast-fake": [4], "slow-fake": [4], "after-fake": [4]}   # nothing scored twice
        assert [e.model_id for e in events if isinstance(e, ev.ModelFinished)] == [fast.label, slow.label, after.label]
    stored = measured_results(str(home))
    assert {m["model_id"] for m in stored} == {fast.label, slow.label, after.label}
    assert len({m["run_id"] for m in stored}) == 1


def test_the_tui_worker_and_visbpp_run_make_the_same_run(home, monkeypatch):
    """A selection of two micro models scored by the TUI's run worker is the run `visbpp run --model A
    --model B` makes: the same single run id (the CLI finds it finished), each image decoded once,
    and a ModelFinished per model in the order the models finish (also for the finished run)."""
    from typer.testing import CliRunner

    from visbpp.core.engine import data as D
    from visbpp.core.store.runs import list_runs
    from visbpp.tui.cli import app as cli
    from visbpp.tui.run_worker import score_selection
    from visbpp.tui.settings import UISettings

    decoded: list[str] = []
    real = D.MultiImageDataset.__getitem__

    def counting(self, i):
        decoded.append(self.samples[i].image)
        return real(self, i)

    monkeypatch.setattr(D.MultiImageDataset, "__getitem__", counting)
    events: list = []
    ui = UISettings(limit="20", batch_size="8", device="cpu")
    result = score_selection(["micro-s", "micro-m"], [], ui, str(home), events.append, threading.Event())
    assert not result.cancelled and not result.already_finished and result.models[0]["n_images"] == 20
    assert sorted(decoded) == sorted(set(decoded)) and len(decoded) == 20   # one decode per image
    assert [e.model_id for e in events if isinstance(e, ev.ModelFinished)] == ["micro-s", "micro-m"]
    started = [e for e in events if isinstance(e, ev.RunStarted)]
    assert len(started) == 1 and started[0].run_id == result.run_id

    r = CliRunner().invoke(cli, ["run", "--model", "micro-s", "--model", "micro-m", "--limit", "20",
                                 "--batch-size", "8", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert f"run {result.run_id} already finished" in r.output
    assert [ln.split("]")[0] for ln in r.output.splitlines() if ln.startswith("[micro-") and "] done:" in ln] == \
        ["[micro-s", "[micro-m"]
    assert len(decoded) == 20                                                   # nothing decoded again
    assert [x["run_id"] for x in list_runs(str(home))] == [result.run_id]      # one run in the store

    events.clear()   # and back: the TUI worker finds the run the CLI would have made
    again = score_selection(["micro-s", "micro-m"], [], ui, str(home), events.append, threading.Event())
    assert again.already_finished and again.run_id == result.run_id and len(decoded) == 20
    assert [e.model_id for e in events if isinstance(e, ev.ModelFinished)] == ["micro-s", "micro-m"]


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
