"""RAR family (MaskGIT-VQGAN and RobusTok tokenizers): official-code conformance, real-size manifests,
loading errors, config parsing, end-to-end CLI, cards and the analysis group.

Fixture sets: every folder named ``rar`` or ``rar-*`` (``conformance_utils.fixture_sets("rar")``); each
set's ``config.json`` names its variant in ``family`` (``rar`` = MaskGIT-VQGAN, ``rar-robusttok`` =
RobusTok), and the family's single config parser picks the tokenizer from that field.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conformance_utils import FixtureSet, conformance_root, fixture_sets, optional_entry, optional_file, require
from rar_variant import maskgit_shapes, rar_shapes
from visbpp.core.errors import DataError
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer, TokenLayout
from visbpp.core.labels import scoring_null_class
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards, tokenizer_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.llamagen.preprocess import center_crop_arr
from visbpp.models.rar import ConfigError, MaskGITTokenizer, RobusTokTokenizer, typed_config
from visbpp.models.rar.family import ROBUSTTOK_DROP, ROBUSTTOK_DROP_PREFIXES

FAM = get_family("rar")
SETS = fixture_sets("rar")

# Exact parameter counts from the spec (sections 1 and 9.1).
SPEC_PARAMS = {
    ("yucornetto/RAR", "rar_b.bin"): 260_923_648,
    ("yucornetto/RAR", "rar_l.bin"): 461_668_352,
    ("yucornetto/RAR", "rar_xl.bin"): 955_425_024,
    ("yucornetto/RAR", "rar_xxl.bin"): 1_498_520_704,
    ("qiuk6/RobusTok", "rar_b.bin"): 265_645_312,
    ("qiuk6/RobusTok", "rar_l.bin"): 467_962_880,
    ("fun-research/TiTok", "maskgit-vqgan-imagenet-f16-256.bin"): 54_515_587,
}


# --------------------------------------------------------------------------- conformance fixtures


@lru_cache(maxsize=None)
def _loaded(folder: Path):
    fs = FixtureSet(folder)
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    gen = FAM.load_transformer(str(fs.transformer_path), fs.config, tok)
    return fs, tok, gen, torch.from_numpy(fs.labels).long()


@pytest.mark.parametrize("folder", SETS)
def test_conformance_variant_and_preprocess(folder):
    fs, tok, _, _ = _loaded(require(folder))
    assert FAM.parse_config(fs.config, str(fs.folder / "config.json")) is fs.config
    variant = typed_config(fs.config).variant
    assert variant == {"rar": "maskgit", "rar-robusttok": "robusttok"}[fs.config["family"]]
    assert isinstance(tok, MaskGITTokenizer if variant == "maskgit" else RobusTokTokenizer)
    x = torch.stack([tok.preprocess(Image.fromarray(a)) for a in fs.images])
    assert torch.equal(x, fs.expected["x"])
    S = fs.config["image_size"]
    assert str(S) in tok.preprocess_id
    if variant == "maskgit":  # the evaluation transform (bicubic short side, rounded centre crop), [0, 1]
        assert "short" in tok.preprocess_id and "[0,1]" in tok.preprocess_id
        assert float(x.min()) >= 0.0
    else:  # ADM centre crop, [-1, 1]
        assert "center_crop_arr" in tok.preprocess_id
        assert float(x.min()) < 0.0
    raw = Image.fromarray(np.load(optional_file(fs.folder, "preprocess_raw.npy", "a raw picture for the transforms")))
    assert np.array_equal(center_crop_arr(raw, S), optional_entry(fs, "preprocess_adm").numpy())
    want = optional_entry(fs, "preprocess_val") if variant == "maskgit" else fs.expected["x"][0]
    assert torch.equal(tok.preprocess(raw), want)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_tokens_and_recon(folder):
    fs, tok, _, _ = _loaded(require(folder))
    x = fs.expected["x"]
    with torch.inference_mode():
        z = tok.latent(x)
    torch.testing.assert_close(z, fs.expected["z"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and tok.tokens_per_image == tokens.shape[1]
    assert torch.equal(tokens, fs.expected["tokens"])
    recon = tok.decode(fs.expected["tokens"])
    if "recon_raw" in fs.expected:  # MaskGIT-VQGAN: the official decode clamps to [0, 1]
        torch.testing.assert_close(recon, fs.expected["recon_raw"], atol=1e-4, rtol=0)
        torch.testing.assert_close(recon.clamp(0, 1), fs.expected["recon"], atol=1e-4, rtol=0)
    else:
        torch.testing.assert_close(recon, fs.expected["recon"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_nll(folder):
    fs, _, gen, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    assert torch.equal(gen.condition_ids(labels), fs.expected["condition_ids"])
    nll = gen.token_nll(tokens, labels)
    assert nll.dtype == torch.float32 and nll.shape == tokens.shape
    assert (nll - fs.expected["token_nll"]).abs().max() <= 1e-5
    bits = nll.double().sum(-1) / math.log(2)
    assert (bits - fs.expected["nll_bits"]).abs().max() <= 4e-5
    with torch.inference_mode():
        logits = gen(tokens[:1], labels[:1])[0]
    torch.testing.assert_close(logits, fs.expected["logits_first"], atol=1e-4, rtol=0)
    for chunk in (1, 5):
        torch.testing.assert_close(gen.token_nll(tokens, labels, chunk=chunk), nll, atol=1e-5, rtol=0)


@pytest.mark.parametrize("folder", SETS)
def test_teacher_forcing_is_causal_and_class_conditional(folder):
    fs, _, gen, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    base = gen.token_nll(tokens, labels)
    changed = tokens.clone()
    p = tokens.shape[1] // 2  # a middle position of this set's sequence
    changed[:, p] = (changed[:, p] + 1) % gen.vocab_size
    nll = gen.token_nll(changed, labels)
    assert torch.equal(nll[:, :p], base[:, :p])
    assert not torch.allclose(nll[:, p:], base[:, p:])
    other = gen.token_nll(tokens, (labels + 1) % gen.num_classes)
    assert not torch.allclose(other[:, 0], base[:, 0])
    null = torch.full_like(labels, gen.num_classes)
    with pytest.raises(DataError, match="null/CFG class"):
        gen.token_nll(tokens, null)
    with pytest.raises(DataError, match="labels must lie in"):
        gen.token_nll(tokens, torch.full_like(labels, -1))
    # the null row (id C + K + 1, label dropout / CFG) is scored only on explicit request
    assert gen.null_class == gen.num_classes == fs.config["num_classes"]
    with scoring_null_class():
        assert int(gen.condition_ids(null[:1])) == gen.num_classes + gen.vocab_size + 1
        uncond = gen.token_nll(tokens, null)
    assert not torch.allclose(uncond, base)
    g = math.isqrt(gen.tokens_per_image)
    assert gen.token_layout == TokenLayout("raster", tuple(fs.config["token_grid"])) == TokenLayout("raster", (g, g))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gen.token_nll(tokens, labels)
    assert low.dtype == torch.float32 and (low.double().sum() - base.double().sum()).abs() / base.double().sum() < 0.02


# --------------------------------------------------------------------------- real-size manifests


def _all_manifests() -> list:
    root = conformance_root()
    out = [pytest.param(p, id=f"{p.parent.parent.name}/{p.stem}")
           for d in sorted(root.glob("rar*")) if d.name == "rar" or d.name.startswith("rar-")
           for p in sorted((d / "keys").glob("*.json"))] if root.is_dir() else []
    return out or [pytest.param(None, id="rar-no-manifests")]


def _repo(url: str) -> str:
    return url.split("huggingface.co/")[1].split("/resolve/")[0]


@pytest.mark.parametrize("manifest", _all_manifests())
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    want = m["state_dict"]
    tcards = [t for t in tokenizer_cards() if t.file.url == m["url"]]
    if tcards:
        tcard = tcards[0]
        users = [c for c in model_cards("rar") if c.tokenizer_id == tcard.id]
        # post-train.pt (used by no card, listed for its FIDs) has main-train.pt's architecture
        base = "robusttok-main-train" if tcard.id == "robusttok-post-train" else tcard.id
        users = users or [c for c in model_cards("rar") if c.tokenizer_id == base]
        with torch.device("meta"):
            module = FAM.build_tokenizer(FAM.config_for(users[0].id))
        got = {k: list(v.shape) for k, v in module.state_dict().items()}
        dropped = {k: v for k, v in want.items()
                   if k in ROBUSTTOK_DROP or k.startswith(ROBUSTTOK_DROP_PREFIXES)}
        if isinstance(module, MaskGITTokenizer):
            assert not dropped and m["container"] is None is tcard.file.container
        else:  # training checkpoint: only the semantic model and the usage buffer are not inference keys
            assert set(dropped) == {"quantize.ema_vocab_hit_SV"} | {k for k in want if k.startswith("semantic_model.")}
            assert "ema" in m["container"] and tcard.file.container == "ema"
        assert got == {k: v for k, v in want.items() if k not in dropped}
        n = sum(p.numel() for p in module.parameters())
        assert n == tcard.params
        if isinstance(module, MaskGITTokenizer):
            assert n == m["params"] == SPEC_PARAMS[(_repo(m["url"]), m["file"])]
        else:
            semantic = sum(math.prod(v) for k, v in dropped.items() if k.startswith("semantic_model."))
            assert n + semantic == m["params"]
        assert sum(v.numel() for v in module.state_dict().values()) + sum(math.prod(v) for v in dropped.values()) \
            == m["state_dict_numel"]
        return
    cards = [c for c in model_cards("rar") if c.files[0].url == m["url"]]
    assert len(cards) == 1, f"exactly one RAR card must use {m['url']}"
    card = cards[0]
    cfg = FAM.config_for(card.id)
    with torch.device("meta"):
        module = FAM.build_transformer(cfg)
    assert {k: list(v.shape) for k, v in module.state_dict().items()} == want
    n = sum(p.numel() for p in module.parameters())
    assert n == card.params == m["params"] == SPEC_PARAMS[(_repo(m["url"]), m["file"])]
    assert m["container"] is None is card.files[0].container
    assert module.tokens_per_image == card.tokens_per_image and module.vocab_size == card.codebook_size
    assert cfg["transformer"]["model.generator"]["hidden_size"] == m["config"]["hidden_size"]


# --------------------------------------------------------------------------- size-dependent counts


@pytest.mark.parametrize("n_res", [1, 3])
def test_size_dependent_counts_follow_the_official_formulas(n_res):
    # the official key/shape formulas are written in rar_variant.py (from the upstream classes, not from visbpp);
    # a MaskGIT-VQGAN with num_res_blocks 1 or 3 (the released one has 2) and a generator whose MLP width rounds:
    # int(44 * (98 / 44)) = 97
    cfg = FAM.config_for("rar-b")
    cfg["tokenizer"].update(hidden_channels=32, channel_mult=[1, 2, 2], num_resolutions=3, num_res_blocks=n_res,
                            z_channels=8, resolution=32)
    cfg["tokenizer_quantizer"].update(num_embeddings=50, embedding_dim=8)
    cfg["transformer"]["model.generator"].update(hidden_size=44, num_hidden_layers=2, num_attention_heads=4,
                                                 intermediate_size=98, image_seq_len=64, condition_num_classes=7)
    cfg["transformer"]["model.vq_model.codebook_size"] = 50
    cfg.update(image_size=32, num_classes=7, downsample=4, token_grid=[8, 8], seq_len=64)
    assert int(44 * (98 / 44)) == 97 != 98
    with torch.device("meta"):
        tok = FAM.build_tokenizer(cfg)
        gen = FAM.build_transformer(cfg, tok)
    assert {k: list(v.shape) for k, v in tok.state_dict().items()} == maskgit_shapes(32, [1, 2, 2], n_res, 8, 50)
    assert {k: list(v.shape) for k, v in gen.state_dict().items()} == rar_shapes(44, 2, 4, 98, 64, 7, 50)
    assert gen.blocks[0].mlp.fc1.out_features == 97
    # the released sizes: the formulas give the manifests' shapes (checked against the files' keys above)
    real = FAM.config_for("rar-xxl")
    with torch.device("meta"):
        tok, gen = FAM.build_tokenizer(real), FAM.build_transformer(real)
    assert {k: list(v.shape) for k, v in tok.state_dict().items()} == maskgit_shapes(128, [1, 1, 2, 2, 4], 2, 256, 1024)
    assert {k: list(v.shape) for k, v in gen.state_dict().items()} == rar_shapes(1408, 40, 16, 6144, 256, 1000, 1024)


def test_inconsistent_tokenizer_sizes_are_config_errors():
    cfg = FAM.config_for("rar-b")
    cfg["tokenizer"]["hidden_channels"] = 40
    with pytest.raises(ConfigError, match=r"multiples of 32 .*\[40, 80\]"):
        FAM.parse_config(cfg)
    rt = FAM.config_for("robusttok-rar-b")
    rt["tokenizer"]["fixture_vit_override"] = {"img_size": 64, "patch_size": 16}
    rt["tokenizer"]["ModelArgs"].update(num_latent_tokens=16, v_patch_nums=[4])
    rt["transformer"]["model.generator"]["image_seq_len"] = 16
    rt.update(image_size=64, seq_len=16, token_grid=[4, 4])
    with pytest.raises(ConfigError, match="patch_size\\^2 \\+ 1 image-side entries"):
        FAM.parse_config(rt)


# --------------------------------------------------------------------------- loading errors


def _set(name: str) -> FixtureSet:
    folder = conformance_root() / name
    return FixtureSet(require(folder if folder.is_dir() else None))


def test_llamagen_file_given_as_rar_is_rejected(tmp_path):
    fs = _set("rar")
    other = conformance_root() / "llamagen" / "transformer.pt"
    if not other.exists():
        require(None)
    with pytest.raises(CheckpointError, match=r"expected a bare state dict.*\[model\]"):
        FAM.load_transformer(str(other), fs.config)
    bare = tmp_path / "llamagen_bare.pt"
    torch.save(torch.load(other, weights_only=True)["model"], bare)
    with pytest.raises(CheckpointError) as ei:
        FAM.load_transformer(str(bare), fs.config)
    msg = str(ei.value)
    assert str(bare) in msg and "missing" in msg and "cls_token" in msg and "unexpected" in msg
    with pytest.raises(CheckpointError, match="MaskGIT-VQGAN tokenizer file"):
        FAM.load_transformer(str(fs.tokenizer_path), fs.config)
    with pytest.raises(CheckpointError, match="RAR generator file"):
        FAM.load_tokenizer(str(fs.transformer_path), fs.config)


def test_robusttok_container_errors(tmp_path):
    fs = _set("rar-robusttok")
    obj = torch.load(fs.tokenizer_path, weights_only=False)  # the fixture is trusted test data
    assert isinstance(obj["args"], argparse.Namespace)
    no_ema = tmp_path / "no_ema.pt"
    torch.save({"model": obj["model"], "args": obj["args"]}, no_ema)
    with pytest.raises(CheckpointError, match=r"no_ema\.pt.*'model' and 'ema'"):
        FAM.load_tokenizer(str(no_ema), fs.config)
    bad_ema = tmp_path / "bad_ema.pt"
    torch.save({**obj, "ema": {k: v for k, v in obj["ema"].items() if k != "quant_conv.bias"}}, bad_ema)
    with pytest.raises(CheckpointError, match=r"bad_ema\.pt.*missing.*quant_conv\.bias"):
        FAM.load_tokenizer(str(bad_ema), fs.config)
    other_raw = tmp_path / "other_raw.pt"  # the official loader loads 'model' strictly too
    torch.save({**obj, "model": {k: v for k, v in obj["model"].items() if k != "quant_conv.bias"}}, other_raw)
    with pytest.raises(CheckpointError, match=r"other_raw\.pt.*raw 'model' weights.*quant_conv\.bias"):
        FAM.load_tokenizer(str(other_raw), fs.config)

    marker = tmp_path / "ran"

    class Evil:  # a pickle that calls a function: refused by core's reader, never run
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pt"
    torch.save({**obj, "args": Evil()}, evil)
    with pytest.raises(CheckpointError, match="refused to load"):
        FAM.load_tokenizer(str(evil), fs.config)
    assert not marker.exists()
    # the raw 'model' weights alone would give other tokens: the loader must end on the EMA weights
    raw_only = tmp_path / "raw_only.pt"
    torch.save({**obj, "ema": obj["model"]}, raw_only)
    tok = FAM.load_tokenizer(str(raw_only), fs.config)
    assert not torch.equal(tok.encode(fs.expected["x"]), fs.expected["tokens"])


def test_truncated_file_is_rejected(tmp_path):
    fs = _set("rar")
    bad = tmp_path / "truncated.bin"
    bad.write_bytes(fs.transformer_path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.bin"):
        FAM.load_transformer(str(bad), fs.config)


# --------------------------------------------------------------------------- configs


def test_config_parser_rejects_unknown_and_inconsistent_keys():
    cfg = FAM.config_for("rar-b")
    assert typed_config(cfg).generator.hidden_size == 768
    gen = cfg["transformer"]["model.generator"]
    with pytest.raises(ConfigError, match=r"C\.json: unknown key 'transformer\.model\.generator\.hiden_size'"):
        FAM.parse_config({**cfg, "transformer": {**cfg["transformer"], "model.generator": {**gen, "hiden_size": 1}}},
                         "C.json")
    with pytest.raises(ConfigError, match=r"C\.json: transformer\.model\.generator\.hidden_size must be an integer"):
        FAM.parse_config({**cfg, "transformer": {**cfg["transformer"], "model.generator": {**gen, "hidden_size": 76.8}}},
                         "C.json")
    with pytest.raises(ConfigError, match="C.json: RAR config lacks 'transformer.model.generator.num_hidden_layers'"):
        FAM.parse_config({**cfg, "transformer": {**cfg["transformer"], "model.generator": {
            k: v for k, v in gen.items() if k != "num_hidden_layers"}}}, "C.json")
    with pytest.raises(ConfigError, match="unknown key 'extra'"):
        FAM.parse_config({**cfg, "extra": 1})
    with pytest.raises(ConfigError, match="'rar' .* or 'rar-robusttok'"):
        FAM.parse_config({k: v for k, v in cfg.items() if k != "family"})
    with pytest.raises(ConfigError, match="codebook_size 4096 != tokenizer codebook size 1024"):
        FAM.parse_config({**cfg, "transformer": {**cfg["transformer"], "model.vq_model.codebook_size": 4096}})
    with pytest.raises(ConfigError, match="image_seq_len 256 does not match"):
        FAM.parse_config({**cfg, "image_size": 512})
    rt = FAM.config_for("robusttok-rar-l")
    assert typed_config(rt).variant == "robusttok" and typed_config(rt).generator.hidden_size == 1024
    with pytest.raises(ConfigError, match="unknown key 'tokenizer_quantizer'"):  # a MaskGIT section in a RobusTok config
        FAM.parse_config({**rt, "tokenizer_quantizer": cfg["tokenizer_quantizer"]})
    rt["tokenizer"]["ModelArgs"]["codebook_l2_norm"] = False
    with pytest.raises(ConfigError, match="codebook_l2_norm"):
        FAM.parse_config(rt)
    with pytest.raises(KeyError, match="not a RAR model"):
        FAM.config_for("llamagen-b-256")


def test_interfaces():
    fs, tok, gen, _ = _loaded(require(SETS[0].values[0]))
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gen, ARModel)
    assert tok.family == gen.family == "rar"
    for module in (tok, gen):  # what build_and_load hands out
        assert not module.training and all(p.dtype == torch.float32 and not p.requires_grad
                                           for p in module.parameters())


def test_eval_transform_by_hand():
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (300, 451, 3), dtype=np.uint8))
    with torch.device("meta"):
        tok = FAM.build_tokenizer(FAM.config_for("rar-b"))
    x = tok.preprocess(img.convert("L"))  # any mode -> RGB
    assert x.shape == (3, 256, 256) and x.dtype == torch.float32
    # shorter side 300 -> 256, longer int(256 * 451 / 300) = 384; left = round((384 - 256) / 2) = 64
    ref = np.asarray(img.resize((384, 256), Image.BICUBIC))[:, 64:320]
    assert torch.equal(tok.preprocess(img), torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255)


# --------------------------------------------------------------------------- end to end, cards, analysis


@pytest.mark.parametrize("folder", SETS)
def test_end_to_end_cli_bits_equal_fixture(folder, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from visbpp.core.store import results as R
    from visbpp.tui.cli import app

    fs = FixtureSet(require(folder))
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    data = tmp_path / "data"
    names = []
    for i, (a, lab) in enumerate(zip(fs.images, fs.labels)):
        (data / f"class{int(lab):03d}").mkdir(parents=True, exist_ok=True)
        for c in range(int(fs.config["num_classes"])):
            (data / f"class{c:03d}").mkdir(exist_ok=True)
        rel = f"class{int(lab):03d}/img{i}.png"
        Image.fromarray(a).save(data / rel)
        names.append(rel)
    r = CliRunner().invoke(app, ["run", "--family", "rar", "--config", str(fs.folder / "config.json"),
                                 "--tokenizer", str(fs.tokenizer_path), "--transformer", str(fs.transformer_path),
                                 "--data", str(data), "--out", str(tmp_path / "out"), "--device", "cpu",
                                 "--batch-size", "3", "--quiet"])
    assert r.exit_code == 0, r.output
    rows = {row["image"]: row for row in R.read_rows(str(tmp_path / "out"))}
    want = fs.expected["nll_bits"].double().tolist()
    for i, rel in enumerate(names):
        assert rows[rel]["label"] == int(fs.labels[i])
        assert abs(rows[rel]["bits"] - want[i]) <= 4e-5, (rel, rows[rel]["bits"], want[i])


def test_models_command_lists_the_rar_models():
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    ids = [c.id for c in model_cards("rar")]
    assert ids == ["rar-b", "rar-l", "rar-xl", "rar-xxl", "rear-s", "rear-b", "rear-l", "robusttok-rar-b", "robusttok-rar-l"]
    for mid in ids:
        assert mid in r.output


def test_cards_groups_and_sources():
    rar = [get_card(f"RAR-{s}") for s in ("B", "L", "XL", "XXL")]
    assert {fit_group(c) for c in rar} == {"RAR"}
    assert [c.fid.value for c in rar] == [1.95, 1.70, 1.50, 1.48]
    assert all("README_RAR.md" in c.fid.source and "guidance scale" in c.fid.protocol for c in rar)
    assert [c.fid.guidance for c in rar] == ["cfg 16.0", "cfg 15.5", "cfg 6.9", "cfg 8.0"]
    assert all((c.fid.origin, c.fid.eval_resolution, c.fid.metric) == ("readme", 256, "FID") for c in rar)
    assert rar[0].rfid.value == 2.28 and "third-party" in rar[0].rfid.source
    assert (rar[0].rfid.origin, rar[0].rfid.guidance) == ("third-party", "none")
    rt = [get_card("robusttok-rar-b"), get_card("RobusTok RAR-L")]
    assert {fit_group(c) for c in rt} == {"RobusTok-RAR"}
    assert [(c.fid.value, c.alt_fid[0].value) for c in rt] == [(1.83, 1.60), (1.60, 1.36)]
    assert [(c.fid.guidance, c.alt_fid[0].guidance) for c in rt] == [("cfg 6.0", "cfg 6.0"), ("cfg 6.75", "cfg 6.75")]
    assert all(type(c.arch) is dict and type(get_tokenizer_card(c.tokenizer_id).arch) is dict for c in rar + rt)
    assert all(c.tokenizer_id == "robusttok-main-train" and c.rfid is None for c in rt)
    assert get_tokenizer_card("robusttok-post-train").file.filename == "post-train.pt"
    # same file names, different models: cached by hosting repository
    assert rt[0].files[0].filename == rar[0].files[0].filename
    assert rt[0].files[0].cache_relpath != rar[0].files[0].cache_relpath


def test_analysis_fits_the_rar_group():
    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.table import merged_table

    bpp = {"rar-b": 0.0101, "rar-l": 0.0098, "rar-xl": 0.0095, "rar-xxl": 0.0094}
    # measured as the published table's BPPs were (paper preprocessing, all of ImageNet val), so the global fit
    # does not mix protocols
    whole_val = {"n_classes": 1000, "n_selected": 50000}
    measured = [{"model_id": k, "bpp": v, "n_images": 50000, "run_id": f"r{i}", "preprocess": "paper",
                 "subset": whole_val} for i, (k, v) in enumerate(bpp.items())]
    df = merged_table(measured, model_set="all")
    rows = df[df["group"] == "RAR"]
    assert sorted(rows["model_id"]) == sorted(bpp) and set(rows["bpp_source"]) == {"measured"}
    res = analyze(df)
    g = next(g for g in res.groups if g.group == "RAR")
    assert g.fitted and g.n == 4
    import statsmodels.api as sm

    order = list(bpp)
    X = sm.add_constant(np.array([bpp[k] for k in order]))
    y = np.array([get_card(k).fid.value for k in order])
    slope = sm.OLS(y, X).fit().params[1]
    assert g.to_dict()["slope"] == pytest.approx(slope, rel=1e-9)


def test_cli_bad_config_fails_before_any_work(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    fs = _set("rar-robusttok")
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    bad = json.loads((fs.folder / "config.json").read_text())
    bad["tokenizer"]["ModelArgs"]["codebok_size"] = 1
    cfg = tmp_path / "C.json"
    cfg.write_text(json.dumps(bad))
    (tmp_path / "data" / "c0").mkdir(parents=True)
    Image.fromarray(fs.images[0]).save(tmp_path / "data" / "c0" / "a.png")
    r = CliRunner().invoke(app, ["run", "--family", "rar", "--config", str(cfg), "--tokenizer", str(fs.tokenizer_path),
                                 "--transformer", str(fs.transformer_path), "--data", str(tmp_path / "data"),
                                 "--device", "cpu", "--quiet"])
    assert r.exit_code == 2
    assert str(cfg) in r.output and "unknown key 'tokenizer.ModelArgs.codebok_size'" in r.output
    assert not (tmp_path / "home" / "runs").exists()
