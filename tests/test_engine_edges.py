"""Edge cases of the scoring engine and `visbpp run`: all-bad data, unusable folders, TF32 for
encoding, stale files in --out, which measurement the analysis uses, unlabeled flat-layout
files, class-count mismatches, concurrent identical runs, --workers, formatters."""

import io
import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from engine_fakes import NUM_CLASSES, FakeAR, FakeTokenizer, fake_job, make_imagefolder
from visbpp.core.engine import data as D
from visbpp.core.engine.events import ImageSkipped, ModelFinished, Progress, StageChanged
from visbpp.core.engine.runner import RunInProgressError, RunSettings, ScoringJob, run
from visbpp.core.store import results as R
from visbpp.tui.cli import app

runner = CliRunner()


def _settings(tmp_path, data="data", **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return RunSettings(data=str(tmp_path / data), device="cpu", **kw)


def _error_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if ln.strip()]


# ------------------------------------------------------------------ 0 images scored


def _all_bad(root, nclass=NUM_CLASSES, prefix="c"):
    for c in range(nclass):
        os.makedirs(root / f"{prefix}{c}", exist_ok=True)
    (root / f"{prefix}0" / "a.png").write_bytes(b"")
    (root / f"{prefix}1" / "b.png").write_text("not an image")


def test_all_images_bad_is_an_error_and_nothing_complete(tmp_path):
    _all_bad(tmp_path / "data")
    for _ in range(2):  # a rerun fails the same way (no complete-looking results were left)
        with pytest.raises(D.DataError, match="0 images scored") as ei:
            run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "out")))
        assert "c0/a.png: empty file" in str(ei.value)
        assert not (tmp_path / "out" / "results.json").exists()
        assert R.measured_results(str(tmp_path / "cache")) == []
        assert not (tmp_path / "cache" / "results").exists()


def test_older_complete_document_without_images_is_not_a_finished_run(tmp_path):
    make_imagefolder(tmp_path / "data")
    first = run([fake_job()], _settings(tmp_path))
    path = os.path.join(first.store_dir, "results.json")
    doc = json.loads(open(path).read())
    doc["models"][0].update(n_images=0, bpp=None)  # as an older version wrote for an all-bad subset
    open(path, "w").write(json.dumps(doc))
    assert R.load_document(path) is None
    again = run([fake_job()], _settings(tmp_path))
    assert not again.already_finished and again.models[0]["n_images"] == 9


def test_cli_all_images_bad_exit_2_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    _all_bad(tmp_path / "data", nclass=10, prefix="")  # the micro zoo's classes: the digit folders 0..9
    r = runner.invoke(app, ["run", "--model", "micro-s", "--data", str(tmp_path / "data"), "--device", "cpu",
                            "--out", str(tmp_path / "out"), "--quiet"])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert _error_lines(r.output) == [ln for ln in _error_lines(r.output) if ln.startswith("error:")]
    assert len(_error_lines(r.output)) == 1 and "0 images scored" in r.output
    assert "0/a.png: empty file" in r.output
    assert not (tmp_path / "out" / "results.json").exists()


def test_formatters_accept_a_model_without_bpp():
    from visbpp.core.engine.runner import RunResult
    from visbpp.tui.cmd_run import PlainDisplay, summary_lines

    s = R.summarize("m", [], 3)
    buf = io.StringIO()
    PlainDisplay(stream=buf).on_event(ModelFinished("m", 0, s["bpp"], s["bits_per_token"], s))
    assert "bpp n/a" in buf.getvalue()
    lines = summary_lines(RunResult("r", [s], [], [], {}), 1.0)
    assert lines[0].startswith("m: bpp n/a") and "0 images, 3 skipped" in lines[0]


# ------------------------------------------------------------------ unusable --out / cache dir


class _Boom:
    def __call__(self):
        raise AssertionError("work started before the folders were checked")


def test_bad_out_and_cache_dir_fail_before_any_work(tmp_path, monkeypatch):
    make_imagefolder(tmp_path / "data")
    job = ScoringJob("fake-a", "fake", "fake-tok", _Boom(), lambda tok: FakeAR(0))
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(R.OutputError, match="--out"):
            run([job], _settings(tmp_path, out_dir=str(out)))
    assert not (tmp_path / "cache").exists()
    with pytest.raises(R.OutputError, match="cache dir"):
        run([job], _settings(tmp_path, cache_dir=str(tmp_path / "afile")))
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "afile" / "home"))
    with pytest.raises(R.OutputError, match="VISBPP_HOME"):
        run([job], _settings(tmp_path, cache_dir=None))


