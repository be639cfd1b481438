"""IBQ: conformance with official-code fixtures, real-size manifests, preprocessing, loaders."""

from __future__ import annotations

import json

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
from visbpp.models.ibq.preprocess import center_crop_offsets, cv_linear_resize, preprocess_image, smallest_side_size
from visbpp.models.ibq.tokenizer import IndexQuantizer

FAM = get_family("ibq")


def _x(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float64) / 127.5 - 1.0).float().permute(0, 3, 1, 2)


@pytest.fixture(scope="module", params=fixture_sets("ibq"))
def loaded(request):
    fs = FixtureSet(require(request.param))
    tok_ar = FAM.load_tokenizer(fs.transformer_path, fs.config)
    tok_file = FAM.load_tokenizer(fs.tokenizer_path, fs.config)
    gpt = FAM.load_transformer(fs.transformer_path, fs.config)
    return fs, tok_ar, tok_file, gpt


def test_conformance_tokens(loaded):
    fs, tok_ar, tok_file, _ = loaded
    x = _x(fs.images)
    assert torch.equal(x, fs.expected["x"])
    tokens = tok_ar.encode(x)
    assert tokens.dtype == torch.int64
    assert torch.equal(tokens, fs.expected["tokens"])
    # the tokenizer file, read with the AR config (use_ema True), gives the EMA weights = the AR first stage
    assert tok_file.weights_source == "tokenizer-file ema"
    assert torch.equal(tok_file.encode(x), tokens)
    torch.testing.assert_close(tok_ar.encode_latent(x), fs.expected["z_pre_quant"], atol=1e-4, rtol=0)


def test_conformance_nll_and_recon(loaded):
    fs, tok_ar, _, gpt = loaded
    e = fs.expected
    labels = torch.from_numpy(fs.labels).long()
    nll = gpt.token_nll(e["tokens"], labels)
    assert nll.dtype == torch.float32 and nll.shape == e["tokens"].shape
    torch.testing.assert_close(nll, e["token_nll"], atol=1e-4, rtol=0)
    torch.testing.assert_close(nll.double().sum(-1) / LN2, e["nll_bits"], atol=2e-3, rtol=0)
    torch.testing.assert_close(gpt.logits(e["tokens"][:1], labels[:1])[0], e["logits_first"], atol=1e-4, rtol=0)
    torch.testing.assert_close(tok_ar.decode(e["tokens"]), e["recon"], atol=1e-4, rtol=0)


def test_raw_weights_differ_from_ema(loaded):
    fs, tok_ar, _, _ = loaded
    cfg = json.loads(json.dumps(fs.config))
    cfg["tokenizer"]["use_ema"] = False
    tok_raw = FAM.load_tokenizer(fs.tokenizer_path, cfg)
    assert tok_raw.weights_source == "tokenizer-file raw"
    if torch.equal(tok_raw.quantize.embedding.weight, tok_ar.quantize.embedding.weight):
        pytest.skip(f"{fs.tokenizer_path}: its raw weights equal the EMA copies, so the choice cannot be seen")
    assert not torch.allclose(tok_raw.quantize.embedding.weight, tok_ar.quantize.embedding.weight)


def test_chunking_gives_same_nll(loaded):
    fs, tok_ar, _, gpt = loaded
    tokens = fs.expected["tokens"]
    labels = torch.from_numpy(fs.labels).long()
    full = gpt.token_nll(tokens, labels)
    for chunk in (1, 7, tokens.shape[1] - 1):
        torch.testing.assert_close(gpt.token_nll(tokens, labels, chunk=chunk), full, atol=1e-6, rtol=0)
    chunk, tok_ar.quantize.chunk = tok_ar.quantize.chunk, 5  # quantiser chunking must not change codes
    try:
        assert torch.equal(tok_ar.encode(_x(fs.images)), tokens)
    finally:
        tok_ar.quantize.chunk = chunk


def test_bf16_autocast_cpu(loaded):
    fs, _, _, gpt = loaded
    tokens = fs.expected["tokens"]
    labels = torch.from_numpy(fs.labels).long()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll = gpt.token_nll(tokens, labels)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    diff = (nll - fs.expected["token_nll"]).abs()
    assert diff.mean() < 0.15 and diff.max() < 1.0


