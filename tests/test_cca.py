"""CCA fine-tunes of LlamaGen and VAR: cards, key manifests (= the base models'), the file layouts the
fine-tuning code writes, and scoring of the conformance models re-saved in those layouts."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from conformance_utils import FixtureSet, conformance_root, fixture_sets, require
from visbpp.core.registry import catalog
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family

LG = get_family("llamagen")
VAR = get_family("var")

CCA_IDS = ["cca-llamagen-b-384", "cca-llamagen-l-384", "cca-llamagen-xl-384", "cca-llamagen-xxl-384",
           "cca-llamagen-3b-384", "cca-var-d16", "cca-var-d20", "cca-var-d24", "cca-var-d30"]
# CCA README, model zoo, "FID (w/o CFG)".
README_FID = dict(zip(CCA_IDS, (7.04, 3.43, 3.10, 3.12, 2.69, 4.03, 3.02, 2.63, 2.54)))


def _cca_cards():
    return [c for c in catalog.model_cards() if c.base_model]


# --------------------------------------------------------------------------- cards

def test_cards_and_their_bases():
    cards = _cca_cards()
    assert [c.id for c in cards] == CCA_IDS
    for c in cards:
        base = catalog.get_card(c.base_model)
        assert c.family == base.family and base.base_model is None
        assert (c.params, c.resolution, c.tokenizer_id, c.tokens_per_image, dict(c.arch)) == \
               (base.params, base.resolution, base.tokenizer_id, base.tokens_per_image, dict(base.arch))
        assert c.fid.value == README_FID[c.id] and c.fid.guidance == "none" and c.fid.origin == "readme"
        assert "CCA README" in c.fid.source and c.fid.eval_resolution == 256
        assert not c.in_published_table and c.reference_bpp is None
        tok = catalog.get_tokenizer_card(c.tokenizer_id)
        assert c.rfid == dict(tok.rfid)[c.resolution]     # the base tokenizer's rFID at the model's resolution
        group = "CCA-VAR" if c.family == "var" else "CCA-LlamaGen-384"
        assert catalog.fit_group(c) == group
        f = c.files[0]
        assert f.repo == ("hf:ChenDRAG/CCA_VAR" if c.family == "var" else "hf:ChenDRAG/CCA_LlamaGen")
        assert f.url == f"https://huggingface.co/{f.repo[3:]}/resolve/main/{f.filename}"
    assert catalog.get_card("LlamaGen-3B+CCA").id == "cca-llamagen-3b-384"
    assert catalog.get_card("VAR-d30+CCA").id == "cca-var-d30"
    # file names and containers as the fine-tuning code writes them
    files = {c.id: (c.files[0].filename, c.files[0].container) for c in cards}
    assert files["cca-llamagen-b-384"] == ("CCA_LlamaGen_Guidance_Free/c2i_B_384_CCA_0005000.pt", "model")
    assert files["cca-llamagen-xl-384"] == ("CCA_LlamaGen_Guidance_Free/c2i_XL_384_CCA_0005000.pt", "model")
    assert files["cca-llamagen-xxl-384"] == ("CCA_LlamaGen_Guidance_Free/c2i_XXL_384_CCA_0005000.pt", None)
    assert files["cca-llamagen-3b-384"] == ("CCA_LlamaGen_Guidance_Free/c2i_3B_384_CCA_0005000.pt", None)
    assert files["cca-var-d24"] == ("CCA_VAR_Guidance_Free/VAR_d24_CCA.pth", None)


@pytest.mark.parametrize("mid", CCA_IDS)
def test_config_is_the_base_config(mid):
    card = catalog.get_card(mid)
    fam = get_family(card.family)
    cfg, base = fam.config_for(mid), fam.config_for(card.base_model)
    if card.family == "llamagen":
        assert cfg["transformer_container"] == card.files[0].container
        for k in ("model_id", "transformer_container"):
            cfg.pop(k), base.pop(k)
    assert cfg == base


# --------------------------------------------------------------------------- key manifests

@pytest.mark.parametrize("mid", CCA_IDS)
def test_manifest_equals_the_base_files(mid):
    """CCA files have the base model's keys: the card's modules, built on meta, match the base manifest."""
    card = catalog.get_card(mid)
    base = catalog.get_card(card.base_model)
    path = conformance_root() / card.family / "keys" / f"{base.files[0].filename}.json"
    m = json.loads(require(path if path.is_file() else None).read_text())
    fam = get_family(card.family)
    with torch.device("meta"):
        module = fam.build_transformer(fam.config_for(mid))
    sd = module.state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == m["state_dict"]
    n = sum(p.numel() for p in module.parameters())
    assert n == m["params"] == card.params
    if "buffers" in m:
        assert sorted(k for k, _ in module.named_buffers()) == sorted(m["buffers"])


# --------------------------------------------------------------------------- file layouts (tiny modules)

def _tiny_llamagen():
    cfg = copy.deepcopy(LG.config_for("cca-llamagen-b-384"))
    cfg["tokenizer"]["codebook_size"] = 64
    cfg["transformer"].update(dim=64, n_layer=2, n_head=4, vocab_size=64)
    torch.manual_seed(0)
    return cfg, LG.build_transformer(cfg)


def _tiny_var():
    cfg = copy.deepcopy(VAR.config_for("cca-var-d16"))
    pn = [1, 2, 3]
    cfg["tokenizer"].update(ch=32, v_patch_nums=pn)
    cfg["transformer"].update(depth=2, embed_dim=64, num_heads=2, patch_nums=pn)
    cfg.update(patch_nums=pn, image_size=48, tokens_per_image=14)
    torch.manual_seed(0)
    tok = VAR.build_tokenizer(cfg)
    model = VAR.build_transformer(cfg, tok)
    for p in model.parameters():  # away from the initialisation, so a wrong tensor cannot pass by chance
        p.data.add_(0.01 * torch.randn_like(p))
    return cfg, tok, model


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k].float(), sb[k].float()), k


def _noisy(sd: dict) -> dict:
    return {k: (v + 1.0 if v.is_floating_point() else v) for k, v in sd.items()}


def test_llamagen_ddp_layout_model_and_ema(tmp_path):
    """B/L/XL fine-tunes: {"model": sd} plus "ema" when trained with EMA; the samplers score "model"."""
    cfg, model = _tiny_llamagen()
    sd = model.state_dict()
    for name, obj in (("plain", {"model": sd}), ("with_ema", {"model": sd, "ema": _noisy(sd)})):
        p = tmp_path / f"{name}_0005000.pt"
        torch.save(obj, p)
        _same(LG.load_transformer(str(p), cfg), model)


def test_llamagen_fsdp_layout_bare(tmp_path):
    """XXL/3B fine-tunes: the FSDP consolidated full state dict itself (clean keys; a half-precision copy is cast)."""
    cfg, model = _tiny_llamagen()
    cfg["transformer_container"] = None   # as config_for gives the XXL/3B CCA cards
    p = tmp_path / "fsdp_0005000.pt"
    torch.save(model.state_dict(), p)
    _same(LG.load_transformer(str(p), cfg), model)
    half = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    torch.save(half, p)
    loaded = LG.load_transformer(str(p), cfg)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, half[k].float()), k
    # a prefixed file (not what the fine-tuning code writes) is refused with the file named
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, p)
    with pytest.raises(CheckpointError, match=r"fsdp_0005000\.pt.*unexpected key"):
        LG.load_transformer(str(p), cfg)


def test_var_release_layout_bare_and_trainer_checkpoint(tmp_path):
    """Released VAR_d*_CCA.pth: bare; the fine-tuning run's ar-ckpt-last.pth: {"epoch", "iter", "trainer": sd, "args"}."""
    cfg, tok, model = _tiny_var()
    sd = model.state_dict()
    bare = tmp_path / "VAR_d2_CCA.pth"
    torch.save(sd, bare)
    _same(VAR.load_transformer(str(bare), cfg, tok), model)
    run = tmp_path / "ar-ckpt-last.pth"
    torch.save({"epoch": 1, "iter": 0, "trainer": sd,
                "args": {"depth": 2, "tblr": 2e-5, "exp_name": "default", "loss_type": "CCA"}}, run)
    _same(VAR.load_transformer(str(run), cfg, tok), model)
    nested = tmp_path / "nested.pth"  # a trainer state with sub-dicts is not a CCA checkpoint
    torch.save({"epoch": 1, "trainer": {"var_wo_ddp": sd, "config": {"x": 1}}}, nested)
    with pytest.raises(CheckpointError, match=r"nested\.pth"):
        VAR.load_transformer(str(nested), cfg, tok)


