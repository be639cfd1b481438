"""GigaTok family: official-code conformance, real-size manifests, loading errors, config, CLI."""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conformance_utils import (
    FixtureSet,
    assert_nll_matches,
    conformance_root,
    fixture_sets,
    manifests,
    optional_file,
    require,
)
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.registry.catalog import fit_group, get_tokenizer_card, model_cards, tokenizer_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.store import results as R
from visbpp.models import get_family
from visbpp.models.gigatok import ConfigError, gigatok_config
from visbpp.models.gigatok.tokenizer import ENCODE_PREFIXES, multi_level_queries
from visbpp.models.llamagen import center_crop_arr
from visbpp.models.llamagen.preprocess import to_model_input
from visbpp.tui.cli import app

FAM = get_family("gigatok")

# Exact parameter counts from the family spec (sections 1.1 and 1.2).
SPEC_PARAMS = {
    "VQ_SS256_e100.pt": 136_073_227,
    "VQ_SB256_e200.pt": 232_399_627,
    "VQ_BL256_e200.pt": 621_637_131,
    "VQ_BL256_dino_disc.pt": 621_637_131,
    "VQ_XLXXL256_e300.pt": 2_893_970_443,
    "GPT_B256_e300_VQ_SS.pt": 111_085_824,
    "GPT_B256_e300_VQ_SB.pt": 111_085_824,
    "GPT_B256_e300_VQ_BL.pt": 111_085_824,
    "GPT_B256_e300_VQ_BL_dino_disc.pt": 111_085_824,
    "GPT_B256_e300_VQ_XLXXL.pt": 111_085_824,
    "GPT_XL256_e300_VQ_BL.pt": 775_028_480,
    "GPT_XXL256_e300_VQ_BL.pt": 1_411_367_424,
    "GPT_XXL256_e300_VQ_XLXXL.pt": 1_411_367_424,
}


# --------------------------------------------------------------------------- conformance fixtures


@lru_cache(maxsize=None)
def _loaded(folder: Path):
    fs = FixtureSet(folder)
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config, with_decoder=True)
    gpt = FAM.load_transformer(str(fs.transformer_path), fs.config, tok)
    x = torch.stack([to_model_input(a) for a in fs.images])  # (N, 3, S, S), contiguous NCHW
    labels = torch.from_numpy(fs.labels).long()
    return fs, tok, gpt, x, labels