def test_interface_attributes(loaded):
    fs, tok_ar, _, gpt = loaded
    assert isinstance(FAM, Family) and isinstance(tok_ar, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok_ar.family == gpt.family == "ibq"
    assert tok_ar.image_size == fs.config["image_size"]
    assert tok_ar.tokens_per_image == gpt.tokens_per_image == fs.config["tokens_per_image"]
    assert tok_ar.vocab_size == gpt.vocab_size == fs.config["derived"]["codebook_size"]
    assert gpt.num_classes == fs.config["num_classes"]
    assert tok_ar.preprocess_id.endswith("@%d" % fs.config["image_size"])


def test_bad_inputs(loaded):
    fs, tok_ar, _, gpt = loaded
    S = fs.config["image_size"]
    L, V = gpt.tokens_per_image, gpt.vocab_size
    with pytest.raises(ValueError, match="token values"):
        gpt.token_nll(torch.full((1, L), V), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="class labels"):
        gpt.token_nll(torch.zeros(1, L, dtype=torch.long), torch.tensor([-1]))
    with pytest.raises(ValueError, match="expects"):
        tok_ar.encode(torch.zeros(1, 3, S + 8, S + 8))


# --------------------------------------------------------------------------- quantiser (hand-computed)


def test_dot_product_argmax_not_l2_nearest():
    q = IndexQuantizer(3, 2)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]]))
    h = torch.tensor([[1.0, 0.0], [0.2, 0.9], [1.0, 1.5]]).t().reshape(1, 2, 1, 3)  # three latent vectors
    # dots: [1, 3, 0] -> 1 (L2-nearest would be 0); [0.2, 0.6, 1.8] -> 2; [1, 3, 3] -> tie -> first max = 1
    assert q.codes(h).tolist() == [[1, 2, 1]]


# --------------------------------------------------------------------------- manifests (real sizes)

_SPEC_PARAMS = {"ibq-b-256": 342_994_944, "ibq-l-256": 649_640_960, "ibq-xl-256": 1_076_103_168,
                "ibq-xxl-256": 2_063_331_840}
_SPEC_TOKENIZER_PARAMS = 110_982_019


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize("manifest", manifests("ibq"))
def test_manifest(manifest):
    m = json.loads(require(manifest).read_text())
    keys = m["state_dict"]
    tcard = get_tokenizer_card("ibq-16384")
    cards = [c for c in model_cards("ibq") if c.files[0].filename == m["file"]]
    cfg = FAM.config_for(cards[0].id if cards else tcard.id)
    with torch.device("meta"):
        tok = FAM.build_tokenizer(cfg)
    assert sum(p.numel() for p in tok.parameters()) == tcard.params == _SPEC_TOKENIZER_PARAMS
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


# --------------------------------------------------------------------------- preprocessing (hand-computed)


def test_smallest_side_rounds_and_crop_floors():
    assert smallest_side_size(300, 200, 256) == (384, 256)
    assert smallest_side_size(333, 1000, 256) == (256, 769)  # 768.77 rounds up (Open-MAGVIT2 truncates)
    assert center_crop_offsets(256, 259, 256) == (0, 1)
    assert center_crop_offsets(257, 261, 256) == (0, 2)


def test_linear_upscale_half_pixel_centres_and_clamping():
    src = np.array([[0, 64], [128, 32]], dtype=np.uint8)[..., None].repeat(3, -1)
    out = cv_linear_resize(src, 4, 4)[..., 0].astype(float)
    # output sample positions (d + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped weights (1,0), (.75,.25),
    # (.25,.75), (0,1) along each axis
    w = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    expect = w @ src[..., 0].astype(float) @ w.T
    np.testing.assert_array_equal(out, expect)


def test_linear_rounding_of_fractions():
    row = np.array([[0, 1]], dtype=np.uint8)[..., None].repeat(3, -1)
    assert cv_linear_resize(row, 1, 4)[0, :, 0].tolist() == [0, 0, 1, 1]  # 0, .25, .75, 1
    assert cv_linear_resize(row, 1, 3)[0, :, 0].tolist() == [0, 1, 1]     # 0, .5 (rounds up), 1


def _pattern(h: int, w: int) -> np.ndarray:
    i, j, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((i * 37 + j * 91 + c * 53 + (i * j) % 7 * 11) % 256).astype(np.uint8)


# cv2.resize(_pattern(h, w), (nw, nh), interpolation=cv2.INTER_LINEAR) with opencv-python-headless 4.14,
# channel-first; these include OpenCV's rounding in the first/last rows (1 grey level below exact rounding)
_OPENCV = {
    (3, 4, 5, 7): [[[0, 32, 84, 136, 170, 76, 17], [15, 49, 103, 158, 194, 102, 45], [37, 73, 132, 190, 230, 142, 87],
                    [59, 98, 160, 145, 123, 127, 129], [74, 114, 179, 115, 52, 117, 157]],
                   [[53, 85, 137, 189, 223, 129, 70], [68, 102, 156, 159, 152, 119, 98], [90, 126, 185, 115, 45, 104, 140],
                    [112, 151, 213, 147, 81, 143, 182], [127, 167, 232, 168, 105, 169, 210]],
                   [[106, 138, 190, 114, 38, 90, 123], [121, 155, 209, 136, 62, 117, 151], [143, 179, 238, 168, 98, 157, 193],
                    [165, 149, 123, 123, 123, 97, 81], [180, 129, 47, 93, 140, 58, 7]]],
    (7, 9, 4, 5): [[[52, 172, 138, 85, 138], [124, 72, 171, 143, 119], [107, 112, 22, 198, 105], [167, 164, 105, 114, 169]],
                   [[105, 148, 191, 139, 95], [164, 125, 224, 196, 159], [147, 120, 74, 72, 145], [124, 70, 159, 90, 126]],
                   [[158, 73, 148, 159, 110], [128, 127, 53, 44, 122], [200, 167, 128, 55, 64], [119, 123, 211, 92, 121]]],
}


