"""`--preprocess paper`: the published table's pipeline, checked against PIL and hand-computed values,
end to end on the official-code conformance models, and kept apart from the official protocol."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, require
from visbpp.core.engine import data as D
from visbpp.core.engine import preprocessing as PP
from visbpp.core.store import results as R
from visbpp.tui.cli import app

runner = CliRunner()
LN2 = math.log(2)
PAPER_FAMILIES = ("llamagen", "var", "rqtransformer", "taming")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))


def reference_tensor(path: Path, size: int) -> torch.Tensor:
    """The paper's transform written out independently: PIL open + convert("RGB"), PIL bicubic resize of
    the whole image to size x size, uint8 / 255 in float32, (x - 0.5) / 0.5."""
    with open(path, "rb") as f:
        im = Image.open(f).convert("RGB")
    im = im.resize((size, size), Image.BICUBIC)
    a = np.asarray(im, dtype=np.float32) / np.float32(255.0)
    a = (a - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _odd_images(folder: Path, base: np.ndarray) -> list[Path]:
    """The same picture in odd sizes and modes: RGB, RGBA, L, P, CMYK (JPEG), I;16."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(base)
    out = []

    def save(img, name):
        p = folder / name
        img.save(p)
        out.append(p)

    save(rgb.resize((77, 51), Image.NEAREST), "rgb.png")
    alpha = Image.fromarray(np.linspace(0, 255, 40 * 93, dtype=np.uint8).reshape(40, 93))
    rgba = rgb.resize((93, 40), Image.NEAREST).convert("RGBA")
    rgba.putalpha(alpha)
    save(rgba, "rgba.png")
    save(rgb.resize((31, 67), Image.NEAREST).convert("L"), "gray.png")
    save(rgb.resize((45, 29), Image.NEAREST).convert("P"), "pal.png")
    save(rgb.resize((81, 47), Image.NEAREST).convert("CMYK"), "cmyk.jpg")
    g16 = np.asarray(rgb.resize((33, 70), Image.NEAREST).convert("L"), dtype=np.uint16) * 300
    save(Image.fromarray(g16), "g16.png")
    return out


def test_paper_transform_equals_pil_bicubic_on_odd_sizes_and_modes(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    paths = _odd_images(tmp_path / "raw", base)
    assert {Image.open(p).mode for p in paths} == {"RGB", "RGBA", "L", "P", "CMYK", "I;16"}
    for size in (16, 64, 100):
        for p in paths:
            x = PP.paper_transform(PP.load_image_plain(str(p)), size)
            want = reference_tensor(p, size)
            assert x.dtype == torch.float32 and x.shape == (3, size, size)
            assert torch.equal(x, want), (p.name, size, (x - want).abs().max())
    # 16-bit gray: PIL's own conversion (clipped at 255), as the engine's decoder does too
    g16 = tmp_path / "raw" / "g16.png"
    plain = PP.paper_transform(PP.load_image_plain(str(g16)), 16)
    assert torch.equal(plain, PP.paper_transform(D.load_image(str(g16)), 16))
    assert (plain == 1.0).float().mean() > 0.5  # most of the 16-bit values clip to white


def test_paper_transform_hand_computed():
    # a constant picture stays constant under any resize: (v / 255 - 0.5) / 0.5
    img = Image.new("RGB", (7, 3), (0, 51, 255))
    x = PP.paper_transform(img, 5)
    assert x.shape == (3, 5, 5)
    assert torch.equal(x[0], torch.full((5, 5), -1.0)) and torch.equal(x[2], torch.full((5, 5), 1.0))
    assert abs(float(x[1, 0, 0]) - (51 / 255 - 0.5) / 0.5) < 1e-7
    # an image already S x S is not resampled: pixel values map one to one
    a = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    x = PP.paper_transform(Image.fromarray(a), 4)
    assert torch.allclose(x, torch.from_numpy((a.astype(np.float64) / 255 - 0.5) / 0.5).permute(2, 0, 1).float(),
                          atol=1e-7)
    # the whole image, aspect ratio not kept: a 2:1 picture whose left half is black, right half white,
    # keeps its halves after resizing to a square (no centre crop)
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, 20:] = 255
    x = PP.paper_transform(Image.fromarray(a), 10)
    assert torch.equal(x[:, :, 0], torch.full((3, 10), -1.0)) and torch.equal(x[:, :, -1], torch.full((3, 10), 1.0))


def test_preprocessing_choice_errors():
    with pytest.raises(PP.PreprocessingError, match="official, paper"):
        PP.check("bogus")
    r = runner.invoke(app, ["run", "--model", "micro-s", "--preprocess", "bogus"])
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bogus" in lines[0] and "official" in lines[0] and "paper" in lines[0]


