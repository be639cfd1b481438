"""FlexVAR family: official-code conformance (every schedule and input variant of a set), manifests
of the real files, cards, loading rules, the schedule as part of the identity, CLI end to end."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, manifests, require
from visbpp.core.engine.run_identity import identity, run_id
from visbpp.core.engine.run_types import RunSettings
from visbpp.core.errors import ConfigError
from visbpp.core.interfaces import ARModel, ImageTokenizer
from visbpp.core.registry.cards.flexvar import SCHEDULES
from visbpp.core.registry.catalog import fit_group, get_tokenizer_card, model_cards, tokenizer_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.store import results as R
from visbpp.models import get_family, jobs
from visbpp.models.flexvar.official import DEFAULT_SCHEDULE, scale_schedule, token_config
from visbpp.models.llamagen.preprocess import to_model_input
from visbpp.tui.cli import app

FAM = get_family("flexvar")
runner = CliRunner()


def _variants(fs: FixtureSet) -> dict[str, tuple[dict, np.ndarray]]:
    """Suffix of the expected tensors -> (config, uint8 images): the set's default schedule, its
    alternative schedule and its 2x input, as far as the set has them."""
    cfg, e = fs.config, fs.expected
    out = {"": (cfg, fs.images)}
    if "scale_schedule_alt" in cfg and "tokens_alt" in e:
        out["_alt"] = ({**cfg, "scale_schedule": cfg["scale_schedule_alt"]}, fs.images)
    if "image_size_2x" in cfg and "tokens_2x" in e:
        out["_2x"] = ({**cfg, "image_size": cfg["image_size_2x"]}, np.load(fs.folder / "images_2x.npy"))
    return out


@lru_cache(maxsize=None)
def _loaded(folder: Path, variant: str = ""):
    fs = FixtureSet(folder)
    cfg, images = _variants(fs)[variant]
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), cfg)
    ar = FAM.load_transformer(str(fs.transformer_path), cfg, tok)
    x = torch.stack([to_model_input(a) for a in images])
    return fs, tok, ar, x, torch.from_numpy(fs.labels).long()


def _variant_params():
    out = []
    for p in fixture_sets("flexvar"):
        folder = p.values[0]
        names = [""] if folder is None else list(_variants(FixtureSet(folder)))
        out += [pytest.param(folder, v, id=f"{p.id}{v or '_default'}") for v in names]
    return out


# --------------------------------------------------------------------------- conformance fixtures


@pytest.mark.parametrize("folder,variant", _variant_params())
def test_conformance_tokens_nll_scales(folder, variant):
    fs, tok, ar, x, labels = _loaded(require(folder), variant)
    e = fs.expected
    if variant == "":
        assert torch.equal(x, e["x"])
        torch.testing.assert_close(tok.latent(x), e["z"], atol=1e-5, rtol=0)
    elif "z" + variant in e:
        torch.testing.assert_close(tok.latent(x), e["z" + variant], atol=1e-5, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and torch.equal(tokens, e["tokens" + variant])
    nll = ar.token_nll(tokens, labels)
    assert nll.dtype == torch.float32 and nll.shape == tokens.shape
    torch.testing.assert_close(nll, e["token_nll" + variant], atol=1e-5, rtol=0)
    bits = nll.double().sum(-1) / math.log(2)
    torch.testing.assert_close(bits, e["nll_bits" + variant], atol=1e-4, rtol=0)
    per_scale = torch.stack([nll[:, a:b].double().sum(-1) for a, b in tok.scale_bounds], dim=1)
    torch.testing.assert_close(per_scale, e["scale_nll" + variant], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("flexvar"))
def test_conformance_inputs_logits_recon(folder):
    fs, tok, ar, x, labels = _loaded(require(folder))
    e = fs.expected
    torch.testing.assert_close(tok.teacher_input(e["tokens"]), e["var_input"], atol=1e-5, rtol=0)
    torch.testing.assert_close(ar.positions(), e["pos_seq"], atol=1e-5, rtol=0)
    torch.testing.assert_close(ar.logits(e["tokens"][:1], labels[:1])[0], e["logits_first"], atol=1e-4, rtol=0)
    torch.testing.assert_close(tok.decode(e["tokens"]), e["recon"], atol=1e-4, rtol=0)  # unclamped
    raw = fs.folder / "preprocess_raw.npy"
    if raw.exists():
        torch.testing.assert_close(tok.preprocess(Image.fromarray(np.load(raw))), e["preprocess_val"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("flexvar"))
def test_conformance_metadata(folder):
    fs, tok, ar, _, _ = _loaded(require(folder))
    cfg = fs.config
    assert isinstance(tok, ImageTokenizer) and isinstance(ar, ARModel)
    assert tok.family == ar.family == "flexvar"
    assert tok.image_size == cfg["image_size"] == fs.images.shape[1]
    assert tok.tokens_per_image == ar.tokens_per_image == fs.expected["tokens"].shape[1]
    assert tok.vocab_size == ar.vocab_size == cfg["tokenizer"]["codebook_size"]
    assert ar.num_classes == cfg["transformer"]["num_classes"] and ar.null_class == ar.num_classes
    assert ar.token_layout.kind == "scales" and list(ar.token_layout.scales) == cfg["scale_schedule"]
    if "scale_bounds" in cfg:
        assert [list(b) for b in tok.scale_bounds] == cfg["scale_bounds"]
    if "seq_len" in cfg:
        assert tok.tokens_per_image == cfg["seq_len"]
    # the stored mask is whatever training left (another shape than the schedule's): dropped, not checked
    stored = torch.load(fs.transformer_path, weights_only=True)["attn_bias_for_masking"]
    L = tok.tokens_per_image
    assert tuple(stored.shape) != (1, 1, L, L) and "attn_bias_for_masking" not in ar.state_dict()


# --------------------------------------------------------------------------- manifests of the real files


def _manifest_target(filename: str):
    for c in model_cards("flexvar"):
        if c.files[0].filename == filename:
            return c, False
    (t,) = [t for t in tokenizer_cards() if t.family == "flexvar" and t.file.filename == filename]
    return next(c for c in model_cards("flexvar") if c.tokenizer_id == t.id), True


@pytest.mark.parametrize("manifest", manifests("flexvar"))
def test_manifest_keys_shapes_params(manifest):
    m = json.loads(require(manifest).read_text())
    card, is_tok = _manifest_target(m["file"])
    cfg = FAM.config_for(card.id)
    with torch.device("meta"):
        module = FAM.build_tokenizer(cfg) if is_tok else FAM.build_transformer(cfg)
    want = dict(m["state_dict"])
    if not is_tok:  # the stale training mask is a file key the loader drops (any shape)
        assert "attn_bias_for_masking" in m["buffers"] and want.pop("attn_bias_for_masking")
    assert {k: list(v.shape) for k, v in module.state_dict().items()} == want
    params = sum(p.numel() for p in module.parameters())
    expected = get_tokenizer_card(card.tokenizer_id).params if is_tok else card.params
    assert params == m["params"] == expected
    if not is_tok:
        assert module.tokens_per_image == card.tokens_per_image == 680
        assert m["config"]["depth"] == card.arch["depth"] and m["config"]["vocab_size"] == card.codebook_size


def test_cards_one_group_published_values_and_no_rfid():
    cards = model_cards("flexvar")
    assert [c.id for c in cards] == ["flexvar-d16", "flexvar-d20", "flexvar-d24"]
    assert {fit_group(c) for c in cards} == {"FlexVAR"}
    assert [c.fid.value for c in cards] == [3.05, 2.41, 2.21]
    assert all(c.fid.origin == "readme" and c.fid.guidance.startswith("cfg") and "10-step" in c.fid.protocol
               for c in cards)
    assert all(c.rfid is None and c.reference_bpp is None for c in cards)
    assert "never drops labels" in cards[0].notes and "final_reso" in cards[0].notes
    tok = get_tokenizer_card("flexvae")
    assert tok.rfid == () and tok.file.container == "model" and tok.codebook_size == 8912
    for c in cards:
        cfg = FAM.config_for(c.id)
        assert cfg["image_size"] == c.resolution and tuple(cfg["scale_schedule"]) == DEFAULT_SCHEDULE
        FAM.parse_config(cfg, "card")
    assert sum(p * p for p in SCHEDULES[9]) == 629 and sum(p * p for p in SCHEDULES[13]) == 981
    with pytest.raises(KeyError, match="not a FlexVAR model"):
        FAM.config_for("var-d16")


# --------------------------------------------------------------------------- the schedule is part of the identity


def test_schedule_resolution_and_token_identity(tmp_path):
    cfg = FAM.config_for("flexvar-d16")
    assert scale_schedule(cfg) == DEFAULT_SCHEDULE
    no_top = {k: v for k, v in cfg.items() if k != "scale_schedule"}
    no_top["transformer"] = {**cfg["transformer"], "patch_nums": list(SCHEDULES[9])}
    assert scale_schedule(no_top) == SCHEDULES[9]  # the constructor's patch_nums when no scale_schedule
    nine = {**cfg, "scale_schedule": list(SCHEDULES[9])}
    assert token_config(nine) != token_config(cfg)
    tok, tr = tmp_path / "FlexVAE.pth", tmp_path / "FlexVARd16.pth"
    tok.write_bytes(b"t")
    tr.write_bytes(b"m")
    assert jobs.tokenizer_key("flexvar", str(tok), nine) != jobs.tokenizer_key("flexvar", str(tok), cfg)
    # families without a token_config keep the key of their tokenizer section
    var_cfg = get_family("var").config_for("var-d16")
    k = jobs.tokenizer_key("var", str(tok), var_cfg)
    assert k == jobs.tokenizer_key("var", str(tok), {"tokenizer": var_cfg["tokenizer"]})
    # two --config files differing only in the schedule: other model ids, tokenizer keys and run ids
    built = []
    for name, c in (("a.json", cfg), ("b.json", nine)):
        (tmp_path / name).write_text(json.dumps(c))
        built.append(jobs.job_from_config("flexvar", str(tmp_path / name), str(tok), str(tr)))
    a, b = built
    assert a.model_id != b.model_id and a.tokenizer_key != b.tokenizer_key

    class _Data:
        root, layout = "/data", "imagefolder"

    settings = RunSettings(data="/data")
    assert run_id(identity([a], settings, [], _Data(), "cpu", "onednn")) != run_id(identity([b], settings, [], _Data(), "cpu", "onednn"))


def test_schedule_and_size_checks():
    cfg = FAM.config_for("flexvar-d16")
    for bad, match in (([2, 3, 4], "must start at 1"), ([1, 3, 3, 16], "increase strictly"),
                       ([1, 2, 17], "larger than the latent")):
        with pytest.raises(ConfigError, match=match):
            FAM.build_tokenizer({**cfg, "scale_schedule": bad})
    with pytest.raises(ConfigError, match=r"scale_schedule must be a list of integers"):
        FAM.parse_config({**cfg, "scale_schedule": "1_2_3"}, "c.json")
    with pytest.raises(ConfigError, match="num_classes 10 differs from transformer.num_classes 1000"):
        FAM.build_transformer({**cfg, "num_classes": 10})
    with pytest.raises(ConfigError, match="shared_aln true is not supported"):
        FAM.build_transformer({**cfg, "transformer": {**cfg["transformer"], "shared_aln": True}})
    with pytest.raises(ConfigError, match=r"c\.json: unknown key 'transformer\.n_layer'"):
        FAM.parse_config({**cfg, "transformer": {**cfg["transformer"], "n_layer": 3}}, "c.json")
    # the train-resolution input: 512 px, the same 680 tokens (the 32x32 latent pooled to every scale)
    big = {**cfg, "image_size": 512}
    with torch.device("meta"):
        t512 = FAM.build_tokenizer(big)
    assert (t512.image_size, t512.tokens_per_image) == (512, 680)
    with pytest.raises(ConfigError, match="no reconstruction at this image_size"):
        t512.decode(torch.zeros(1, 680, dtype=torch.long))


# --------------------------------------------------------------------------- loading rules


def _fixture() -> FixtureSet:
    return FixtureSet(require(fixture_sets("flexvar")[0].values[0]))


def _tiny_var_files(tmp_path):
    """A tiny VAR tokenizer + transformer saved as files (the other multi-scale family)."""
    var = get_family("var")
    pn = [1, 2, 3]
    cfg = dict(tokenizer=dict(vocab_size=16, z_channels=4, ch=32, v_patch_nums=pn),
               transformer=dict(num_classes=5, depth=1, embed_dim=64, num_heads=2, attn_l2_norm=True, patch_nums=pn),
               image_size=48)
    vt = var.build_tokenizer(cfg)
    va = var.build_transformer(cfg, vt)
    tp, ap = tmp_path / "vae_ch160v4096z32.pth", tmp_path / "var_d16.pth"
    torch.save(vt.state_dict(), tp)
    torch.save(va.state_dict(), ap)
    return tp, ap


def test_var_files_given_as_flexvar_fail_clearly(tmp_path):
    fs = _fixture()
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    var_tok, var_tr = _tiny_var_files(tmp_path)
    with pytest.raises(CheckpointError, match=r"var_d16\.pth: this is a VAR transformer.*--family var"):
        FAM.load_transformer(str(var_tr), fs.config, tok)
    with pytest.raises(CheckpointError, match=r"vae_ch160v4096z32\.pth: this is VAR's multi-scale VQVAE"):
        FAM.load_tokenizer(str(var_tok), fs.config)
    with pytest.raises(CheckpointError, match=r"transformer\.pt: this is a transformer file"):
        FAM.load_tokenizer(str(fs.transformer_path), fs.config)
    with pytest.raises(CheckpointError, match=r"tokenizer\.pt: unexpected container layout"):
        FAM.load_transformer(str(fs.tokenizer_path), fs.config, tok)  # {"model": ...}: not a transformer layout
    bare_tok = tmp_path / "FlexVAE_bare.pth"
    torch.save(torch.load(fs.tokenizer_path, weights_only=True)["model"], bare_tok)
    with pytest.raises(CheckpointError, match=r"FlexVAE_bare\.pth: this is a tokenizer file"):
        FAM.load_transformer(str(bare_tok), fs.config, tok)
    # LlamaGen's own VQ-16 codebook shape
    other = {**fs.config, "tokenizer": {**fs.config["tokenizer"], "codebook_size": 700}}
    with pytest.raises(CheckpointError, match=r"codebook \(640, 8\) but the config's FlexVAE has \(700, 8\)"):
        FAM.load_tokenizer(str(fs.tokenizer_path), other)
    with pytest.raises(ValueError, match="needs its tokenizer"):
        FAM.load_transformer(str(fs.transformer_path), fs.config, None)


def test_containers_trainer_checkpoint_and_zero_k_bias(tmp_path):
    fs, tok, ar, _, labels = _loaded(require(fixture_sets("flexvar")[0].values[0]))
    sd = torch.load(fs.transformer_path, weights_only=True)
    trainer = tmp_path / "ar-ckpt-last.pth"
    torch.save({"epoch": 3, "iter": 0, "trainer": {"config": {"depth": 2}, "var_wo_ddp": sd,
                                                   "vae_local": {"quant_conv.weight": torch.zeros(1)}},
                "args": {"depth": 2}}, trainer)
    loaded = FAM.load_transformer(str(trainer), fs.config, tok)
    tokens = fs.expected["tokens"]
    assert torch.equal(loaded.token_nll(tokens, labels), ar.token_nll(tokens, labels))
    bad = dict(sd, **{"blocks.1.attn.zero_k_bias": torch.ones_like(sd["blocks.1.attn.zero_k_bias"])})
    torch.save(bad, tmp_path / "k.pth")
    with pytest.raises(CheckpointError, match=r"blocks\.1\.attn\.zero_k_bias is not all zeros"):
        FAM.load_transformer(str(tmp_path / "k.pth"), fs.config, tok)
    missing = {k: v for k, v in sd.items() if k != "pos_start"}
    torch.save(missing, tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match=r"m\.pth.*missing key\(s\), first: pos_start"):
        FAM.load_transformer(str(tmp_path / "m.pth"), fs.config, tok)
    with pytest.raises(ValueError, match="scale_schedule"):  # a transformer of another schedule than its tokenizer
        FAM.build_transformer({**fs.config, "scale_schedule": fs.config.get("scale_schedule_alt", [1, 2])}, tok)


# --------------------------------------------------------------------------- numerics


def test_no_label_dropout_block_causal_and_inputs():
    fs, tok, ar, _, labels = _loaded(require(fixture_sets("flexvar")[0].values[0]))
    assert fs.config["transformer"]["cond_drop_rate"] > 0  # upstream would drop labels even in eval mode
    tokens = fs.expected["tokens"]
    torch.manual_seed(1)
    a = ar.token_nll(tokens, labels)
    torch.manual_seed(2)
    assert torch.equal(a, ar.token_nll(tokens, labels))
    assert not torch.allclose(a, ar.token_nll(tokens, (labels + 1) % ar.num_classes))
    with pytest.raises(ValueError, match="null/CFG class"):
        ar.token_nll(tokens, torch.full_like(labels, ar.num_classes))
    last = tok.scale_bounds[-1][0]
    changed = tokens.clone()
    changed[:, last:] = (changed[:, last:] + 1) % ar.vocab_size  # the last scale never feeds the input
    torch.testing.assert_close(ar.token_nll(changed, labels)[:, :last], a[:, :last], atol=0, rtol=0)
    changed[:, 0] = (changed[:, 0] + 1) % ar.vocab_size  # the 1x1 token feeds scale 1
    assert not torch.allclose(ar.token_nll(changed, labels)[:, 1:last], a[:, 1:last])
    with pytest.raises(ValueError, match=rf"\(B, {tok.tokens_per_image}\)"):
        ar.token_nll(tokens[:, :-1], labels)
    with pytest.raises(ValueError, match="token values must lie"):
        ar.token_nll(torch.full_like(tokens, ar.vocab_size), labels)
    with pytest.raises(ValueError, match="expects images"):
        tok.encode(torch.zeros(1, 3, 32, 32))


def test_chunks_and_bf16_autocast():
    fs, tok, ar, x, labels = _loaded(require(fixture_sets("flexvar")[0].values[0]))
    tokens = fs.expected["tokens"]
    full = ar.token_nll(tokens, labels)
    ref = -torch.log_softmax(ar.logits(tokens, labels).double(), -1).gather(-1, tokens[..., None])[..., 0]
    torch.testing.assert_close(full.double(), ref, atol=1e-5, rtol=0)
    ar.nll_chunk = 7
    try:
        torch.testing.assert_close(ar.token_nll(tokens, labels), full, atol=1e-6, rtol=0)
    finally:
        ar.nll_chunk = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = ar.token_nll(tokens, labels)
        toks = tok.encode(x)  # the tokenizer always runs in fp32
    assert low.dtype == torch.float32 and torch.isfinite(low).all() and torch.equal(toks, tokens)
    assert not torch.equal(low, full)  # the blocks really ran in bf16
    torch.testing.assert_close(low, full, atol=1.0, rtol=0.1)


# --------------------------------------------------------------------------- CLI end to end


def _imagefolder(fs: FixtureSet, root: Path) -> list[str]:
    names = []
    for c in range(fs.config["transformer"]["num_classes"]):
        (root / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(root / rel)
        names.append(rel)
    return names


def test_cli_run_both_schedules_equal_fixture_bits_and_inspect_per_scale(tmp_path, monkeypatch):
    fs = _fixture()
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))  # one home: the two runs must not share tokens
    names = _imagefolder(fs, tmp_path / "data")
    alt = tmp_path / "alt.json"
    alt.write_text(json.dumps({**fs.config, "scale_schedule": fs.config["scale_schedule_alt"]}))
    for sfx, cfg in (("", fs.folder / "config.json"), ("_alt", alt)):
        out = tmp_path / f"out{sfx}"
        r = runner.invoke(app, ["run", "--family", "flexvar", "--config", str(cfg), "--tokenizer", str(fs.tokenizer_path),
                                "--transformer", str(fs.transformer_path), "--data", str(tmp_path / "data"),
                                "--out", str(out), "--device", "cpu", "--batch-size", "3", "--quiet"])
        assert r.exit_code == 0, r.output
        rows = {row["image"]: row for row in R.read_rows(str(out))}
        want = fs.expected["nll_bits" + sfx].double().tolist()
        for i, rel in enumerate(names):
            assert rows[rel]["label"] == int(fs.labels[i])
            assert abs(rows[rel]["bits"] - want[i]) <= 1e-4, (sfx, rel, rows[rel]["bits"], want[i])
        r = runner.invoke(app, ["inspect", str(out), "--json"])
        assert r.exit_code == 0, r.output
        (m,) = json.loads(r.output)["models"]
        scales = fs.config["scale_schedule" + sfx]
        assert list(m["by_group"]) == [f"{p}x{p}" for p in scales] and m["spatial"] is None
        want_scale = (fs.expected["scale_nll" + sfx].double().mean(0) / math.log(2)).tolist()
        assert list(m["by_group"].values()) == pytest.approx(want_scale, abs=1e-4)
    assert len(list((tmp_path / "home").glob("**/tokens/*/key.json"))) == 2


def test_cli_models_lists_the_three(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    got = {m["id"]: m for m in doc["models"] if m["family"] == "FlexVAR"}
    assert sorted(got) == ["flexvar-d16", "flexvar-d20", "flexvar-d24"]
    assert got["flexvar-d24"]["params"] == 1_041_314_576 and {m["group"] for m in got.values()} == {"FlexVAR"}
    assert "flexvae" in {t["id"] for t in doc["tokenizers"]}
