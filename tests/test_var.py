"""VAR family: official-code conformance, manifests of the real files, loaders, preprocessing, numerics."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from conformance_utils import FixtureSet, fixture_sets, manifests, require
from visbpp.core.interfaces import ARModel, ImageTokenizer
from visbpp.core.registry.catalog import get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.var import FAMILY, phi_table
from visbpp.models.var.preprocess import preprocess_image, to_pm1

_LOADED: dict = {}


def _load(folder):
    """(FixtureSet, tokenizer, transformer) built from the folder's config.json alone; cached per folder."""
    if folder not in _LOADED:
        fx = FixtureSet(folder)
        tok = FAMILY.load_tokenizer(str(fx.tokenizer_path), fx.config)
        ar = FAMILY.load_transformer(str(fx.transformer_path), fx.config, tok)
        _LOADED[folder] = (fx, tok, ar)
    return _LOADED[folder]


def _tiny_config(cond_drop_rate=0.0, shared_aln=False):
    pn = [1, 2, 3]
    return dict(
        tokenizer=dict(vocab_size=16, z_channels=4, ch=32, v_patch_nums=pn),
        transformer=dict(num_classes=5, depth=2, embed_dim=64, num_heads=2, attn_l2_norm=True, patch_nums=pn,
                         cond_drop_rate=cond_drop_rate, shared_aln=shared_aln),
        image_size=48,
    )


def _tiny_pair(seed=0, **kw):
    """Tiny random tokenizer + transformer with weights perturbed so that nothing is negligible."""
    torch.manual_seed(seed)
    cfg = _tiny_config(**kw)
    tok = FAMILY.build_tokenizer(cfg)
    ar = FAMILY.build_transformer(cfg, tok)
    with torch.no_grad():
        for p in ar.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return cfg, tok, ar


# --------------------------------------------------------------------------- conformance


