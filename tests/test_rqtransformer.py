"""RQ-Transformer family: official-code conformance, real-size manifests, loading, numerics, preprocessing."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conformance_utils import FixtureSet, fixture_sets, manifests, require
from visbpp.core.interfaces import ARModel, ImageTokenizer
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.rqtransformer import FAMILY

# --------------------------------------------------------------------------- conformance

_LOADED: dict = {}


def _load_set(folder):
    if folder not in _LOADED:
        fs = FixtureSet(folder)
        tok = FAMILY.load_tokenizer(fs.tokenizer_path, fs.config)
        tr = FAMILY.load_transformer(fs.transformer_path, fs.config, tok)
        x = torch.stack([tok.preprocess(Image.fromarray(im)) for im in fs.images])
        _LOADED[folder] = (fs, tok, tr, x)
    return _LOADED[folder]


@pytest.mark.parametrize("folder", fixture_sets("rqtransformer"))
def test_conformance_tokens_and_recon(folder):
    fs, tok, _tr, x = _load_set(require(folder))
    exp = fs.expected
    assert torch.allclose(x, exp["x"], atol=1e-6, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64 and tokens.shape == (len(fs.images), tok.tokens_per_image)
    assert torch.equal(tokens.reshape(exp["tokens"].shape), exp["tokens"])
    recon = tok.decode(tokens)
    assert recon.shape == exp["recon"].shape
    assert (recon - exp["recon"]).abs().max().item() < 1e-4


@pytest.mark.parametrize("folder", fixture_sets("rqtransformer"))
def test_conformance_token_nll(folder):
    fs, tok, tr, x = _load_set(require(folder))
    exp = fs.expected
    labels = torch.from_numpy(fs.labels).long()
    tokens = exp["tokens"].reshape(len(fs.images), -1)
    nll = tr.token_nll(tokens, labels)
    assert nll.dtype == torch.float32 and nll.shape == exp["token_nll"].shape
    assert (nll - exp["token_nll"]).abs().max().item() < 1e-4
    bits = nll.double().sum(-1) / math.log(2)
    assert (bits - exp["nll_bits"]).abs().max().item() < 2e-3
    if "logits_first" in exp:
        logits = tr(exp["tokens"][:1], labels[:1]).reshape(tokens.shape[1], -1)
        assert (logits - exp["logits_first"]).abs().max().item() < 1e-4


# --------------------------------------------------------------------------- real sizes (manifests)


def _cards_for_file(member: str):
    """Model cards whose transformer file, or whose tokenizer file, is ``member`` of an archive."""
    as_transformer = [c for c in model_cards("rqtransformer") if c.files[0].archive_member == member]
    tids = {t for t in (c.tokenizer_id for c in model_cards("rqtransformer"))
            if get_tokenizer_card(t).file.archive_member == member}
    as_tokenizer = [c for c in model_cards("rqtransformer") if c.tokenizer_id in tids]
    return as_transformer, as_tokenizer


@pytest.mark.parametrize("manifest", manifests("rqtransformer"))
def test_manifest_keys_shapes_params(manifest):
    m = json.loads(require(manifest).read_text())
    files = [m["file"], *m.get("same_architecture_files", [])]
    hits = [_cards_for_file(f) for f in files]
    as_tr = [c for h in hits for c in h[0]]
    as_tok = [c for h in hits for c in h[1]]
    assert as_tr or as_tok, f"no registry card uses {m['file']}"
    if as_tr:
        card = as_tr[0]
        cfg = FAMILY.config_for(card.id)
        with torch.device("meta"):
            tok = FAMILY.build_tokenizer(cfg)
            model = FAMILY.build_transformer(cfg, tok)
        expected_params = card.params
    else:
        card = as_tok[0]
        cfg = FAMILY.config_for(card.id)
        with torch.device("meta"):
            model = FAMILY.build_tokenizer(cfg)
        expected_params = get_tokenizer_card(card.tokenizer_id).params
    sd = model.state_dict(keep_vars=True)
    got = {k: list(v.shape) for k, v in sd.items()}
    want = m["state_dict"]
    assert sorted(set(want) - set(got))[:5] == [] and sorted(set(got) - set(want))[:5] == []
    assert got == want
    assert len(got) == m["state_dict_entries"]
    for group in m.get("shared_keys", []):  # one tensor under several names
        assert all(sd[k] is sd[group[0]] for k in group), group
    assert set(m.get("buffers", [])) == {k for k, _ in model.named_buffers(remove_duplicate=False)}
    n = sum(p.numel() for p in model.parameters())
    assert n == expected_params == m["params"]


def test_card_params_are_the_spec_figures():
    spec = {"rq-481m": 480_921_088, "rq-821m": 820_899_328, "rq-1.4b": 1_387_529_728,
            "rq-1.4b-rqvae50e": 1_387_529_728, "rq-3.8b-rqvae50e": 3_822_488_064}
    assert {c.id: c.params for c in model_cards("rqtransformer")} == spec
    for c in model_cards("rqtransformer"):
        assert get_tokenizer_card(c.tokenizer_id).params == 104_402_051
        cfg = FAMILY.config_for(c.id)
        with torch.device("meta"):
            tok = FAMILY.build_tokenizer(cfg)
            n = sum(p.numel() for p in FAMILY.build_transformer(cfg, tok).parameters())
        assert n == c.params


def test_config_for_matches_conformance_schema():
    ref = None
    for folder in fixture_sets("rqtransformer"):
        if folder.values[0] is not None:
            ref = json.loads((folder.values[0] / "config.json").read_text())
            break
    for c in model_cards("rqtransformer"):
        cfg = FAMILY.config_for(c.id)
        assert cfg["tokens_per_image"] == c.tokens_per_image == 256 and cfg["vocab_size"] == c.codebook_size
        assert cfg["image_size"] == c.resolution
        if ref is not None:
            assert set(ref) - {"seed", "notes", "upstream"} <= set(cfg)
            for sec in ("tokenizer", "transformer"):
                assert set(cfg[sec]) == set(ref[sec]), sec
                for sub in ("hparams", "ddconfig", "body", "head"):
                    if sub in ref[sec]:
                        assert set(cfg[sec][sub]) == set(ref[sec][sub])
    assert FAMILY.config_for("RQ-Transformer 3.8B (RQ-VAE 50e)")["transformer"]["head"]["block"]["n_head"] == 40
    with pytest.raises(KeyError):
        FAMILY.config_for("llamagen-b-256")
    assert get_family("RQ-Transformer") is FAMILY


def test_extra_50e_cards():
    main = [get_card(i) for i in ("rq-481m", "rq-821m", "rq-1.4b")]
    extra = [get_card(i) for i in ("rq-1.4b-rqvae50e", "rq-3.8b-rqvae50e")]
    assert {c.tokenizer_id for c in main} == {"rq-vae-8x8x4"}
    assert {fit_group(c) for c in main} == {"RQ-Transformer"}
    assert len({c.tokenizer_id for c in extra} | {"rq-vae-8x8x4"}) == 3  # one tokenizer per archive
    for c, fid, rs in zip(extra, (8.71, 7.55), (3.89, 3.80)):
        assert c.group and fit_group(c) == c.group != "RQ-Transformer"
        archive = c.files[0].archive_member.split("/")[0]
        assert get_tokenizer_card(c.tokenizer_id).file.archive_member == f"{archive}/stage1/model.pt"
        assert c.fid.value == fid and not c.in_published_table and c.reference_bpp is None
        assert [a.value for a in c.alt_fid] == [rs] and "rejection" in c.alt_fid[0].protocol
    assert [a.value for a in get_card("rq-1.4b").alt_fid] == [4.45]
    assert get_card("imagenet_3.8B_rqvae_50e").id == "rq-3.8b-rqvae50e"


# --------------------------------------------------------------------------- tiny models


def _tiny_config(shared: bool = True) -> dict:
    return {
        "tokenizer": {
            "hparams": {"bottleneck_type": "rq", "embed_dim": 8, "n_embed": 32, "latent_shape": [4, 4, 8],
                        "code_shape": [4, 4, 3], "shared_codebook": shared},
            "ddconfig": {"double_z": False, "z_channels": 32, "resolution": 8, "in_channels": 3, "out_ch": 3, "ch": 32,
                         "ch_mult": [1, 1], "num_res_blocks": 1, "attn_resolutions": [4], "dropout": 0.0},
        },
        "transformer": {
            "vocab_size": 32, "block_size": [4, 4, 3], "vocab_size_cond": 5, "block_size_cond": 1, "embed_dim": 16,
            "input_embed_dim": 8, "input_emb_vqvae": True, "head_emb_vqvae": True, "cumsum_depth_ctx": True,
            "shared_tok_emb": True, "shared_cls_emb": True,
            "body": {"n_layer": 2, "block": {"embed_dim": 16, "n_head": 2}},
            "head": {"n_layer": 1, "block": {"embed_dim": 16, "n_head": 4}},
        },
        "image_size": 8,
    }


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = _tiny_config()
    tok = FAMILY.build_tokenizer(cfg)
    tr = FAMILY.build_transformer(cfg, tok)
    with torch.no_grad():  # lively weights: logits far from uniform
        for p in tr.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    return cfg, tok, tr, x


def _save(path, **containers):
    torch.save({k: {n: t.clone() for n, t in sd.items()} for k, sd in containers.items()}, path)


def test_interfaces(tiny):
    cfg, tok, tr, x = tiny
    assert isinstance(tok, ImageTokenizer) and isinstance(tr, ARModel)
    assert tok.family == tr.family == "rqtransformer"
    assert (tok.image_size, tok.tokens_per_image, tok.vocab_size) == (8, 48, 32)
    assert (tr.tokens_per_image, tr.vocab_size, tr.num_classes) == (48, 32, 5)
    t = tok.encode(x)
    assert t.shape == (3, 48) and t.dtype == torch.int64 and int(t.max()) < 32  # padding row never chosen
    assert tok.decode(t).shape == x.shape


def test_codes_are_greedy_residual_argmin(tiny):
    _cfg, tok, _tr, x = tiny
    codes = tok.encode(x).reshape(3, 4, 4, 3)
    z = tok.quant_conv(tok.encoder(x)).permute(0, 2, 3, 1).double()  # (B, h, w, C)
    E = tok.quantizer.codebooks[0].weight[:-1].double()
    r = z
    for d in range(3):
        dist = torch.cdist(r.reshape(-1, E.shape[1]), E)
        want = dist.argmin(-1).reshape(3, 4, 4)
        assert torch.equal(codes[..., d], want)
        r = r - E[want]


def test_token_nll_matches_full_logits_and_chunking(tiny, monkeypatch):
    _cfg, tok, tr, x = tiny
    tokens, labels = tok.encode(x), torch.tensor([0, 4, 2])
    with torch.no_grad():
        logits = tr(tokens.reshape(3, 4, 4, 3), labels).double().reshape(3, 48, -1)
    want = -torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    seen = []
    orig = type(tr.classifier).forward
    monkeypatch.setattr(type(tr.classifier), "forward", lambda self, h: (seen.append(h.shape[1]), orig(self, h))[1])
    for chunk in (None, 1, 7, 48):
        tr.chunk = chunk
        seen.clear()
        nll = tr.token_nll(tokens, labels)
        assert nll.dtype == torch.float32
        assert (nll.double() - want).abs().max().item() < 1e-5
        if chunk:
            assert max(seen) <= chunk and sum(seen) == 48
    tr.chunk = None
    # the label matters, and each token's NLL depends only on earlier tokens
    assert (tr.token_nll(tokens, torch.tensor([1, 1, 1])) - want.float()).abs().max() > 1e-3
    changed = tokens.clone()
    changed[:, 20] = (changed[:, 20] + 1) % 32
    a, b = tr.token_nll(tokens, labels), tr.token_nll(changed, labels)
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6) and (a[:, 21:] - b[:, 21:]).abs().max() > 1e-4


def test_bf16_autocast_cpu(tiny):
    _cfg, tok, tr, x = tiny
    tokens, labels = tok.encode(x), torch.tensor([3, 1, 0])
    ref = tr.token_nll(tokens, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        t16 = tok.encode(x)
        nll16 = tr.token_nll(tokens, labels)
    assert torch.equal(t16, tokens)  # the tokenizer always runs in full precision
    assert nll16.dtype == torch.float32 and torch.isfinite(nll16).all()
    assert (nll16 - ref).abs().max().item() > 0  # the transformer really ran in bf16
    assert (nll16 - ref).abs().max().item() < 0.1
    assert abs(nll16.double().sum().item() - ref.double().sum().item()) / ref.double().sum().item() < 0.01


# --------------------------------------------------------------------------- loading


def test_load_roundtrip_and_ema(tiny, tmp_path):
    cfg, tok, tr, x = tiny
    sd_tok, sd_tr = tok.state_dict(), tr.state_dict()
    ema_tok = {k: v + 0.01 if v.is_floating_point() else v for k, v in sd_tok.items()}
    ema_tr = {k: v + 0.01 for k, v in sd_tr.items()}
    _save(tmp_path / "tok.pt", state_dict=sd_tok, state_dict_ema=ema_tok)
    _save(tmp_path / "tr.pt", state_dict=sd_tr, state_dict_ema=ema_tr)
    tok2 = FAMILY.load_tokenizer(tmp_path / "tok.pt", cfg)
    tr2 = FAMILY.load_transformer(tmp_path / "tr.pt", cfg, tok2)
    assert torch.equal(tok2.encode(x), tok.encode(x))
    assert torch.equal(tr2.pos_emb_hw, sd_tr["pos_emb_hw"]) and not tr2.training and not tok2.training
    assert all(p.dtype == torch.float32 for p in tr2.parameters())
    tok3 = FAMILY.load_tokenizer(tmp_path / "tok.pt", cfg, ema=True)
    tr3 = FAMILY.load_transformer(tmp_path / "tr.pt", cfg, tok3, ema=True)
    assert torch.equal(tr3.pos_emb_hw, ema_tr["pos_emb_hw"])
    assert torch.equal(tok3.quantizer.codebooks[2].weight, ema_tok["quantizer.codebooks.0.weight"])
    # a file without an EMA state dict, asked for one
    _save(tmp_path / "plain.pt", state_dict=sd_tr)
    with pytest.raises(CheckpointError, match="state_dict_ema"):
        FAMILY.load_transformer(tmp_path / "plain.pt", cfg, tok2, ema=True)


def test_load_errors(tiny, tmp_path):
    cfg, tok, tr, _x = tiny
    # another family's file (LlamaGen-style {"model": sd})
    torch.save({"model": {"tok_embeddings.weight": torch.zeros(4, 4)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt"):
        FAMILY.load_tokenizer(tmp_path / "other.pt", cfg)
    # the transformer file given as tokenizer, and vice versa
    _save(tmp_path / "tr.pt", state_dict=tr.state_dict())
    _save(tmp_path / "tok.pt", state_dict=tok.state_dict())
    with pytest.raises(CheckpointError, match=r"tr\.pt.*missing key"):
        FAMILY.load_tokenizer(tmp_path / "tr.pt", cfg)
    with pytest.raises(CheckpointError, match=r"tok\.pt.*unexpected key"):
        FAMILY.load_transformer(tmp_path / "tok.pt", cfg, tok)
    # truncated file
    data = (tmp_path / "tok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        FAMILY.load_tokenizer(tmp_path / "cut.pt", cfg)
    # the aliased codebook names disagree
    bad = tok.state_dict()
    bad = {k: v.clone() for k, v in bad.items()}
    bad["quantizer.codebooks.1.weight"] += 1.0
    torch.save({"state_dict": bad}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="codebooks.1.weight"):
        FAMILY.load_tokenizer(tmp_path / "bad.pt", cfg)
    # wrong size
    other = copy.deepcopy(cfg)
    other["transformer"]["embed_dim"] = 32
    for s in ("body", "head"):
        other["transformer"][s]["block"]["embed_dim"] = 32
    with pytest.raises(CheckpointError, match="shape"):
        FAMILY.load_transformer(tmp_path / "tr.pt", other, tok)
    # no tokenizer / mismatching tokenizer
    with pytest.raises(ValueError, match="tokenizer"):
        FAMILY.load_transformer(tmp_path / "tr.pt", cfg, None)
    small = copy.deepcopy(cfg)
    small["tokenizer"]["hparams"]["n_embed"] = 16
    with pytest.raises(ValueError, match="codebook"):
        FAMILY.build_transformer(cfg, FAMILY.build_tokenizer(small))


def test_unshared_codebooks_and_bad_config():
    cfg = _tiny_config(shared=False)
    tok = FAMILY.build_tokenizer(cfg)
    books = tok.quantizer.codebooks
    assert books[0] is not books[1]
    tr = FAMILY.build_transformer(cfg, tok)
    e = tok.code_embeddings(torch.tensor([[1, 2, 3]]))
    assert torch.equal(e[0, 2], books[2].weight[3])
    assert tr.token_nll(torch.zeros(2, 48, dtype=torch.long), torch.tensor([0, 1])).shape == (2, 48)
    bad = copy.deepcopy(cfg)
    bad["transformer"]["input_emb_vqvae"] = False
    with pytest.raises(ValueError, match="input_emb_vqvae"):
        FAMILY.build_transformer(bad)
    bad = copy.deepcopy(cfg)
    bad["tokenizer"]["hparams"]["latent_shape"] = [8, 8, 8]
    with pytest.raises(ValueError, match="latent_shape"):
        FAMILY.build_tokenizer(bad)


# --------------------------------------------------------------------------- preprocessing


def _rows_image(w: int, h: int) -> Image.Image:
    """RGB image whose red channel is the row index and green the column index (mod 256)."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = (np.arange(h) % 256)[:, None]
    a[..., 1] = (np.arange(w) % 256)[None, :]
    return Image.fromarray(a)


