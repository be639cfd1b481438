"""The micro zoo: dataset, shipped weights, the real engine on the held-out split, the CLI, retraining."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from visbpp.core.engine.runner import RunSettings, run
from visbpp.core.registry import checkpoints as ck
from visbpp.core.registry.cards.micro import ZOO_DIR
from visbpp.core.registry.catalog import get_tokenizer_card, model_cards
from visbpp.models.jobs import job_for_card
from visbpp.models.micro import classifier as clf
from visbpp.models.micro.data import default_data_dir, split, write_imagefolder

MICRO = [c.id for c in model_cards("micro")]


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_split_is_deterministic_and_disjoint():
    tr, ytr = split("train")
    ho, yho = split("heldout")
    assert tr.shape == (1437, 16, 16, 3) and ho.shape == (360, 16, 16, 3)
    assert tr.dtype == np.uint8 and (tr[..., 0] == tr[..., 2]).all()
    assert sorted(set(yho.tolist())) == list(range(10))
    ho2, yho2 = split("heldout")
    assert np.array_equal(ho, ho2) and np.array_equal(yho, yho2)
    # held-out images are not training images
    trs = {im.tobytes() for im in tr}
    assert sum(im.tobytes() in trs for im in ho) < 5  # the digits set has a few exact duplicates
    with pytest.raises(ValueError, match="unknown split"):
        split("test")


def test_imagefolder_roundtrip(tmp_path):
    root = write_imagefolder(tmp_path / "d")
    files = sorted(root.rglob("*.png"))
    assert len(files) == 360 and {p.parent.name for p in files} == {str(i) for i in range(10)}


def test_registry_lists_four_sizes_spanning_10x_params():
    cards = model_cards("micro")
    assert [c.id for c in cards] == ["micro-s", "micro-m", "micro-l", "micro-xl"]
    params = [c.params for c in cards]
    assert params == sorted(params) and params[-1] / params[0] >= 10
    for c in cards:
        assert "micro-FID" in c.fid.protocol and "FID" not in c.family_label
        assert c.group and not c.in_published_table


def test_shipped_files_match_registry_sha256_and_size_budget(home):
    total = 0
    files = {f.filename: f for c in model_cards("micro") for f in ck.files_for(c)}
    assert len(files) == 5
    for f in files.values():
        assert f.source_kind == "bundled" and f.sha256
        p = ck.locate(f)
        assert p is not None
        assert ck.verify(f, p) == f.sha256
        total += p.stat().st_size
    total += (ZOO_DIR / "micro_classifier.safetensors").stat().st_size
    assert total <= 5 * 2**20


def test_classifier_is_good_enough_for_micro_fid():
    net = clf.load_bundled()
    ho, yho = split("heldout")
    assert clf.accuracy(net, ho, yho) >= 0.95


@pytest.fixture(scope="module")
def micro_home(tmp_path_factory):
    """One VISBPP_HOME for the module's scoring tests: the zoo is scored once (see ``scored``)."""
    with pytest.MonkeyPatch.context() as mp:
        h = tmp_path_factory.mktemp("micro") / "home"
        mp.setenv("VISBPP_HOME", str(h))
        yield h


@pytest.fixture(scope="module")
def scored(micro_home):
    """The four micro models scored by the engine on the held-out split, once per module."""
    jobs = [job_for_card(i) for i in MICRO]
    return run(jobs, RunSettings(data=str(default_data_dir()), batch_size=64, device="cpu"))


def test_engine_reproduces_registry_bpp_and_bigger_is_better(scored):
    res = scored
    bpp = {m["model_id"]: m["bpp"] for m in res.models}
    for c in model_cards("micro"):
        assert bpp[c.id] == pytest.approx(c.reference_bpp, abs=2e-6)
    assert [bpp[i] for i in MICRO] == sorted((bpp[i] for i in MICRO), reverse=True)
    assert all(m["n_images"] == 360 for m in res.models)
    # the reference is the zoo's own held-out measurement, never the paper's table
    src = res.metadata["reference_bpp_source"]
    assert src.startswith("shipped held-out BPP of the micro zoo") and "Compression of Visual Tokens" not in src


