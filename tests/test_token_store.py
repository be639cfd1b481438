"""The per-token NLL file of a run: alignment with per_image.csv, resume after kill -9, --unconditional."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, require
from engine_fakes import fake_job, make_imagefolder
from test_run_cli import _imagefolder, _own_args
from visbpp.core.engine.runner import RunSettings, run
from visbpp.core.labels import scoring_null_class
from visbpp.core.layout import position_nll
from visbpp.core.store import results as R
from visbpp.core.store import token_store as TS
from visbpp.core.store.token_cache import TokenCache, image_key
from visbpp.models import get_family
from visbpp.tui.cli import app

HERE = Path(__file__).resolve().parent
PY = sys.executable
LN2 = math.log(2)
runner = CliRunner()


def _check_aligned(folder: Path, model_id: str) -> np.ndarray:
    """The stored array, after checking that row i sums to the bits of the i-th per_image.csv row."""
    rows = [r for r in R.read_rows(str(folder)) if r["model_id"] == model_id]
    arr, entry = TS.load(str(folder), model_id)
    assert arr.dtype == np.float32 and arr.shape[0] == len(rows) == entry["shape"][0]
    for r, a in zip(rows, arr):
        assert float(position_nll(a[None]).astype(np.float64).sum() / LN2) == pytest.approx(r["bits"], rel=1e-12)
    return np.asarray(arr)


def test_resume_after_sigkill_keeps_the_token_file_consistent(tmp_path):
    make_imagefolder(tmp_path / "data", per_class=(6, 5, 0, 5))
    data, cache = str(tmp_path / "data"), str(tmp_path / "cache")
    env = dict(os.environ, FAKE_SLEEP="0.4", PYTHONPATH=str(HERE))
    cmd = [PY, str(HERE / "fake_run.py"), data, cache, "--batch-size", "2", "--out", str(tmp_path / "out")]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = Path(cache) / "runs"
    deadline = time.time() + 60
    files = []
    while time.time() < deadline:  # wait until at least two batches are committed
        files = list(runs.glob("*/*/rank0.jsonl")) if runs.exists() else []
        if files and files[0].read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    chunks = files[0].parent / "nll"
    assert len(list(chunks.glob("*.npz"))) >= 2
    # a chunk written for a batch whose rows never reached the run state (kill in between), with wrong
    # values, and a half-written temporary file: both must be replaced/ignored on resume
    rows_done = {r["image"] for line in files[0].read_text().splitlines() if line for r in json.loads(line)["rows"]}
    images = sorted(str(q.relative_to(data)) for q in Path(data).rglob("*.png"))
    pending = [im for im in images if im not in rows_done][:2]
    w = TS.ChunkWriter.__new__(TS.ChunkWriter)
    w.dir = str(chunks)
    w.put(pending, np.full((len(pending), 16), 99.0, np.float32))
    (chunks / "deadbeef.npz.tmp123").write_bytes(b"PK\x03")
    env["FAKE_SLEEP"] = "0"
    subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    resumed = _check_aligned(tmp_path / "out", "fake-a")
    fresh = run([fake_job()],
                RunSettings(data=data, batch_size=2, device="cpu", cache_dir=str(tmp_path / "fresh"),
                            out_dir=str(tmp_path / "out2")))
    assert [r["image"] for r in R.read_rows(str(tmp_path / "out"))] == [r["image"] for r in fresh.per_image]
    np.testing.assert_array_equal(resumed, _check_aligned(tmp_path / "out2", "fake-a"))
    assert not (99.0 == resumed).any()


def test_finished_run_copies_the_token_file(tmp_path):
    make_imagefolder(tmp_path / "data")
    s = RunSettings(data=str(tmp_path / "data"), batch_size=3, device="cpu", cache_dir=str(tmp_path / "c"))
    first = run([fake_job()], s)
    again = run([fake_job()],
                RunSettings(**{**s.__dict__, "out_dir": str(tmp_path / "o")}))
    assert again.already_finished
    np.testing.assert_array_equal(_check_aligned(Path(first.store_dir), "fake-a"),
                                  _check_aligned(tmp_path / "o", "fake-a"))
    entry = json.loads((tmp_path / "o" / "token_nll" / "index.json").read_text())["fake-a"]
    assert entry["layout"] is None and entry["null_file"] is None  # the fake describes no layout


@pytest.mark.parametrize("family", ["llamagen", "var", "openmagvit2", "taming", "rar"])
def test_cli_stores_the_models_token_nll_and_null_scores(family, tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
    _imagefolder(fx, tmp_path / "data", int(fx.config.get("num_classes", 10)))
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", *_own_args(fx, family), "--data", str(tmp_path / "data"), "--out", str(out),
                            "--device", "cpu", "--batch-size", "3", "--quiet", "--unconditional"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    m = doc["models"][0]
    rows = R.read_rows(str(out))
    stored = _check_aligned(out, m["model_id"])
    # recompute independently: the tokens in the cache, the model's own token_nll per image
    fam = get_family(family)
    tok = fam.load_tokenizer(str(fx.tokenizer_path), fx.config)
    ar = fam.load_transformer(str(fx.transformer_path), fx.config, tok)
    cache = TokenCache(str(tmp_path / "home"), doc["config"]["tokenizer_keys"][m["model_id"]],
                       tok.preprocess_id, tok.image_size)
    toks = torch.stack([cache.tokens[image_key(str(tmp_path / "data" / r["image"]))] for r in rows])
    labels = torch.tensor([r["label"] for r in rows])

    def nll(lab):  # in the run's batches of 3 (results of a forward may depend on the batch's size)
        return torch.cat([ar.token_nll(toks[i:i + 3], lab[i:i + 3]) for i in range(0, len(rows), 3)]).numpy()

    np.testing.assert_array_equal(position_nll(stored), nll(labels))
    if ar.null_class is None:
        assert m["class_info_bits"] is None and "not available" in m["class_info"]
        assert "not available" in r.output
        return
    null, _ = TS.load(str(out), m["model_id"], null=True)
    with scoring_null_class():
        direct = nll(torch.full_like(labels, ar.num_classes))
    np.testing.assert_array_equal(position_nll(np.asarray(null)), direct)   # = NLL with the null label
    bits_null = direct.astype(np.float64).sum(1) / LN2
    bits = np.array([r["bits"] for r in rows])
    assert m["class_info_bits"] == pytest.approx(float((bits_null - bits).mean()), rel=1e-9)
    assert len(rows) < R.MIN_CI_IMAGES   # a fixture's few images: no interval, the reason instead
    assert m["class_info_ci_low"] is None and m["class_info_ci_high"] is None
    assert m["class_info_ci_note"] == f"no CI: {len(rows)} images (< {R.MIN_CI_IMAGES})"
    if family == "var":
        bpp_null = bits_null.sum() / sum(3.0 * r["pixels"] for r in rows)
        assert m["paper_expected_bpp"] == pytest.approx(0.9 * m["bpp"] + 0.1 * bpp_null, rel=1e-12)
        assert "paper-protocol expectation" in r.output
    else:
        assert "paper_expected_bpp" not in m