def test_cli_bad_out_and_home_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    (tmp_path / "afile").write_text("x")
    make_imagefolder(tmp_path / "data")
    base = ["run", "--model", "micro-s", "--data", str(tmp_path / "data"), "--device", "cpu", "--quiet"]
    r = runner.invoke(app, [*base, "--out", str(tmp_path / "afile")])
    assert r.exit_code == 2 and len(_error_lines(r.output)) == 1, r.output
    assert r.output.startswith("error: --out") and "not a folder" in r.output
    assert not (tmp_path / "home" / "tokens").exists() and not (tmp_path / "home" / "runs").exists()
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "afile"))
    r = runner.invoke(app, base)
    assert r.exit_code == 2 and len(_error_lines(r.output)) == 1 and "VISBPP_HOME" in r.output, r.output


# ------------------------------------------------------------------ TF32 only for the AR forward


def _flags():
    return (torch.backends.cuda.matmul.allow_tf32, torch.get_float32_matmul_precision())


class RecordingTokenizer(FakeTokenizer):
    seen: list = []

    def encode(self, x):
        RecordingTokenizer.seen.append(_flags())
        return super().encode(x)


class RecordingAR(FakeAR):
    seen: list = []

    def token_nll(self, tokens, labels):
        RecordingAR.seen.append(_flags())
        return super().token_nll(tokens, labels)


def test_tf32_never_applies_to_encoding(tmp_path):
    make_imagefolder(tmp_path / "data")
    RecordingTokenizer.seen, RecordingAR.seen = [], []
    before = _flags()
    job = ScoringJob("rec", "fake", "rec-tok", RecordingTokenizer, lambda tok: RecordingAR(0))
    res = run([job], _settings(tmp_path, tf32=True))
    assert RecordingTokenizer.seen and set(RecordingTokenizer.seen) == {(False, "highest")}
    assert RecordingAR.seen and set(RecordingAR.seen) == {(True, "high")}
    assert res.metadata["tf32"] is True and _flags() == before  # global settings restored


# ------------------------------------------------------------------ stale skipped.csv


def test_stale_skipped_csv_removed(tmp_path):
    make_imagefolder(tmp_path / "d1")
    (tmp_path / "d1" / "c0" / "zz.png").write_bytes(b"")
    make_imagefolder(tmp_path / "d2")
    out = tmp_path / "out"
    run([fake_job()], _settings(tmp_path, data="d1", out_dir=str(out)))
    assert (out / "skipped.csv").exists()
    res = run([fake_job()], _settings(tmp_path, data="d2", out_dir=str(out)))
    assert res.skipped == [] and not (out / "skipped.csv").exists()
    assert json.loads((out / "results.json").read_text())["skipped"] == []


# ------------------------------------------------------------------ which measurement counts


def _doc(run_id, n, dtype, finished, bpp, complete=True):
    m = {"model_id": "m", "family": "f", "resolution": 8, "n_images": n, "sum_bits": 1.0, "bpp": bpp,
         "bits_per_pixel": 3 * bpp, "bits_per_token": 1.0, "bpp_ci_low": bpp, "bpp_ci_high": bpp,
         "images_skipped": 0, "reference_bpp": None, "dtype": dtype}
    return {"run_id": run_id, "complete": complete, "finished_at": finished, "models": [m],
            "skipped": [], "metadata": {"dtype": dtype, "subset": {"n_selected": n}}}


