"""Scoring never accepts wrong data: NaN bits, damaged token shards and store entries, replaced
images, odd file names and links, damaged run state, full disks, permissions, interrupted writes."""

from __future__ import annotations

import glob
import json
import math
import os
import threading

import pytest
import torch

from engine_fakes import FakeAR, FakeTokenizer, fake_job, make_imagefolder, reference_bits
from visbpp.core.engine import data as D
from visbpp.core.engine.events import ImageSkipped, Progress, StageChanged
from visbpp.core.engine.runner import NonFiniteNLLError, RunSettings, ScoringJob, run
from visbpp.core.store import results as R


def _settings(tmp_path, **kw):
    kw.setdefault("batch_size", 2)
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    return RunSettings(data=str(tmp_path / "data"), device="cpu", **kw)


def _state_rows(tmp_path) -> list[dict]:
    rows = []
    for p in glob.glob(str(tmp_path / "cache" / "runs" / "*" / "*" / "rank0.jsonl")):
        for line in open(p):
            rows += json.loads(line).get("rows", [])
    return rows


def _cancel_after_first_batch():
    cancel = threading.Event()

    def on(e):
        if isinstance(e, Progress) and e.stage == "scoring" and e.done >= 2:
            cancel.set()
    return cancel, on


# ------------------------------------------------------------------ non-finite bits


class NaNAR(FakeAR):
    """Gives NaN for the first image of its second batch."""

    def __init__(self):
        super().__init__(0)
        self.calls = 0

    def token_nll(self, tokens, labels):
        out = super().token_nll(tokens, labels)
        self.calls += 1
        if self.calls == 2:
            out = out.clone()
            out[0, 3] = float("nan")
        return out


def test_nan_nll_stops_with_model_image_and_cause_and_keeps_nothing_non_finite(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    bad_job = ScoringJob("fake-a", "fake", "fake-tok", FakeTokenizer, lambda tok: NaNAR())
    with pytest.raises(NonFiniteNLLError) as e:
        run([bad_job], _settings(tmp_path, out_dir=str(tmp_path / "out")))
    msg = str(e.value)
    assert "fake-a" in msg and items[2][0] in msg and "NaN" in msg, msg  # batch 2 starts at the third image
    assert not (tmp_path / "out" / "results.json").exists()
    rows = _state_rows(tmp_path)
    assert len(rows) == 2 and all(math.isfinite(r["bits"]) for r in rows)
    again = run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "out")))  # the model fixed
    assert not again.cancelled and len(again.per_image) == len(items)
    assert (tmp_path / "out" / "results.json").exists()


def test_non_finite_rows_in_an_old_run_state_are_scored_again(tmp_path):
    make_imagefolder(tmp_path / "data")
    cancel, on = _cancel_after_first_batch()
    run([fake_job()], _settings(tmp_path), on, cancel)
    (p,) = glob.glob(str(tmp_path / "cache" / "runs" / "*" / "*" / "rank0.jsonl"))
    lines = [json.loads(x) for x in open(p)]
    lines[0]["rows"][0]["bits"] = float("nan")
    open(p, "w").write("".join(json.dumps(x) + "\n" for x in lines))
    res = run([fake_job()], _settings(tmp_path))
    assert all(math.isfinite(r["bits"]) for r in res.per_image) and not res.cancelled


# ------------------------------------------------------------------ token cache shards


def _bpp(res) -> float:
    return res.models[0]["bpp"]


def test_damaged_token_shards_are_named_moved_aside_and_reencoded(tmp_path):
    make_imagefolder(tmp_path / "data")
    clean = _bpp(run([fake_job()], _settings(tmp_path, cache_dir=str(tmp_path / "clean"))))
    run([fake_job("fake-a")], _settings(tmp_path))
    folder = next((tmp_path / "cache" / "tokens").iterdir())
    shards = sorted(folder.glob("shard-*.pt"))
    d = torch.load(shards[0], weights_only=True)
    d["tokens"] = d["tokens"][:, :-4]  # wrong token count per image
    torch.save(d, shards[0])
    (folder / "shard-empty.pt").write_bytes(b"")  # zero bytes
    (folder / "shard-cut.pt").write_bytes(shards[1].read_bytes()[:100])  # truncated
    events = []
    res = run([fake_job("fake-b")], _settings(tmp_path), events.append)
    assert _bpp(res) == pytest.approx(clean, rel=1e-12)
    warned = [e.detail for e in events if isinstance(e, StageChanged) and e.stage == "warning"]
    assert len(warned) == 3 and any(shards[0].name in w and "tokens per image" in w for w in warned), warned
    assert {p.name for p in (folder / "damaged").iterdir()} == {shards[0].name, "shard-empty.pt", "shard-cut.pt"}
    assert _bpp(run([fake_job("fake-c")], _settings(tmp_path))) == pytest.approx(clean, rel=1e-12)


