"""The scoring engine on fake models: bits, token cache, resume, no-op, cancel, results files."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine_fakes import FakeTokenizer, fake_job, make_imagefolder, reference_bits
from visbpp.core.engine.events import ImageSkipped, ModelFinished, Progress, RunFinished, StageChanged
from visbpp.core.engine.runner import RunSettings, run
from visbpp.core.store import results as R

HERE = Path(__file__).resolve().parent
PY = sys.executable


def _settings(tmp_path, **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return RunSettings(data=str(tmp_path / "data"), device="cpu", **kw)


def test_bits_match_reference_and_outputs(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    (tmp_path / "data" / "c1" / "zz_empty.png").write_bytes(b"")
    events = []
    res = run([fake_job("fake-a", 0)], _settings(tmp_path, out_dir=str(tmp_path / "out")), events.append)
    assert not res.cancelled and not res.already_finished
    got = {r["image"]: r for r in res.per_image}
    assert set(got) == {i for i, _ in items}
    for rel, lab in items:
        assert got[rel]["label"] == lab
        assert got[rel]["bits"] == pytest.approx(reference_bits(str(tmp_path / "data" / rel), lab), abs=1e-9)
        assert got[rel]["tokens"] == 16 and got[rel]["pixels"] == 64
    s = res.models[0]
    bits = np.array([got[i]["bits"] for i, _ in items])
    assert s["n_images"] == len(items) and s["images_skipped"] == 1
    assert s["bpp"] == pytest.approx(bits.sum() / (3 * 64 * len(items)), rel=1e-12)
    assert s["bits_per_token"] == pytest.approx(bits.sum() / (16 * len(items)), rel=1e-12)
    assert len(items) < R.MIN_CI_IMAGES and s["bpp_ci_low"] is None and s["bpp_ci_high"] is None
    assert s["bpp_ci_note"] == f"no CI: {len(items)} images (< {R.MIN_CI_IMAGES})"
    assert res.skipped == [{"image": "c1/zz_empty.png", "reason": "empty file"}]
    # files
    out = tmp_path / "out"
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is True and doc["models"][0]["n_images"] == len(items)
    assert doc["config"]["dtype"] == "fp32" and doc["config"]["tf32"] is False
    assert doc["config"]["subset"]["n_selected"] == len(items) + 1
    lines = (out / "per_image.csv").read_text().splitlines()
    assert lines[0].startswith("model_id,image,label,bits") and len(lines) == len(items) + 1
    assert "zz_empty.png,empty file" in (out / "skipped.csv").read_text()
    # events
    assert any(isinstance(e, ImageSkipped) and e.reason == "empty file" for e in events)
    prog = [e for e in events if isinstance(e, Progress) and e.stage == "scoring"]
    assert prog[-1].done == prog[-1].total == len(items) and prog[-1].memory.rss > 0
    assert any(isinstance(e, ModelFinished) for e in events) and isinstance(events[-1], RunFinished)
    # results store
    m = R.measured_results(str(tmp_path / "cache"))
    assert [x["model_id"] for x in m] == ["fake-a"] and m[0]["bpp"] == s["bpp"]


def test_bootstrap_ci_against_direct_resampling():
    rng = np.random.default_rng(3)
    bits, den = rng.random(50) * 100, np.full(50, 192.0)
    lo, hi = R.bootstrap_ci(bits, den, resamples=500, seed=7)
    idx = np.random.default_rng(7).integers(0, 50, size=(500, 50))
    st = bits[idx].sum(1) / den[idx].sum(1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(st, [0.025, 0.975])))


def test_token_cache_shared_and_finished_noop(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    FakeTokenizer.encode_calls = 0
    events = []
    res = run([fake_job("fake-a", 0), fake_job("fake-b", 1)], _settings(tmp_path, batch_size=100), events.append)
    assert FakeTokenizer.encode_calls == 1  # one batch, one encode for both models
    assert len(res.per_image) == 2 * len(items)
    b = {r["image"]: r["bits"] for r in res.per_image if r["model_id"] == "fake-b"}
    rel, lab = items[0]
    assert b[rel] == pytest.approx(reference_bits(str(tmp_path / "data" / rel), lab, seed=1), abs=1e-9)
    # a new run (other model set) with the same tokenizer reuses the cache: no encoding at all
    FakeTokenizer.encode_calls = 0
    run([fake_job("fake-c", 2)], _settings(tmp_path, batch_size=100))
    assert FakeTokenizer.encode_calls == 0
    # rerunning the finished run does nothing and says so
    ev2 = []
    again = run([fake_job("fake-a", 0), fake_job("fake-b", 1)], _settings(tmp_path, batch_size=100,
                                                                          out_dir=str(tmp_path / "o2")), ev2.append)
    assert again.already_finished and FakeTokenizer.encode_calls == 0
    assert [r["bits"] for r in again.per_image] == [r["bits"] for r in res.per_image]
    assert any(isinstance(e, StageChanged) and "already finished" in e.detail for e in ev2)
    assert (tmp_path / "o2" / "results.json").exists()


def test_cancel_then_resume(tmp_path):
    make_imagefolder(tmp_path / "data")
    full = run([fake_job()], _settings(tmp_path, cache_dir=str(tmp_path / "c0")))
    cancel = threading.Event()

    def on(e):
        if isinstance(e, Progress) and e.stage == "scoring" and e.done >= 2:
            cancel.set()

    part = run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "out")), on, cancel)
    assert part.cancelled and not (tmp_path / "out" / "results.json").exists()
    assert not R.measured_results(str(tmp_path / "cache"))
    seen = []
    rest = run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "out")), seen.append)
    scored = [e for e in seen if isinstance(e, Progress) and e.stage == "scoring"]
    assert scored[-1].total == len(full.per_image) - 2  # only the rest is scored
    assert [(r["image"], r["bits"]) for r in rest.per_image] == [(r["image"], r["bits"]) for r in full.per_image]


def test_resume_after_sigkill(tmp_path):
    make_imagefolder(tmp_path / "data", per_class=(6, 5, 0, 5))
    data, cache = str(tmp_path / "data"), str(tmp_path / "cache")
    env = dict(os.environ, FAKE_SLEEP="0.4", PYTHONPATH=str(HERE))
    cmd = [PY, str(HERE / "fake_run.py"), data, cache, "--batch-size", "2", "--out", str(tmp_path / "out")]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = Path(cache) / "runs"
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until at least two batches are committed
        files = list(runs.glob("*/*/rank0.jsonl")) if runs.exists() else []
        if files and files[0].read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "out" / "results.json").exists()
    with open(files[0], "ab") as f:  # a half-written line as a kill mid-write would leave
        f.write(b'{"rows": [{"model_id": "fake-a", "ima')
    env["FAKE_SLEEP"] = "0"
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    a = json.loads(resumed.stdout.splitlines()[-1])["rows"]
    b = run([fake_job()], RunSettings(data=data, batch_size=2, device="cpu", cache_dir=str(tmp_path / "fresh"))).per_image
    assert len(a) == 16 and [(r["image"], r["bits"]) for r in a] == [(r["image"], r["bits"]) for r in b]
    assert json.loads((tmp_path / "out" / "results.json").read_text())["models"][0]["n_images"] == 16


def test_torchrun_two_processes_identical(tmp_path):
    make_imagefolder(tmp_path / "data", per_class=(4, 3, 0, 2))
    data = str(tmp_path / "data")
    env = dict(os.environ, PYTHONPATH=str(HERE), OMP_NUM_THREADS="1")
    torchrun = str(Path(PY).parent / "torchrun")
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29517", str(HERE / "fake_run.py"),
                          data, str(tmp_path / "c2"), "--batch-size", "2", "--models", "fake-a,fake-b"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = json.loads([ln for ln in two.stdout.splitlines() if ln.startswith("{")][-1])["rows"]
    b = run([fake_job("fake-a", 0), fake_job("fake-b", 1)],
            RunSettings(data=data, batch_size=2, device="cpu", cache_dir=str(tmp_path / "c1"))).per_image
    assert len(a) == 18 and a == b


def test_batch_size_auto_backs_off_on_oom():
    from visbpp.core.engine.runner import find_batch_size

    tried = []

    def attempt(bs):
        tried.append(bs)
        if bs > 37:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    assert find_batch_size(attempt, 512) == 32 and tried == [512, 256, 128, 64, 32]

    def other(bs):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        find_batch_size(other, 8)


def test_workers_give_same_bits(tmp_path):
    make_imagefolder(tmp_path / "data")
    a = run([fake_job()], _settings(tmp_path, cache_dir=str(tmp_path / "c0")))
    b = run([fake_job()], _settings(tmp_path, cache_dir=str(tmp_path / "c1"), workers=2))
    assert [(r["image"], r["bits"]) for r in a.per_image] == [(r["image"], r["bits"]) for r in b.per_image]
    assert b.metadata["workers"] == 2
