"""The token code's order-0 baseline on the micro zoo (checked against a direct numpy count over the
cached tokens) and what `analyze`, `inspect` and `export` report beyond the straight line."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from visbpp.core.analysis import baseline as B
from visbpp.core.engine.runner import RunSettings, run
from visbpp.core.registry.catalog import get_card
from visbpp.core.store import results as R
from visbpp.models.jobs import job_for_card
from visbpp.models.micro.data import default_data_dir
from visbpp.tui.cli import app

runner = CliRunner()
MODELS = ("micro-s", "micro-m")   # two AR models on one tokenizer: one token cache folder


@pytest.fixture(scope="module")
def micro_home(tmp_path_factory):
    return tmp_path_factory.mktemp("beyond") / "home"


@pytest.fixture(scope="module")
def scored(micro_home):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VISBPP_HOME", str(micro_home))
        res = run([job_for_card(m) for m in MODELS], RunSettings(data=str(default_data_dir()), batch_size=64, device="cpu"))
    return res


@pytest.fixture
def env(micro_home, scored, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(micro_home))
    return scored


def _numpy_count(home, folder):
    """The order-0 bits of the run's images, read here from the shard files (no TokenCache) and counted by numpy."""
    doc = json.load(open(os.path.join(folder, "results.json")))
    cfg = doc["config"]
    tok_folder = os.path.join(home, "tokens", cfg["token_cache"][cfg["tokenizer_keys"]["micro-s"]])
    cached = {}
    for name in sorted(os.listdir(tok_folder)):
        if name.startswith("shard-"):
            d = torch.load(os.path.join(tok_folder, name), weights_only=True)
            cached.update(zip(d["keys"], d["tokens"].numpy()))
    rows = [r for r in R.read_rows(folder) if r["model_id"] == "micro-s"]
    toks = []
    for r in rows:
        p = os.path.join(cfg["subset"]["data"], r["image"])
        st = os.stat(p)
        toks.append(cached[f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}"])
    toks = np.concatenate(toks)
    counts = np.unique(toks, return_counts=True)[1]
    n = counts.sum()
    p = counts / n
    h = -(p * np.log2(p)).sum()
    sub = 3.0 * sum(r["pixels"] for r in rows)
    return {"n": n, "m": len(counts), "unigram_bpp": n * h / sub,
            "unigram_bpp_mm": (n * h + (len(counts) - 1) / (2 * math.log(2))) / sub,
            "raw_rate_bpp": n * math.log2(128) / sub, "rows": rows}


def test_order0_baseline_equals_a_direct_numpy_count(env, micro_home):
    folder = env.store_dir
    want = _numpy_count(str(micro_home), folder)
    assert want["raw_rate_bpp"] == pytest.approx(64 * 7 / (3 * 16 * 16), rel=1e-15)   # 64 tokens of 128 codes, 16x16 RGB
    bpp = {m["model_id"]: m["bpp"] for m in env.models}
    for mid in MODELS:
        b = B.run_baseline(folder, mid)
        assert b.source == "token cache" and b.note == ""
        assert b.n_images == 360 and b.n_tokens == want["n"] == 360 * 64 and b.codes_seen == want["m"]
        assert b.unigram_bpp == pytest.approx(want["unigram_bpp"], rel=1e-12)
        assert b.unigram_bpp_mm == pytest.approx(want["unigram_bpp_mm"], rel=1e-12)
        assert b.raw_rate_bpp == pytest.approx(want["raw_rate_bpp"], rel=1e-15)
        assert b.ar_share == pytest.approx(1 - bpp[mid] / want["unigram_bpp"], rel=1e-12)
        assert bpp[mid] < b.unigram_bpp < b.raw_rate_bpp   # the AR context and the code's skew both save bits


def test_inspect_and_export_carry_the_baseline(env, micro_home, tmp_path):
    want = {mid: B.run_baseline(env.store_dir, mid) for mid in MODELS}
    r = runner.invoke(app, ["inspect", "micro-s", "micro-m", "--json"])
    assert r.exit_code == 0, r.output
    for m in json.loads(r.stdout)["models"]:
        w = want[m["model_id"]]
        assert (m["raw_rate_bpp"], m["unigram_bpp"], m["unigram_bpp_mm"], m["ar_share"]) == (
            w.raw_rate_bpp, w.unigram_bpp, w.unigram_bpp_mm, w.ar_share)
    r = runner.invoke(app, ["inspect", "micro-s"])
    assert "order-0 (unigram) baseline" in r.stdout and "AR share" in r.stdout
    out = tmp_path / "t.csv"
    r = runner.invoke(app, ["export", str(out), "--set", "micro"])
    assert r.exit_code == 0, r.output
    df = pd.read_csv(out).set_index("model_id")
    for mid in MODELS:
        assert df.loc[mid, "unigram_bpp"] == want[mid].unigram_bpp and df.loc[mid, "ar_share"] == want[mid].ar_share
    card = get_card("micro-l")   # not measured: the raw rate from its card, no baseline
    assert df.loc["micro-l", "raw_rate_bpp"] == pytest.approx(card.tokens_per_image * 7 / (3 * 16 * 16))
    assert np.isnan(df.loc["micro-l", "unigram_bpp"]) and np.isnan(df.loc["micro-l", "ar_share"])


def test_analyze_micro_json_and_text_have_every_topic(env):
    r = runner.invoke(app, ["analyze", "--set", "micro", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert {"forms", "scaling", "baseline", "pairs", "validity"} <= set(d)
    by = {m["model_id"]: m for m in d["baseline"]["models"]}
    assert by["micro-s"]["unigram_bpp"] == B.run_baseline(env.store_dir, "micro-s").unigram_bpp
    assert by["micro-xl"]["unigram_bpp"] is None and by["micro-xl"]["note"] == "no measured run: no token baseline"
    r = runner.invoke(app, ["analyze", "--set", "micro", "--no-plots"])
    for title in ("Functional form of micro-FID vs BPP", "Size scaling per group", "What the AR context buys",
                  "Same tokenizer, different AR model", "Predictive validity"):
        assert title in r.stdout


def test_no_baseline_over_part_of_the_images(env, micro_home, monkeypatch):
    folder = env.store_dir
    doc = R.load_document(os.path.join(folder, "results.json"))
    rows = [r for r in R.read_rows(folder) if r["model_id"] == "micro-s"]
    extra = dict(rows[0], image="0/not-encoded.png")   # an image the token cache never saw
    b = B.run_baseline(folder, "micro-s", doc=doc, rows=rows + [extra])
    assert b.unigram_bpp is None and b.ar_share is None and "1 of 361 images" in b.note
    assert b.raw_rate_bpp == pytest.approx(64 * 7 / 768)   # the card's rate is still known
    cfg = doc["config"]
    tok = os.path.join(micro_home, "tokens", cfg["token_cache"][cfg["tokenizer_keys"]["micro-s"]])
    os.rename(tok, tok + ".away")
    try:
        b = B.measured_baseline({"model_id": "micro-s", "bpp": 0.39, "path": os.path.join(folder, "results.json")})
        assert b.unigram_bpp is None and "is gone" in b.note
    finally:
        os.rename(tok + ".away", tok)
    assert B.measured_baseline({"model_id": "micro-s", "bpp": 0.39}).note == "the measurement names no run folder"


def test_unigram_bits_by_hand():
    plug, mm, m = B.unigram_bits(np.array([[3, 3, 5], [3, 7, 5]]))
    p = np.array([3, 2, 1]) / 6
    assert m == 3 and plug == pytest.approx(-6 * (p * np.log2(p)).sum(), rel=1e-15)
    assert mm == pytest.approx(plug + 2 / (2 * math.log(2)), rel=1e-15)