# --------------------------------------------------------------------------- conformance models in CCA layouts

def _bits(model, tokens, labels) -> torch.Tensor:
    return model.token_nll(tokens, labels).double().sum(-1) / math.log(2)


@pytest.mark.parametrize("folder", fixture_sets("llamagen"))
def test_llamagen_fixture_in_cca_layouts_scores_equal(folder, tmp_path):
    fs = FixtureSet(require(folder))
    tok = LG.load_tokenizer(str(fs.tokenizer_path), fs.config)
    base = LG.load_transformer(str(fs.transformer_path), fs.config, tok)
    tokens, labels = fs.expected["tokens"], torch.from_numpy(fs.labels).long()
    want = _bits(base, tokens, labels)
    torch.testing.assert_close(want, fs.expected["nll_bits"], atol=2e-3, rtol=0)
    sd = base.state_dict()
    bare_cfg = {**fs.config, "transformer_container": None}
    for name, obj, cfg in (("ddp", {"model": sd, "ema": _noisy(sd)}, fs.config), ("fsdp", sd, bare_cfg)):
        p = tmp_path / f"{name}.pt"
        torch.save(obj, p)
        got = _bits(LG.load_transformer(str(p), cfg, tok), tokens, labels)
        assert torch.equal(got, want), name


@pytest.mark.parametrize("folder", fixture_sets("var"))
def test_var_fixture_in_cca_layouts_scores_equal(folder, tmp_path):
    fs = FixtureSet(require(folder))
    tok = VAR.load_tokenizer(str(fs.tokenizer_path), fs.config)
    base = VAR.load_transformer(str(fs.transformer_path), fs.config, tok)
    tokens, labels = fs.expected["tokens"], torch.from_numpy(fs.labels).long()
    want = _bits(base, tokens, labels)
    torch.testing.assert_close(want, fs.expected["nll_bits"], atol=2e-3, rtol=0)
    sd = base.state_dict()  # the set's weights, whatever its container
    run = tmp_path / "ar-ckpt-last.pth"
    torch.save({"epoch": 1, "iter": 0, "trainer": sd, "args": {"depth": 2}}, run)
    got = _bits(VAR.load_transformer(str(run), fs.config, tok), tokens, labels)
    assert torch.equal(got, want)
