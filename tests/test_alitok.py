"""AliTok family (+ the ORT variant of its AR model): official-code conformance, real-size manifests,
loading errors, config, cards, CLI (run, models, fetch)."""

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

from conformance_utils import FixtureSet, assert_nll_matches, fixture_sets, manifests, require
from visbpp.core.analysis import breakdown as BD
from visbpp.core.errors import DataError
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.labels import scoring_null_class
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards, tokenizer_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.store import results as R
from visbpp.models import get_family
from visbpp.models.alitok import ORTAR, AliTokAR, ConfigError, alitok_config
from visbpp.models.alitok.preprocess import crop
from visbpp.models.llamagen.preprocess import center_crop_arr
from visbpp.tui.cli import app

FAM = get_family("alitok")
SETS = fixture_sets("alitok")

# Exact parameter counts from the spec (sections 1 and 9.1).
SPEC_PARAMS = {"AliTok.pth": 389_899_308, "alitok_b.bin": 177_048_064, "alitok_l.bin": 317_851_648,
               "alitok_xl.bin": 662_141_696, **{f"{n}.bin": 665_462_016 for n in (
                   "ort-e-alitok-xl-400", "ort-e-alitok-xl-300", "ort-l-alitok-xl-300", "ort-l-alitok-xl-400",
                   "alitok-xl-baseline-300", "alitok-xl-baseline-400")}}
ORT_FILES = {f for f in SPEC_PARAMS if f.startswith(("ort-", "alitok-xl-baseline"))}


def _ort_config(config: dict) -> dict:
    """The fixture config with the ORT variant selected (the fixtures' ORT model shares every size)."""
    cfg = json.loads(json.dumps(config))
    cfg["transformer"]["model.generator"]["type"] = "ort"
    return cfg


def _x(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255).contiguous()  # ToTensor: [0, 1]


@lru_cache(maxsize=None)
def _loaded(folder: Path):
    fs = FixtureSet(folder)
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config, with_decoder=True)
    ar = FAM.load_transformer(str(fs.transformer_path), fs.config, tok)
    ort = FAM.load_transformer(str(folder / "ort_transformer.pt"), _ort_config(fs.config), tok)
    return fs, tok, ar, ort, torch.from_numpy(fs.labels).long()


def _folder() -> Path:
    return require(next((p.values[0] for p in SETS if p.values[0] is not None), None))


# --------------------------------------------------------------------------- conformance fixtures


@pytest.mark.parametrize("folder", SETS)
def test_conformance_preprocess_both_views(folder):
    fs, tok, _, _, _ = _loaded(require(folder))
    S = fs.config["image_size"]
    assert torch.equal(_x(fs.images), fs.expected["x"])
    raw = Image.fromarray(np.load(fs.folder / "preprocess_raw.npy"))
    assert np.array_equal(center_crop_arr(raw, S), fs.expected["preprocess_adm"].numpy())
    assert torch.equal(tok.preprocess(raw), fs.expected["preprocess_val"])
    assert torch.equal(tok.preprocess(Image.fromarray(fs.images[0])), fs.expected["x"][0])  # a pre-cropped image stays
    # the ten-crop branch's centre view (index 4 of TenCrop), a named option recorded in the preprocess id
    assert np.array_equal(crop(raw, S, "tencrop-center"), fs.expected["preprocess_tencrop"][4].numpy())
    ten = FAM.build_tokenizer({**fs.config, "preprocess": "tencrop-center"}, with_decoder=False)
    assert torch.equal(ten.preprocess(raw), fs.expected["preprocess_tencrop"][4].permute(2, 0, 1).float() / 255)
    assert ten.preprocess_id != tok.preprocess_id and "tencrop" in ten.preprocess_id and "[0,1]" in tok.preprocess_id