@pytest.mark.parametrize("folder", fixture_sets("var"))
def test_conformance_tokens_and_latents(folder):
    fx, tok, _ = _load(require(folder))
    e = fx.expected
    x = to_pm1(fx.images)
    torch.testing.assert_close(x, e["x"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64
    assert torch.equal(tokens, e["tokens"])
    if "f_hat" in e:
        _, f_hat = tok.encode_scales(x)
        torch.testing.assert_close(f_hat, e["f_hat"], atol=1e-4, rtol=0)
    if "var_input" in e:
        torch.testing.assert_close(tok.var_input(e["tokens"]), e["var_input"], atol=1e-4, rtol=0)
    recon = tok.decode(e["tokens"]).clamp(-1, 1)  # the official reconstruction clamps
    torch.testing.assert_close(recon, e["recon"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("var"))
def test_conformance_nll(folder):
    fx, tok, ar = _load(require(folder))
    e = fx.expected
    labels = torch.from_numpy(fx.labels).long()
    nll = ar.token_nll(e["tokens"], labels)
    assert nll.dtype == torch.float32 and nll.shape == e["token_nll"].shape
    torch.testing.assert_close(nll, e["token_nll"], atol=1e-4, rtol=0)
    bits = nll.double().sum(-1) / math.log(2)
    torch.testing.assert_close(bits, e["nll_bits"], atol=2e-3, rtol=0)
    if "logits_first" in e:
        torch.testing.assert_close(ar.logits(e["tokens"][:1], labels[:1])[0], e["logits_first"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("var"))
def test_conformance_metadata(folder):
    fx, tok, ar = _load(require(folder))
    cfg = fx.config
    assert isinstance(tok, ImageTokenizer) and isinstance(ar, ARModel)
    assert tok.family == ar.family == "var"
    assert tok.image_size == cfg["image_size"] == fx.images.shape[1]
    assert tok.tokens_per_image == ar.tokens_per_image == cfg["tokens_per_image"] == fx.expected["tokens"].shape[1]
    assert tok.vocab_size == ar.vocab_size == cfg["vocab_size"]
    assert ar.num_classes == cfg["num_classes"]
    if "scale_boundaries" in cfg:
        assert [list(b) for b in tok.scale_boundaries] == cfg["scale_boundaries"]
    if "phi_index_per_scale" in cfg:
        pn = cfg["tokenizer"]["v_patch_nums"]
        assert phi_table(len(pn), cfg["tokenizer"]["share_quant_resi"]) == cfg["phi_index_per_scale"]


def test_phi_tables_from_spec():
    # hand values of the spec (float-rounding tie breaks at s=2, s=7 for 10 scales; s=2 for 5 scales)
    assert phi_table(10, 4) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert phi_table(5, 4) == [0, 1, 2, 2, 3]


# --------------------------------------------------------------------------- manifests of the real files


def _manifest_target(filename):
    """Card id building the module of a manifest's file, and whether it is the tokenizer."""
    for c in model_cards("var"):
        if c.files[0].filename == filename:
            return c, False
    for c in model_cards("var"):
        if get_tokenizer_card(c.tokenizer_id).file.filename == filename:
            return c, True
    raise AssertionError(f"no VAR card uses {filename}")


@pytest.mark.parametrize("manifest", manifests("var"))
def test_manifest_keys_shapes_params(manifest):
    m = json.loads(require(manifest).read_text())
    card, is_tok = _manifest_target(m["file"])
    cfg = FAMILY.config_for(card.id)
    with torch.device("meta"):
        module = FAMILY.build_tokenizer(cfg) if is_tok else FAMILY.build_transformer(cfg)
    sd = module.state_dict()
    assert {k: list(v.shape) for k, v in sd.items()} == m["state_dict"]
    assert sorted(k for k, _ in module.named_buffers()) == sorted(m["buffers"])
    for k, dt in m.get("non_float32", {}).items():
        assert str(sd[k].dtype).replace("torch.", "") == dt
    params = sum(p.numel() for p in module.parameters())
    expected = get_tokenizer_card(card.tokenizer_id).params if is_tok else card.params
    assert params == m["params"] == expected
    if not is_tok:
        assert module.tokens_per_image == card.tokens_per_image
        assert module.config.shared_aln == (card.id == "var-d36")


def test_tokenizer_keys_do_not_depend_on_resolution():
    with torch.device("meta"):
        a = FAMILY.build_tokenizer(FAMILY.config_for("var-d16"))
        b = FAMILY.build_tokenizer(FAMILY.config_for("var-d36"))
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    assert (a.image_size, a.tokens_per_image, b.image_size, b.tokens_per_image) == (256, 680, 512, 2240)


def test_config_for_every_card_matches_fixture_schema():
    fixture_keys = None
    sets = [p.values[0] for p in fixture_sets("var") if p.values[0] is not None]
    if sets:
        fixture_keys = json.loads((sets[0] / "config.json").read_text())
    for card in model_cards("var"):
        cfg = FAMILY.config_for(card.id)
        assert cfg["image_size"] == card.resolution and cfg["tokens_per_image"] == card.tokens_per_image
        assert cfg["vocab_size"] == card.codebook_size and cfg["transformer"]["cond_drop_rate"] == 0.0
        if fixture_keys is not None:
            assert set(cfg["tokenizer"]) == set(fixture_keys["tokenizer"])
            assert set(cfg["transformer"]) == set(fixture_keys["transformer"])
            assert set(cfg) <= set(fixture_keys)
    assert FAMILY.config_for("VAR 310M")["transformer"]["depth"] == 16
    assert get_family("VAR") is FAMILY
    with pytest.raises(KeyError, match="not a VAR model"):
        FAMILY.config_for("llamagen-b-256")


# --------------------------------------------------------------------------- loaders


def _save_pair(tmp_path, tok, ar):
    tp, ap = tmp_path / "vae.pth", tmp_path / "var.pth"
    torch.save(tok.state_dict(), tp)
    torch.save(ar.state_dict(), ap)
    return tp, ap


def test_loader_roundtrip_and_cond_drop_off(tmp_path):
    cfg, tok, ar = _tiny_pair(cond_drop_rate=0.1)
    tp, ap = _save_pair(tmp_path, tok, ar)
    tok2 = FAMILY.load_tokenizer(str(tp), cfg)
    ar2 = FAMILY.load_transformer(str(ap), cfg, tok2)
    assert not tok2.training and not ar2.training and ar2.cond_drop_rate == 0.0
    x = torch.rand(3, 3, 48, 48) * 2 - 1
    tokens = tok2.encode(x)
    labels = torch.tensor([0, 3, 4])
    torch.manual_seed(1)
    a = ar2.token_nll(tokens, labels)
    torch.manual_seed(2)
    b = ar2.token_nll(tokens, labels)
    assert torch.equal(a, b)  # no random label replacement, whatever the seed
    other = ar2.token_nll(tokens, torch.tensor([1, 2, 0]))
    assert not torch.allclose(a, other)  # labels are used
    with pytest.raises(ValueError, match=r"\[0, 5\).*null/CFG class"):
        ar2.token_nll(tokens, torch.full((3,), 5))  # the null class is never scored as a real label


def test_loader_rejects_other_files(tmp_path):
    cfg, tok, ar = _tiny_pair()
    tp, ap = _save_pair(tmp_path, tok, ar)
    with pytest.raises(CheckpointError, match="transformer file"):
        FAMILY.load_tokenizer(str(ap), cfg)
    with pytest.raises(CheckpointError, match="tokenizer file"):
        FAMILY.load_transformer(str(tp), cfg, tok)
    # another family's checkpoint: LlamaGen-style GPT in a {"model": ...} container, and bare
    foreign = {"tok_embeddings.weight": torch.zeros(4, 2), "layers.0.attention.wqkv.weight": torch.zeros(6, 2)}
    wrapped = tmp_path / "c2i_B_256.pt"
    torch.save({"model": foreign}, wrapped)
    with pytest.raises(CheckpointError, match=r"c2i_B_256\.pt.*top-level keys are \[model\]"):
        FAMILY.load_transformer(str(wrapped), cfg, tok)
    bare = tmp_path / "foreign.pt"
    torch.save(foreign, bare)
    with pytest.raises(CheckpointError, match=r"foreign\.pt.*unexpected key\(s\), first: tok_embeddings\.weight"):
        FAMILY.load_transformer(str(bare), cfg, tok)
    # a missing key is named
    sd = ar.state_dict()
    del sd["blocks.1.attn.q_bias"]
    partial = tmp_path / "partial.pth"
    torch.save(sd, partial)
    with pytest.raises(CheckpointError, match=r"partial\.pth.*missing key\(s\), first: blocks\.1\.attn\.q_bias"):
        FAMILY.load_transformer(str(partial), cfg, tok)
    with pytest.raises(ValueError, match="needs its tokenizer"):
        FAMILY.load_transformer(str(ap), cfg, None)


def test_loader_truncated_file(tmp_path):
    cfg, tok, ar = _tiny_pair()
    _, ap = _save_pair(tmp_path, tok, ar)
    data = ap.read_bytes()
    cut = tmp_path / "var_truncated.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"var_truncated\.pth"):
        FAMILY.load_transformer(str(cut), cfg, tok)


def test_loader_structural_buffers_checked(tmp_path):
    cfg, tok, ar = _tiny_pair()
    sd = ar.state_dict()
    sd["attn_bias_for_masking"] = torch.zeros_like(sd["attn_bias_for_masking"])  # no mask at all
    p = tmp_path / "nomask.pth"
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match="attn_bias_for_masking"):
        FAMILY.load_transformer(str(p), cfg, tok)


def test_tokenizer_ema_buffer_leniency(tmp_path):
    cfg, tok, _ = _tiny_pair()
    sd = tok.state_dict()
    sd["quantize.ema_vocab_hit_SV"] = torch.rand(7, 16)  # other first dimension: accepted, module buffer kept
    p = tmp_path / "vae_ema.pth"
    torch.save(sd, p)
    loaded = FAMILY.load_tokenizer(str(p), cfg)
    assert loaded.quantize.ema_vocab_hit_SV.shape == (3, 16)
    sd["quantize.ema_vocab_hit_SV"] = torch.rand(3, 17)  # same first dimension, wrong second: strict error
    torch.save(sd, p)
    with pytest.raises(CheckpointError, match="ema_vocab_hit_SV"):
        FAMILY.load_tokenizer(str(p), cfg)


def test_input_validation():
    _, tok, ar = _tiny_pair()
    with pytest.raises(ValueError, match=r"\(B, 3, 48, 48\)"):
        tok.encode(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 14\)"):
        ar.token_nll(torch.zeros(1, 13, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="labels must lie"):
        ar.token_nll(torch.zeros(1, 14, dtype=torch.long), torch.tensor([6]))
    with pytest.raises(ValueError, match="tokens must lie"):
        ar.token_nll(torch.full((1, 14), 16, dtype=torch.long), torch.tensor([1]))


# --------------------------------------------------------------------------- numerics


def test_shared_adaln_variant_runs_and_uses_ada_gss():
    _, tok, ar = _tiny_pair(shared_aln=True)
    assert hasattr(ar, "shared_ada_lin") and not hasattr(ar.blocks[0], "ada_lin")
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    tokens, labels = tok.encode(x), torch.tensor([1, 2])
    a = ar.token_nll(tokens, labels)
    with torch.no_grad():
        ar.blocks[1].ada_gss.add_(1.0)
    assert not torch.allclose(a, ar.token_nll(tokens, labels))


def test_block_causal_first_scales_ignore_finer_tokens():
    _, tok, ar = _tiny_pair()
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    tokens, labels = tok.encode(x), torch.tensor([1, 2])
    base = ar.token_nll(tokens, labels)
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 16  # last scale (3x3, positions 5..13) only
    other = ar.token_nll(changed, labels)
    # scales 0 and 1 are predicted from coarser scales only: unaffected by the last scale's tokens
    torch.testing.assert_close(other[:, :5], base[:, :5], atol=1e-6, rtol=0)
    changed[:, 1:5] = (changed[:, 1:5] + 1) % 16  # scale 1 feeds the input of scale 2
    assert not torch.allclose(ar.token_nll(changed, labels)[:, 5:], other[:, 5:])


def test_chunked_nll_bounds_logits_and_matches():
    _, tok, ar = _tiny_pair()
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    tokens, labels = tok.encode(x), torch.tensor([0, 4])
    full = ar.token_nll(tokens, labels)
    seen = []
    hook = ar.head_nm.register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))  # the head's input, per chunk
    try:
        ar.nll_chunk = 4
        chunked = ar.token_nll(tokens, labels)
    finally:
        hook.remove()
        ar.nll_chunk = None
    assert max(seen) <= 4 and sum(seen) == tokens.shape[1]
    torch.testing.assert_close(chunked, full, atol=1e-6, rtol=0)
    # independent reference: log-softmax of the full logits gathered at the tokens
    ref = -torch.log_softmax(ar.logits(tokens, labels).double(), -1).gather(-1, tokens[..., None])[..., 0]
    torch.testing.assert_close(full.double(), ref, atol=1e-5, rtol=0)


def test_bf16_autocast_cpu():
    _, tok, ar = _tiny_pair()
    x = torch.rand(2, 3, 48, 48) * 2 - 1
    labels = torch.tensor([2, 3])
    tokens = tok.encode(x)
    ref = ar.token_nll(tokens, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        tokens_bf = tok.encode(x)
        nll = ar.token_nll(tokens_bf, labels)
    assert torch.equal(tokens_bf, tokens)  # the tokenizer always runs in float32
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    assert ((nll - ref).abs() <= 0.02 * ref.abs() + 0.05).all()  # bf16 blocks: within ~1% of fp32
    assert not torch.equal(nll, ref)  # the blocks really ran in bf16


# --------------------------------------------------------------------------- preprocessing


def test_preprocess_geometry_and_normalisation():
    from PIL import Image

    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8)  # H=200, W=300
    img = Image.fromarray(arr)
    x = preprocess_image(img, 80)
    # hand-computed: short side 200 -> round(1.125*80)=90, long 300 -> int(90*300/200)=135;
    # crop left=int(round(27.5))=28 (round half to even), top=int(round(5.0))=5
    ref_u8 = np.array(img.resize((135, 90), Image.LANCZOS).crop((28, 5, 108, 85)))
    ref = torch.from_numpy(ref_u8).permute(2, 0, 1).float() / 255 * 2 - 1
    assert x.shape == (3, 80, 80) and x.dtype == torch.float32
    torch.testing.assert_close(x, ref, atol=1e-6, rtol=0)
    # portrait: W=90 -> 90 (no resize needed), H=130 -> int(90*130/90)=130; top=int(round(25.0))=25, left=5
    arr2 = rng.integers(0, 256, size=(130, 90, 3), dtype=np.uint8)
    x2 = preprocess_image(Image.fromarray(arr2), 80)
    ref2 = torch.from_numpy(arr2[25:105, 5:85]).permute(2, 0, 1).float() / 255 * 2 - 1
    torch.testing.assert_close(x2, ref2, atol=1e-6, rtol=0)


def test_preprocess_modes_and_range():
    from PIL import Image

    grey = Image.new("L", (100, 100), color=51)  # 51/255 = 0.2 -> 2*0.2-1 = -0.6
    x = preprocess_image(grey, 80)
    torch.testing.assert_close(x, torch.full((3, 80, 80), -0.6), atol=1e-6, rtol=0)
    rgba = Image.new("RGBA", (90, 90), color=(255, 0, 0, 10))
    y = preprocess_image(rgba, 80)
    assert y[0].eq(1).all() and y[1:].eq(-1).all()
    with pytest.raises(TypeError, match="PIL.Image"):
        preprocess_image(np.zeros((80, 80, 3), np.uint8), 80)


def test_tokenizer_preprocess_matches_fixture_normalisation():
    from PIL import Image

    _, tok, _ = _tiny_pair()
    u8 = np.random.default_rng(1).integers(0, 256, size=(54, 54, 3), dtype=np.uint8)  # 54 = 1.125*48: no resize
    x = tok.preprocess(Image.fromarray(u8))
    torch.testing.assert_close(x, to_pm1(u8[3:51, 3:51]), atol=0, rtol=0)
    assert tok.preprocess_id.startswith("var:") and "54" in tok.preprocess_id


@pytest.mark.parametrize("l2_norm", [True, False])
def test_attention_scale_by_scale_equals_the_block_causal_mask(l2_norm):
    from visbpp.models.var.transformer import SelfAttention, block_causal_bias

    patch_nums = (1, 2, 3, 5)
    ends = tuple(itertools.accumulate(p * p for p in patch_nums))
    g = torch.Generator().manual_seed(0)
    attn = SelfAttention(64, 4, l2_norm)
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    x = torch.randn(2, ends[-1], 64, generator=g)
    with torch.inference_mode():
        masked = attn(x, block_causal_bias(patch_nums))
        per_scale = attn(x, ends)
    torch.testing.assert_close(per_scale, masked, atol=2e-6, rtol=1e-5)
    # and it is block-causal: the first scales do not see the last one
    x2 = x.clone()
    x2[:, ends[-2]:] += 1
    with torch.inference_mode():
        torch.testing.assert_close(attn(x2, ends)[:, : ends[-2]], per_scale[:, : ends[-2]], atol=0, rtol=0)
