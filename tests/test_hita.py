"""Hita family: official-code conformance, real-size manifests, cards, loading rules, numerics."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conformance_utils import (
    FixtureSet,
    assert_nll_matches,
    fixture_sets,
    manifests,
    optional_entry,
    optional_file,
    require,
)
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError, read_checkpoint
from visbpp.core.registry.checkpoints import MissingCheckpointError, files_for
from visbpp.models import get_family
from visbpp.models.hita import ConfigError, dino_input
from visbpp.models.hita.tokenizer import BACKBONE_PREFIX
from visbpp.models.hita.vit import _gaussian_taps, antialiased_bicubic
from visbpp.models.llamagen import center_crop_arr
from visbpp.models.llamagen.preprocess import to_model_input

FAM = get_family("hita")
DINO_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth"


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


# --------------------------------------------------------------------------- conformance fixtures


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_conformance_preprocess(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert torch.equal(x, fs.expected["x"])
    raw = fs.folder / "preprocess_raw.npy"
    if raw.exists():
        img = Image.fromarray(np.load(raw))
        assert np.array_equal(center_crop_arr(img, fs.config["image_size"]), fs.images[0])
        assert torch.equal(tok.preprocess(img), fs.expected["x"][0])


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_conformance_dino_branch(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    with torch.inference_mode():
        torch.testing.assert_close(tok.dino_features(x[:1]), fs.expected["dino_out0"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_conformance_dino_input_of_the_probe_image(folder):
    fs = FixtureSet(require(folder))
    probe = optional_file(fs.folder, "probe_image.npy", "the DINOv2 input preprocessing at the real resolution")
    want = optional_entry(fs, "probe_dino_input")
    with torch.inference_mode():
        x = to_model_input(np.load(probe))[None]  # 336 -> 224: blur + bicubic
        torch.testing.assert_close(dino_input(x), want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_conformance_tokens_latents_recon(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert tok.tokens_per_image == fs.expected["tokens"].shape[1] == fs.config["seq_len"]
    with torch.inference_mode():
        z, slots = tok.latents(x)
    torch.testing.assert_close(z, fs.expected["z"], atol=1e-4, rtol=0)
    torch.testing.assert_close(slots, fs.expected["slots_pre"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and torch.equal(tokens, fs.expected["tokens"])
    torch.testing.assert_close(tok.decode(fs.expected["tokens"]), fs.expected["recon"], atol=1e-3, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_conformance_nll_sampler_convention(folder):
    fs, _, gpt, _, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    nll = gpt.token_nll(tokens, labels)
    assert_nll_matches(nll, fs)
    with torch.inference_mode():
        torch.testing.assert_close(gpt(tokens[:1], labels[:1])[0], fs.expected["logits_first"], atol=1e-4, rtol=0)
    torch.testing.assert_close(gpt.freqs_cis(), fs.expected["freqs_cis"], atol=1e-6, rtol=0)
    # the training forward's convention is the one-line switch; it differs on every patch position
    train = gpt.token_nll(tokens, labels, trainpath=True)
    torch.testing.assert_close(train, fs.expected["token_nll_trainpath"], atol=1e-5, rtol=0)
    nc = gpt.num_slots
    assert torch.equal(train[:, :nc], nll[:, :nc]) and (train[:, nc:] - nll[:, nc:]).abs().min() > 0


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_weights_only_under_model_are_refused(folder, tmp_path):
    fs, tok, gpt, _, _ = _loaded(require(folder))
    only_model = tmp_path / "model_only.pt"
    torch.save({"model": gpt.state_dict()}, only_model)
    with pytest.raises(CheckpointError, match=r"model_only\.pt.*'ema'"):
        FAM.load_transformer(str(only_model), fs.config)
    tok_model = tmp_path / "tok_model_only.pt"
    torch.save({"model": {k: v for k, v in tok.state_dict().items() if not k.startswith(BACKBONE_PREFIX)}}, tok_model)
    with pytest.raises(CheckpointError, match=r"tok_model_only\.pt.*'ema'"):
        FAM.load_tokenizer(str(tok_model), _config(fs))


@pytest.mark.parametrize("folder", fixture_sets("hita"))
def test_decoy_model_entry_is_never_used(folder):
    fs, _, gpt, _, _ = _loaded(require(folder))
    ck = read_checkpoint(fs.transformer_path)
    decoy = ck.get("model")
    if not isinstance(decoy, dict) or torch.equal(decoy["output.weight"], ck["ema"]["output.weight"]):
        pytest.skip(f"{fs.transformer_path} holds no decoy 'model' entry beside 'ema' (optional in a set)")
    assert torch.equal(gpt.output.weight, ck["ema"]["output.weight"])
    assert not torch.equal(gpt.output.weight, decoy["output.weight"])


# --------------------------------------------------------------------------- the backbone extra file


def _fixture_folder() -> Path:
    return require(next((p.values[0] for p in fixture_sets("hita") if p.values[0] is not None), None))


def test_missing_backbone_names_the_file_and_the_option():
    fs = FixtureSet(_fixture_folder())
    with pytest.raises(MissingCheckpointError) as ei:
        FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    msg = str(ei.value)
    assert "backbone" in msg and DINO_URL in msg and "--extra backbone=PATH" in msg


def test_backbone_loads_strictly(tmp_path):
    fs = FixtureSet(_fixture_folder())
    bb = FAM.load_backbone(_config(fs)).state_dict()  # its container rule: a bare state dict
    bad = tmp_path / "no_registers.pt"
    torch.save({k: v for k, v in bb.items() if k != "register_tokens"}, bad)
    cfg = {**fs.config, "extra_files": {"backbone": str(bad)}}
    with pytest.raises(CheckpointError, match=r"no_registers\.pt.*missing.*register_tokens"):
        FAM.load_tokenizer(str(fs.tokenizer_path), cfg)
    # tokenizer weights given as the backbone
    cfg = {**fs.config, "extra_files": {"backbone": str(fs.tokenizer_path)}}
    with pytest.raises(CheckpointError, match="unexpected container|does not match"):
        FAM.load_tokenizer(str(fs.tokenizer_path), cfg)


def test_registered_tokenizers_carry_the_backbone_file():
    for tid in ("hita-v", "hita-u"):
        t = get_tokenizer_card(tid)
        (bb,) = t.extra_files
        assert bb.role == "backbone" and bb.url == DINO_URL and bb.container is None and bb.source_kind == "http"
    card = get_card("hita-u-b-50e")
    assert [f.role for f in files_for(card)] == ["transformer", "tokenizer", "backbone"]


# --------------------------------------------------------------------------- real-size manifests

TOKENIZER_FILES = {"vanilla/tokenizer/hita-tok.pt": "hita-v", "ultra/tokenizer/hita-ultra.pt": "hita-u"}


@pytest.mark.parametrize("manifest", manifests("hita"))
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    if m["file"] in TOKENIZER_FILES:
        tcard = get_tokenizer_card(TOKENIZER_FILES[m["file"]])
        mid = next(c.id for c in model_cards("hita") if c.tokenizer_id == tcard.id)
        with torch.device("meta"):
            module = FAM.build_tokenizer(FAM.config_for(mid))
        sd = {k: v for k, v in module.state_dict().items() if not k.startswith(BACKBONE_PREFIX)}
        assert {k: list(v.shape) for k, v in sd.items()} == m["state_dict"]
        n = sum(p.numel() for k, p in module.named_parameters() if not k.startswith(BACKBONE_PREFIX))
        assert n == m["params"] == tcard.params
        assert sum(v.numel() for v in sd.values()) == m["state_dict_numel"]
        bb = m["backbone"]
        assert bb["key_prefix"] == BACKBONE_PREFIX
        assert sum(p.numel() for p in module.backbone.parameters()) == bb["params"] == 304_372_736
        assert len(module.backbone.state_dict()) == bb["num_keys"]
        assert tcard.file.container == m["container"] == "ema" and tcard.file.url == m["url"]
        assert module.image_size == m["image_size"] == 336 and module.tokens_per_image == m["num_tokens"] == 569
    else:
        d = m["file"].split("/")[0]
        cards = [c for c in model_cards("hita") if c.files[0].filename == m["file"]]
        assert len(cards) == 1, m["file"]
        card = cards[0]
        assert card.tokenizer_id == {"vanilla": "hita-v", "ultra": "hita-u"}[d]
        with torch.device("meta"):
            module = FAM.build_transformer(FAM.config_for(card.id))
        assert {k: list(v.shape) for k, v in module.state_dict().items()} == m["state_dict"]
        assert sum(p.numel() for p in module.parameters()) == m["params"] == card.params
        assert sum(v.numel() for v in module.state_dict().values()) == m["state_dict_numel"]
        assert card.files[0].url == m["url"] and card.files[0].container == m["container"] == "ema"
        assert module.tokens_per_image == m["num_tokens"] == card.tokens_per_image == 569


# --------------------------------------------------------------------------- cards and pairing


def test_cards_cover_every_released_file():
    cards = model_cards("hita")
    assert len(cards) == 17
    assert sum(c.tokenizer_id == "hita-v" for c in cards) == 7 and sum(c.tokenizer_id == "hita-u" for c in cards) == 10
    for c in cards:
        assert c.files[0].filename.startswith({"hita-v": "vanilla/", "hita-u": "ultra/"}[c.tokenizer_id])
        assert c.resolution == 336 and "3*336*336" in c.notes and c.fid.source and c.rfid.value in (1.03, 0.57)
    # the 50-epoch rows of each tokenizer form its five-point family; other budgets their own groups
    for tok, n in (("v", 5), ("u", 5)):
        group = {fit_group(c) for c in cards if c.id.startswith(f"hita-{tok}-") and c.id.endswith("-50e")}
        assert len(group) == 1 and sum(fit_group(c) in group for c in cards) == n
    assert get_card("hita-v-l-300e").fid.value == 2.86 and "link text" in get_card("hita-v-l-300e").notes
    u2b = get_card("hita-u-2b-100e")
    assert u2b.fid.value == 1.82 and u2b.alt_fid[0].value == 1.69 and "without guidance" in u2b.alt_fid[0].protocol
    assert get_card("hita-v-2b-50e").params == 2_251_549_440 and not get_card("hita-v-2b-50e").alt_fid


def test_mismatched_tokenizer_is_refused():
    with torch.device("meta"):
        vanilla = FAM.build_tokenizer(FAM.config_for("hita-v-b-50e"))
        with pytest.raises(ConfigError, match="vanilla.*ultra|ultra.*vanilla"):
            FAM.build_transformer(FAM.config_for("hita-u-b-50e"), vanilla)
        FAM.build_transformer(FAM.config_for("hita-v-b-50e"), vanilla)  # its own pairing is fine
    cfg_v, cfg_u = FAM.config_for("hita-v-xl-50e"), FAM.config_for("hita-u-xl-50e")
    assert cfg_v["transformer"] == cfg_u["transformer"] and cfg_v["tokenizer"] != cfg_u["tokenizer"]


def test_config_parser_rejects_unknown_keys():
    cfg = FAM.config_for("hita-v-b-50e")
    cfg["transformer"]["n_layers"] = 12
    with pytest.raises(ConfigError, match=r"Hita config: unknown key 'transformer\.n_layers'"):
        FAM.build_transformer(cfg)
    cfg = FAM.config_for("hita-v-b-50e")
    cfg["tokenizer"]["backbone"]["interpolate_offset"] = 0.1
    with pytest.raises(ConfigError, match=r"tokenizer\.backbone\.interpolate_offset = 0\.1 is not supported"):
        FAM.build_tokenizer(cfg)
    cfg = FAM.config_for("hita-v-b-50e")
    cfg["bogus"] = 1
    with pytest.raises(ConfigError, match="'bogus'"):
        FAM.build_tokenizer(cfg)


def test_fixture_config_parses_and_errors_name_the_file_and_field(tmp_path):
    from visbpp.models.jobs import job_from_config

    fs = FixtureSet(_fixture_folder())
    assert FAM.parse_config(fs.config, "config.json") is fs.config
    for cid in ("hita-v-2b-50e", "hita-u-b-250e"):
        FAM.parse_config(FAM.config_for(cid), cid)

    def bad(edit):
        cfg = json.loads(json.dumps(fs.config))
        edit(cfg)
        return cfg

    enc = lambda c: c["tokenizer"]["transformer_config"]["encoder_config"]["params"]  # noqa: E731
    cases = [
        (lambda c: enc(c).update(n_carriers=8), r"unknown key 'tokenizer\.transformer_config\.encoder_config\.params\.n_carriers'"),
        (lambda c: c["transformer"].update(n_layer=2.5), r"transformer\.n_layer must be an integer"),
        (lambda c: c["tokenizer"]["backbone"].update(qkv_bias="true"), r"tokenizer\.backbone\.qkv_bias must be true or false"),
        (lambda c: c["transformer"].update(model_type="t2i"), r"transformer\.model_type = 't2i' is not supported"),
        (lambda c: c["transformer"].update(num_slots=9), r"transformer\.num_slots 9 != tokenizer n_carrier 8"),
        (lambda c: enc(c).update(in_channels=64), r"in_channels 64 != tokenizer\.backbone\.embed_dim 48"),
        (lambda c: c["tokenizer"].pop("backbone"), r"lacks the section tokenizer\.'backbone'"),
    ]
    for edit, msg in cases:
        with pytest.raises(ConfigError, match=r"^my\.json: .*" + msg):
            FAM.parse_config(bad(edit), "my.json")
    # `visbpp run --config`: refused before any work, naming the file and the field
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(bad(cases[0][0])))
    with pytest.raises(ConfigError, match=rf"{path}: unknown key .*n_carriers"):
        job_from_config("hita", str(path), str(fs.tokenizer_path), str(fs.transformer_path),
                        extras={"backbone": str(fs.folder / "backbone.pt")})


def test_interfaces():
    fs, tok, gpt, _, _ = _loaded(_fixture_folder())
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok.family == gpt.family == "hita" and f"S{fs.config['image_size']}" in tok.preprocess_id


# --------------------------------------------------------------------------- numerics by hand


def test_antialias_blur_taps_and_upscale_without_blur():
    taps = _gaussian_taps(336 / 224)  # sigma 0.25, 3 taps
    w = math.exp(-1 / (2 * 0.25**2))
    torch.testing.assert_close(taps, torch.tensor([w, 1.0, w]) / (1 + 2 * w))
    torch.manual_seed(0)
    small = torch.rand(1, 3, 64, 64)
    up = torch.nn.functional.interpolate(small, size=(224, 224), mode="bicubic", align_corners=True)
    assert torch.equal(antialiased_bicubic(small, 224), up)
    big = torch.rand(1, 3, 336, 336)
    plain = torch.nn.functional.interpolate(big, size=(224, 224), mode="bicubic", align_corners=True)
    assert (antialiased_bicubic(big, 224) - plain).abs().max() > 1e-4


def test_positions_split_between_slots_and_rope():
    _, _, gpt, _, labels = _loaded(_fixture_folder())
    fs = FixtureSet(_fixture_folder())
    tokens = fs.expected["tokens"].clone()
    nc = gpt.num_slots
    base = gpt.token_nll(tokens, labels)
    changed = tokens.clone()
    p = nc + (tokens.shape[1] - nc) // 2  # a middle patch position of this set
    changed[:, p] = (changed[:, p] + 1) % gpt.vocab_size
    nll = gpt.token_nll(changed, labels)
    assert torch.equal(nll[:, :p], base[:, :p]) and not torch.allclose(nll[:, p + 1:], base[:, p + 1:])
    # the holistic part alone scores the same as inside the full sequence (causal, slot positions only)
    torch.testing.assert_close(gpt.token_nll(tokens[:, :nc], labels), base[:, :nc], atol=1e-5, rtol=0)


def test_registered_job_resolves_the_backbone_like_a_checkpoint(tmp_path):
    from visbpp.models.jobs import job_for_card

    fs = FixtureSet(_fixture_folder())
    d = tmp_path / "ckpts"
    for rel, src in (("ultra/GPT-B/GPT-B-50e.pt", fs.transformer_path), ("ultra/tokenizer/hita-ultra.pt", fs.tokenizer_path)):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(src.read_bytes())
    with pytest.raises(MissingCheckpointError, match=r"dinov2_vitl14_reg4_pretrain\.pth \(backbone\) not found.*visbpp fetch hita-u-b-50e"):
        job_for_card("hita-u-b-50e", str(d))
    (d / "dinov2_vitl14_reg4_pretrain.pth").write_bytes((fs.folder / "backbone.pt").read_bytes())
    job = job_for_card("hita-u-b-50e", str(d))
    assert Path(job.checkpoints["backbone"]) == d / "dinov2_vitl14_reg4_pretrain.pth"
    # a different file at the backbone's place: refused by its first-seen checksum
    d2 = tmp_path / "ckpts2"
    d2.mkdir()
    for rel in ("ultra/GPT-B/GPT-B-50e.pt", "ultra/tokenizer/hita-ultra.pt"):
        (d2 / rel).parent.mkdir(parents=True, exist_ok=True)
        (d2 / rel).write_bytes((d / rel).read_bytes())
    bb = FAM.load_backbone(_config(fs)).state_dict()
    torch.save({k: v + 1 for k, v in bb.items()}, d2 / "dinov2_vitl14_reg4_pretrain.pth")
    from visbpp.core.registry.checkpoints import FetchError

    with pytest.raises(FetchError, match="sha256"):
        job_for_card("hita-u-b-50e", str(d2))
    # the backbone file is part of the token-cache key (other backbone, other tokens)
    from visbpp.models.jobs import tokenizer_key

    cfg = FAM.config_for("hita-u-b-50e")
    tok = str(d / "ultra/tokenizer/hita-ultra.pt")
    k1 = tokenizer_key("hita", tok, cfg, {"backbone": str(d / "dinov2_vitl14_reg4_pretrain.pth")})
    k2 = tokenizer_key("hita", tok, cfg, {"backbone": str(d2 / "dinov2_vitl14_reg4_pretrain.pth")})
    assert k1 != k2 and k1.startswith(tokenizer_key("hita", tok, cfg))


def test_bf16_autocast_cpu():
    fs, _, gpt, _, labels = _loaded(_fixture_folder())
    tokens = fs.expected["tokens"]
    ref = gpt.token_nll(tokens, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gpt.token_nll(tokens, labels)
    assert low.dtype == torch.float32
    assert (low.double().sum() - ref.double().sum()).abs() / ref.double().sum() < 0.02


def test_trainer_files_with_args_namespace_load_without_running_code(tmp_path):
    import argparse

    fs, _, gpt, _, labels = _loaded(_fixture_folder())
    ema = gpt.state_dict()
    raw = {k: v + 0.01 for k, v in ema.items()}  # the trainer's raw weights beside the EMA ones
    f = tmp_path / "GPT-B-50e.pt"
    torch.save({"model": raw, "ema": ema, "steps": 7, "args": argparse.Namespace(gpt_model="GPT-B", ema=True)}, f)
    again = FAM.load_transformer(str(f), fs.config)
    tokens = fs.expected["tokens"]
    assert torch.equal(again.token_nll(tokens, labels), gpt.token_nll(tokens, labels))


def test_trainer_file_that_calls_code_is_refused(tmp_path):
    import os

    fs, _, gpt, _, _ = _loaded(_fixture_folder())
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    f = tmp_path / "GPT-B-50e.pt"
    torch.save({"ema": gpt.state_dict(), "args": Payload()}, f)
    with pytest.raises(CheckpointError, match=r"GPT-B-50e\.pt.*refused to load"):
        FAM.load_transformer(str(f), fs.config)
    assert not marker.exists()


# --------------------------------------------------------------------------- seam: positions, layout, null class, cards


def test_patch_positions_use_the_shared_rope_and_attention():
    from visbpp.models import llama
    from visbpp.models.hita.gpt import SlotAttention

    fs, _, gpt, _, _ = _loaded(_fixture_folder())
    c = gpt.cfg
    assert isinstance(gpt.rope, llama.Rope2D) and gpt.rope.n_cls == 1
    assert torch.equal(gpt.freqs_cis(), llama.rope_2d_table(c.grid, c.head_dim, c.rope_base, 1))
    assert all(isinstance(b, llama.Block) and isinstance(b.attention, llama.Attention) for b in gpt.layers)
    # with zero slot positions, the slot attention is the shared attention with identity rotations on
    # the slot positions and the shared table after them
    torch.manual_seed(0)
    n, T = 5, 5 + c.block_size + 1
    ours = SlotAttention(c.dim, c.n_head, c.kv_heads)
    shared = llama.Attention(c.dim, c.n_head, c.kv_heads)
    shared.load_state_dict(ours.state_dict())
    x = torch.randn(2, T, c.dim)
    rope = gpt.rope("cpu")
    ident = torch.ones(n, rope.shape[1], dtype=rope.dtype)
    with torch.inference_mode():
        a = ours(x, (torch.zeros(n, c.dim), rope))
        b = shared(x, torch.cat([ident, rope]))
    assert torch.equal(a, b)


def test_layout_null_class_and_breakdown():
    import numpy as np

    from visbpp.core.analysis import breakdown as BD
    from visbpp.core.interfaces import TokenLayout
    from visbpp.core.labels import scoring_null_class
    from visbpp.core.store import token_store as TS

    fs, tok, gpt, _, labels = _loaded(_fixture_folder())
    L = tok.tokens_per_image
    assert gpt.token_layout == TokenLayout("raster", (1, L)) and gpt.token_layout.length == L
    # trained with label dropout: the null row is index num_classes (the fixture's class_embedding_rows - 1)
    assert gpt.null_class == gpt.num_classes == fs.config["derived"]["null_class_index"]
    assert gpt.cls_embedding.embedding_table.num_embeddings == fs.config["derived"]["class_embedding_rows"]
    tokens = fs.expected["tokens"]
    nll, parts, null = TS.score_batch(gpt, tokens, labels, unconditional=True)
    bits = (nll.double().sum(-1) / math.log(2)).numpy()
    np.testing.assert_allclose(bits, fs.expected["nll_bits"].numpy(), atol=4e-5, rtol=0)
    bd = BD.fold(parts, gpt.token_layout)
    np.testing.assert_allclose(bd.bits, bits, rtol=1e-12)
    assert bd.spatial.shape == (len(bits), 1, L)
    nulls = torch.full_like(labels, gpt.num_classes)
    with pytest.raises(ValueError, match="null"):
        gpt.token_nll(tokens, nulls)
    with scoring_null_class():
        direct = gpt.token_nll(tokens, nulls)
        with pytest.raises(ValueError, match="class labels"):
            gpt.token_nll(tokens, nulls + 1)
    np.testing.assert_array_equal(null, direct.numpy())
    assert not np.array_equal(null, parts)


def test_cards_arch_and_typed_fid_provenance():
    from visbpp.core.analysis.table import choose_fid

    for t in ("hita-v", "hita-u"):
        tc = get_tokenizer_card(t)
        assert type(tc.arch) is dict and set(tc.arch) == {"enable_vfm_recon"}
        (res, r), = tc.rfid
        assert res == 336 and r.guidance == "none" and r.eval_resolution == 256 and r.origin == "readme"
    for c in model_cards("hita"):
        assert type(c.arch) is dict and set(c.arch) == {"n_layer", "n_head", "dim"}
        assert c.fid.metric == "FID" and c.fid.guidance == "cfg (scale not stated)"
        assert c.fid.eval_resolution == 256 and c.fid.origin == "readme" and choose_fid(c, "readme") is c.fid
        assert c.rfid.guidance == "none" and c.rfid.eval_resolution == 256
        free = choose_fid(c, "noguidance")
        if c.tokenizer_id == "hita-v":  # the README's CFG-free table has Hita-U rows only
            assert free is None and not c.alt_fid
        else:
            assert free is c.alt_fid[0] and free.eval_resolution == 256 and free.origin == "readme"
    assert choose_fid(get_card("hita-u-l-250e"), "noguidance").value == 2.46
    assert get_card("hita-v-2b-50e").arch == {"n_layer": 48, "n_head": 32, "dim": 1920}