def _paper_folder(fx: FixtureSet, root: Path, nclass: int) -> list[tuple[str, Path, int]]:
    """An ImageFolder with synset-like class folders holding odd-sized, odd-mode versions of the fixture images."""
    for c in range(nclass):
        (root / f"n{c:08d}").mkdir(parents=True, exist_ok=True)
    out = []
    modes = ("RGB", "RGBA", "L", "P", "CMYK")
    for i, (a, lab) in enumerate(zip(fx.images, fx.labels)):
        h, w = a.shape[:2]
        img = Image.fromarray(a).resize((w + 11 + 3 * i, max(8, h - 5 + 2 * i)), Image.NEAREST).convert(modes[i % 5])
        ext = "jpg" if img.mode == "CMYK" else "png"
        rel = f"n{int(lab):08d}/img{i}.{ext}"
        img.save(root / rel)
        out.append((rel, root / rel, int(lab)))
    return out


def _own_args(fx: FixtureSet, family: str) -> list[str]:
    return ["--family", family, "--config", str(fx.folder / "config.json"), "--tokenizer", str(fx.tokenizer_path),
            "--transformer", str(fx.transformer_path)]


def _expected_bits(family: str, fx: FixtureSet, items) -> list[float]:
    """The paper's recipe: its transform on each file, then the family's encode and teacher-forced NLL."""
    from visbpp.models import get_family

    fam = get_family(family)
    tok = fam.load_tokenizer(str(fx.tokenizer_path), fx.config)
    model = fam.load_transformer(str(fx.transformer_path), fx.config, tok)
    x = torch.stack([reference_tensor(p, int(tok.image_size)) for _, p, _ in items])
    labels = torch.tensor([lab for _, _, lab in items], dtype=torch.long)
    with torch.inference_mode():
        nll = model.token_nll(tok.encode(x), labels)
    return (nll.double().sum(-1) / LN2).tolist()


@pytest.mark.parametrize("family", PAPER_FAMILIES)
def test_run_preprocess_paper_equals_paper_recipe(family, tmp_path):
    fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
    items = _paper_folder(fx, tmp_path / "data", int(fx.config.get("num_classes", 10)))
    out = tmp_path / "out"
    r = runner.invoke(app, ["run", *_own_args(fx, family), "--data", str(tmp_path / "data"), "--out", str(out),
                            "--device", "cpu", "--batch-size", "3", "--quiet", "--preprocess", "paper"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(out))}
    want = _expected_bits(family, fx, items)
    for (rel, _, lab), w in zip(items, want):
        assert rows[rel]["label"] == lab
        assert abs(rows[rel]["bits"] - w) <= 1e-3, (family, rel, rows[rel]["bits"], w)
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["preprocess"] == "paper" and doc["models"][0]["preprocess"] == "paper"
    assert all(v.startswith("paper:") for v in doc["config"]["preprocess_ids"].values())
    assert doc["config"]["reference_bpp_source"] is None  # own checkpoints: no registry reference BPP
    with open(out / "summary.csv", newline="") as f:
        assert next(csv.DictReader(f))["preprocess"] == "paper"


def test_protocols_never_share_run_or_tokens(tmp_path):
    fx = FixtureSet(require(fixture_sets("llamagen")[0].values[0]))
    items = _paper_folder(fx, tmp_path / "data", 10)
    docs = {}
    for pp in ("official", "paper"):
        out = tmp_path / pp
        r = runner.invoke(app, ["run", *_own_args(fx, "llamagen"), "--data", str(tmp_path / "data"), "--out",
                                str(out), "--device", "cpu", "--quiet", "--preprocess", pp])
        assert r.exit_code == 0, r.output
        docs[pp] = (json.loads((out / "results.json").read_text()), {x["image"]: x for x in R.read_rows(str(out))})
    (do, ro), (dp, rp) = docs["official"], docs["paper"]
    assert do["run_id"] != dp["run_id"]
    assert set(do["config"]["token_cache"].values()).isdisjoint(dp["config"]["token_cache"].values())
    assert do["config"]["preprocess"] == "official" and do["models"][0]["preprocess"] == "official"
    assert any(abs(ro[rel]["bits"] - rp[rel]["bits"]) > 1e-3 for rel, _, _ in items)
    # the results store keeps both; each can be asked for by protocol
    home = str(tmp_path / "home")
    assert {m["preprocess"] for m in R.measured_results(home, preprocess="paper")} == {"paper"}
    assert R.measured_results(home, preprocess="paper")[0]["run_id"] == dp["run_id"]
    assert R.measured_results(home, preprocess="official")[0]["run_id"] == do["run_id"]


def test_tui_run_settings_carry_the_protocol(tmp_path):
    from visbpp.tui import settings as st

    ui = st.UISettings(data_dir=str(tmp_path), preprocess="paper")
    assert st.to_run_settings(ui).preprocess == "paper"
    assert st.to_run_settings(st.UISettings(data_dir=str(tmp_path))).preprocess == "official"
    with pytest.raises(st.SettingsError, match="official, paper"):
        st.to_run_settings(ui.updated(preprocess="bogus"))
    p = tmp_path / "s.json"
    st.save_settings(ui, p)
    assert st.load_settings(p)[0].preprocess == "paper"
    p.write_text(json.dumps({"preprocess": "bogus"}))
    assert st.load_settings(p)[0].preprocess == "official"
