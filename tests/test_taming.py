"""Taming family: official-code conformance, real-size manifests, loading, scoring (preprocessing: test_taming_preprocess.py)."""

from __future__ import annotations

import copy
import json
import math
import shutil
import sys
import types
import warnings

import pytest
import torch
from PIL import Image

from conformance_utils import FixtureSet, fixture_sets, manifests, require
from visbpp.core.interfaces import ARModel, ImageTokenizer
from visbpp.core.registry.catalog import UnknownModelError, get_card, get_tokenizer_card
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.taming import ProjectConfigWarning

FAMILY = get_family("taming")

# A tiny config of our own (not the fixture's): 16x16 input, 2 levels -> 8x8 = 64 tokens.
TINY = {
    "tokenizer": {
        "ddconfig": {"double_z": False, "z_channels": 8, "resolution": 16, "in_channels": 3, "out_ch": 3, "ch": 32,
                     "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [8], "dropout": 0.0},
        "n_embed": 64, "embed_dim": 8,
    },
    "transformer": {"vocab_size": 64, "block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 32, "n_unmasked": 0},
    "net2net": {"cond_stage_config": {"target": "taming.modules.util.Labelator", "params": {"n_classes": 5}}},
    "image_size": 16, "num_classes": 5, "latent_hw": [8, 8], "tokens_per_image": 64,
}


def _tiny_models(seed: int = 0):
    torch.manual_seed(seed)
    tok = FAMILY.build_tokenizer(TINY)
    gpt = FAMILY.build_transformer(TINY, tok)
    with torch.no_grad():  # non-uniform predictions
        gpt.transformer.tok_emb.weight.mul_(3.0)
        gpt.transformer.head.weight.mul_(8.0)
    return tok, gpt


def _save_vqgan(tok, path, extra=None):
    sd = dict(tok.state_dict())
    sd.update(extra or {})
    torch.save({"state_dict": sd, "epoch": 3, "global_step": 7}, path)


def _save_cin(tok, gpt, path):
    sd = {f"first_stage_model.{k}": v for k, v in tok.state_dict().items()}
    sd.update(gpt.state_dict())
    torch.save({"state_dict": sd, "epoch": 3, "global_step": 7}, path)


# --------------------------------------------------------------------------- conformance


@pytest.fixture(scope="module")
def loaded_sets():
    cache: dict = {}

    def get(folder):
        if folder not in cache:
            fx = FixtureSet(folder)
            tok = FAMILY.load_tokenizer(str(fx.tokenizer_path), fx.config)
            tok_from_cin = FAMILY.load_tokenizer(str(fx.transformer_path), fx.config)
            gpt = FAMILY.load_transformer(str(fx.transformer_path), fx.config, tok)
            cache[folder] = (fx, tok, tok_from_cin, gpt)
        return cache[folder]

    return get


@pytest.mark.parametrize("folder", fixture_sets("taming"))
def test_conformance(folder, loaded_sets):
    fx, tok, tok_from_cin, gpt = loaded_sets(require(folder))
    exp = fx.expected
    assert isinstance(tok, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok.tokens_per_image == exp["tokens"].shape[1] == gpt.tokens_per_image
    # the family's normalisation of the stored photos (already at input size)
    x = torch.stack([tok.preprocess(Image.fromarray(im)) for im in fx.images])
    assert torch.allclose(x, exp["x"], atol=1e-6, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64
    assert torch.equal(tokens, exp["tokens"])
    assert torch.equal(tok_from_cin.encode(x), exp["tokens"])  # the cin file alone is enough
    labels = torch.from_numpy(fx.labels).long()
    nll = gpt.token_nll(exp["tokens"], labels)
    assert nll.dtype == torch.float32 and nll.shape == exp["token_nll"].shape
    assert (nll - exp["token_nll"]).abs().max().item() < 1e-4
    bits = nll.double().sum(-1) / math.log(2)
    assert (bits - exp["nll_bits"]).abs().max().item() < 2e-3
    recon = tok.decode(exp["tokens"])
    assert (recon - exp["recon"]).abs().max().item() < 1e-4
    if "logits_first" in exp:
        logits = gpt.logits(exp["tokens"][:1], labels[:1])[0]
        assert (logits - exp["logits_first"]).abs().max().item() < 1e-4


# --------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("manifest", manifests("taming"))
def test_manifest_real_size(manifest):
    m = json.loads(require(manifest).read_text())
    want = {k: list(v) for k, v in m["state_dict"].items()}
    config = FAMILY.config_for("taming-1.4b")
    with torch.device("meta"):
        tok = FAMILY.build_tokenizer(config)
        gpt = FAMILY.build_transformer(config, tok)
    tok_params = sum(p.numel() for p in tok.parameters())
    gpt_params = sum(p.numel() for p in gpt.parameters())
    # exact figures of the spec (section 2.3)
    assert tok_params == 76_073_859
    assert gpt_params == 1_410_640_896
    assert get_card("taming-1.4b").params == gpt_params
    assert get_tokenizer_card(get_card("taming-1.4b").tokenizer_id).params == tok_params
    tok_keys = {k: list(v.shape) for k, v in tok.state_dict().items()}
    if any(k.startswith("transformer.") for k in want):  # the cin transformer file
        ours = {f"first_stage_model.{k}": s for k, s in tok_keys.items()}
        ours.update({k: list(v.shape) for k, v in gpt.state_dict().items()})
        assert ours == want
        assert m["transformer_params"] == gpt_params and m["first_stage_params"] == tok_params
        assert m["params"] == 1_486_714_755 == tok_params + gpt_params
    else:  # the VQGAN file: everything but the documented loss.* exception
        extra = sorted(k for k in want if k not in tok_keys)
        assert extra and all(k.startswith("loss.") for k in extra)
        assert {k: s for k, s in want.items() if not k.startswith("loss.")} == tok_keys
        assert m["params_without_loss"] == tok_params


def test_config_for_and_card():
    cfg = FAMILY.config_for("VQGAN (Taming Transformers) 1.4B")
    assert cfg == FAMILY.config_for("taming-1.4b")
    cfg["transformer"]["n_head"] = 3  # a copy: the registry entry is untouched
    assert FAMILY.config_for("taming-1.4b")["transformer"]["n_head"] == 16
    with pytest.raises(UnknownModelError):
        FAMILY.config_for("taming-2b")
    card = get_card("taming-1.4b")
    assert (card.family, card.resolution, card.codebook_size, card.tokens_per_image) == ("taming", 256, 16384, 256)
    assert (card.fid.value, card.rfid.value, card.reference_bpp) == (15.78, 4.98, 0.0102383)
    assert card.files[0].container == "state_dict" and card.files[0].contains_tokenizer
    t = get_tokenizer_card(card.tokenizer_id)
    assert (t.codebook_size, t.code_dim, t.downsample, t.file.container) == (16384, 256, 16, "state_dict")
    with torch.device("meta"):
        tok = FAMILY.build_tokenizer(FAMILY.config_for("taming-1.4b"))
    assert (tok.image_size, tok.tokens_per_image, tok.vocab_size) == (256, 256, 16384)


# --------------------------------------------------------------------------- loading


def test_load_vqgan_with_loss_keys_and_cin_file(tmp_path):
    tok, gpt = _tiny_models()
    loss = {"loss.discriminator.main.0.weight": torch.randn(4, 3, 4, 4),
            "loss.perceptual_loss.scaling_layer.shift": torch.randn(1, 3, 1, 1)}
    _save_vqgan(tok, tmp_path / "vq.ckpt", loss)
    _save_cin(tok, gpt, tmp_path / "cin.ckpt")
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    want = tok.encode(x)
    a = FAMILY.load_tokenizer(str(tmp_path / "vq.ckpt"), TINY)
    b = FAMILY.load_tokenizer(str(tmp_path / "cin.ckpt"), TINY)
    assert torch.equal(a.encode(x), want) and torch.equal(b.encode(x), want)
    assert torch.allclose(b.decode(want), tok.decode(want), atol=1e-6)
    g = FAMILY.load_transformer(str(tmp_path / "cin.ckpt"), TINY, b)
    labels = torch.tensor([1, 4])
    assert torch.equal(g.token_nll(want, labels), gpt.token_nll(want, labels))
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in g.parameters())


def test_lightning_extras_with_class_keys(tmp_path, monkeypatch):
    """A Lightning file whose 'callbacks' dict is keyed by a class still loads with weights_only."""
    tok, _ = _tiny_models()
    with monkeypatch.context() as m:
        mod = types.ModuleType("pytorch_lightning.callbacks.model_checkpoint")
        ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": mod.__name__})
        mod.ModelCheckpoint = ModelCheckpoint
        for name in ("pytorch_lightning", "pytorch_lightning.callbacks"):
            m.setitem(sys.modules, name, types.ModuleType(name))
        m.setitem(sys.modules, mod.__name__, mod)
        torch.save({"state_dict": tok.state_dict(), "pytorch-lightning_version": "1.0.8",
                    "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.5), "best_model_path": "x"}}},
                   tmp_path / "last.ckpt")
    with pytest.raises(Exception, match="ModelCheckpoint"):
        torch.load(tmp_path / "last.ckpt", weights_only=True)  # what a plain weights_only load does
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.equal(FAMILY.load_tokenizer(str(tmp_path / "last.ckpt"), TINY).encode(x), tok.encode(x))


def test_load_errors(tmp_path):
    tok, gpt = _tiny_models()
    # another family's file (LlamaGen-style GPT keys in a {"model": ...} container)
    other = tmp_path / "llamagen_gpt.pt"
    torch.save({"model": {"tok_embeddings.weight": torch.zeros(3, 2), "layers.0.attention.wqkv.weight": torch.zeros(6, 2)}},
               other)
    for load in (FAMILY.load_tokenizer, FAMILY.load_transformer):
        with pytest.raises(CheckpointError, match=r"llamagen_gpt\.pt.*state_dict.*model"):
            load(str(other), TINY)
    # another family's tokenizer in the right container: names file and first keys
    other_vq = tmp_path / "vq_other.ckpt"
    torch.save({"state_dict": {"encoder.conv_blocks.0.res.0.conv1.weight": torch.zeros(1)}}, other_vq)
    with pytest.raises(CheckpointError, match=r"vq_other\.ckpt.*missing.*encoder\.conv_in\.weight.*"
                                              r"unexpected.*encoder\.conv_blocks"):
        FAMILY.load_tokenizer(str(other_vq), TINY)
    # the VQGAN file handed to the transformer loader
    _save_vqgan(tok, tmp_path / "vq.ckpt")
    with pytest.raises(CheckpointError, match=r"vq\.ckpt.*no 'transformer\.\*' keys"):
        FAMILY.load_transformer(str(tmp_path / "vq.ckpt"), TINY)
    # truncated file
    data = (tmp_path / "vq.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt.*truncated or corrupt"):
        FAMILY.load_tokenizer(str(tmp_path / "cut.ckpt"), TINY)
    # an extra unknown key (not under loss.) and a missing key both fail
    _save_vqgan(tok, tmp_path / "extra.ckpt", {"encoder.foo": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"extra\.ckpt.*unexpected.*encoder\.foo"):
        FAMILY.load_tokenizer(str(tmp_path / "extra.ckpt"), TINY)
    sd = dict(tok.state_dict())
    del sd["quantize.embedding.weight"]
    torch.save({"state_dict": sd}, tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointError, match=r"missing\.ckpt.*missing.*quantize\.embedding\.weight"):
        FAMILY.load_tokenizer(str(tmp_path / "missing.ckpt"), TINY)
    # a cin file with a stray top-level key, and one whose causal mask is not causal
    cin = {f"first_stage_model.{k}": v for k, v in tok.state_dict().items()}
    cin.update(gpt.state_dict())
    torch.save({"state_dict": {**cin, "cond_stage_model.w": torch.zeros(1)}}, tmp_path / "stray.ckpt")
    for load in (FAMILY.load_tokenizer, FAMILY.load_transformer):
        with pytest.raises(CheckpointError, match=r"stray\.ckpt.*cond_stage_model\.w"):
            load(str(tmp_path / "stray.ckpt"), TINY)
    bad = dict(cin)
    bad["transformer.blocks.1.attn.mask"] = torch.ones_like(bad["transformer.blocks.1.attn.mask"])
    torch.save({"state_dict": bad}, tmp_path / "mask.ckpt")
    with pytest.raises(CheckpointError, match=r"mask\.ckpt.*blocks\.1\.attn\.mask"):
        FAMILY.load_transformer(str(tmp_path / "mask.ckpt"), TINY)
    # wrong size (config disagrees with the file's shapes)
    wrong = copy.deepcopy(TINY)
    wrong["transformer"]["n_embd"] = 64
    _save_cin(tok, gpt, tmp_path / "cin.ckpt")
    with pytest.raises(CheckpointError, match=r"cin\.ckpt.*shape mismatch.*transformer\.tok_emb\.weight"):
        FAMILY.load_transformer(str(tmp_path / "cin.ckpt"), wrong)


_PROJECT_YAML = """\
model:
  base_learning_rate: 4.5e-06
  target: taming.models.cond_transformer.Net2NetTransformer
  params:
    cond_stage_key: class_label
    transformer_config:
      target: taming.modules.transformer.mingpt.GPT
      params:
        vocab_size: 64
        block_size: 64
        n_layer: 2
        n_head: {n_head}
        n_embd: 32
    first_stage_config:
      target: taming.models.vqgan.VQModel
      params:
        ckpt_path: logs/vqgan/checkpoints/last.ckpt
        embed_dim: 8
        n_embed: 64
        ddconfig:
          double_z: false
          z_channels: 8
          resolution: 16
          in_channels: 3
          out_ch: 3
          ch: 32
          ch_mult: [1, 2]
          num_res_blocks: 1
          attn_resolutions: [8]
          dropout: 0.0
        lossconfig:
          target: taming.modules.losses.DummyLoss
    cond_stage_config:
      target: taming.modules.util.Labelator
      params:
        n_classes: 5
{extra}"""


def test_project_yaml_overrides_and_reports(tmp_path):
    tok, gpt = _tiny_models()
    run = tmp_path / "2021-04-03T19-39-50_cin_transformer"
    (run / "checkpoints").mkdir(parents=True)
    (run / "configs").mkdir()
    ckpt = run / "checkpoints" / "last.ckpt"
    _save_cin(tok, gpt, ckpt)
    yml = run / "configs" / "2021-04-03T19-39-50-project.yaml"
    yml.write_text(_PROJECT_YAML.format(n_head=4, extra=""))
    with pytest.warns(ProjectConfigWarning, match=r"project\.yaml.*transformer\.n_head: given 2, yaml 4"):
        g = FAMILY.load_transformer(str(ckpt), TINY)
    assert g.cfg.n_head == 4 and g.config_disagreements == ["transformer.n_head: given 2, yaml 4"]
    with warnings.catch_warnings():  # the head count does not concern the tokenizer
        warnings.simplefilter("error")
        assert FAMILY.load_tokenizer(str(ckpt), TINY).config_disagreements == []
    # head count changes the numbers: the yaml-built model is not the n_head=2 model
    t = tok.encode(torch.rand(1, 3, 16, 16) * 2 - 1)
    assert not torch.allclose(g.token_nll(t, torch.tensor([2])), gpt.token_nll(t, torch.tensor([2])))
    # agreement: no warning, same numbers as the saved model
    yml.write_text(_PROJECT_YAML.format(n_head=2, extra=""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = FAMILY.load_transformer(str(ckpt), TINY)
        b = FAMILY.load_tokenizer(str(ckpt), TINY)
    assert torch.equal(g.token_nll(t, torch.tensor([2])), gpt.token_nll(t, torch.tensor([2])))
    assert torch.equal(b.encode(torch.zeros(1, 3, 16, 16)), tok.encode(torch.zeros(1, 3, 16, 16)))
    # unsupported setups are refused clearly
    yml.write_text(_PROJECT_YAML.format(n_head=2, extra="    permuter_config:\n"
                                        "      target: taming.modules.transformer.permuter.AlternateParsing\n"))
    with pytest.raises(CheckpointError, match=r"project\.yaml.*AlternateParsing"):
        FAMILY.load_transformer(str(ckpt), TINY)


# --------------------------------------------------------------------------- scoring


def test_teacher_forcing_positions_and_label():
    tok, gpt = _tiny_models(1)
    torch.manual_seed(2)
    tokens = torch.randint(0, 64, (3, 64))
    labels = torch.tensor([0, 3, 4])
    nll = gpt.token_nll(tokens, labels)
    # output i predicts t_i from [label, t_0..t_{i-1}]: one short forward per prefix
    for i in (0, 1, 17, 63):
        idx = torch.cat([labels[:, None], tokens[:, :i]], 1)
        with torch.no_grad():
            logits = gpt.transformer(idx)[:, -1].double()
        ref = -torch.log_softmax(logits, -1).gather(1, tokens[:, i : i + 1]).squeeze(1)
        assert torch.allclose(nll[:, i].double(), ref, atol=1e-5)
    # the label is the raw row k of the token table (no offset, no separate table)
    tokens_hi = torch.randint(10, 64, (3, 64))  # rows 5..9 are used by neither labels nor tokens
    base = gpt.token_nll(tokens_hi, labels)
    bump = torch.randn(32) * 3  # not a constant shift (the pre-LN stack ignores those)
    with torch.no_grad():
        gpt.transformer.tok_emb.weight[5] += bump
        assert torch.equal(gpt.token_nll(tokens_hi, labels), base)
        gpt.transformer.tok_emb.weight[5] -= bump
        gpt.transformer.tok_emb.weight[3] += bump  # label 3 of image 1
        moved = gpt.token_nll(tokens_hi, labels)
        gpt.transformer.tok_emb.weight[3] -= bump
    assert torch.equal(moved[[0, 2]], base[[0, 2]]) and (moved[1] - base[1]).abs().min() > 0
    # changing t_j leaves outputs < j untouched; changing the label changes output 0
    t2 = tokens.clone()
    t2[:, 10] = (t2[:, 10] + 1) % 64
    n2 = gpt.token_nll(t2, labels)
    assert torch.allclose(n2[:, :10], nll[:, :10], atol=1e-5, rtol=0)
    assert (n2[:, 10:] - nll[:, 10:]).abs().max() > 1e-2
    assert not torch.allclose(gpt.token_nll(tokens, torch.tensor([1, 3, 4]))[0, 0], nll[0, 0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        gpt.token_nll(tokens, torch.tensor([0, 5, 1]))


def test_chunking_is_exact():
    _, gpt = _tiny_models(3)
    tokens = torch.randint(0, 64, (2, 64))
    labels = torch.tensor([1, 2])
    full = gpt.token_nll(tokens, labels)
    for chunk in (1, 7, 64):
        gpt.nll_chunk = chunk
        assert (gpt.token_nll(tokens, labels) - full).abs().max().item() < 2e-5
    gpt.nll_chunk = None
    ref = -torch.log_softmax(gpt.logits(tokens, labels).double(), -1).gather(-1, tokens[..., None])[..., 0]
    assert torch.allclose(full.double(), ref, atol=1e-5)


def test_bf16_autocast_cpu():
    tok, gpt = _tiny_models(4)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    labels = torch.tensor([0, 4])
    tokens = tok.encode(x)
    full = gpt.token_nll(tokens, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t_bf = tok.encode(x)
        n_bf = gpt.token_nll(t_bf, labels)
        r_bf = tok.decode(t_bf)
    assert torch.equal(t_bf, tokens)  # the tokenizer runs in float32 regardless
    assert r_bf.dtype == torch.float32
    assert n_bf.dtype == torch.float32 and torch.isfinite(n_bf).all()
    assert not torch.equal(n_bf, full)  # the transformer did run in bf16
    assert (n_bf - full).abs().max().item() < 0.25


def test_fixture_copy_is_config_driven(tmp_path):
    """A copied fixture folder under another name loads from its own config.json alone."""
    src = require(fixture_sets("taming")[0].values[0])
    dst = tmp_path / "taming-copy"
    shutil.copytree(src, dst)
    fx = FixtureSet(dst)
    gpt = FAMILY.load_transformer(str(fx.transformer_path), fx.config)
    assert gpt.cfg.n_head == fx.config["transformer"]["n_head"]
    assert gpt.tokens_per_image == fx.config["tokens_per_image"]