def _pm1(v: float) -> float:
    return (v / 255.0 - 0.5) / 0.5


@pytest.mark.parametrize(
    "w,h,top,left",
    [(256, 341, 42, 0), (256, 343, 44, 0), (301, 256, 0, 22), (303, 256, 0, 24), (256, 256, 0, 0)],
)
def test_preprocess_crop_offsets_round_half_even(w, h, top, left):
    from visbpp.models.rqtransformer.preprocess import preprocess_image

    out = preprocess_image(_rows_image(w, h), 256)  # short side already 256: crop only
    assert out.shape == (3, 256, 256) and out.dtype == torch.float32
    assert out[0, 0, 0].item() == pytest.approx(_pm1(top % 256), abs=1e-6)
    assert out[1, 0, 0].item() == pytest.approx(_pm1(left % 256), abs=1e-6)
    assert out[0, 255, 0].item() == pytest.approx(_pm1((top + 255) % 256), abs=1e-6)


def test_preprocess_resizes_short_side_bilinear():
    from visbpp.models.rqtransformer.preprocess import preprocess_image

    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 512, 3), dtype=np.uint8))
    out = preprocess_image(img, 256)
    ref = np.asarray(img.resize((256, 300), Image.BILINEAR))[22:278]  # short side 256, long int(256*600/512)
    assert torch.allclose(out, (torch.from_numpy(ref.copy()).permute(2, 0, 1).float() / 255 - 0.5) / 0.5, atol=1e-6)
    gray = preprocess_image(Image.new("L", (256, 256), 255), 256)
    assert gray.shape == (3, 256, 256) and torch.all(gray == 1.0)
    rgba = preprocess_image(Image.new("RGBA", (300, 280), (0, 0, 0, 0)), 256)
    assert torch.all(rgba == -1.0)