def test_measured_results_prefers_fp32_then_most_images_then_latest(tmp_path):
    c = str(tmp_path)

    def pick():
        return R.measured_results(c)[0]["run_id"]

    R.store(_doc("full-fp32", 360, "fp32", "2026-01-01T00:00:00Z", 0.5), [], c)
    R.store(_doc("limit10-later", 10, "fp32", "2026-02-01T00:00:00Z", 0.6), [], c)
    assert pick() == "full-fp32"  # a later --limit 10 run does not replace the full measurement
    R.store(_doc("full-bf16-later", 400, "bf16", "2026-03-01T00:00:00Z", 0.7), [], c)
    assert pick() == "full-fp32"  # fp32 beats bf16 whatever the size
    R.store(_doc("full-fp32-later", 360, "fp32", "2026-04-01T00:00:00Z", 0.55), [], c)
    assert pick() == "full-fp32-later"  # same dtype and size: the latest
    R.store(_doc("incomplete", 1000, "fp32", "2026-05-01T00:00:00Z", 0.1, complete=False), [], c)
    assert pick() == "full-fp32-later" and len(R.measured_results(c)) == 1
    # a bf16 measurement is used when there is no fp32 one
    R.store({**_doc("other", 5, "bf16", "2026-01-01T00:00:00Z", 0.3),
             "models": [{**_doc("x", 5, "bf16", "", 0.3)["models"][0], "model_id": "m2"}]}, [], c)
    assert {e["model_id"]: e["run_id"] for e in R.measured_results(c)}["m2"] == "other"


# ------------------------------------------------------------------ flat layout: unlabeled files; class counts


def _flat(tmp_path, synsets=("n01", "n02")):
    from PIL import Image

    root = tmp_path / "flat"
    root.mkdir()
    rows = ["ImageId,PredictionString"]
    rng = np.random.default_rng(0)
    for i, syn in enumerate(synsets):
        Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(root / f"v{i}.png")
        rows.append(f"v{i},{syn} 0 0 1 1")
    Image.fromarray(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)).save(root / "nolabel.png")
    csv = tmp_path / "sol.csv"
    csv.write_text("\n".join(rows) + "\n")
    return str(csv)


def test_flat_unlabeled_listed_as_skipped_and_fewer_classes_warn(tmp_path):
    csv = _flat(tmp_path)
    assert D.scan(str(tmp_path / "flat"), csv).unlabeled == ("nolabel.png",)
    events = []
    res = run([fake_job()], _settings(tmp_path, data="flat", labels_csv=csv, out_dir=str(tmp_path / "o")),
              events.append)
    assert res.skipped == [{"image": "nolabel.png", "reason": "no label in the CSV"}]
    assert res.models[0]["n_images"] == 2 and res.models[0]["images_skipped"] == 1
    assert any(isinstance(e, ImageSkipped) and e.image == "nolabel.png" for e in events)
    assert "nolabel.png,no label in the CSV" in (tmp_path / "o" / "skipped.csv").read_text()
    warn = [e for e in events if isinstance(e, StageChanged) and e.stage == "warning"]
    assert len(warn) == 1 and "2 classes" in warn[0].detail and f"num_classes={NUM_CLASSES}" in warn[0].detail
    # a subset does not list the unlabeled files (they are not part of the selection)
    res = run([fake_job()], _settings(tmp_path, data="flat", labels_csv=csv, limit=1))
    assert res.skipped == [] and res.models[0]["n_images"] == 1


def test_more_classes_than_the_model_is_an_error(tmp_path):
    make_imagefolder(tmp_path / "data", per_class=(1,) * (NUM_CLASSES + 1))
    with pytest.raises(D.DataError, match=f"{NUM_CLASSES + 1} classes .* num_classes={NUM_CLASSES}"):
        run([fake_job()], _settings(tmp_path, limit=1))  # even when the selected labels are in range
    assert not (tmp_path / "cache" / "runs").exists()
    events = []
    make_imagefolder(tmp_path / "same", per_class=(1,) * NUM_CLASSES)
    run([fake_job()], _settings(tmp_path, data="same"), events.append)
    assert not [e for e in events if isinstance(e, StageChanged) and e.stage == "warning"]


# ------------------------------------------------------------------ two identical runs at once


def test_second_identical_run_fails_fast_while_first_holds_the_lock(tmp_path):
    make_imagefolder(tmp_path / "data")
    errors = []

    def on(e):
        if isinstance(e, Progress) and e.stage == "scoring" and not errors:
            try:
                run([fake_job()], _settings(tmp_path))
            except RunInProgressError as ex:
                errors.append(str(ex))

    first = run([fake_job()], _settings(tmp_path), on)
    assert len(errors) == 1 and errors[0].startswith(f"run {first.run_id} is already in progress in another process")
    assert not first.cancelled and first.models[0]["n_images"] == 9
    again = run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "o")))  # lock released; finished: no-op
    assert again.already_finished