# ------------------------------------------------------------------ finished runs, replaced images


def test_already_finished_run_with_a_truncated_store_csv_is_finished_again(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    first = run([fake_job()], _settings(tmp_path))
    csv = os.path.join(first.store_dir, "per_image.csv")
    lines = open(csv).read().splitlines(keepends=True)
    open(csv, "w").write("".join(lines[:5]))  # header + 4 rows
    with pytest.warns(UserWarning, match="per_image.csv"):
        again = run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "out")))
    out_rows = R.read_rows(str(tmp_path / "out"))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(out_rows) == len(items) == doc["models"][0]["n_images"] == doc["per_image_rows"]
    assert [r["bits"] for r in out_rows] == [r["bits"] for r in first.per_image]
    assert not again.cancelled


def test_an_image_replaced_between_kill_and_rerun_is_scored_again(tmp_path):
    from PIL import Image

    items = make_imagefolder(tmp_path / "data")
    cancel, on = _cancel_after_first_batch()
    run([fake_job()], _settings(tmp_path), on, cancel)
    first = tmp_path / "data" / items[0][0]
    Image.new("RGB", (12, 10), (250, 10, 10)).save(first)
    os.utime(first, ns=(os.stat(first).st_atime_ns, os.stat(first).st_mtime_ns + 10**9))
    res = run([fake_job()], _settings(tmp_path))
    got = {r["image"]: r["bits"] for r in res.per_image}
    assert got[items[0][0]] == pytest.approx(reference_bits(str(first), items[0][1]), rel=1e-9)