@pytest.mark.parametrize("folder", SETS)
def test_conformance_tokens_and_recon(folder):
    fs, tok, _, _, _ = _loaded(require(folder))
    x = fs.expected["x"]
    L = fs.config["transformer"]["model.generator"]["image_seq_len"]
    assert tok.tokens_per_image == L == fs.expected["tokens"].shape[1]
    with torch.inference_mode():
        torch.testing.assert_close(tok.latent(x), fs.expected["z"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and torch.equal(tokens, fs.expected["tokens"])
    assert torch.equal(tok.encode(x.to(memory_format=torch.channels_last)), fs.expected["tokens"])
    torch.testing.assert_close(tok.decode(fs.expected["tokens"]), fs.expected["recon"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_nll_all_tokens_prefix_included(folder):
    fs, _, ar, _, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    assert_nll_matches(ar.token_nll(tokens, labels), fs)
    L = tokens.shape[1]
    with torch.inference_mode():
        torch.testing.assert_close(ar(tokens[:1], labels[:1])[0], fs.expected["logits_first"], atol=1e-4, rtol=0)
        # the row after the last token (upstream's dropped row L): feed one more (arbitrary) token
        h = ar.hidden_states(torch.cat([tokens, torch.zeros_like(tokens[:, :1])], 1), labels)
        torch.testing.assert_close(ar.output(h[:, L]), fs.expected["logits_extra_last"], atol=1e-4, rtol=0)
    torch.testing.assert_close(ar.rope.real(), fs.expected["freqs_cis"], atol=1e-6, rtol=0)
    assert torch.equal(ar.condition_ids(labels), fs.expected["condition_ids"])


@pytest.mark.parametrize("folder", SETS)
def test_conformance_ort_nll(folder):
    fs, _, ar, ort, labels = _loaded(require(folder))
    assert type(ar) is AliTokAR and type(ort) is ORTAR
    tokens, e = fs.expected["tokens"], fs.expected
    nll = ort.token_nll(tokens, labels)
    torch.testing.assert_close(nll, e["ort_token_nll"], atol=1e-5, rtol=0)
    torch.testing.assert_close(nll.double().sum(-1) / math.log(2), e["ort_nll_bits"], atol=4e-5, rtol=0)
    L = tokens.shape[1]
    with torch.inference_mode():
        torch.testing.assert_close(ort(tokens[:1], labels[:1])[0], e["ort_logits_first"], atol=1e-4, rtol=0)
        h = ort.hidden_states(torch.cat([tokens, torch.zeros_like(tokens[:, :1])], 1), labels)
        torch.testing.assert_close(ort.output(h[:, L]), e["ort_logits_extra_last"], atol=1e-4, rtol=0)
    # the position tables are what a non-strict load would drop: without them the NLL is far off
    saved = [t.detach().clone() for t in (ort.pos_embed, ort.target_aware_pos_embed)]
    try:
        with torch.no_grad():
            ort.pos_embed.zero_()
            ort.target_aware_pos_embed.zero_()
        assert (ort.token_nll(tokens, labels) - nll).abs().mean() > 1.0
    finally:
        with torch.no_grad():
            ort.pos_embed.copy_(saved[0])
            ort.target_aware_pos_embed.copy_(saved[1])


@pytest.mark.parametrize("folder", SETS)
def test_encode_only_load_then_decoder_on_first_decode(folder):
    fs, _, _, _, _ = _loaded(require(folder))
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)  # default: the encode path only
    assert not tok.has_decoder and not any(k.startswith("decoder.") for k in tok.state_dict())
    assert torch.equal(tok.encode(fs.expected["x"]), fs.expected["tokens"])
    torch.testing.assert_close(tok.decode(fs.expected["tokens"]), fs.expected["recon"], atol=1e-4, rtol=0)
    assert tok.has_decoder


# --------------------------------------------------------------------------- real-size manifests


def _card_for(file: str):
    cards = [c for c in model_cards("alitok") if c.files[0].filename == file]
    assert len(cards) == 1, f"exactly one AliTok card must use {file}, found {[c.id for c in cards]}"
    return cards[0]


@pytest.mark.parametrize("manifest", manifests("alitok"))
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    if m["file"] == "AliTok.pth":
        tcard = get_tokenizer_card("alitok-tokenizer")
        users = [c for c in model_cards("alitok") if c.tokenizer_id == tcard.id]
        assert len(users) == 9
        with torch.device("meta"):
            module = FAM.build_tokenizer(FAM.config_for(users[0].id))
        assert m["url"] == tcard.file.url and tcard.file.repo == f"gdrive:{m['drive_file_id']}"
        assert m["container"] == tcard.file.container is None
        assert sum(v.numel() for k, v in module.state_dict().items() if not k.startswith("decoder.")) == 86_419_744
        params = tcard.params
    else:
        card = _card_for(m["file"])
        cfg = FAM.config_for(card.id)
        with torch.device("meta"):
            module = FAM.build_transformer(cfg)
        assert isinstance(module, ORTAR) == (m["file"] in ORT_FILES)
        assert m["url"] == card.files[0].url and module.tokens_per_image == m["num_tokens"] == card.tokens_per_image
        if m["file"] in ORT_FILES:
            assert (card.files[0].sha256, card.files[0].size_bytes) == (m["sha256"], m["size_bytes"])
            assert card.files[0].repo == "hf:donglixu/ORT"
        else:
            assert card.files[0].repo == f"gdrive:{m['drive_file_id']}" and m["container"] == card.files[0].container
        params = card.params
    assert {k: list(v.shape) for k, v in module.state_dict().items()} == m["state_dict"]
    n = sum(p.numel() for p in module.parameters())
    assert n == SPEC_PARAMS[m["file"]] == m["params"] == params == m["state_dict_numel"]
    assert len(m["state_dict"]) == m["state_dict_tensors"]


# --------------------------------------------------------------------------- loading errors and containers


def test_ort_file_as_alitok_and_the_reverse_are_refused(tmp_path):
    folder = _folder()
    fs, _, ar, ort, labels = _loaded(folder)
    with pytest.raises(CheckpointError, match=r"ort_transformer\.pt.*ORT's position tables.*ORT model file"):
        FAM.load_transformer(str(folder / "ort_transformer.pt"), fs.config)
    with pytest.raises(CheckpointError, match=r"transformer\.pt: has no pos_embed.*AliTok ARModel file"):
        FAM.load_transformer(str(fs.transformer_path), _ort_config(fs.config))
    with pytest.raises(CheckpointError, match=r"tokenizer\.pt: this is the AliTok tokenizer"):
        FAM.load_transformer(str(fs.tokenizer_path), fs.config)
    with pytest.raises(CheckpointError, match=r"transformer\.pt: this is an AliTok AR model file"):
        FAM.load_tokenizer(str(fs.transformer_path), fs.config)
    # one table only is still an ORT file for AliTok and an incomplete one for ORT
    sd = torch.load(folder / "ort_transformer.pt", weights_only=True)
    half = tmp_path / "half.pt"
    torch.save({k: v for k, v in sd.items() if k != "pos_embed"}, half)
    with pytest.raises(CheckpointError, match="target_aware_pos_embed"):
        FAM.load_transformer(str(half), fs.config)
    with pytest.raises(CheckpointError, match="missing key.*pos_embed"):
        FAM.load_transformer(str(half), _ort_config(fs.config))


def test_ort_containers_and_compiled_prefix(tmp_path):
    folder = _folder()
    fs, _, _, ort, labels = _loaded(folder)
    tokens = fs.expected["tokens"]
    want = ort.token_nll(tokens, labels)
    sd = torch.load(folder / "ort_transformer.pt", weights_only=True)
    for name, obj in [("wrapped.pt", {"model": sd}), ("compiled.pt", {f"_orig_mod.{k}": v for k, v in sd.items()}),
                      ("both.pt", {"model": {f"_orig_mod.{k}": v for k, v in sd.items()}})]:
        torch.save(obj, tmp_path / name)
        got = FAM.load_transformer(str(tmp_path / name), _ort_config(fs.config)).token_nll(tokens, labels)
        assert torch.equal(got, want), name
    # AliTok's own files are bare state dicts, exactly as the upstream loader reads them
    torch.save({"model": torch.load(fs.transformer_path, weights_only=True)}, tmp_path / "ar_wrapped.pt")
    with pytest.raises(CheckpointError, match="container"):
        FAM.load_transformer(str(tmp_path / "ar_wrapped.pt"), fs.config)
    extra = {**torch.load(fs.transformer_path, weights_only=True), "freqs_cis": torch.zeros(3)}
    torch.save(extra, tmp_path / "ar_extra.pt")
    with pytest.raises(CheckpointError, match="unexpected key.*freqs_cis"):
        FAM.load_transformer(str(tmp_path / "ar_extra.pt"), fs.config)


# --------------------------------------------------------------------------- config


def test_fixture_configs_parse_and_errors_name_the_field():
    for p in SETS:
        folder = require(p.values[0])
        cfg = json.loads((folder / "config.json").read_text())
        parsed = alitok_config(FAM.parse_config(cfg, str(folder / "config.json")))
        assert parsed.tokenizer.num_tokens == parsed.transformer.image_seq_len == cfg["seq_len"]
        assert parsed.tokenizer.prefix_tokens == cfg["prefix_tokens"] and not parsed.transformer.ort
    cfg = FAM.config_for("alitok-b")
    gen, hard = ("transformer", "model.generator"), ("transformer", "hardcoded")
    for path, key, value, match in [
        ((), "preprocces", "center", r"C\.json: unknown key 'preprocces'"),
        ((), "preprocess", "tencrop", r"C\.json: preprocess 'tencrop' is not one of center, tencrop-center"),
        (("tokenizer",), "use_l2_norm", True, r"tokenizer\.use_l2_norm = true is not supported"),
        (("tokenizer",), "num_latent_tokens", 272, r"tokenizer\.num_latent_tokens 272 != prefix tokens \+ grid\^2 = 273"),
        (("tokenizer",), "patch_size", 15, r"image_size 256 is not a multiple of patch_size 15"),
        (gen, "type", "rar", r"model\.generator\.type 'rar' is not supported"),
        (gen, "num_attention_heads", 128, r"head_dim divisible by 4"),
        (gen, "hidden_size", 768.0, r"hidden_size must be an integer"),
        (gen, "image_seq_len", 272, r"RoPE table covers 17 prefix \+ 16\^2 grid = 273"),
        (hard, "rope_2d_grid", 15, r"RoPE table covers 17 prefix \+ 15\^2 grid = 242"),
        (("transformer",), "model.vq_model.codebook_size", 1024, r"codebook_size is 1024 but the model it describes has 4096"),
    ]:
        bad = json.loads(json.dumps(cfg))
        target = bad
        for part in path:
            target = target[part]
        target[key] = value
        with pytest.raises(ConfigError, match=match):
            FAM.parse_config(bad, "C.json")
    del cfg["transformer"]["hardcoded"]["rope_base"]
    with pytest.raises(ConfigError, match=r"transformer\.hardcoded\.rope_base is missing"):
        FAM.build_transformer(cfg)
    with pytest.raises(KeyError, match="not an AliTok model"):
        FAM.config_for("rar-b")


# --------------------------------------------------------------------------- model behaviour


def test_interfaces_causality_and_labels():
    fs, tok, ar, ort, labels = _loaded(_folder())
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(ar, ARModel)
    assert tok.family == ar.family == ort.family == "alitok"
    assert ar.token_layout.kind == "sequence" and ar.token_layout.length == ar.tokens_per_image
    tokens = fs.expected["tokens"]
    bd = BD.fold(ar.token_nll(tokens, labels).numpy(), ar.token_layout)  # `visbpp inspect`: bits by position
    np.testing.assert_allclose(bd.bits, fs.expected["nll_bits"].numpy(), atol=4e-5, rtol=0)
    assert bd.spatial is None and bd.by_position.shape == tuple(tokens.shape)
    for model in (ar, ort):
        base = model.token_nll(tokens, labels)
        changed = tokens.clone()
        changed[:, 2] = (changed[:, 2] + 1) % model.vocab_size  # a prefix token
        nll = model.token_nll(changed, labels)
        assert torch.equal(nll[:, :2], base[:, :2]) and not torch.equal(nll[:, 2], base[:, 2])
        assert (nll[:, 3:] - base[:, 3:]).abs().max() > 1e-3
        # the null (CFG) class: label C (embedding row K + C + 1), scored only on request
        null = torch.full_like(labels, model.null_class)
        assert int(model.condition_ids(null)[0]) == model.vocab_size + model.num_classes + 1
        with pytest.raises(DataError, match="null/CFG class"):
            model.token_nll(tokens, null)
        with scoring_null_class():
            assert not torch.equal(model.token_nll(tokens, null), base)
        with pytest.raises(ValueError, match=r"token values must lie in \[0, "):
            model.token_nll(torch.full_like(tokens, model.vocab_size), labels)


def test_class_position_is_not_rotated_and_grid_starts_after_the_prefix():
    cfg = alitok_config(FAM.config_for("alitok-b")).transformer
    from visbpp.models.alitok import rope_table

    t = rope_table(cfg)  # (1 + 17 + 256, 24, 2)
    hd = cfg.head_dim
    assert t.shape == (274, hd // 2, 2) and torch.equal(t[0], torch.zeros(hd // 2, 2))
    w1 = 1.0 / (10000 ** (torch.arange(0, hd, 2).float() / hd))
    torch.testing.assert_close(t[1 + 5, :, 0], torch.cos(5 * w1))  # prefix token 5: 1-D position 5
    w2 = 1.0 / (10000 ** (torch.arange(0, hd // 2, 2).float() / (hd // 2)))
    r, c = 3, 7  # grid cell (3, 7) is token 17 + 3 * 16 + 7, at input position 1 + that
    row = t[1 + 17 + 16 * r + c]
    torch.testing.assert_close(row[: hd // 4, 1], torch.sin((17 + r) * w2))
    torch.testing.assert_close(row[hd // 4:, 1], torch.sin((17 + c) * w2))


def test_bf16_autocast_and_chunks():
    fs, tok, ar, _, labels = _loaded(_folder())
    tokens = fs.expected["tokens"]
    ref = ar.token_nll(tokens, labels)
    for chunk in (1, 7):
        torch.testing.assert_close(ar.token_nll(tokens, labels, chunk=chunk), ref, atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = ar.token_nll(tokens, labels)
        toks = tok.encode(fs.expected["x"])  # the tokenizer always runs in fp32
    assert low.dtype == torch.float32 and torch.equal(toks, tokens)
    torch.testing.assert_close(low, ref, atol=0.5, rtol=0.1)
    assert not torch.equal(low, ref)


# --------------------------------------------------------------------------- cards


def test_cards_groups_sources_and_files():
    cards = model_cards("alitok")
    assert [c.id for c in cards[:3]] == ["alitok-b", "alitok-l", "alitok-xl"] and len(cards) == 9
    ali, ort = cards[:3], cards[3:]
    assert {fit_group(c) for c in ali} == {"AliTok"} and {fit_group(c) for c in ort} == {"AliTok ORT-XL"}
    assert [c.fid.value for c in ali] == [1.50, 1.42, 1.35]
    assert [c.fid.guidance for c in ali] == ["cfg 16.0", "cfg 6.0", "cfg 13.0"]
    assert all("pow" in c.fid.protocol and "README" in c.fid.source for c in ali)
    assert sorted(c.fid.value for c in ort) == [1.18, 1.26, 1.31, 1.34, 1.35, 1.42]
    assert all(c.fid.guidance == "cfg (scale not stated)" and "not independently verified" in c.fid.protocol for c in ort)
    for c in cards:
        assert (c.fid.origin, c.fid.eval_resolution, c.rfid) == ("readme", 256, None)
        assert (c.tokens_per_image, c.codebook_size, c.tokenizer_id) == (273, 4096, "alitok-tokenizer")
        assert type(c.arch) is dict and FAM.config_for(c.id)["transformer"]["model.generator"]["hidden_size"] == c.arch["hidden_size"]
    assert all(c.files[0].source_kind == "gdrive" for c in ali) and all(c.files[0].source_kind == "hub" for c in ort)
    tok = get_tokenizer_card("alitok-tokenizer")
    assert tok.rfid == () and "rFID" in tok.notes and tok.file.source_kind == "gdrive"
    assert [t.id for t in tokenizer_cards() if t.family == "alitok"] == ["alitok-tokenizer"]
    assert get_card("AliTok-XL").id == "alitok-xl"


def test_registered_configs_build_the_right_variant():
    for c in model_cards("alitok"):
        parsed = alitok_config(FAM.config_for(c.id))
        assert parsed.transformer.ort == c.id.startswith(("ort-", "alitok-xl-baseline"))
        assert parsed.tokenizer.preprocess == "center"


# --------------------------------------------------------------------------- CLI


def _imagefolder(fs: FixtureSet, root: Path) -> list[str]:
    names = []
    for c in range(fs.config["num_classes"]):
        (root / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(root / rel)
        names.append(rel)
    return names


@pytest.mark.parametrize("variant", ["alitok", "ort"])
def test_cli_run_own_files_equals_fixture_bits(variant, tmp_path, monkeypatch):
    folder = _folder()
    fs = FixtureSet(folder)
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    names = _imagefolder(fs, tmp_path / "data")
    config, model, want = folder / "config.json", fs.transformer_path, fs.expected["nll_bits"]
    if variant == "ort":
        config = tmp_path / "ort_config.json"
        config.write_text(json.dumps(_ort_config(fs.config)))
        model, want = folder / "ort_transformer.pt", fs.expected["ort_nll_bits"]
    r = CliRunner().invoke(app, [
        "run", "--family", "alitok", "--config", str(config), "--tokenizer", str(fs.tokenizer_path),
        "--transformer", str(model), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
        "--device", "cpu", "--batch-size", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(tmp_path / "out"))}
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fs.labels[i])
        assert abs(rows[rel]["bits"] - float(want[i])) <= 4e-5, (rel, rows[rel]["bits"], float(want[i]))


def test_cli_models_lists_alitok_ort_and_rear(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    got = {m["id"]: m for m in doc["models"]}
    assert {c.id for c in model_cards("alitok")} <= set(got) and {"rear-s", "rear-b", "rear-l"} <= set(got)
    assert got["alitok-xl"]["params"] == 662_141_696 and got["ort-e-alitok-xl-400"]["group"] == "AliTok ORT-XL"
    assert "alitok-tokenizer" in {t["id"] for t in doc["tokenizers"]}


def test_cli_fetch_offline_prints_the_drive_links(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VISBPP_OFFLINE", "1")
    r = CliRunner().invoke(app, ["fetch", "--family", "alitok"], env={"COLUMNS": "2000"})
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    drive = [get_tokenizer_card("alitok-tokenizer").file] + [get_card(f"alitok-{s}").files[0] for s in ("b", "l", "xl")]
    for f in drive:
        fid = f.repo[len("gdrive:"):]
        assert f.url in text and f"gdown {fid}" in text and f.filename in text
    assert "ort-e-alitok-xl-400.bin" in text and "offline mode" in text
