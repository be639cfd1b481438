"""Run management and the one selection rule: `visbpp runs`, analyze/export/TUI agreement, units, CIs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from visbpp.core.registry.catalog import model_cards
from visbpp.core.store import results as R
from visbpp.core.store import runs as RU
from visbpp.tui.cli import app

runner = CliRunner()
MICRO = [c.id for c in model_cards("micro")]


def _rows(mid: str, n: int, bpp: float) -> list[dict]:
    # 16x16 images: bits = bpp * 3 * 256 per image
    return [{"model_id": mid, "image": f"c{i % 10}/{i:03d}.png", "label": i % 10, "bits": bpp * 768.0,
             "tokens": 16, "pixels": 256, "bpp": bpp} for i in range(n)]


def _store(home: Path, run_id: str, limit: int, models: dict[str, float], finished: str, dtype: str = "fp32",
           preprocess: str = "official", tf32: bool = False) -> None:
    rows = [r for mid, bpp in models.items() for r in _rows(mid, limit, bpp)]
    summaries = [R.summarize(mid, [r for r in rows if r["model_id"] == mid], 0, "micro", 16, None, dtype, preprocess)
                 for mid in models]
    doc = {"run_id": run_id, "complete": True, "started_at": finished, "finished_at": finished,
           "models": summaries, "skipped": [],
           "metadata": {"dtype": dtype, "preprocess": preprocess, "device": "cpu", "tf32": tf32,
                        "subset": {"data": "/d/digits", "layout": "imagefolder", "limit": limit, "per_class": None,
                                   "n_selected": limit, "n_classes": 10}}}
    R.store(doc, rows, str(home))
    state = home / "runs" / run_id
    state.mkdir(parents=True)
    (state / "meta.json").write_text("{}")


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("VISBPP_HOME", str(h))
    # run A: the whole micro zoo on 20 images; run B (newer): micro-s alone on 12 images
    _store(h, "runA", 20, {m: 0.40 - 0.03 * i for i, m in enumerate(MICRO)}, "2026-01-01T00:00:00Z")
    _store(h, "runB", 12, {"micro-s": 0.45}, "2026-02-01T00:00:00Z")
    tokens = h / "tokens" / "tok-key"
    tokens.mkdir(parents=True)
    (tokens / "shard-0.pt").write_bytes(b"tokens")
    return h


def cli(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _analysis_json(*extra) -> tuple[int, dict | None, str]:
    r = cli("analyze", "--set", "micro", "--json", *extra)
    return r.exit_code, (json.loads(r.stdout) if r.exit_code == 0 else None), r.stderr


def test_rule_prefers_common_image_set_and_pin_changes_the_fit(home, tmp_path):
    code, doc, err = _analysis_json()
    assert code == 0, err
    # the newer n=12 run of micro-s is not mixed with the n=20 runs of the others
    assert doc["measured_runs"]["micro-s"]["run_id"] == "runA"
    assert {v["n_images"] for v in doc["measured_runs"].values()} == {20}
    assert "micro-s: 2 runs in the store; using run runA" in " ".join(err.split())
    assert doc["git"]["hash"] and "dirty" in doc["git"] and doc["versions"]["numpy"] == np.__version__
    assert doc["fit_set"]["model_set"] == "micro" and set(doc["fit_set"]["models"]) == set(MICRO)

    r = cli("runs", "pin", "micro-s", "runB")
    assert r.exit_code == 0 and json.loads((home / "pins.json").read_text()) == {"micro-s": "runB"}
    code, _, err = _analysis_json()   # the user pinned a run on other images: refused, naming the models
    assert code == 2 and err.count("\n") == 1 and "not fitted" in err and "(1: micro-s)" in err
    code, doc, err = _analysis_json("--allow-mixed")
    assert code == 0 and doc["measured_runs"]["micro-s"] == {"run_id": "runB", "n_images": 12, "dtype": "fp32",
                                                              "preprocess": "official", "selected_by": "pin"}
    assert any(w["kind"] == "bpp_basis" for w in doc["warnings"])

    # the TUI and `visbpp export` pick the same run and write the same table
    from visbpp.tui.results_view import export_table, load_bundle

    cli_csv, tui_csv = tmp_path / "cli.csv", tmp_path / "tui.csv"
    assert cli("export", str(cli_csv)).exit_code == 0
    bundle = load_bundle(str(home), "published")
    export_table(bundle.measured, tui_csv)
    assert cli_csv.read_text() == tui_csv.read_text()
    import pandas as pd

    df = pd.read_csv(cli_csv)
    row = df[df.model_id == "micro-s"].iloc[0]
    assert row.measured_run_id == "runB" and row.measured_bpp == pytest.approx(0.45, rel=1e-12)
    assert row.measured_n_images == 12 and row.measured_bits_per_hw == pytest.approx(3 * 0.45, rel=1e-12)
    assert next(m for m in bundle.measured if m["model_id"] == "micro-s")["run_id"] == "runB"

    assert cli("runs", "unpin", "micro-s").exit_code == 0
    assert _analysis_json()[1]["measured_runs"]["micro-s"]["run_id"] == "runA"


def test_a_tie_prefers_the_default_protocol_then_the_newest_and_names_the_run(tmp_path, monkeypatch):
    """The same models scored with the default protocol and (later) with --preprocess paper, same
    images and numerics: the fit uses the default-protocol runs, the newest of them, and says so."""
    h = tmp_path / "home"
    monkeypatch.setenv("VISBPP_HOME", str(h))
    zoo = {m: 0.40 - 0.03 * i for i, m in enumerate(MICRO)}
    _store(h, "official-old", 20, zoo, "2026-01-01T00:00:00Z")
    _store(h, "official-new", 20, {m: b + 0.001 for m, b in zoo.items()}, "2026-01-02T00:00:00Z")
    _store(h, "paper-newest", 20, {m: b + 0.01 for m, b in zoo.items()}, "2026-01-03T00:00:00Z", preprocess="paper")
    code, doc, err = _analysis_json()
    assert code == 0, err
    assert {v["run_id"] for v in doc["measured_runs"].values()} == {"official-new"}
    err = " ".join(err.split())
    for m in MICRO:
        assert f"{m}: 3 runs in the store; using run official-new (n=20, fp32, official" in err


def test_a_tf32_run_is_not_the_fp32_reference(tmp_path, monkeypatch):
    """fp32 with --tf32 (newer) and the fp32 reference (TF32 off) on the same images: the reference is
    used; a model measured only with TF32 keeps that run, and the note says fp32+tf32."""
    h = tmp_path / "home"
    monkeypatch.setenv("VISBPP_HOME", str(h))
    zoo = {m: 0.40 - 0.03 * i for i, m in enumerate(MICRO)}
    _store(h, "reference", 20, {m: b for m, b in zoo.items() if m != "micro-xl"}, "2026-01-01T00:00:00Z")
    _store(h, "tf32", 20, {m: b + 0.002 for m, b in zoo.items()}, "2026-01-05T00:00:00Z", tf32=True)
    sel = RU.select_measured()
    got = {e["model_id"]: e["run_id"] for e in sel.entries}
    assert got == {"micro-s": "reference", "micro-m": "reference", "micro-l": "reference", "micro-xl": "tf32"}
    notes = " ".join(sel.notes)
    assert "micro-s: 2 runs in the store; using run reference (n=20, fp32, official" in notes
    assert "micro-xl: using run tf32 (n=20, fp32+tf32, official" in notes


def test_export_then_analyze_round_trips_one_metric_at_a_time(home, tmp_path):
    """The exported table holds FID rows (published) and micro-FID rows (measured micro zoo): analyze
    of that file fits the FID rows alone (no mixed-basis refusal, no micro row in the fit) and names
    the micro-FID rows left out; --metric micro-FID fits those alone."""
    import pandas as pd

    out = tmp_path / "table.csv"
    r = cli("export", str(out))
    assert r.exit_code == 0, r.stderr
    table = pd.read_csv(out)
    assert set(table["fid_metric"]) == {"FID", "micro-FID"}
    assert "the table holds rows of 2 quality metrics (FID, micro-FID" in " ".join(r.stderr.split())
    r = cli("analyze", str(out), "--json")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    fid_rows = table[table["fid_metric"] == "FID"]
    assert sorted(d["fit_set"]["models"]) == sorted(fid_rows["model_id"]) and len(fid_rows) == 14
    note = next(n for n in d["notes"] if n.startswith("left out of the fits: 4 micro-FID row(s)"))
    assert f"({', '.join(MICRO)})" in note and "--metric micro-FID" in note
    r = cli("analyze", str(out), "--no-plots")
    assert r.exit_code == 0 and "left out of the fits: 4 micro-FID row(s)" in " ".join(r.stdout.split() + r.stderr.split())
    r = cli("analyze", str(out), "--json", "--metric", "micro-FID")
    assert r.exit_code == 0, r.stderr
    assert sorted(json.loads(r.stdout)["fit_set"]["models"]) == sorted(MICRO)
    r = cli("analyze", str(out), "--metric", "FIDX")
    assert r.exit_code == 2 and "--metric 'FIDX': expected one of FID, micro-FID" in r.stderr


def test_runs_list_show_and_rm_keep_the_token_cache(home):
    r = cli("runs", "list", "--json")
    got = json.loads(r.stdout)["runs"]
    assert [x["run_id"] for x in got] == ["runB", "runA"]
    assert got[1]["models"] == MICRO and got[1]["n_images"] == 20 and got[1]["subset"] == "limit 20"
    assert got[1]["complete"] and got[1]["dtype"] == "fp32" and got[1]["data"] == "/d/digits"
    shown = json.loads(cli("runs", "show", "runB", "--json").stdout)
    assert shown["document"]["results"]["micro-s"]["n_images"] == 12
    cli("runs", "pin", "micro-s", "runB")
    r = cli("runs", "rm", "runB")
    assert r.exit_code == 0
    assert not (home / "results" / "runB").exists() and not (home / "runs" / "runB").exists()
    assert (home / "results" / "runA" / "results.json").exists() and (home / "runs" / "runA").exists()
    assert (home / "tokens" / "tok-key" / "shard-0.pt").read_bytes() == b"tokens"
    assert RU.read_pins() == {}


def _unfinished(home: Path, run_id: str, **ident) -> None:
    state = home / "runs" / run_id
    state.mkdir(parents=True)
    identity = {"jobs": [["micro-m", "micro", "k", {}]], "data": "/d/digits", "limit": 7, "per_class": None,
                "n_images": 7, "dtype": "fp32", "tf32": False, "device": "cpu", "preprocess": "official", **ident}
    (state / "meta.json").write_text(json.dumps({"identity": identity}))


def _cells_over(text: str, width: int) -> list[str]:
    from rich.cells import cell_len

    return [ln for ln in text.splitlines() if cell_len(ln) > width]


def test_runs_list_at_80_columns_shows_every_id_whole(home, monkeypatch):
    """At 80 columns (or piped) every run id and model id is shown whole; the table comes back where
    it fits; an unfinished run shows its subset and when it was last written, options are shown."""
    _unfinished(home, "c0ffee0123456789abcdef", unconditional=True, recon=True)
    monkeypatch.setenv("COLUMNS", "80")
    for args in (("runs", "list"), ("runs",)):   # bare `visbpp runs` lists
        r = cli(*args)
        assert r.exit_code == 0, r.output
        assert "…" not in r.stdout and not _cells_over(r.stdout, 80)
        words = set(r.stdout.replace(",", " ").split())
        assert {"runA", "runB", "c0ffee0123456789abcdef", *MICRO} <= words
    assert "limit 7" in r.stdout and "last written 20" in r.stdout and "unconditional, recon" in r.stdout
    monkeypatch.setenv("COLUMNS", "200")
    r = cli("runs", "list")
    assert "┃ run id" in r.stdout and "…" not in r.stdout and "c0ffee0123456789abcdef" in r.stdout


def test_runs_show_summary_first_json_on_request_and_id_prefixes(home):
    r = cli("runs", "show", "runA")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "run runA: complete, finished 2026-01-01 00:00" and len(lines) < 12
    assert any(ln.strip().startswith("micro-s: bpp 0.400000") and "n=20" in ln for ln in lines)
    assert "visbpp runs show runA --json" in lines[-1]
    _unfinished(home, "deadbeef00")
    assert json.loads(cli("runs", "show", "dead", "--json").stdout)["run_id"] == "deadbeef00"  # a unique prefix
    r = cli("runs", "show", "run")
    assert r.exit_code == 2 and "prefix 'run' is ambiguous: runA, runB" in r.stderr
    r = cli("runs", "pin", "micro-s", "runB")
    assert r.exit_code == 0 and "pinned micro-s to run runB" in r.stdout
    r = cli("runs", "rm", "dead")
    assert r.exit_code == 0 and not (home / "runs" / "deadbeef00").exists()


def test_models_at_80_columns_shows_every_model_id_whole(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = cli("models")
    assert r.exit_code == 0
    assert "…" not in r.stdout and not _cells_over(r.stdout, 80)
    starts = {ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()}
    assert {c.id for c in model_cards()} <= starts
    assert "left out at 80 columns: tokens, res" in " ".join(r.stdout.split())


def test_bad_run_ids_and_runs_in_progress_change_nothing(home):
    before = sorted(str(p) for p in home.rglob("*") if "locks" not in p.parts)
    r = cli("runs", "show", "nosuchid")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "no run 'nosuchid'" in r.stderr
    r = cli("runs", "rm", "runA", "nosuchid")
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "nothing removed" in r.stderr
    from visbpp.core.store.runstate import run_lock

    lock = run_lock(str(home), "runA")
    try:
        r = cli("runs", "rm", "runB", "runA")
    finally:
        lock.release()
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "run runA is in progress" in r.stderr and "nothing removed" in r.stderr
    r = cli("runs", "pin", "micro-l", "runB")
    assert r.exit_code == 2 and "has no measurement of 'micro-l'" in r.stderr
    assert sorted(str(p) for p in home.rglob("*") if "locks" not in p.parts) == before


def test_results_json_layout_and_old_layout_still_read(home):
    doc = json.loads((home / "results" / "runA" / "results.json").read_text())
    assert set(doc["results"]) == set(MICRO) and "metadata" not in doc
    cfg = doc["config"]
    assert cfg["subset"]["limit"] == 20 and set(cfg["git"]) == {"hash", "dirty"} and cfg["command_line"]
    assert cfg["host"]["cpu"] and "gpu" in cfg["host"] and doc["units"]["bpp"] == "bits / (3*H*W)"
    assert "2000 resamples" in doc["ci_method"]
    # an entry of the earlier layout (metadata, bits_per_pixel) is still a measurement
    old = home / "results" / "old"
    old.mkdir()
    (old / "per_image.csv").write_text("model_id,image,label,bits,tokens,pixels,bpp\n")
    (old / "results.json").write_text(json.dumps({
        "run_id": "old", "complete": True, "finished_at": "2025-01-01T00:00:00Z", "per_image_rows": 0,
        "models": [{"model_id": "llamagen-b-256", "n_images": 50, "bpp": 0.02, "bits_per_pixel": 0.06,
                    "bits_per_token": 3.0, "dtype": "fp32"}],
        "metadata": {"preprocess": "official", "subset": {"limit": 50}}}))
    m = next(e for e in R.measured_results(str(home)) if e["model_id"] == "llamagen-b-256")
    assert m["bits_per_hw"] == 0.06 and m["run_id"] == "old"


def test_ci_needs_ten_images_and_states_its_method():
    few = R.summarize("m", _rows("m", 9, 0.3), 0)
    assert few["bpp_ci_low"] is None and few["bpp_ci_high"] is None and few["bpp_ci_note"] == "no CI: 9 images (< 10)"
    rows = _rows("m", 10, 0.3)
    for i, r in enumerate(rows):
        r["bits"] = 200.0 + 10 * i
    ok = R.summarize("m", rows, 0)
    assert ok["bpp_ci_low"] < ok["bpp"] < ok["bpp_ci_high"] and ok["bpp_ci_note"] == ""
    assert "percentile bootstrap" in R.CI_METHOD and "2000 resamples" in R.CI_METHOD
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "percentile bootstrap" in readme and "2000 resamples" in readme


OLD_NAMES = re.compile(r"bits_per_pixel|bits/pixel|bits per pixel|BPP pub|table BPP|BPP meas|bits/tok", re.I)


def test_unit_names_are_the_same_everywhere(home, tmp_path):
    from visbpp.tui.results_view import COLUMNS

    assert not OLD_NAMES.search(" ".join(h for _, h in COLUMNS))
    summary = (home / "results" / "runA" / "summary.csv").read_text().splitlines()[0]
    assert "bits_per_hw" in summary.split(",") and not OLD_NAMES.search(summary)
    out = tmp_path / "t.csv"
    cli("export", str(out))
    assert "measured_bits_per_hw" in out.read_text().splitlines()[0] and not OLD_NAMES.search(out.read_text())
    for args in (["models"], ["analyze", "--set", "micro", "--no-plots"], ["run", "--help"], ["runs", "list"]):
        r = cli(*args)
        assert not OLD_NAMES.search(r.stdout + r.stderr), args
    from visbpp.core.engine.runner import RunResult
    from visbpp.tui.cmd_run import summary_lines

    text = "\n".join(summary_lines(RunResult("r", [R.summarize("m", _rows("m", 3, 0.3), 0)], [], [], {}), 1.0))
    assert "bits_per_hw" in text and "no CI: 3 images" in text and not OLD_NAMES.search(text)
    root = Path(__file__).parents[1]
    for f in [root / "README.md", *root.glob("tui/**/*.py"), *root.glob("tui/*.tcss")]:
        assert not OLD_NAMES.search(f.read_text()), f


def test_set_all_names_the_measured_micro_runs(home):
    for extra in ([], ["--no-plots"]):
        r = cli("analyze", "--set", "all", *extra)
        err = " ".join(r.stderr.split()) + " ".join(r.stdout.split())
        assert r.exit_code == 0 and "holds measured BPP only of the micro zoo" in err and "--set micro" in err


def test_version():
    r = cli("--version")
    assert r.exit_code == 0 and re.fullmatch(r"visbpp \S+\n", r.stdout)
    assert os.path.basename(R.harness_layout({"models": []})["config"]["command_line"])


@pytest.mark.anyio
async def test_tui_runs_view_pins_and_removes_with_the_core_functions(home):
    from tui_helpers import wait_for
    from visbpp.tui.app import VisbppApp
    from visbpp.tui.widgets.runs_panel import RunsPanel

    app = VisbppApp(home=home, warm_torch=False, check_checkpoints=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.analysis_loads >= 1, 60, "the table")
        await pilot.press("7")                       # the Runs tab
        panel = app.query_one(RunsPanel)
        assert app.focused is panel and [r["run_id"] for r in panel.runs] == ["runB", "runA"]
        n = app.analysis_loads
        await pilot.press("p")                       # the cursor is on runB (newest first)
        assert RU.read_pins() == {"micro-s": "runB"}
        await wait_for(pilot, lambda: app.analysis_loads > n, 60, "the refit")
        assert next(m for m in app.bundle.measured if m["model_id"] == "micro-s")["run_id"] == "runB"
        await pilot.press("down", "p")               # pin runA's models: the cursor stays on runA
        await pilot.pause()
        assert panel.cursor_row == 1 and RU.read_pins()["micro-m"] == "runA"
        await pilot.press("up", "u")                 # unpin runB's model (micro-s): runA's pins stay
        await pilot.pause()
        assert panel.cursor_row == 0 and RU.read_pins() == {m: "runA" for m in MICRO if m != "micro-s"}
        await pilot.press("x")
        assert (home / "results" / "runB").exists()  # one x only arms the removal
        await pilot.press("x")
        assert not (home / "results" / "runB").exists() and "micro-s" not in RU.read_pins()
        assert [r["run_id"] for r in panel.runs] == ["runA"]
    assert (home / "tokens" / "tok-key" / "shard-0.pt").exists()


def test_force_recomputes_a_finished_run_and_a_rerun_says_so_once(tmp_path):
    from engine_fakes import fake_job, make_imagefolder
    from visbpp.core.engine.events import StageChanged
    from visbpp.core.engine.runner import RunSettings, run

    make_imagefolder(tmp_path / "data")
    s = RunSettings(data=str(tmp_path / "data"), device="cpu", batch_size=2, cache_dir=str(tmp_path / "c"))
    first = run([fake_job()], s)
    tokens = sorted(p.name for p in (tmp_path / "c" / "tokens").rglob("*"))
    events = []
    again = run([fake_job()], s, events.append)
    said = [e.detail for e in events if isinstance(e, StageChanged) and "already finished" in e.detail]
    assert again.already_finished and len(said) == 1 and "--force" in said[0]
    stamp = (Path(first.store_dir) / "results.json").stat().st_mtime_ns
    forced = run([fake_job()], RunSettings(**{**s.__dict__, "force": True}))
    assert not forced.already_finished and forced.run_id == first.run_id
    assert (Path(forced.store_dir) / "results.json").stat().st_mtime_ns > stamp
    assert [r["bits"] for r in forced.per_image] == [r["bits"] for r in first.per_image]
    assert sorted(p.name for p in (tmp_path / "c" / "tokens").rglob("*")) == tokens   # the token cache stays


def test_tui_json_is_the_analyze_json_document(home):
    from visbpp.tui.results_view import load_bundle

    r = cli("analyze", "--json")
    assert r.exit_code == 0, r.stderr
    cli_doc = json.loads(r.stdout)
    tui_doc = load_bundle(str(home), "published").analysis
    assert set(tui_doc) - {"micro"} == set(cli_doc)
    for key in ("source", "fit_set", "fid_sources", "preprocessing", "measured_runs", "groups", "global", "git",
                "versions", "ci_method", "units"):
        assert tui_doc[key] == cli_doc[key], key
    assert tui_doc["micro"]["measured_runs"]["micro-s"]["run_id"] == "runA"
