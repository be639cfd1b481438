"""`visbpp run` end to end on the official-code conformance fixtures, and its error paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, require
from visbpp.core.store import results as R
from visbpp.tui.cli import app

FAMILIES = ("llamagen", "var", "rqtransformer", "taming", "openmagvit2", "ibq", "gigatok")
runner = CliRunner()


def _imagefolder(fx: FixtureSet, root: Path, nclass: int) -> list[str]:
    names = []
    for c in range(nclass):
        (root / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
    for i, (a, lab) in enumerate(zip(fx.images, fx.labels)):
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(root / rel)
        names.append(rel)
    return names


def _own_args(fx: FixtureSet, family: str) -> list[str]:
    return ["--family", family, "--config", str(fx.folder / "config.json"), "--tokenizer", str(fx.tokenizer_path),
            "--transformer", str(fx.transformer_path)]


def _rows(out: Path) -> dict[str, dict]:
    return {r["image"]: r for r in R.read_rows(str(out))}


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))


def _preprocessed(family: str, fx: FixtureSet) -> torch.Tensor:
    from visbpp.models import get_family

    tok = get_family(family).load_tokenizer(str(fx.tokenizer_path), fx.config)
    return torch.stack([tok.preprocess(Image.fromarray(a)) for a in fx.images])


# Families whose preprocessing resizes even a pre-sized image (VAR: short side to 1.125 S, then crop),
# so the fixture images cannot go through an image folder unchanged; the test below checks that claim.
RESIZING_FAMILIES = ("var",)


def test_resizing_families_really_change_pre_sized_images():
    for family in RESIZING_FAMILIES:
        fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
        x = _preprocessed(family, fx)
        assert x.shape != fx.expected["x"].shape or not torch.allclose(x, fx.expected["x"], atol=1e-6)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f not in RESIZING_FAMILIES])
def test_end_to_end_bits_equal_fixture(family, tmp_path):
    fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
    assert torch.allclose(_preprocessed(family, fx), fx.expected["x"], atol=1e-6)
    names = _imagefolder(fx, tmp_path / "data", int(fx.config.get("num_classes", 10)))
    r = runner.invoke(app, ["run", *_own_args(fx, family), "--data", str(tmp_path / "data"),
                            "--out", str(tmp_path / "out"), "--device", "cpu", "--batch-size", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    rows = _rows(tmp_path / "out")
    want = fx.expected["nll_bits"].double().tolist()
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fx.labels[i])
        assert abs(rows[rel]["bits"] - want[i]) <= 2e-3, (rel, rows[rel]["bits"], want[i])
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["complete"] and doc["models"][0]["n_images"] == len(names)
    assert doc["config"]["checkpoints"][doc["models"][0]["model_id"]]["tokenizer"]["sha256"]


@pytest.fixture
def llamagen(tmp_path):
    fx = FixtureSet(require(fixture_sets("llamagen")[0].values[0]))
    names = _imagefolder(fx, tmp_path / "data", 10)
    return fx, names


def test_flat_layout_same_bits_and_subsets(llamagen, tmp_path):
    fx, names = llamagen
    flat = tmp_path / "flat"
    flat.mkdir()
    rows = ["ImageId,PredictionString"]
    for c in range(10):  # every synset occurs in the CSV, as in the real one
        rows.append(f"ILSVRC2012_val_9{c:07d},n{c:08d} 1 2 3 4")
    for i, (a, lab) in enumerate(zip(fx.images, fx.labels)):
        Image.fromarray(a).save(flat / f"ILSVRC2012_val_{i:08d}.png")
        rows.append(f"ILSVRC2012_val_{i:08d},n{int(lab):08d} 0 0 5 5 n00000001 1 1 2 2")
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    args = _own_args(fx, "llamagen") + ["--device", "cpu", "--quiet"]
    r = runner.invoke(app, ["run", *args, "--data", str(flat), "--labels-csv", str(tmp_path / "LOC_val_solution.csv"),
                            "--out", str(tmp_path / "o1")])
    assert r.exit_code == 0, r.output
    got = _rows(tmp_path / "o1")
    want = fx.expected["nll_bits"].double().tolist()
    for i in range(len(names)):
        row = got[f"ILSVRC2012_val_{i:08d}.png"]
        assert row["label"] == int(fx.labels[i]) and abs(row["bits"] - want[i]) <= 2e-3
    # --limit / --per-class on the ImageFolder (labels 3, 7, 0, 9: one image per class)
    r = runner.invoke(app, ["run", *args, "--data", str(tmp_path / "data"), "--limit", "2", "--out", str(tmp_path / "o2")])
    assert r.exit_code == 0, r.output
    order = sorted(names)
    assert list(_rows(tmp_path / "o2")) == order[:2]
    doc = json.loads((tmp_path / "o2" / "results.json").read_text())
    assert doc["config"]["subset"]["limit"] == 2 and doc["models"][0]["n_images"] == 2
    extra = tmp_path / "data" / "class000" / "zz_extra.png"
    Image.fromarray(fx.images[1]).save(extra)
    r = runner.invoke(app, ["run", *args, "--data", str(tmp_path / "data"), "--per-class", "1", "--out", str(tmp_path / "o3")])
    assert r.exit_code == 0, r.output
    assert sorted(_rows(tmp_path / "o3")) == order  # zz_extra.png is the second of class000: not selected
    assert json.loads((tmp_path / "o3" / "results.json").read_text())["config"]["subset"]["per_class"] == 1


def test_bad_images_skipped_and_listed(llamagen, tmp_path):
    fx, names = llamagen
    d = tmp_path / "data" / "class003"
    (d / "empty.png").write_bytes(b"")
    (d / "readme.txt").write_text("hello")
    raw = (tmp_path / "data" / names[0]).read_bytes()
    (d / "trunc.png").write_bytes(raw[: len(raw) // 2])
    Image.fromarray(fx.images[2]).convert("L").save(d / "gray.png")
    Image.fromarray(fx.images[2]).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(fx.images[2]).convert("P").save(d / "pal.png")
    Image.fromarray(np.dstack([fx.images[2], np.full((64, 64), 128, np.uint8)]), "RGBA").save(d / "rgba.png")
    Image.fromarray(fx.images[2][..., 0].astype(np.uint16) * 257).save(d / "g16.png")
    Image.fromarray(fx.images[2][:20, :30]).save(d / "small.png")  # smaller than the crop: resized by the family
    r = runner.invoke(app, ["run", *_own_args(fx, "llamagen"), "--data", str(tmp_path / "data"), "--device", "cpu",
                            "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    reasons = {s["image"]: s["reason"] for s in doc["skipped"]}
    assert reasons["class003/empty.png"] == "empty file"
    assert reasons["class003/readme.txt"].startswith("not an image")
    assert reasons["class003/trunc.png"].startswith("truncated or corrupt")
    assert len(reasons) == 3
    rows = _rows(tmp_path / "out")
    assert len(rows) == len(names) + 6 and doc["models"][0]["n_images"] == len(rows)
    assert doc["models"][0]["images_skipped"] == 3
    assert "skipped class003/empty.png: empty file" in r.output
    # grayscale image: same bits as the RGB image with equal channels scored directly
    from visbpp.models import get_family

    fam = get_family("llamagen")
    tok = fam.load_tokenizer(str(fx.tokenizer_path), fx.config)
    ar = fam.load_transformer(str(fx.transformer_path), fx.config, tok)
    g = np.asarray(Image.fromarray(fx.images[2]).convert("L"))
    with torch.inference_mode():
        t = tok.encode(tok.preprocess(Image.fromarray(np.dstack([g] * 3)))[None])
        bits = float(ar.token_nll(t, torch.tensor([3])).double().sum() / np.log(2))
    assert rows["class003/gray.png"]["bits"] == pytest.approx(bits, abs=1e-6)


def test_missing_and_corrupt_checkpoints(llamagen, tmp_path):
    fx, _ = llamagen
    r = runner.invoke(app, ["run", "--model", "llamagen-b-256", "--data", str(tmp_path / "data"),
                            "--checkpoint-dir", str(tmp_path / "ckpts")])
    assert r.exit_code == 2
    assert "c2i_B_256.pt" in r.output and str(tmp_path / "ckpts") in r.output and "visbpp fetch" in r.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(fx.transformer_path.read_bytes()[:5000])
    args = _own_args(fx, "llamagen")
    args[args.index("--transformer") + 1] = str(bad)
    r = runner.invoke(app, ["run", *args, "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
                            "--device", "cpu"])
    assert r.exit_code == 2 and str(bad) in r.output, r.output
    assert not (tmp_path / "out").exists() and not R.measured_results()
    assert not (tmp_path / "home" / "runs").exists() and not (tmp_path / "home" / "tokens").exists()


@pytest.mark.slow
def test_torchrun_cli_two_processes(llamagen, tmp_path):
    fx, names = llamagen
    args = _own_args(fx, "llamagen") + ["--data", str(tmp_path / "data"), "--device", "cpu", "--batch-size", "1",
                                        "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1", VISBPP_HOME=str(tmp_path / "h2"))
    torchrun = str(Path(sys.executable).parent / "torchrun")
    p = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29533", "-m", "visbpp.tui", "run", *args,
                        "--out", str(tmp_path / "o2")], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, [ln for ln in p.stderr.splitlines() if ln.startswith("error")] or p.stderr[-2000:]
    r = runner.invoke(app, ["run", *args, "--out", str(tmp_path / "o1")])
    assert r.exit_code == 0, r.output
    a, b = R.read_rows(str(tmp_path / "o2")), R.read_rows(str(tmp_path / "o1"))
    assert len(a) == len(names) and a == b


def test_bf16_run_recorded_and_close(llamagen, tmp_path):
    fx, names = llamagen
    r = runner.invoke(app, ["run", *_own_args(fx, "llamagen"), "--data", str(tmp_path / "data"), "--device", "cpu",
                            "--dtype", "bf16", "--quiet", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["config"]["dtype"] == "bf16" and doc["models"][0]["dtype"] == "bf16"
    rows = _rows(tmp_path / "out")
    want = fx.expected["nll_bits"].double().tolist()
    for i, rel in enumerate(names):
        assert rows[rel]["bits"] == pytest.approx(want[i], rel=0.02)
    r = runner.invoke(app, ["run", *_own_args(fx, "llamagen"), "--data", str(tmp_path / "data"), "--dtype", "fp16"])
    assert r.exit_code == 2 and "--dtype" in r.output


def test_data_required_for_families_without_shipped_data(llamagen):
    fx, _ = llamagen
    r = runner.invoke(app, ["run", *_own_args(fx, "llamagen")])
    assert r.exit_code == 2 and "--data DIR is required" in r.output
    r = runner.invoke(app, ["run", "--data", "x"])
    assert r.exit_code == 2 and "--model ID" in r.output


def test_hita_end_to_end_with_extra_backbone(tmp_path):
    fx = FixtureSet(require(fixture_sets("hita")[0].values[0]))
    names = _imagefolder(fx, tmp_path / "data", int(fx.config.get("num_classes", 10)))
    base = ["run", *_own_args(fx, "hita"), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--device", "cpu", "--batch-size", "3", "--quiet"]
    r = runner.invoke(app, base)  # without the backbone: refused before any work, naming the file and the option
    assert r.exit_code == 2
    assert "backbone" in r.output and "dinov2_vitl14_reg4_pretrain.pth" in r.output and "--extra backbone=PATH" in r.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "home" / "tokens").exists()
    r = runner.invoke(app, [*base, "--extra", "dino=x.pt"])
    assert r.exit_code == 2 and "no extra file 'dino'" in r.output
    r = runner.invoke(app, [*base, "--extra", f"backbone={fx.folder / 'backbone.pt'}"])
    assert r.exit_code == 0, r.output
    rows = _rows(tmp_path / "out")
    want = fx.expected["nll_bits"].double().tolist()
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fx.labels[i])
        assert abs(rows[rel]["bits"] - want[i]) <= 4e-5, (rel, rows[rel]["bits"], want[i])
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    ckpts = doc["config"]["checkpoints"][doc["models"][0]["model_id"]]
    assert doc["complete"] and ckpts["backbone"]["sha256"]


def test_extra_needs_own_checkpoints(llamagen, tmp_path):
    r = runner.invoke(app, ["run", "--model", "llamagen-b-256", "--data", str(tmp_path / "data"), "--extra", "a=b"])
    assert r.exit_code == 2 and "--extra is for your own checkpoints" in r.output