def test_cli_run_equals_engine_api(scored, micro_home, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    monkeypatch.setenv("VISBPP_HOME", str(micro_home))  # the module's token cache: no re-encoding
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run", "--model", "micro-s", "--model", "micro-m", "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    assert not r.output.count("already finished")  # a different job set: really scored by the CLI
    api = {m["model_id"]: m for m in scored.models}
    with open(out / "summary.csv") as fh:
        rows = {row["model_id"]: row for row in csv.DictReader(fh)}
    for mid in ("micro-s", "micro-m"):
        assert float(rows[mid]["bpp"]) == pytest.approx(api[mid]["bpp"], rel=1e-9)
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["dtype"] == "fp32"


def test_tokenizer_card_has_micro_rfid():
    t = get_tokenizer_card("micro-vq")
    (res, rfid), = t.rfid
    assert res == 16 and "micro-FID" in rfid.protocol and rfid.value > 0


@pytest.mark.slow
def test_training_with_the_same_seed_reproduces_the_shipped_bpp(tmp_path):
    from visbpp.models.micro.train import TrainSettings, train_zoo

    shipped = json.loads((ZOO_DIR / "zoo.json").read_text())
    meta = train_zoo(tmp_path / "zoo", TrainSettings(**shipped["settings"]), log=lambda m: None)
    for mid, m in shipped["models"].items():
        assert meta["models"][mid]["heldout_bpp"] == pytest.approx(m["heldout_bpp"], abs=1e-3)


def test_analysis_fits_micro_fid_against_bpp_like_any_family():
    import statsmodels.formula.api as smf
    from typer.testing import CliRunner

    from visbpp.core.analysis.table import merged_table
    from visbpp.tui.cli import app

    r = CliRunner().invoke(app, ["analyze", "--set", "micro", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    (g,) = doc["groups"]
    cards = model_cards("micro")
    import pandas as pd

    df = pd.DataFrame({"fid": [c.fid.value for c in cards], "bpp": [c.reference_bpp for c in cards]})
    fit = smf.ols("fid ~ bpp", data=df).fit()
    assert g["group"] == "Micro (digits 16px)" and g["n"] == 4
    assert g["slope"] == pytest.approx(fit.params["bpp"], rel=1e-9)
    assert g["r2"] == pytest.approx(fit.rsquared, rel=1e-9)
    # the micro zoo never enters the ImageNet sets, measured or not
    measured = [{"model_id": c.id, "bpp": c.reference_bpp, "n_images": 360} for c in cards]
    assert not merged_table(measured, "all")["model_id"].str.startswith("micro").any()
    assert len(merged_table(None, "published")) == 14


def test_zoo_data_command_writes_the_split(tmp_path):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    r = CliRunner().invoke(app, ["zoo", "data", str(tmp_path / "d"), "--split", "train"])
    assert r.exit_code == 0, r.output
    assert len(list((tmp_path / "d").rglob("*.png"))) == 1437
    r = CliRunner().invoke(app, ["zoo", "data", str(tmp_path / "e"), "--split", "test"])
    assert r.exit_code == 2 and "--split must be heldout or train" in r.output


@pytest.mark.slow
def test_zoo_train_cli_writes_to_the_cache_not_the_shipped_files(tmp_path):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    before = {p.name: p.read_bytes() for p in ZOO_DIR.iterdir()}
    r = CliRunner().invoke(app, ["zoo", "train", "--tokenizer-steps", "3", "--gpt-steps", "3"])
    assert r.exit_code == 0, r.output
    meta = json.loads(r.stdout[r.stdout.index("{"):])
    assert set(meta["models"]) == set(MICRO)
    assert {p.name: p.read_bytes() for p in ZOO_DIR.iterdir()} == before