@pytest.mark.parametrize("folder", fixture_sets("gigatok"))
def test_conformance_preprocess(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert torch.equal(x, fs.expected["x"])
    raw = Image.fromarray(np.load(optional_file(fs.folder, "preprocess_raw.npy", "a raw picture for the crop")))
    assert np.array_equal(center_crop_arr(raw, fs.config["image_size"]), fs.images[0])
    assert torch.equal(tok.preprocess(raw), fs.expected["x"][0])


@pytest.mark.parametrize("folder", fixture_sets("gigatok"))
def test_conformance_tokens_and_recon(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert tok.tokens_per_image == fs.expected["tokens"].shape[1]
    with torch.inference_mode():
        z = tok.latent(x)
    torch.testing.assert_close(z, fs.expected["z"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and torch.equal(tokens, fs.expected["tokens"])
    recon = tok.decode(fs.expected["tokens"])
    torch.testing.assert_close(recon, fs.expected["recon"], atol=1e-4, rtol=0)
    # a channels-last input gives the same tokens (the tokenizer makes it contiguous NCHW)
    assert torch.equal(tok.encode(x.to(memory_format=torch.channels_last)), fs.expected["tokens"])


@pytest.mark.parametrize("folder", fixture_sets("gigatok"))
def test_conformance_nll(folder):
    fs, _, gpt, _, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    nll = gpt.token_nll(tokens, labels)
    assert_nll_matches(nll, fs)
    with torch.inference_mode():
        logits = gpt(tokens[:1], labels[:1])[0]
    torch.testing.assert_close(logits, fs.expected["logits_first"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("gigatok"))
def test_encode_only_load_gives_same_tokens(folder, tmp_path):
    fs, full, _, x, _ = _loaded(require(folder))
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)  # default: encode path only
    assert not tok.has_decoder and not hasattr(tok, "decoder") and not hasattr(tok, "s1to2decoder")
    assert all(k.startswith(ENCODE_PREFIXES) for k in tok.state_dict())
    assert torch.equal(tok.encode(x), fs.expected["tokens"])
    # the first decode loads the decoder side from the same file (visbpp run --recon)
    torch.testing.assert_close(tok.decode(fs.expected["tokens"]), fs.expected["recon"], atol=1e-4, rtol=0)
    assert tok.has_decoder and hasattr(tok, "s1to2decoder")
    # a trimmed file that holds exactly the encode path loads for encoding, not for decoding
    sd = full.state_dict()  # what the loader took from the set's file (its container rule: ema, model, state_dict, bare)
    trimmed = tmp_path / "encode_only.pt"
    torch.save({"model": {k: v for k, v in sd.items() if k.startswith(ENCODE_PREFIXES)}}, trimmed)
    enc = FAM.load_tokenizer(str(trimmed), fs.config)
    assert torch.equal(enc.encode(x), fs.expected["tokens"])
    with pytest.raises(CheckpointError, match="only the encode path"):
        FAM.load_tokenizer(str(trimmed), fs.config, with_decoder=True)
    with pytest.raises(CheckpointError, match="only the encode path"):
        enc.decode(fs.expected["tokens"])
    enc.decoder_source = None  # built without a loader: decoding is refused, not attempted
    with pytest.raises(RuntimeError, match="encoding only"):
        enc.decode(fs.expected["tokens"])


# --------------------------------------------------------------------------- real-size manifests


def _tokenizer_card_for(file: str):
    cards = [t for t in tokenizer_cards() if t.family == "gigatok" and t.file.filename == file]
    return cards[0] if len(cards) == 1 else None


def _gpt_card_for(file: str):
    cards = [c for c in model_cards("gigatok") if c.files[0].filename == file]
    assert len(cards) == 1, f"exactly one GigaTok card must use {file}, found {[c.id for c in cards]}"
    return cards[0]


@pytest.mark.parametrize("manifest", manifests("gigatok"))
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    tcard = _tokenizer_card_for(m["file"])
    if tcard is not None:
        users = [c for c in model_cards("gigatok") if c.tokenizer_id == tcard.id]
        assert users, f"no GigaTok model uses {tcard.id}"
        for card in users:
            cfg = FAM.config_for(card.id)
            assert set(cfg["tokenizer"]) <= set(m["init_args"])
            for k, v in m["init_args"].items():  # yaml entries the config omits must be switches left off
                assert cfg["tokenizer"][k] == v if k in cfg["tokenizer"] else v in (False, None), k
            with torch.device("meta"):
                module = FAM.build_tokenizer(cfg)
            got = {k: list(v.shape) for k, v in module.state_dict().items()}
            assert got == m["state_dict"]
            with torch.device("meta"):
                enc = FAM.build_tokenizer(cfg, with_decoder=False)
            assert sum(p.numel() for p in enc.parameters()) == m["encode_params"]
        assert m["container"] == tcard.file.container and m["url"] == tcard.file.url
        assert m["image_size"] == 256 and m["num_tokens"] == module.tokens_per_image
        params = tcard.params
    else:
        card = _gpt_card_for(m["file"])
        cfg = FAM.config_for(card.id)
        with torch.device("meta"):
            module = FAM.build_transformer(cfg)
        got = {k: list(v.shape) for k, v in module.state_dict().items()}
        assert got == m["state_dict"]
        assert cfg["transformer_container"] == m["container"] == card.files[0].container
        assert m["url"] == card.files[0].url
        assert cfg["image_size"] == m["image_size"] == card.resolution
        assert module.tokens_per_image == m["num_tokens"] == card.tokens_per_image
        assert get_tokenizer_card(card.tokenizer_id).file.filename.startswith(Path(m["tokenizer_config"]).stem)
        params = card.params
    n = sum(p.numel() for p in module.parameters())
    assert n == SPEC_PARAMS[m["file"]] == m["params"] == params
    assert sum(v.numel() for v in module.state_dict().values()) == m["state_dict_numel"]


def test_cards_groups_and_comparison():
    cards = model_cards("gigatok")
    assert len(cards) == 8 and len([t for t in tokenizer_cards() if t.family == "gigatok"]) == 5
    groups = {}
    for c in cards:
        groups.setdefault(fit_group(c), []).append(c.id)
        assert c.fid is not None and "guidance" in c.fid.protocol and "README" in c.fid.source
        assert (c.fid.guidance, c.fid.origin, c.fid.eval_resolution) == ("cfg (scale not stated)", "readme", 256)
        assert (c.rfid.guidance, c.rfid.origin, c.rfid.eval_resolution) == ("none", "readme", 256)
        assert type(c.arch) is dict and set(c.arch) == {"n_layer", "n_head", "dim"}
        assert FAM.config_for(c.id)["transformer"]["dim"] == c.arch["dim"]
        tc = get_tokenizer_card(c.tokenizer_id)
        assert c.rfid.value == tc.rfid[0][1].value and tc.lpips is not None and type(tc.arch) is dict
        assert c.files[0].source_kind == "gdrive" and tc.file.source_kind == "gdrive"
    assert sorted(groups["GigaTok B-L"]) == ["gigatok-b-bl", "gigatok-xl-bl", "gigatok-xxl-bl"]
    assert len(groups) == 5
    b = sorted((get_tokenizer_card(c.tokenizer_id).rfid[0][1].value, c.fid.value)
               for c in cards if "GigaTok GPT-B" in c.compare)
    assert b == [(0.51, 3.33), (0.79, 3.15), (0.81, 3.26), (0.89, 3.83), (1.01, 4.05)]
    with pytest.raises(KeyError, match="not a GigaTok model"):
        FAM.config_for("llamagen-b-256")


# --------------------------------------------------------------------------- loading errors


def _fixture_folder() -> Path:
    return require(next((p.values[0] for p in fixture_sets("gigatok") if p.values[0] is not None), None))


def _llamagen_config_like_fixture(cfg: dict) -> dict:
    """A LlamaGen config whose GPT has the GigaTok fixture's sizes (the key sets differ by the position table)."""
    lg = get_family("llamagen").config_for("llamagen-b-256")
    t = cfg["transformer"]
    lg["transformer"].update(dim=t["dim"], n_layer=t["n_layer"], n_head=t["n_head"], vocab_size=t["vocab_size"],
                             num_classes=t["num_classes"], block_size=t["block_size"])
    del lg["tokenizer"]
    return lg


def test_llamagen_gpt_given_as_gigatok_is_refused(tmp_path):
    folder = _fixture_folder()
    cfg = json.loads((folder / "config.json").read_text())
    sd = _loaded(folder)[2].state_dict()  # the set's GPT weights, whatever its container
    lg_file = tmp_path / "llamagen_like.pt"  # exactly LlamaGen's key set at these sizes
    torch.save({"model": {k: v for k, v in sd.items() if k != "positional_embedding"}}, lg_file)
    lg_fam = get_family("llamagen")
    lg_fam.load_transformer(str(lg_file), _llamagen_config_like_fixture(cfg))  # a valid LlamaGen file
    with pytest.raises(CheckpointError, match=r"llamagen_like\.pt.*positional_embedding.*LlamaGen"):
        FAM.load_transformer(str(lg_file), cfg)
    real_lg = conformance_root() / "llamagen" / "transformer.pt"
    if real_lg.exists():
        with pytest.raises(CheckpointError, match="positional_embedding"):
            FAM.load_transformer(str(real_lg), cfg)


def test_gigatok_gpt_given_as_llamagen_is_refused():
    folder = _fixture_folder()
    cfg = json.loads((folder / "config.json").read_text())
    with pytest.raises(CheckpointError, match=r"transformer\.pt.*unexpected key positional_embedding.*--family gigatok"):
        get_family("llamagen").load_transformer(str(folder / "transformer.pt"), _llamagen_config_like_fixture(cfg))


def test_containers_args_and_stray_keys(tmp_path):
    folder = _fixture_folder()
    fs, tok, gpt, x, labels = _loaded(folder)
    tsd, gsd = tok.state_dict(), gpt.state_dict()  # the set's weights, whatever its containers
    # tokenizer: "ema" wins over "model"; an argparse Namespace in "args" is read without running code
    scrambled = {k: (v.flip(0) if k == "quantize.embedding.weight" else v) for k, v in tsd.items()}
    f = tmp_path / "tok_ema.pt"
    torch.save({"model": scrambled, "ema": tsd, "args": argparse.Namespace(lr=1e-4), "steps": 3}, f)
    assert torch.equal(FAM.load_tokenizer(str(f), fs.config).encode(x), fs.expected["tokens"])
    f = tmp_path / "tok_sd.pt"
    torch.save({"state_dict": tsd}, f)
    assert torch.equal(FAM.load_tokenizer(str(f), fs.config).encode(x), fs.expected["tokens"])
    f = tmp_path / "tok_extra.pt"
    torch.save({"model": {**tsd, "encoder.extra.weight": torch.zeros(2)}}, f)
    with pytest.raises(CheckpointError, match=r"unexpected.*encoder\.extra\.weight"):
        FAM.load_tokenizer(str(f), fs.config)
    # GPT: "module" container + args, stray freqs_cis dropped; the GPT loader never reads "ema"
    f = tmp_path / "gpt_module.pt"
    torch.save({"module": {**gsd, "freqs_cis": torch.zeros(17, 8, 2)}, "args": argparse.Namespace(x=1)}, f)
    tokens = fs.expected["tokens"]
    assert torch.equal(FAM.load_transformer(str(f), fs.config).token_nll(tokens, labels), gpt.token_nll(tokens, labels))
    f = tmp_path / "gpt_ema_only.pt"
    torch.save({"ema": gsd}, f)
    with pytest.raises(CheckpointError, match="container"):
        FAM.load_transformer(str(f), fs.config)
    f = tmp_path / "gpt_qknorm.pt"
    torch.save({"model": {**gsd, "layers.0.attention.q_norm.weight": torch.ones(16)}}, f)
    with pytest.raises(CheckpointError, match="q_norm"):
        FAM.load_transformer(str(f), fs.config)


# --------------------------------------------------------------------------- config and modules


def test_config_parser_rejects_unknown_and_unsupported():
    cfg = FAM.config_for("gigatok-b-bl")
    assert FAM.parse_config(cfg, "C.json") is cfg and gigatok_config(cfg).transformer.block_size == 256
    for section, key, value, match in [
        (None, "tokenizer_sise_overrides", {}, r"C\.json: unknown key 'tokenizer_sise_overrides'"),
        ("tokenizer", "use_lfqq", False, r"C\.json: unknown key 'tokenizer\.use_lfqq'"),
        ("transformer", "rope_base", 10000, r"C\.json: unknown key 'transformer\.rope_base'"),
        ("transformer", "n_layer", 12.5, r"C\.json: transformer\.n_layer must be an integer"),
        ("tokenizer", "use_rope", "false", r"C\.json: tokenizer\.use_rope must be true or false"),
        ("transformer", "rope", True, r"C\.json: transformer\.rope = True is not supported"),
        ("tokenizer", "use_qk_norm", True, r"C\.json: tokenizer\.use_qk_norm = True is not supported"),
        ("transformer", "block_size", 255, r"C\.json: transformer\.block_size 255 != tokenizer\.num_latent_tokens 256"),
        ("tokenizer", "num_latent_tokens", 96, r"C\.json: tokenizer\.num_latent_tokens 96 is not a power of two"),
    ]:
        bad = json.loads(json.dumps(cfg))
        (bad if section is None else bad[section])[key] = value
        with pytest.raises(ConfigError, match=match):
            FAM.parse_config(bad, "C.json")
    bad = json.loads(json.dumps(cfg))
    bad["tokenizer_size_overrides"]["s2to1encoder"]["depth"] = 3
    with pytest.raises(ConfigError, match=r"unknown key 'tokenizer_size_overrides\.s2to1encoder\.depth'"):
        FAM.parse_config(bad, "C.json")
    del bad["tokenizer_size_overrides"]["s2to1encoder"]
    bad["tokenizer"]["encoder_size"] = "huge"
    with pytest.raises(ConfigError, match=r"tokenizer\.encoder_size = 'huge' is not a ViT size"):
        FAM.build_tokenizer(bad)


def test_fixture_configs_parse():
    for p in fixture_sets("gigatok"):
        folder = require(p.values[0])
        cfg = json.loads((folder / "config.json").read_text())
        parsed = gigatok_config(FAM.parse_config(cfg, str(folder / "config.json")))
        assert parsed.tokenizer.num_latent_tokens == parsed.transformer.block_size == cfg["num_tokens"]


def test_multi_level_queries_by_hand():
    W, G = 3, 16
    mem = torch.randn(2, G * G, W, dtype=torch.float64)
    q = multi_level_queries(mem, G, 256)
    m = mem.transpose(1, 2).reshape(2, W, G, G)
    assert q.shape == (2, 256, W)
    torch.testing.assert_close(q[:, 0], m.mean((2, 3)))
    torch.testing.assert_close(q[:, 1], m.mean((2, 3)))
    torch.testing.assert_close(q[:, 2], m[:, :, :, :8].mean((2, 3)))       # left half
    torch.testing.assert_close(q[:, 3], m[:, :, :, 8:].mean((2, 3)))       # right half
    torch.testing.assert_close(q[:, 5], m[:, :, :8, 8:].mean((2, 3)))      # top-right quadrant
    torch.testing.assert_close(q[:, 128], m[:, :, 0:2, 0].mean(2))          # first 2-row x 1-column block
    torch.testing.assert_close(q[:, 255], m[:, :, 14:16, 15].mean(2))       # last one


def test_interfaces_positions_and_causality():
    folder = _fixture_folder()
    fs, tok, gpt, _, labels = _loaded(folder)
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok.family == gpt.family == "gigatok"
    tokens = fs.expected["tokens"]
    base = gpt.token_nll(tokens, labels)
    changed = tokens.clone()
    p = tokens.shape[1] // 2  # a middle position of this set's sequence
    changed[:, p] = (changed[:, p] + 1) % gpt.vocab_size
    nll = gpt.token_nll(changed, labels)
    assert torch.equal(nll[:, :p], base[:, :p]) and not torch.allclose(nll[:, p + 1:], base[:, p + 1:])
    with pytest.raises(ValueError, match="null/CFG class"):
        gpt.token_nll(tokens, torch.full_like(labels, gpt.num_classes))
    # the learned position table matters: dropping it changes every position by far more than the tolerance
    saved = gpt.positional_embedding.detach().clone()
    try:
        with torch.no_grad():
            gpt.positional_embedding.zero_()
        assert (gpt.token_nll(tokens, labels) - base).abs().max() > 1e-2
    finally:
        with torch.no_grad():
            gpt.positional_embedding.copy_(saved)


# --------------------------------------------------------------------------- CLI end to end


def test_cli_run_own_files_equals_fixture_bits(tmp_path, monkeypatch):
    folder = _fixture_folder()
    fs = FixtureSet(folder)
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    names = []
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        for c in range(fs.config["num_classes"]):
            (tmp_path / "data" / f"class{c:03d}").mkdir(parents=True, exist_ok=True)
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(tmp_path / "data" / rel)
        names.append(rel)
    r = CliRunner().invoke(app, [
        "run", "--family", "gigatok", "--config", str(folder / "config.json"), "--tokenizer", str(fs.tokenizer_path),
        "--transformer", str(fs.transformer_path), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
        "--device", "cpu", "--batch-size", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(tmp_path / "out"))}
    want = fs.expected["nll_bits"].double().tolist()
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fs.labels[i])
        assert abs(rows[rel]["bits"] - want[i]) <= 4e-5, (rel, rows[rel]["bits"], want[i])


def test_cli_models_lists_all_eight(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    got = {m["id"]: m for m in doc["models"] if m["family"] == "GigaTok"}
    assert sorted(got) == sorted(c.id for c in model_cards("gigatok")) and len(got) == 8
    assert got["gigatok-xxl-bl"]["params"] == 1_411_367_424 and got["gigatok-xxl-bl"]["group"] == "GigaTok B-L"
    assert {t["id"] for t in doc["tokenizers"]} >= {t.id for t in tokenizer_cards() if t.family == "gigatok"}


def test_bf16_autocast_and_chunks():
    folder = _fixture_folder()
    fs, tok, gpt, x, labels = _loaded(folder)
    tokens = fs.expected["tokens"]
    ref = gpt.token_nll(tokens, labels)
    for chunk in (1, 5):
        torch.testing.assert_close(gpt.token_nll(tokens, labels, chunk=chunk), ref, atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gpt.token_nll(tokens, labels)
        toks = tok.encode(x)  # the tokenizer always runs in fp32
    assert low.dtype == torch.float32 and torch.equal(toks, fs.expected["tokens"])
    torch.testing.assert_close(low, ref, atol=0.5, rtol=0.1)
    assert not torch.equal(low, ref)  # autocast really applied to the GPT
