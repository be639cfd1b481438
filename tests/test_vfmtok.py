"""VFMTok family: official-code conformance, the deformable attention, real-size manifests, cards,
loading rules, `visbpp run` end to end and `analyze --set all` with measured VFMTok BPPs."""

from __future__ import annotations

import argparse
import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
import torch
from PIL import Image
from typer.testing import CliRunner

from conformance_utils import FixtureSet, assert_nll_matches, fixture_sets, manifests, require
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.registry.cards.hita import BACKBONE as HITA_BACKBONE
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.registry.checkpoints import MissingCheckpointError, files_for
from visbpp.models import get_family
from visbpp.models.llamagen import center_crop_arr
from visbpp.models.llamagen.gpt import GPT
from visbpp.models.llamagen.preprocess import to_model_input
from visbpp.models.vfmtok import ConfigError, MSDeformAttn, reference_points
from visbpp.models.vfmtok.tokenizer import BACKBONE_PREFIX
from visbpp.tui.cli import app

FAM = get_family("vfmtok")
DINO_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth"
SIZES = ("b", "l", "xl", "xxl", "2b", "3b")
runner = CliRunner()


def _config(fs: FixtureSet) -> dict:
    return {**fs.config, "extra_files": {"backbone": str(fs.folder / "backbone.pt")}}


@lru_cache(maxsize=None)
def _loaded(folder: Path):
    fs = FixtureSet(folder)
    cfg = _config(fs)
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), cfg)
    gpt = FAM.load_transformer(str(fs.transformer_path), cfg, tok)
    x = torch.stack([to_model_input(a) for a in fs.images])
    labels = torch.from_numpy(fs.labels).long()
    return fs, tok, gpt, x, labels


def _fixture_folder() -> Path:
    return require(next((p.values[0] for p in fixture_sets("vfmtok") if p.values[0] is not None), None))


