"""The engine at scale: one decode per image for every tokenizer, batched durable writes, --workers auto, --compile."""

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
import torch

from engine_fakes import FakeTokenizer, fake_job
from visbpp.core.engine import data as D
from visbpp.core.engine import encode_pass as EP
from visbpp.core.engine import persist as P
from visbpp.core.engine import score_loop as SL
from visbpp.core.engine.runner import RunSettings, run
from visbpp.core.store.token_cache import TokenCache, image_key

HERE = Path(__file__).resolve().parent
PY = sys.executable


def make_jpegs(root: Path, per_class=(4, 3, 0, 5)) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(1)
    out = []
    for c, n in enumerate(per_class):
        d = root / f"c{c}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            p = d / f"img{i:02d}.JPEG"
            Image.fromarray(rng.integers(0, 256, size=(9 + i, 11, 3), dtype=np.uint8)).save(p, quality=90)
            out.append(p)
    (root / "c1" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return out


def _settings(tmp_path, **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return RunSettings(data=str(tmp_path / "data"), device="cpu", **kw)


def test_one_decode_per_image_for_two_tokenizer_groups(tmp_path, monkeypatch):
    files = make_jpegs(tmp_path / "data")
    decodes: dict[str, int] = {}
    real = D.load_image

    def counting(path):
        decodes[path] = decodes.get(path, 0) + 1
        return real(path)

    monkeypatch.setattr(D, "load_image", counting)
    jobs = [fake_job("fake-a", 0, "tok-a"), fake_job("fake-b", 1, "tok-b"), fake_job("fake-c", 2, "tok-a")]
    res = run(jobs, _settings(tmp_path, workers=0))
    every = [str(p) for p in files] + [str(tmp_path / "data" / "c1" / "broken.JPEG")]
    assert sorted(decodes) == sorted(every) and set(decodes.values()) == {1}  # one decode per file, whole run
    assert [s["images_skipped"] for s in res.models] == [1, 1, 1]
    # each group's token cache holds exactly what its tokenizer gives for each image alone
    tok = FakeTokenizer()
    for key in ("tok-a", "tok-b"):
        cache = TokenCache(str(tmp_path / "cache"), key, tok.preprocess_id, tok.image_size)
        assert len(cache.tokens) == len(files) and len(cache.bad) == 1
        for p in files:
            want = tok.encode(tok.preprocess(real(str(p)))[None])[0]
            assert torch.equal(cache.tokens[image_key(str(p))], want)
    # and the bits are those of one group per run (the encode path of a single tokenizer)
    for j in jobs:
        alone = run([j], _settings(tmp_path, cache_dir=str(tmp_path / f"alone-{j.model_id}"), workers=0))
        mine = [(r["image"], r["bits"]) for r in res.per_image if r["model_id"] == j.model_id]
        assert mine == [(r["image"], r["bits"]) for r in alone.per_image]


def test_decode_workers_give_the_same_tokens_and_bits(tmp_path):
    make_jpegs(tmp_path / "data")
    jobs = [fake_job("fake-a", 0, "tok-a"), fake_job("fake-b", 1, "tok-b")]
    a = run(jobs, _settings(tmp_path, cache_dir=str(tmp_path / "c0"), workers=0))
    b = run(jobs, _settings(tmp_path, cache_dir=str(tmp_path / "c1"), workers=2))
    assert a.per_image == b.per_image and b.metadata["decode_workers"] == 2


def test_workers_auto_is_the_default_and_small_jobs_decode_in_process(tmp_path):
    make_jpegs(tmp_path / "data")
    res = run([fake_job()], _settings(tmp_path))
    assert res.metadata["workers"] == "auto" and res.metadata["decode_workers"] == 0
    cpu = torch.device("cpu")
    assert EP.resolve_workers("auto", cpu, EP.AUTO_MIN_IMAGES - 1) == 0
    n = EP.resolve_workers("auto", cpu, 50_000)
    assert 0 <= n <= EP.AUTO_CAP["cpu"] and n <= (os.cpu_count() or 1) - 1
    assert EP.resolve_workers(3, cpu, 1) == 3
    # a run started from a thread (the TUI) never forks decode workers on its own: forking a
    # process whose other threads hold locks can kill the workers
    got = []
    t = threading.Thread(target=lambda: got.append(EP.resolve_workers("auto", cpu, 50_000)))
    t.start()
    t.join()
    assert got == [0] and EP.resolve_workers(2, cpu, 50_000) == 2  # an explicit number is kept
    with pytest.raises(ValueError, match="--workers"):
        run([fake_job()], _settings(tmp_path, workers=-1))


def test_flusher_batches_writes_in_order_and_reports_errors():
    written: list[list] = []
    f = P.Flusher(written.append, seconds=3600, images=5)
    for i in range(12):
        f.add(i, 1)
    f.writer.close(raise_errors=True)  # wait for the background writes so far
    assert written == [[0], [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]  # the first at once, then every 5
    f.writer = P.BackgroundWriter()
    f.close()
    assert written[-1] == [11]

    def boom(items):
        raise OSError(28, "No space left on device")

    g = P.Flusher(boom, seconds=3600, images=1)
    g.add("x")
    time.sleep(0.2)  # the background write has failed by now
    with pytest.raises(OSError, match="No space"):
        g.add("y")
    g.close(raise_errors=False)


def test_cancel_flushes_what_was_scored(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "FLUSH_SECONDS", 3600.0)  # nothing is due before the cancel
    make_jpegs(tmp_path / "data")
    cancel = threading.Event()
    from visbpp.core.engine.events import Progress

    def on(e):
        if isinstance(e, Progress) and e.stage == "scoring" and e.done >= 4:
            cancel.set()

    part = run([fake_job()], _settings(tmp_path), on, cancel)
    assert part.cancelled
    lines = list((tmp_path / "cache" / "runs").glob("*/*/rank0.jsonl"))[0].read_text().splitlines()
    assert sum(len(json.loads(ln)["rows"]) for ln in lines) == 4


def test_resume_after_sigkill_between_flushes(tmp_path):
    make_jpegs(tmp_path / "data", per_class=(6, 5, 0, 5))
    data, cache = str(tmp_path / "data"), str(tmp_path / "cache")
    env = dict(os.environ, FAKE_SLEEP="0.25", PYTHONPATH=str(HERE), VISBPP_FLUSH_SECONDS="0.6",
               VISBPP_FLUSH_IMAGES="100000")
    cmd = [PY, str(HERE / "fake_run.py"), data, cache, "--batch-size", "2", "--out", str(tmp_path / "out")]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = Path(cache) / "runs"
    deadline = time.time() + 60
    files: list[Path] = []
    while time.time() < deadline:  # the first flush is on disk; more batches are scored but not flushed
        files = list(runs.glob("*/*/rank0.jsonl")) if runs.exists() else []
        if files and files[0].read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    time.sleep(0.3)  # between two flushes (0.6 s apart)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "out" / "results.json").exists()
    flushed = [r["image"] for ln in files[0].read_text().splitlines() for r in json.loads(ln)["rows"]]
    assert 0 < len(flushed) < 16 and len(flushed) % 2 == 0  # whole batches only
    env["FAKE_SLEEP"] = "0"
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    a = json.loads(resumed.stdout.splitlines()[-1])["rows"]
    b = run([fake_job()], RunSettings(data=data, batch_size=2, device="cpu", cache_dir=str(tmp_path / "fresh"))).per_image
    assert len(a) == 16 and [(r["image"], r["bits"]) for r in a] == [(r["image"], r["bits"]) for r in b]
    every = [r["image"] for ln in files[0].read_text().splitlines() for r in json.loads(ln)["rows"]]
    assert sorted(every) == sorted(r["image"] for r in b)  # the rerun scored only what was not flushed


def test_compile_gives_the_same_bits_and_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(SL, "COMPILE_BACKEND", "eager")  # the wrapping path, without a C++ toolchain
    make_jpegs(tmp_path / "data")
    a = run([fake_job()], _settings(tmp_path, cache_dir=str(tmp_path / "c0")))
    b = run([fake_job()], _settings(tmp_path, cache_dir=str(tmp_path / "c1"), compile=True, out_dir=str(tmp_path / "o")))
    assert [(r["image"], r["bits"]) for r in a.per_image] == [(r["image"], r["bits"]) for r in b.per_image]
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["config"]["compile"] is True and a.metadata["compile"] is False
    assert doc["config"]["sdpa"].startswith("cpu") and a.run_id != b.run_id
    assert doc["config"]["cpu_linear"] in ("onednn", "aten")  # what the CPU linears ran on


def test_results_read_one_batch_late_are_the_same(tmp_path, monkeypatch):
    """The CUDA path (next forward queued before the host reads a batch), run on the CPU."""
    make_jpegs(tmp_path / "data")
    a = run([fake_job(), fake_job("fake-b", 1)], _settings(tmp_path, cache_dir=str(tmp_path / "c0")))
    monkeypatch.setattr(SL, "OVERLAP", {"cpu": 1})
    b = run([fake_job(), fake_job("fake-b", 1)], _settings(tmp_path, cache_dir=str(tmp_path / "c1"), unconditional=True))
    assert [(r["image"], r["bits"]) for r in a.per_image] == [(r["image"], r["bits"]) for r in b.per_image]
