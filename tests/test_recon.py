"""--recon: PSNR and SSIM against hand-computed values and the official reconstructions of the fixtures."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, require
from test_run_cli import _imagefolder, _own_args
from visbpp.core.engine import recon as RC
from visbpp.tui.cli import app

runner = CliRunner()
C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def test_ssim_of_constant_images_is_the_closed_form():
    a, b = 100.0, 140.0
    x = torch.full((1, 3, 16, 16), a)
    y = torch.full((1, 3, 16, 16), b)
    want = (2 * a * b + C1) / (a * a + b * b + C1)   # variances and covariance are 0
    assert float(RC.ssim(x, y)[0]) == pytest.approx(want, rel=1e-12)
    assert float(RC.ssim(x, x)[0]) == pytest.approx(1.0, rel=1e-12)


def test_ssim_of_one_window_by_the_definition():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (11, 11))
    y = np.clip(x + rng.normal(0, 20, (11, 11)), 0, 255)
    w = np.array([[math.exp(-((i - 5) ** 2 + (j - 5) ** 2) / (2 * 1.5 ** 2)) for j in range(11)] for i in range(11)])
    w /= w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
    cxy = (w * (x - mx) * (y - my)).sum()
    want = (2 * mx * my + C1) * (2 * cxy + C2) / ((mx ** 2 + my ** 2 + C1) * (vx + vy + C2))
    got = RC.ssim(torch.tensor(x)[None, None], torch.tensor(y)[None, None])
    assert float(got[0]) == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError, match="at least 11x11"):
        RC.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_psnr_of_a_known_error():
    x = torch.full((2, 3, 4, 4), 50.0)
    assert RC.psnr(x, x + 5).tolist() == pytest.approx([10 * math.log10(255 ** 2 / 25)] * 2, rel=1e-12)


@pytest.mark.parametrize("family", ["llamagen", "ibq"])
def test_recon_values_match_the_official_reconstruction(family, tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
    names = _imagefolder(fx, tmp_path / "data", int(fx.config.get("num_classes", 10)))
    args = ["run", *_own_args(fx, family), "--data", str(tmp_path / "data"), "--device", "cpu",
            "--batch-size", "3", "--quiet", "--recon"]
    r = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    with open(tmp_path / "out" / "recon.csv") as f:
        got = {row["image"]: row for row in csv.DictReader(f)}
    # independent: the official decoder's output in the fixture, clamped, on [0, 255]
    x = (fx.expected["x"].double().clamp(-1, 1) + 1) * 127.5
    rec = (fx.expected["recon"].double().clamp(-1, 1) + 1) * 127.5
    want_psnr = 10 * torch.log10(255 ** 2 / ((x - rec) ** 2).mean((1, 2, 3)))
    want_ssim = RC.ssim(x, rec)
    for i, rel in enumerate(names):
        assert float(got[rel]["psnr"]) == pytest.approx(float(want_psnr[i]), abs=1e-3)
        assert float(got[rel]["ssim"]) == pytest.approx(float(want_ssim[i]), abs=1e-5)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    m = doc["models"][0]
    assert m["recon_n"] == len(names)
    assert m["recon_psnr"] == pytest.approx(float(np.mean([float(got[n]["psnr"]) for n in names])), rel=1e-12)
    # cached per tokenizer: another run on the same images (other --out, other batch size) decodes nothing
    seen = list((tmp_path / "home" / "tokens").rglob("recon-*.jsonl"))
    r2 = runner.invoke(app, [*args[:-4], "--batch-size", "2", "--quiet", "--recon", "--out", str(tmp_path / "o2")])
    assert r2.exit_code == 0, r2.output
    assert sorted((tmp_path / "home" / "tokens").rglob("recon-*.jsonl")) == sorted(seen)
    assert (tmp_path / "o2" / "recon.csv").read_text() == (tmp_path / "out" / "recon.csv").read_text()