# --------------------------------------------------------------------------- conformance fixtures


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_conformance_preprocess(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert torch.equal(x, fs.expected["x"])
    raw = fs.folder / "preprocess_raw.npy"
    if raw.exists():
        img = Image.fromarray(np.load(raw))
        assert np.array_equal(center_crop_arr(img, fs.config["image_size"]), fs.images[0])
        assert torch.equal(tok.preprocess(img), fs.expected["x"][0])


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_conformance_dino_levels_carriers_tokens_recon(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    e = fs.expected
    assert tok.tokens_per_image == e["tokens"].shape[1] == fs.config.get("num_tokens", tok.tokens_per_image)
    with torch.inference_mode():
        levels = tok.dino_levels(x[:1])
        torch.testing.assert_close(torch.cat(levels), e["dino_levels0"], atol=1e-4, rtol=0)
        torch.testing.assert_close(tok.carriers(x), e["enc_out"], atol=1e-4, rtol=0)
        torch.testing.assert_close(tok.latents(x), e["slots_pre"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and torch.equal(tokens, e["tokens"])
    torch.testing.assert_close(tok.decode(e["tokens"]), e["recon"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_conformance_deformable_sampling_of_the_first_layer(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    e, enc = fs.expected, tok.encode_transformer
    grid = enc.cfg.grid
    assert [grid, grid] == fs.config.get("carrier_grid", [grid, grid]) and grid * grid == e["tokens"].shape[1]
    torch.testing.assert_close(reference_points(grid), e["reference_points"], atol=0, rtol=0)
    side = tok.cfg.dino_side // tok.cfg.vit.patch_size
    with torch.inference_mode():
        query = enc.norm_pre1(enc.carrier_tokens) + enc.slots_pos  # the same for every image
        loc, w = enc.transformer.layers[0].cross_attn.sampling(query, reference_points(grid), [(side, side)] * 4)
    torch.testing.assert_close(loc[0], e["msda_sampling_locations0"], atol=1e-5, rtol=0)
    torch.testing.assert_close(w[0], e["msda_attention_weights0"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_conformance_nll_logits_rope(folder):
    fs, _, gpt, _, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    assert torch.equal(fs.expected["order"], torch.arange(tokens.shape[1]))  # raster over the carrier grid
    assert_nll_matches(gpt.token_nll(tokens, labels), fs)
    with torch.inference_mode():
        torch.testing.assert_close(gpt(tokens[:1], labels[:1])[0], fs.expected["logits_first"], atol=1e-4, rtol=0)
    torch.testing.assert_close(gpt.freqs_cis(), fs.expected["freqs_cis"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_decoy_model_entries_are_never_used(folder, tmp_path):
    fs = _loaded(require(folder))[0]
    ck = torch.load(fs.transformer_path, weights_only=True)
    assert not torch.equal(ck["model"]["output.weight"], ck["ema"]["output.weight"])  # the fixture's decoy
    only_model = tmp_path / "model_only.pt"
    torch.save({"model": ck["model"], "steps": 1}, only_model)
    with pytest.raises(CheckpointError, match=r"model_only\.pt.*'ema'.*'module'.*'state_dict'"):
        FAM.load_transformer(str(only_model), fs.config)
    tk = torch.load(fs.tokenizer_path, weights_only=True)
    tok_model = tmp_path / "tok_model_only.pt"
    torch.save({"model": tk["ema"]}, tok_model)
    with pytest.raises(CheckpointError, match=r"tok_model_only\.pt.*'ema'"):
        FAM.load_tokenizer(str(tok_model), _config(fs))


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_gpt_containers_in_order_and_trainer_args_read_as_data(folder, tmp_path):
    fs, _, gpt, _, labels = _loaded(require(folder))
    ck = torch.load(fs.transformer_path, weights_only=True)
    tokens = fs.expected["tokens"]
    want = gpt.token_nll(tokens, labels)
    files = {
        "ema_over_module.pt": {"module": ck["model"], "ema": ck["ema"], "args": argparse.Namespace(gpt_model="GPT-B")},
        "module.pt": {"model": ck["model"], "module": ck["ema"]},
        "state_dict.pt": {"state_dict": ck["ema"]},
        "bare_with_rope.pt": {**ck["ema"], "freqs_cis": torch.zeros(3, 2)},
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name)
        assert torch.equal(FAM.load_transformer(str(tmp_path / name), fs.config).token_nll(tokens, labels), want), name


# --------------------------------------------------------------------------- the deformable attention itself


def _msda_by_hand(values, shapes, loc, w):
    """Float64 loops of the reference kernel's rule: pixel coordinates (x W - 0.5, y H - 0.5), a point
    only when -1 < h < H and -1 < w < W, each of its four neighbours only when inside the map."""
    B, _, H, Dh = values.shape
    _, Nq, _, L, P, _ = loc.shape
    out = torch.zeros(B, Nq, H, Dh, dtype=torch.float64)
    starts = np.cumsum([0] + [h * wd for h, wd in shapes])
    for b in range(B):
        for q in range(Nq):
            for m in range(H):
                for lv, (Hl, Wl) in enumerate(shapes):
                    vmap = values[b, starts[lv] : starts[lv + 1], m].view(Hl, Wl, Dh)
                    for p in range(P):
                        x, y = loc[b, q, m, lv, p].tolist()
                        hh, ww = y * Hl - 0.5, x * Wl - 0.5
                        if not (-1 < hh < Hl and -1 < ww < Wl):
                            continue
                        h0, w0 = math.floor(hh), math.floor(ww)
                        dh, dw = hh - h0, ww - w0
                        for yy, xx, f in ((h0, w0, (1 - dh) * (1 - dw)), (h0, w0 + 1, (1 - dh) * dw),
                                          (h0 + 1, w0, dh * (1 - dw)), (h0 + 1, w0 + 1, dh * dw)):
                            if 0 <= yy < Hl and 0 <= xx < Wl:
                                out[b, q, m] += w[b, q, m, lv, p] * f * vmap[yy, xx]
    return out.reshape(B, Nq, H * Dh)


def test_grid_sample_formulation_equals_the_kernel_rule():
    torch.manual_seed(0)
    dim, heads, points, shapes = 16, 2, 3, [(5, 5), (4, 6), (3, 3), (2, 7)]
    m = MSDeformAttn(dim, n_levels=4, n_heads=heads, n_points=points).double()
    with torch.no_grad():
        m.sampling_offsets.weight.normal_(0, 2.0)  # far-reaching offsets: many points leave their map
        m.attention_weights.weight.normal_(0, 1.0)
    q = torch.randn(2, 9, dim, dtype=torch.float64)
    ref = reference_points(3).double()
    values = torch.randn(2, sum(h * w for h, w in shapes), dim, dtype=torch.float64)
    with torch.no_grad():
        got = m(q, ref, values, shapes)
        loc, w = m.sampling(q, ref, shapes)
        v = m.value_proj(values).view(2, -1, heads, dim // heads)
        want = m.output_proj(_msda_by_hand(v, shapes, loc, w))
    outside = ((loc < -0.5) | (loc > 1.5)).any(-1).float().mean()
    assert outside > 0.05  # the zero-padding rule is exercised
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(w.sum((-1, -2)), torch.ones(2, 9, heads, dtype=torch.float64))  # joint softmax


def test_deformable_attention_never_spans_queries_times_pixels():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        biggest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor):
                    self.biggest = max(self.biggest, t.numel())
            return out

    dim, nq, side = 64, 256, 24
    m = MSDeformAttn(dim, n_levels=4, n_heads=8, n_points=4)
    shapes = [(side, side)] * 4
    q, values = torch.randn(1, nq, dim), torch.randn(1, 4 * side * side, dim)
    with torch.no_grad(), Largest() as mode:
        m(q, reference_points(16), values, shapes)
    assert 0 < mode.biggest < nq * 4 * side * side // 2  # one query x pixel table would be 589,824 values


# --------------------------------------------------------------------------- the backbone extra file


def test_missing_backbone_names_the_file_and_the_option():
    fs = FixtureSet(_fixture_folder())
    cfg = {k: v for k, v in fs.config.items() if k != "extra_files"}
    with pytest.raises(MissingCheckpointError) as ei:
        FAM.load_tokenizer(str(fs.tokenizer_path), cfg)
    msg = str(ei.value)
    assert "backbone" in msg and DINO_URL in msg and "--extra backbone=PATH" in msg


def test_backbone_loads_strictly(tmp_path):
    fs = FixtureSet(_fixture_folder())
    bb = torch.load(fs.folder / "backbone.pt", weights_only=True)
    bad = tmp_path / "no_registers.pt"
    torch.save({k: v for k, v in bb.items() if k != "register_tokens"}, bad)
    with pytest.raises(CheckpointError, match=r"no_registers\.pt.*missing.*register_tokens.*--extra backbone"):
        FAM.load_tokenizer(str(fs.tokenizer_path), {**fs.config, "extra_files": {"backbone": str(bad)}})
    with pytest.raises(CheckpointError, match="unexpected container|does not match"):  # the tokenizer file given
        FAM.load_tokenizer(str(fs.tokenizer_path), {**fs.config, "extra_files": {"backbone": str(fs.tokenizer_path)}})


def test_tokenizer_file_must_hold_every_official_key(tmp_path):
    fs = FixtureSet(_fixture_folder())
    tk = torch.load(fs.tokenizer_path, weights_only=True)["ema"]
    f = tmp_path / "no_head.pt"
    torch.save({"ema": {k: v for k, v in tk.items() if k != "decode_transformer.proj.weight"}}, f)
    with pytest.raises(CheckpointError, match=r"no_head\.pt.*missing.*decode_transformer\.proj\.weight"):
        FAM.load_tokenizer(str(f), _config(fs))


def test_the_backbone_is_hitas_file_and_a_job_resolves_it(tmp_path):
    from visbpp.models.jobs import job_for_card, tokenizer_key

    tcard = get_tokenizer_card("vfmtok-tokenizer")
    assert tcard.extra_files == (HITA_BACKBONE,) and HITA_BACKBONE.url == DINO_URL
    card = get_card("vfmtok-b")
    assert [f.role for f in files_for(card)] == ["transformer", "tokenizer", "backbone"]
    fs = FixtureSet(_fixture_folder())
    d = tmp_path / "ckpts"
    for f, src in ((card.files[0], fs.transformer_path), (tcard.file, fs.tokenizer_path)):
        (d / f.filename).parent.mkdir(parents=True, exist_ok=True)
        (d / f.filename).write_bytes(src.read_bytes())
    with pytest.raises(MissingCheckpointError, match=r"dinov2_vitl14_reg4_pretrain\.pth \(backbone\) not found"):
        job_for_card("vfmtok-b", str(d))
    (d / HITA_BACKBONE.filename).write_bytes((fs.folder / "backbone.pt").read_bytes())
    job = job_for_card("vfmtok-b", str(d))
    assert Path(job.checkpoints["backbone"]) == d / HITA_BACKBONE.filename
    # the backbone file is part of the token-cache key
    cfg, tok = FAM.config_for("vfmtok-b"), str(d / tcard.file.filename)
    other = tmp_path / "other.pth"
    torch.save({k: v + 1 for k, v in torch.load(fs.folder / "backbone.pt", weights_only=True).items()}, other)
    k1 = tokenizer_key("vfmtok", tok, cfg, {"backbone": job.checkpoints["backbone"]})
    assert k1 == job.tokenizer_key and k1 != tokenizer_key("vfmtok", tok, cfg, {"backbone": str(other)})


# --------------------------------------------------------------------------- real-size manifests


@pytest.mark.parametrize("manifest", manifests("vfmtok"))
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    if m["file"] == get_tokenizer_card("vfmtok-tokenizer").file.filename:
        tcard = get_tokenizer_card("vfmtok-tokenizer")
        with torch.device("meta"):
            module = FAM.build_tokenizer(FAM.config_for("vfmtok-b"))
        sd = {k: v for k, v in module.state_dict().items() if not k.startswith(BACKBONE_PREFIX)}
        assert {k: list(v.shape) for k, v in sd.items()} == m["state_dict"]
        n = sum(p.numel() for k, p in module.named_parameters() if not k.startswith(BACKBONE_PREFIX))
        assert n == m["params"] == tcard.params
        assert sum(v.numel() for v in sd.values()) == m["state_dict_numel"]
        enc = sum(p.numel() for k, p in module.encode_transformer.named_parameters() if not k.startswith("backbone."))
        needed = enc + sum(p.numel() for p in module.pre_slots_quant.parameters()) + module.slot_quantize.embedding.weight.numel()
        assert needed == m["params_needed_for_tokens"]
        bb = m["backbone"]
        assert bb["key_prefix"] == BACKBONE_PREFIX and bb["extra_file_name"] == "backbone"
        bsd = {k: list(v.shape) for k, v in module.backbone.state_dict().items()}
        want = bb["state_dict"] if isinstance(bb["state_dict"], dict) else None
        assert want is None or bsd == want
        assert len(bsd) == bb["num_keys"] and sum(p.numel() for p in module.backbone.parameters()) == bb["params"]
        assert tcard.file.container == m["container"] == "ema" and tcard.file.url == m["url"]
        assert module.image_size == m["image_size"] == 336 and module.tokens_per_image == m["num_tokens"] == 256
        assert tcard.code_dim == m["codebook"]["dim"] and tcard.codebook_size == m["codebook"]["size"]
    else:
        cards = [c for c in model_cards("vfmtok") if c.files[0].filename == m["file"]]
        assert len(cards) == 1, m["file"]
        card = cards[0]
        with torch.device("meta"):
            module = FAM.build_transformer(FAM.config_for(card.id))
        assert isinstance(module, GPT)  # LlamaGen's GPT, unchanged
        assert {k: list(v.shape) for k, v in module.state_dict().items()} == m["state_dict"]
        assert sum(p.numel() for p in module.parameters()) == m["params"] == card.params
        assert sum(v.numel() for v in module.state_dict().values()) == m["state_dict_numel"]
        assert card.files[0].url == m["url"] and card.files[0].container == m["container"] == "ema"
        assert module.tokens_per_image == m["num_tokens"] == card.tokens_per_image == 256
        c = m["config"]
        assert (card.arch["n_head"], module.cfg.head_dim, module.cfg.block_size) == (c["n_head"], c["head_dim"],
                                                                                      c["block_size"])


# --------------------------------------------------------------------------- cards


def test_cards_six_sizes_one_group_fids_with_and_without_guidance():
    from visbpp.core.analysis.table import choose_fid

    cards = model_cards("vfmtok")
    assert [c.id for c in cards] == [f"vfmtok-{s}" for s in SIZES]
    assert {fit_group(c) for c in cards} == {"VFMTok"}
    cfg = {"b": 3.43, "l": 2.76, "xl": 2.38, "xxl": 2.28, "2b": 2.27, "3b": 2.07}
    free = {"b": 3.09, "l": 2.15, "xl": 2.06, "xxl": 2.09, "2b": 2.20, "3b": 2.04}
    for s, c in zip(SIZES, cards):
        assert c.tokenizer_id == "vfmtok-tokenizer" and c.resolution == 336 and c.tokens_per_image == 256
        assert "3*336*336" in c.notes and type(c.arch) is dict and set(c.arch) == {"n_layer", "n_head", "dim"}
        assert choose_fid(c, "paper") is c.fid and c.fid.value == cfg[s] and c.fid.guidance == "cfg (scale not stated)"
        nog = choose_fid(c, "noguidance")
        assert nog.value == free[s] and nog.guidance == "none" and nog.origin == "readme" and "without CFG" in nog.source
        assert c.fid.eval_resolution == nog.eval_resolution == 256 and c.fid.source and nog.source
        assert c.rfid.value == 0.89 and "0.98" in c.rfid.source and "28fb34b" in c.rfid.source
    ((res, r),) = get_tokenizer_card("vfmtok-tokenizer").rfid
    assert res == 336 and r.value == 0.89 and r.guidance == "none" and r.eval_resolution == 256
    assert get_card("vfmtok-2b").arch == {"n_layer": 48, "n_head": 32, "dim": 1920}  # head_dim 60


def test_rar_generators_are_listed_as_not_supported():
    from visbpp.core.registry.cards import vfmtok as cards_module

    assert "VFMTok-RAR" in cards_module.__doc__ and "Not supported yet" in cards_module.__doc__
    assert cards_module.NOT_SUPPORTED in get_tokenizer_card("vfmtok-tokenizer").notes
    assert all(cards_module.NOT_SUPPORTED in c.notes for c in model_cards("vfmtok"))  # the TUI's detail pane
    assert not any("rar" in c.id for c in model_cards("vfmtok"))


def test_cli_models_lists_the_six():
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    for s in SIZES:
        assert f"vfmtok-{s}" in r.output
    assert "vfmtok-tokenizer" in r.output


# --------------------------------------------------------------------------- configs


def test_configs_parse_and_errors_name_the_file_and_field(tmp_path):
    from visbpp.models.jobs import job_from_config

    fs = FixtureSet(_fixture_folder())
    assert FAM.parse_config(fs.config, "config.json") is fs.config
    for s in SIZES:
        FAM.parse_config(FAM.config_for(f"vfmtok-{s}"), s)

    def bad(edit):
        cfg = json.loads(json.dumps(fs.config))
        edit(cfg)
        return cfg

    enc = lambda c: c["tokenizer"]["transformer_config"]["encoder_config"]["params"]  # noqa: E731
    nc = enc(fs.config)["n_carrier"]
    sq = (math.isqrt(nc) + 1) ** 2  # a square sequence length, not the carriers'
    cases = [
        (lambda c: enc(c).update(n_carriers=8), r"unknown key 'tokenizer\.transformer_config\.encoder_config\.params\.n_carriers'"),
        (lambda c: c["transformer"].update(n_layer=2.5), r"transformer\.n_layer must be an integer"),
        (lambda c: c["transformer"].update(model_type="t2i"), r"transformer\.model_type = 't2i' is not supported"),
        (lambda c: c["transformer"].update(block_size=sq), rf"block_size {sq} != the tokenizer's {nc} carrier"),
        (lambda c: c["transformer"].update(vocab_size=7), r"vocab_size 7 != tokenizer\.codebook_size"),
        (lambda c: enc(c).update(in_channels=7), r"in_channels 7 != tokenizer\.backbone\.embed_dim"),
        (lambda c: enc(c).update(dim=7), r"encoder_config\.params\.dim 7 != tokenizer\.z_channels"),
        (lambda c: c.update(dino_levels=[5, 11, 23, 23]), r"dino_levels \[5, 11, 23, 23\] must be three block indices"),
        (lambda c: c["tokenizer"].update(codebook_l2_norm=False), r"tokenizer\.codebook_l2_norm = False is not supported"),
        (lambda c: c["tokenizer"].pop("backbone"), r"lacks the section tokenizer\.'backbone'"),
    ]
    for edit, msg in cases:
        with pytest.raises(ConfigError, match=r"^my\.json: .*" + msg):
            FAM.parse_config(bad(edit), "my.json")
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(bad(cases[0][0])))
    with pytest.raises(ConfigError, match=rf"{path}: unknown key .*n_carriers"):
        job_from_config("vfmtok", str(path), str(fs.tokenizer_path), str(fs.transformer_path),
                        extras={"backbone": str(fs.folder / "backbone.pt")})


def test_interfaces_layout_and_null_class():
    fs, tok, gpt, _, labels = _loaded(_fixture_folder())
    from visbpp.core.interfaces import TokenLayout

    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok.family == gpt.family == "vfmtok" and tok.preprocess_id.startswith("vfmtok:") and "S64" in tok.preprocess_id
    g = tok.cfg.encoder.grid
    assert gpt.token_layout == TokenLayout("raster", (g, g)) and gpt.null_class == gpt.num_classes
    with torch.device("meta"):
        other = FAM.build_tokenizer({**FAM.config_for("vfmtok-b")})
    with pytest.raises(ConfigError, match="not the one of this config"):
        FAM.build_transformer(fs.config, other)


# --------------------------------------------------------------------------- front-ends


def _imagefolder(fs: FixtureSet, root: Path) -> list[str]:
    names = []
    for c in range(fs.config["transformer"]["num_classes"]):
        (root / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(root / rel)
        names.append(rel)
    return names


@pytest.mark.parametrize("folder", fixture_sets("vfmtok"))
def test_visbpp_run_end_to_end_equals_the_fixture_bits(folder, tmp_path, monkeypatch):
    from visbpp.core.store import results as R

    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    fs = FixtureSet(require(folder))
    names = _imagefolder(fs, tmp_path / "data")
    base = ["run", "--family", "vfmtok", "--config", str(fs.folder / "config.json"), "--tokenizer",
            str(fs.tokenizer_path), "--transformer", str(fs.transformer_path), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "out"), "--device", "cpu", "--batch-size", "3", "--quiet"]
    r = runner.invoke(app, base)  # without the backbone: refused before any work
    assert r.exit_code == 2 and "--extra backbone=PATH" in r.output and not (tmp_path / "out").exists()
    r = runner.invoke(app, [*base, "--extra", f"backbone={fs.folder / 'backbone.pt'}"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(tmp_path / "out"))}
    want = fs.expected["nll_bits"].double().tolist()
    S = fs.config["image_size"]
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fs.labels[i])
        assert abs(rows[rel]["bits"] - want[i]) <= 4e-5, (rel, rows[rel]["bits"], want[i])
        assert rows[rel]["bpp"] == pytest.approx(want[i] / (3 * S * S), abs=4e-5 / (3 * S * S))
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["complete"] and doc["config"]["checkpoints"][doc["models"][0]["model_id"]]["backbone"]["sha256"]


MEASURED = {"vfmtok-b": 0.01120, "vfmtok-l": 0.01085, "vfmtok-xl": 0.01071, "vfmtok-xxl": 0.01066,
            "vfmtok-2b": 0.01062, "vfmtok-3b": 0.01058}  # made-up measured BPPs
_PROTOCOL = {"preprocess": "paper", "subset": {"n_classes": 1000, "n_selected": 50000}, "n_images": 50000}


def test_analyze_set_all_noguidance_fits_the_vfmtok_group(monkeypatch, tmp_path):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    from visbpp.core.analysis import table

    monkeypatch.setattr(table, "measured_results",
                        lambda cache_dir=None, **kw: [{"model_id": k, "bpp": v, **_PROTOCOL} for k, v in MEASURED.items()])
    for fid, col in (("noguidance", "alt"), ("paper", "fid")):
        r = runner.invoke(app, ["analyze", "--set", "all", "--fid", fid, "--json"])
        assert r.exit_code == 0, r.output
        d = json.loads(r.stdout.strip().splitlines()[-1])
        (g,) = [g for g in d["groups"] if g["group"] == "VFMTok"]
        cards = [get_card(k) for k in MEASURED]
        pts = pd.DataFrame({"fid": [c.alt_fid[0].value if col == "alt" else c.fid.value for c in cards],
                            "bpp": list(MEASURED.values())})
        ref = smf.ols("fid ~ bpp", pts).fit()
        assert g["n"] == 6 and g["slope"] == pytest.approx(ref.params["bpp"], rel=1e-9)
        assert g["r2"] == pytest.approx(ref.rsquared, rel=1e-9)
