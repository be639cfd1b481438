"""Open-MAGVIT2: conformance with official-code fixtures, real-size manifests, preprocessing, loaders."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from conformance_utils import FixtureSet, fixture_sets, manifests, require
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.registry.catalog import get_card, get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.core.units import LN2
from visbpp.models import get_family
from visbpp.models.openmagvit2.preprocess import center_crop_offsets, preprocess_image, resize_short_side

FAM = get_family("openmagvit2")


def _x(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float64) / 127.5 - 1.0).float().permute(0, 3, 1, 2)


@pytest.fixture(scope="module", params=fixture_sets("openmagvit2"))
def loaded(request):
    fs = FixtureSet(require(request.param))
    tok_ar = FAM.load_tokenizer(fs.transformer_path, fs.config)
    tok_file = FAM.load_tokenizer(fs.tokenizer_path, fs.config)
    gpt = FAM.load_transformer(fs.transformer_path, fs.config)
    return fs, tok_ar, tok_file, gpt


def test_conformance_tokens(loaded):
    fs, tok_ar, tok_file, gpt = loaded
    x = _x(fs.images)
    assert torch.equal(x, fs.expected["x"])
    codes = tok_ar.encode(x)
    assert codes.dtype == torch.int64 and codes.shape == fs.expected["code_index"].shape
    assert torch.equal(codes, fs.expected["code_index"])
    pre, post = gpt.split(codes)
    assert torch.equal(torch.stack([pre, post], -1), fs.expected["tokens"])
    # the tokenizer file, read with the AR config (use_ema False), gives the same tokenizer
    assert tok_file.weights_source == "tokenizer-file raw"
    assert torch.equal(tok_file.encode(x), codes)
    assert torch.allclose(tok_ar.encode_latent(x), fs.expected["z"], atol=1e-4)


def test_conformance_nll_and_recon(loaded):
    fs, tok_ar, _, gpt = loaded
    e = fs.expected
    labels = torch.from_numpy(fs.labels).long()
    codes = e["code_index"]
    nll = gpt.token_nll(codes, labels)
    assert nll.dtype == torch.float32 and nll.shape == codes.shape
    torch.testing.assert_close(nll, e["token_nll"], atol=1e-4, rtol=0)
    torch.testing.assert_close(gpt.subtoken_nll(codes, labels), e["subtoken_nll"], atol=1e-4, rtol=0)
    torch.testing.assert_close(nll.double().sum(-1) / LN2, e["nll_bits"], atol=2e-3, rtol=0)
    lp, lq = gpt.logits(codes[:1], labels[:1])
    torch.testing.assert_close(lp[0], e["logits_first_pre"], atol=1e-4, rtol=0)
    torch.testing.assert_close(lq[0], e["logits_first_post"], atol=1e-4, rtol=0)
    torch.testing.assert_close(tok_ar.decode(codes), e["recon"], atol=1e-4, rtol=0)


def test_ema_weights_differ_and_are_selectable(loaded):
    fs, tok_ar, _, _ = loaded
    cfg = json.loads(json.dumps(fs.config))
    cfg["tokenizer"]["use_ema"] = True
    tok_ema = FAM.load_tokenizer(fs.tokenizer_path, cfg)
    assert tok_ema.weights_source == "tokenizer-file ema"
    w_raw = tok_ar.encoder.conv_in.weight
    w_ema = tok_ema.encoder.conv_in.weight
    if torch.equal(w_raw, w_ema):
        pytest.skip(f"{fs.tokenizer_path}: its EMA copies equal the raw weights, so the choice cannot be seen")
    assert not torch.allclose(w_raw, w_ema)  # the public set's EMA copies are deliberately different


def test_chunking_gives_same_nll(loaded):
    fs, _, _, gpt = loaded
    codes = fs.expected["code_index"]
    labels = torch.from_numpy(fs.labels).long()
    full = gpt.token_nll(codes, labels)
    for chunk in (1, 5, codes.shape[1] - 1):
        torch.testing.assert_close(gpt.token_nll(codes, labels, chunk=chunk), full, atol=1e-6, rtol=0)


def test_bf16_autocast_cpu(loaded):
    fs, _, _, gpt = loaded
    codes = fs.expected["code_index"]
    labels = torch.from_numpy(fs.labels).long()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll = gpt.token_nll(codes, labels)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    diff = (nll - fs.expected["token_nll"]).abs()
    assert diff.mean() < 0.15 and diff.max() < 1.0


def test_interface_attributes(loaded):
    fs, tok_ar, _, gpt = loaded
    assert isinstance(FAM, Family) and isinstance(tok_ar, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok_ar.family == gpt.family == "openmagvit2"
    assert tok_ar.image_size == fs.config["image_size"]
    assert tok_ar.tokens_per_image == gpt.tokens_per_image == fs.config["tokens_per_image"]
    assert tok_ar.vocab_size == gpt.vocab_size == fs.config["derived"]["codebook_size"]
    assert gpt.num_classes == fs.config["num_classes"]
    assert tok_ar.preprocess_id.endswith("@%d" % fs.config["image_size"])


def test_bad_inputs(loaded):
    fs, tok_ar, _, gpt = loaded
    S = fs.config["image_size"]
    L, V = gpt.tokens_per_image, gpt.vocab_size
    labels = torch.zeros(1, dtype=torch.long)
    with pytest.raises(ValueError, match="token values"):
        gpt.token_nll(torch.full((1, L), V), labels)
    with pytest.raises(ValueError, match="class labels"):
        gpt.token_nll(torch.zeros(1, L, dtype=torch.long), torch.tensor([gpt.num_classes + 1]))  # past the null row
    with pytest.raises(ValueError, match="expects"):
        tok_ar.encode(torch.zeros(1, 3, S + 8, S + 8))


# --------------------------------------------------------------------------- LFQ mapping (hand-computed)


def test_lfq_bit_order_and_zero():
    cfg = FAM.config_for("omg-b-256")
    with torch.device("meta"):
        tok = FAM.build_tokenizer(cfg)
    z = torch.full((1, 18, 16, 16), -1.0)
    z[0, 0, 0, 0] = 0.3          # channel 0 -> bit 0 -> +1
    z[0, 5, 0, 0] = 2.0          # channel 5 -> +32
    z[0, 6, 0, 0] = 0.1          # channel 6 -> +64 (pre = 33, post = 1)
    z[0, 17, 0, 1] = 1e-3        # channel 17 -> 2^17
    z[0, 3, 0, 2] = 0.0          # exactly zero -> bit 0
    idx = tok.latent_to_index(z)
    assert idx.shape == (1, 256)
    assert idx[0, :4].tolist() == [1 + 32 + 64, 131072, 0, 0]
    with torch.device("meta"):
        gpt = FAM.build_transformer(cfg)
    pre, post = gpt.split(idx)
    assert (pre[0, 0].item(), post[0, 0].item()) == (33, 1)
    assert (pre[0, 1].item(), post[0, 1].item()) == (0, 2048)
    q = tok.index_to_latent(idx)
    assert torch.equal(q, torch.where(z > 0, 1.0, -1.0))


# --------------------------------------------------------------------------- manifests (real sizes)

_SPEC_PARAMS = {"omg-b-256": 343_570_432, "omg-l-256": 804_362_240, "omg-xl-256": 1_486_679_040}
_SPEC_TOKENIZER_PARAMS = 115_127_829


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("manifest", manifests("openmagvit2"))
def test_manifest(manifest):
    m = json.loads(require(manifest).read_text())
    keys = m["state_dict"]
    tcard = get_tokenizer_card("omg-lfq-256")
    cards = [c for c in model_cards("openmagvit2") if c.files[0].filename == m["file"]]
    cfg = FAM.config_for(cards[0].id if cards else tcard.id)
    with torch.device("meta"):
        tok = FAM.build_tokenizer(cfg)
    tok_params = sum(p.numel() for p in tok.parameters())
    assert tok_params == tcard.params == _SPEC_TOKENIZER_PARAMS
    if cards:
        (card,) = cards
        with torch.device("meta"):
            gpt = FAM.build_transformer(cfg)
        want = {k[len("transformer."):]: v for k, v in keys.items() if k.startswith("transformer.")}
        assert _shapes(gpt) == want
        fs = {k[len("first_stage_model."):]: v for k, v in keys.items() if k.startswith("first_stage_model.")}
        assert _shapes(tok) == fs
        assert set(keys) == {"transformer." + k for k in want} | {"first_stage_model." + k for k in fs}
        n = sum(p.numel() for p in gpt.parameters())
        assert n == card.params == _SPEC_PARAMS[card.id] == m["params_transformer"]
    else:
        assert m["file"] == tcard.file.filename
        raw = {k: v for k, v in keys.items() if k.startswith(tuple(m["inference_prefixes"]))}
        assert _shapes(tok) == raw
        for k, shape in _shapes(tok).items():  # EMA copies: model_ema.<key without dots>
            assert keys["model_ema." + k.replace(".", "")] == shape


# --------------------------------------------------------------------------- preprocessing


def _gradient(w: int, h: int) -> Image.Image:
    xs = np.arange(w) % 256
    ys = (np.arange(h) * 7) % 256
    arr = np.stack([np.broadcast_to(xs[None, :], (h, w)), np.broadcast_to(ys[:, None], (h, w)),
                    np.full((h, w), 200)], -1).astype(np.uint8)
    return Image.fromarray(arr)


def test_crop_offsets_round_half_to_even():
    assert center_crop_offsets(256, 259, 256) == (0, 2)   # 1.5 -> 2
    assert center_crop_offsets(256, 261, 256) == (0, 2)   # 2.5 -> 2 (half to even)
    assert center_crop_offsets(263, 256, 256) == (4, 0)   # 3.5 -> 4


@pytest.mark.parametrize("w, left", [(259, 2), (261, 2), (263, 4)])
def test_preprocess_crop_without_resize(w, left):
    img = _gradient(w, 256)  # short side already 256: no resize, crop only
    out = preprocess_image(img, 256)
    assert out.shape == (3, 256, 256) and out.dtype == torch.float32
    cols = (np.arange(left, left + 256) % 256) / 127.5 - 1.0
    np.testing.assert_allclose(out[0, 0].numpy(), cols.astype(np.float32), atol=0)
    assert out[2].eq(np.float32(200 / 127.5 - 1.0)).all()


def test_resize_long_side_truncated_and_bilinear_antialias():
    assert resize_short_side(_gradient(1000, 333), 256).size == (768, 256)  # 256*1000/333 = 768.77 -> 768
    assert resize_short_side(_gradient(200, 300), 256).size == (256, 384)
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    small = resize_short_side(Image.fromarray(board).convert("RGB"), 32)
    vals = np.asarray(small)[4:-4, 4:-4]
    assert np.abs(vals.astype(int) - 127.5).max() <= 2  # antialiased averaging, not point sampling


def test_preprocess_range_and_mode():
    img = Image.fromarray(np.array([[0, 255], [255, 0]], dtype=np.uint8), mode="L").resize((256, 256), Image.NEAREST)
    out = preprocess_image(img, 256)
    assert out.shape == (3, 256, 256)
    assert out.min().item() == -1.0 and out.max().item() == 1.0
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])


# --------------------------------------------------------------------------- loaders


def test_loader_rejects_other_family_and_tokenizer_file():
    ibq = require(next((p.values[0] for p in fixture_sets("ibq") if p.values[0] is not None), None))
    fs = FixtureSet(require(next(p.values[0] for p in fixture_sets("openmagvit2"))))
    with pytest.raises(CheckpointError, match="transformer.pt"):
        FAM.load_tokenizer(ibq / "transformer.pt", fs.config)
    with pytest.raises(CheckpointError, match="transformer.pt"):
        FAM.load_transformer(ibq / "transformer.pt", fs.config)
    with pytest.raises(CheckpointError, match="no transformer"):
        FAM.load_transformer(fs.tokenizer_path, fs.config)


def test_loader_rejects_truncated_file(tmp_path):
    fs = FixtureSet(require(next(p.values[0] for p in fixture_sets("openmagvit2"))))
    bad = tmp_path / "AR_256_B.ckpt"
    data = fs.transformer_path.read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="AR_256_B.ckpt"):
        FAM.load_transformer(bad, fs.config)
    with pytest.raises(CheckpointError, match="AR_256_B.ckpt"):
        FAM.load_tokenizer(bad, fs.config)


# --------------------------------------------------------------------------- registry / config


def test_cards_and_config_schema():
    ids = [c.id for c in model_cards("openmagvit2")]
    assert ids == ["omg-b-256", "omg-l-256", "omg-xl-256"]
    for c in model_cards("openmagvit2"):
        assert c.family_label == "Open-MAGVIT2" and not c.in_published_table and c.reference_bpp is None
        f = c.files[0]
        assert f.repo.startswith("hf:TencentARC/Open-MAGVIT2-AR-") and f.url.endswith("/" + f.filename)
        assert f.contains_tokenizer and f.container == "state_dict"
        assert c.fid.source and c.rfid.value == 1.17
    assert get_card("Open-MAGVIT2 XL").id == "omg-xl-256"
    fixture = next((p.values[0] for p in fixture_sets("openmagvit2") if p.values[0] is not None), None)
    if fixture is not None:
        ref = json.loads((fixture / "config.json").read_text())
        cfg = FAM.config_for("omg-l-256")
        assert set(cfg["transformer"]) == set(ref["transformer"])
        assert set(cfg["tokenizer"]["ddconfig"]) == set(ref["tokenizer"]["ddconfig"])
        for k in ("image_size", "num_classes", "tokens_per_image", "factorized_bits", "token_grid", "subtoken_vocab"):
            assert k in cfg
    assert math.log2(FAM.config_for("omg-b-256")["tokenizer"]["n_embed"]) == 18
    with pytest.raises(KeyError, match="omg-b-256"):
        FAM.config_for("omg-q-256")