def test_run_state_lines_without_rows_or_bits_are_ignored(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    cancel, on = _cancel_after_first_batch()
    run([fake_job()], _settings(tmp_path), on, cancel)
    (p,) = glob.glob(str(tmp_path / "cache" / "runs" / "*" / "*" / "rank0.jsonl"))
    with open(p, "a") as f:
        f.write(json.dumps({"something": 1}) + "\n")
        f.write(json.dumps({"rows": [{"image": items[3][0], "label": 1}]}) + "\n")
    res = run([fake_job()], _settings(tmp_path))
    assert len(res.per_image) == len(items) and not res.cancelled


# ------------------------------------------------------------------ file names, links, --data


def test_non_utf8_file_name_is_scored_and_written(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    raw = os.fsencode(str(tmp_path / "data" / "c0")) + b"/caf\xe9.png"
    os.rename(tmp_path / "data" / items[0][0], raw)
    name = "c0/" + os.fsdecode(b"caf\xe9.png")
    res = run([fake_job()], _settings(tmp_path, out_dir=str(tmp_path / "out")))
    assert name in {r["image"] for r in res.per_image}
    back = R.read_rows(str(tmp_path / "out"))
    assert name in {r["image"] for r in back}
    assert b"c0/caf\xe9.png" in (tmp_path / "out" / "per_image.csv").read_bytes()
    json.loads((tmp_path / "out" / "results.json").read_text())


def test_dangling_link_is_skipped_and_a_link_loop_lists_each_image_once(tmp_path):
    items = make_imagefolder(tmp_path / "data")
    os.symlink(tmp_path / "nowhere.png", tmp_path / "data" / "c0" / "gone.png")
    os.symlink(tmp_path / "data" / "c1", tmp_path / "data" / "c1" / "loop")  # c1/loop/loop/... forever
    os.symlink(tmp_path / "data" / "c3", tmp_path / "data" / "c0" / "other")  # into another class's folder
    ds = D.scan(str(tmp_path / "data"))
    assert sorted(s.image for s in ds.samples) == sorted([i for i, _ in items] + ["c0/gone.png"])
    events = []
    res = run([fake_job()], _settings(tmp_path), events.append)
    assert len(res.per_image) == len(items)
    skipped = {e.image: e.reason for e in events if isinstance(e, ImageSkipped)}
    assert "dangling" in skipped["c0/gone.png"]


def test_data_pointing_at_a_file_says_so(tmp_path):
    (tmp_path / "data").write_text("x")
    with pytest.raises(D.DataError, match="is a file, not a folder"):
        D.scan(str(tmp_path / "data"))
    with pytest.raises(D.DataError, match="is a file, not a folder"):
        D.scan(str(tmp_path / "data"), str(tmp_path / "data"))


# ------------------------------------------------------------------ disks, permissions, interrupted writes


def _enospc(*a, **k):
    raise OSError(28, "No space left on device")


def test_disk_full_names_the_path(tmp_path, monkeypatch):
    from visbpp.core.files import atomic_write_text
    from visbpp.core.store import runstate

    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(OSError, match=r"No space left on device: '.*summary\.csv'"):
        atomic_write_text(tmp_path / "summary.csv", "x")
    assert os.listdir(tmp_path) == []
    app = runstate.RowAppender(str(tmp_path / "m" / "rank0.jsonl"))
    with pytest.raises(OSError, match=r"No space left on device: '.*rank0\.jsonl'"):
        app.append([{"image": "a", "bits": 1.0, "tokens": 1, "pixels": 1}], ["k"])


def _doc(run_id, n):
    rows = [{"model_id": "m", "image": f"i{k}.png", "label": 0, "bits": float(k + n), "tokens": 4, "pixels": 4,
             "bpp": (k + n) / 12} for k in range(n)]
    return {"run_id": run_id, "complete": True, "models": [R.summarize("m", rows, 0)], "skipped": []}, rows


def test_outputs_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        doc, rows = _doc("r1", 3)
        R.write_outputs(str(tmp_path / "out"), doc, rows)
    finally:
        os.umask(old)
    for name in ("per_image.csv", "summary.csv", "results.json"):
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o644, name


def test_out_is_written_as_a_unit(tmp_path, monkeypatch):
    out = tmp_path / "out"
    doc1, rows1 = _doc("r1", 3)
    R.write_outputs(str(out), doc1, rows1)
    before = {n: (out / n).read_bytes() for n in ("per_image.csv", "summary.csv", "results.json")}
    real = R.atomic_write_text

    def killed(path, text):
        if str(path).endswith("summary.csv"):
            raise KeyboardInterrupt
        real(path, text)

    monkeypatch.setattr(R, "atomic_write_text", killed)
    doc2, rows2 = _doc("r2", 5)
    with pytest.raises(KeyboardInterrupt):
        R.write_outputs(str(out), doc2, rows2)
    assert {n: (out / n).read_bytes() for n in before} == before  # the previous unit is untouched
    monkeypatch.setattr(R, "atomic_write_text", real)
    (out / ".per_image.csv.x1y2.tmp").write_text("left by a kill")
    R.write_outputs(str(out), doc2, rows2)
    assert json.loads((out / "results.json").read_text())["run_id"] == "r2"
    assert len(R.read_rows(str(out))) == 5
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".visbpp-write.lock"]


def test_a_kill_after_the_commit_is_completed_by_the_next_write(tmp_path, monkeypatch):
    out = tmp_path / "out"
    doc1, rows1 = _doc("r1", 3)
    R.write_outputs(str(out), doc1, rows1)
    real, calls = os.replace, []

    def killed(a, b):
        if os.path.dirname(str(b)) == str(out):
            calls.append(b)
            if len(calls) == 2:  # per_image.csv moved in, summary.csv not yet
                raise KeyboardInterrupt
        real(a, b)

    monkeypatch.setattr(os, "replace", killed)
    doc2, rows2 = _doc("r2", 5)
    with pytest.raises(KeyboardInterrupt):
        R.write_outputs(str(out), doc2, rows2)
    monkeypatch.setattr(os, "replace", real)
    assert not (out / "results.json").exists()  # never complete-looking while mixed
    R.recover_outputs(str(out))
    doc = json.loads((out / "results.json").read_text())
    assert doc["run_id"] == "r2" and len(R.read_rows(str(out))) == 5
    assert R.verified_rows(str(out), doc)[0] is not None