# ------------------------------------------------------------------ --workers


def test_negative_workers(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    make_imagefolder(tmp_path / "data")
    with pytest.raises(ValueError, match="--workers -1"):
        run([fake_job()], _settings(tmp_path, workers=-1))
    r = runner.invoke(app, ["run", "--model", "micro-s", "--data", str(tmp_path / "data"), "--workers", "-1"])
    assert r.exit_code == 2 and len(_error_lines(r.output)) == 1 and r.output.startswith("error: --workers -1")


def test_cli_one_error_line_for_class_folders_that_are_not_the_models_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    make_imagefolder(tmp_path / "data", per_class=(1, 1, 1))  # folders c0 c1 c2; the micro models' classes: 0..9
    r = runner.invoke(app, ["run", "--model", "micro-s", "--data", str(tmp_path / "data"), "--device", "cpu"])
    assert r.exit_code == 2, r.output
    assert _error_lines(r.output) == [
        f"error: {tmp_path / 'data'}: class folder 'c0' (and 2 more) is not a class of the model: its classes are "
        f"the digits 0..9; labels come from these names, so rename or remove them (or score a model of these classes)"]


def test_a_model_of_unknown_classes_warns_when_the_data_has_fewer_classes(tmp_path):
    make_imagefolder(tmp_path / "data", per_class=(1, 1, 1))  # 3 classes; the fake model has 4, names unknown
    events = []
    run([fake_job()], _settings(tmp_path), events.append)
    assert [e.detail for e in events if isinstance(e, StageChanged) and e.stage == "warning"] == [
        "the data has 3 classes but the model has num_classes=4: labels are the data's class indices 0..2"]


def test_a_damaged_store_entry_does_not_hide_the_others(tmp_path):
    import json
    import warnings

    from visbpp.core.store import results as R

    good = {"run_id": "a", "complete": True, "finished_at": "2026-01-01T00:00:00Z", "metadata": {"dtype": "fp32"},
            "models": [{"model_id": "m1", "bpp": 0.5, "n_images": 3, "bits_per_pixel": 1.5, "bits_per_token": 2.0,
                        "bpp_ci_low": 0.4, "bpp_ci_high": 0.6, "images_skipped": 0}]}
    bad = {"run_id": "b", "complete": True, "metadata": {}, "models": [{"model_id": "m2", "n_images": "x", "bpp": 0.3}]}
    for name, doc in (("a", good), ("b", bad)):
        (tmp_path / "results" / name).mkdir(parents=True)
        (tmp_path / "results" / name / "results.json").write_text(json.dumps(doc))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = R.measured_results(str(tmp_path))
    assert [m["model_id"] for m in got] == ["m1"] and got[0]["bpp"] == 0.5
    assert any("malformed" in str(x.message) and "b" in str(x.message) for x in w)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns_and_is_noted(tmp_path, monkeypatch, native):
    from visbpp.core.engine import runtime as RT

    monkeypatch.setattr(RT, "cpu_bf16_native", lambda: native)
    make_imagefolder(tmp_path / "data")
    events = []
    res = run([fake_job()], _settings(tmp_path, dtype="bf16", out_dir=str(tmp_path / "out")), events.append)
    warned = [e.detail for e in events if isinstance(e, StageChanged) and e.stage == "warning"]
    notes = json.loads((tmp_path / "out" / "results.json").read_text())["config"]["notes"]
    if native:
        assert not any("bf16" in w for w in warned) and notes == []
    else:
        assert any("without native bf16" in w for w in warned)
        assert notes == [RT.BF16_SLOW_CPU] and res.metadata["notes"] == notes
    fp32 = run([fake_job()], _settings(tmp_path, dtype="fp32"))  # fp32 (the default) never gets the note
    assert fp32.metadata["notes"] == []


def test_progress_line_without_memory_reading_has_no_dangling_separator():
    from visbpp.core.engine.events import Progress
    from visbpp.tui.cmd_run import PlainDisplay

    buf = io.StringIO()
    PlainDisplay(stream=buf).on_event(Progress("tok", "reconstructing", 8, 8, 4.0, 0.0))  # recon: no memory stats
    line = buf.getvalue().strip()
    assert line == "[tok] reconstructing 8/8 images, 4.00 images/s, ETA 0:00:00", line