@pytest.mark.parametrize("shape", list(_OPENCV))
def test_linear_resize_matches_opencv_output(shape):
    h, w, nh, nw = shape
    out = cv_linear_resize(_pattern(h, w), nh, nw)
    assert out.transpose(2, 0, 1).tolist() == _OPENCV[shape]


def test_exact_half_is_rounded_box_average():
    src = np.array([[1, 2, 0, 0], [3, 5, 0, 2], [0, 0, 9, 9], [1, 0, 9, 8]], dtype=np.uint8)[..., None]
    out = cv_linear_resize(src, 2, 2)[..., 0]
    assert out.tolist() == [[3, 1], [0, 9]]  # 11/4 -> 3, 2/4 -> 1, 1/4 -> 0, 35/4 -> 9


def test_no_antialias_when_shrinking():
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, -1)
    small = cv_linear_resize(board, 21, 21)  # a non-integer factor: point-like sampling keeps the contrast
    assert small.max() - small.min() > 100


def test_preprocess_image_range_crop_and_mode():
    arr = np.zeros((256, 259, 3), dtype=np.uint8)
    arr[:, :, 0] = (np.arange(259) % 256)[None]
    arr[:, :, 2] = 255
    out = preprocess_image(Image.fromarray(arr), 256)  # no resize, crop left = 1
    assert out.shape == (3, 256, 256) and out.dtype == torch.float32
    np.testing.assert_array_equal(out[0, 0].numpy(), ((np.arange(1, 257) % 256) / 127.5 - 1).astype(np.float32))
    assert out[2].eq(1.0).all() and out[1].eq(-1.0).all()
    gray = Image.fromarray(np.full((300, 200), 77, dtype=np.uint8), mode="L")
    g = preprocess_image(gray, 256)
    assert g.shape == (3, 256, 256) and torch.allclose(g, torch.tensor(77 / 127.5 - 1.0))


# --------------------------------------------------------------------------- loaders


def test_loader_rejects_other_family_and_tokenizer_file():
    omg = require(next((p.values[0] for p in fixture_sets("openmagvit2") if p.values[0] is not None), None))
    fs = FixtureSet(require(next(p.values[0] for p in fixture_sets("ibq"))))
    with pytest.raises(CheckpointError, match="transformer.pt"):
        FAM.load_tokenizer(omg / "transformer.pt", fs.config)
    with pytest.raises(CheckpointError, match="transformer.pt"):
        FAM.load_transformer(omg / "transformer.pt", fs.config)
    with pytest.raises(CheckpointError, match="tokenizer.pt"):
        FAM.load_tokenizer(omg / "tokenizer.pt", fs.config)  # Open-MAGVIT2 EMA names do not fit IBQ
    with pytest.raises(CheckpointError, match="no transformer"):
        FAM.load_transformer(fs.tokenizer_path, fs.config)


def test_loader_rejects_truncated_file(tmp_path):
    fs = FixtureSet(require(next(p.values[0] for p in fixture_sets("ibq"))))
    bad = tmp_path / "AR_256_XXL.ckpt"
    data = fs.transformer_path.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="AR_256_XXL.ckpt"):
        FAM.load_transformer(bad, fs.config)


# --------------------------------------------------------------------------- registry / config


def test_cards_and_config_schema():
    ids = [c.id for c in model_cards("ibq")]
    assert ids == ["ibq-b-256", "ibq-l-256", "ibq-xl-256", "ibq-xxl-256"]
    omg_files = {c.files[0].filename: c.files[0] for c in model_cards("openmagvit2")}
    for c in model_cards("ibq"):
        assert c.family_label == "IBQ" and not c.in_published_table and c.reference_bpp is None
        f = c.files[0]
        assert f.repo.startswith("hf:TencentARC/IBQ-AR-") and f.url.endswith("/" + f.filename)
        assert f.contains_tokenizer and f.container == "state_dict"
        twin = omg_files.get(f.filename)  # same file names as Open-MAGVIT2 (B/L/XL): other repository and cache path
        if twin is not None:
            assert twin.repo != f.repo and twin.cache_relpath != f.cache_relpath
        assert c.fid.source and c.rfid.value == 1.37
    assert get_card("IBQ XXL").id == "ibq-xxl-256"
    fixture = next((p.values[0] for p in fixture_sets("ibq") if p.values[0] is not None), None)
    if fixture is not None:
        ref = json.loads((fixture / "config.json").read_text())
        cfg = FAM.config_for("ibq-xl-256")
        assert set(cfg["transformer"]) == set(ref["transformer"])
        assert set(cfg["tokenizer"]) == set(ref["tokenizer"]) - {"learning_rate", "sample_minimization_weight",
                                                                  "batch_maximization_weight"}
        assert set(cfg["tokenizer"]["ddconfig"]) == set(ref["tokenizer"]["ddconfig"])
    with pytest.raises(KeyError, match="ibq-b-256"):
        FAM.config_for("ibq-s-256")
