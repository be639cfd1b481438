"""LlamaGen family: official-code conformance, real-size manifests, loading errors, numerics."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conformance_utils import FixtureSet, conformance_root, fixture_sets, manifests, optional_file, require
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.labels import scoring_null_class
from visbpp.core.registry.catalog import get_card, get_tokenizer_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.llamagen import ConfigError, center_crop_arr, precompute_freqs_cis_2d
from visbpp.models.llamagen.preprocess import to_model_input

FAM = get_family("llamagen")

# Exact parameter counts from the family spec (section 1 and "Extra released checkpoints").
SPEC_PARAMS = {
    "c2i_B_256.pt": 110_888_448,
    "c2i_B_384.pt": 110_888_448,
    "c2i_L_256.pt": 342_910_976,
    "c2i_L_384.pt": 342_910_976,
    "c2i_XL_384.pt": 774_699_520,
    "c2i_XXL_384.pt": 1_410_972_672,
    "c2i_3B_384.pt": 3_096_659_200,
    "vq_ds16_c2i.pt": 71_883_403,
}


# --------------------------------------------------------------------------- conformance fixtures


@lru_cache(maxsize=None)
def _loaded(folder: Path):
    fs = FixtureSet(folder)
    tok = FAM.load_tokenizer(str(fs.tokenizer_path), fs.config)
    gpt = FAM.load_transformer(str(fs.transformer_path), fs.config, tok)
    x = torch.stack([to_model_input(a) for a in fs.images])  # (N, 3, S, S)
    labels = torch.from_numpy(fs.labels).long()
    return fs, tok, gpt, x, labels


@pytest.mark.parametrize("folder", fixture_sets("llamagen"))
def test_conformance_preprocess(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert torch.equal(x, fs.expected["x"])
    raw = Image.fromarray(np.load(optional_file(fs.folder, "preprocess_raw.npy", "a raw picture for the crop")))
    assert np.array_equal(center_crop_arr(raw, fs.config["image_size"]), fs.images[0])
    assert torch.equal(tok.preprocess(raw), fs.expected["x"][0])


@pytest.mark.parametrize("folder", fixture_sets("llamagen"))
def test_conformance_tokens_and_recon(folder):
    fs, tok, _, x, _ = _loaded(require(folder))
    assert tok.tokens_per_image == fs.expected["tokens"].shape[1]
    with torch.inference_mode():
        z = tok.latent(x)
    torch.testing.assert_close(z, fs.expected["z"], atol=1e-4, rtol=0)
    tokens = tok.encode(x)
    assert tokens.dtype == torch.int64
    assert torch.equal(tokens, fs.expected["tokens"])
    recon = tok.decode(fs.expected["tokens"])
    torch.testing.assert_close(recon, fs.expected["recon"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("folder", fixture_sets("llamagen"))
def test_conformance_nll(folder):
    fs, _, gpt, _, labels = _loaded(require(folder))
    tokens = fs.expected["tokens"]
    nll = gpt.token_nll(tokens, labels)
    assert nll.dtype == torch.float32 and nll.shape == tokens.shape
    torch.testing.assert_close(nll, fs.expected["token_nll"], atol=1e-4, rtol=0)
    bits = nll.double().sum(-1) / math.log(2)
    torch.testing.assert_close(bits, fs.expected["nll_bits"], atol=2e-3, rtol=0)
    with torch.inference_mode():
        logits = gpt(tokens[:1], labels[:1])[0]
    torch.testing.assert_close(logits, fs.expected["logits_first"], atol=1e-4, rtol=0)
    torch.testing.assert_close(gpt.freqs_cis(), fs.expected["freqs_cis"], atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- real-size manifests


def _gpt_card_for(file: str):
    cards = [c for c in model_cards("llamagen") if c.files[0].filename == file]
    assert len(cards) == 1, f"exactly one LlamaGen card must use {file}, found {[c.id for c in cards]}"
    return cards[0]


@pytest.mark.parametrize("manifest", manifests("llamagen"))
def test_manifest_keys_shapes_params(manifest):
    if manifest is None:
        require(None)
    m = json.loads(Path(manifest).read_text())
    if m["file"] == get_tokenizer_card("llamagen-vq16").file.filename:
        tcard = get_tokenizer_card("llamagen-vq16")
        for mid in ("llamagen-b-256", "llamagen-l-384"):  # one file for both resolutions
            with torch.device("meta"):
                module = FAM.build_tokenizer(FAM.config_for(mid))
            got = {k: list(v.shape) for k, v in module.state_dict().items()}
            assert got == m["state_dict"]
        assert m["container"] == tcard.file.container
        params = tcard.params
    else:
        card = _gpt_card_for(m["file"])
        cfg = FAM.config_for(card.id)
        with torch.device("meta"):
            module = FAM.build_transformer(cfg)
        got = {k: list(v.shape) for k, v in module.state_dict().items()}
        assert got == m["state_dict"]
        assert cfg["transformer_container"] == m["container"] == card.files[0].container
        assert cfg["image_size"] == m["image_size"] == card.resolution
        assert cfg["transformer"]["block_size"] == m["token_grid"][0] * m["token_grid"][1] == card.tokens_per_image
        assert module.tokens_per_image == card.tokens_per_image and module.vocab_size == card.codebook_size
        params = card.params
    n = sum(p.numel() for p in module.parameters())
    assert n == SPEC_PARAMS[m["file"]] == m["params"] == params
    assert sum(v.numel() for v in module.state_dict().values()) == m["state_dict_numel"]


def test_every_card_has_a_config_and_3b_heads():
    for card in model_cards("llamagen"):
        cfg = FAM.config_for(card.id)
        assert cfg["image_size"] == card.resolution
    cfg = FAM.config_for("LlamaGen-3B")  # alias
    assert cfg["transformer"]["n_head"] == 32 and cfg["transformer"]["dim"] == 3200
    with torch.device("meta"):
        gpt = FAM.build_transformer(cfg)
    assert gpt.cfg.head_dim == 100 and gpt.freqs_cis().shape == (577, 50, 2)
    with pytest.raises(KeyError, match="not a LlamaGen model"):
        FAM.config_for(next(c.id for c in model_cards() if c.family != "llamagen"))


def test_3b_card_source():
    card = get_card("llamagen-3b-384")
    assert not card.in_published_table and card.reference_bpp is None
    assert card.fid.value == 2.18 and "README, cfg 1.65" in card.fid.source
    assert card.params == SPEC_PARAMS["c2i_3B_384.pt"] and card.files[0].container is None


# --------------------------------------------------------------------------- loading errors


def _fixture_folder() -> Path:
    return require(next((p.values[0] for p in fixture_sets("llamagen") if p.values[0] is not None), None))


def test_other_family_file_is_rejected():
    folder = _fixture_folder()
    cfg = json.loads((folder / "config.json").read_text())
    other = conformance_root() / "var" / "transformer.pt"
    if not other.exists():
        require(None)
    with pytest.raises(CheckpointError) as ei:
        FAM.load_transformer(str(other), cfg)
    msg = str(ei.value)
    assert str(other) in msg and "missing" in msg and "cls_embedding.embedding_table.weight" in msg
    with pytest.raises(CheckpointError, match="unexpected"):  # tokenizer weights given as the transformer
        FAM.load_transformer(str(folder / "tokenizer.pt"), cfg)


def test_truncated_file_is_rejected(tmp_path):
    folder = _fixture_folder()
    cfg = json.loads((folder / "config.json").read_text())
    data = (folder / "transformer.pt").read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        FAM.load_transformer(str(bad), cfg)


def test_bare_dict_with_stray_freqs_cis_loads_the_same(tmp_path):
    folder = _fixture_folder()
    fs, _, gpt, _, labels = _loaded(folder)
    sd = gpt.state_dict()  # the set's weights, whatever its container
    bare = tmp_path / "bare.pt"
    torch.save({**sd, "freqs_cis": gpt.freqs_cis().clone()}, bare)
    gpt2 = FAM.load_transformer(str(bare), fs.config)
    tokens = fs.expected["tokens"]
    assert torch.equal(gpt2.token_nll(tokens, labels), gpt.token_nll(tokens, labels))
    extra = tmp_path / "extra.pt"
    torch.save({"model": {**sd, "layers.0.attention.bias": torch.zeros(3)}}, extra)
    with pytest.raises(CheckpointError, match=r"extra\.pt.*unexpected.*layers\.0\.attention\.bias"):
        FAM.load_transformer(str(extra), fs.config)


def test_config_mismatch_is_rejected():
    cfg = FAM.config_for("llamagen-b-384")
    cfg["transformer"]["block_size"] = 256
    with pytest.raises(ConfigError, match="block_size 256 does not match"):
        FAM.build_transformer(cfg)


# --------------------------------------------------------------------------- numerics on a tiny model


def _tiny():
    cfg = FAM.config_for("llamagen-b-256")
    cfg["transformer"].update(dim=64, n_layer=2, n_head=4, vocab_size=97, num_classes=5, block_size=16)
    cfg["tokenizer"].update(codebook_size=97)
    cfg["image_size"] = 64
    torch.manual_seed(0)
    gpt = FAM.build_transformer(cfg).eval()
    with torch.no_grad():
        for p in gpt.parameters():
            p.normal_(0, 0.3 if p.ndim > 1 else 1.0)
    tokens = torch.randint(0, 97, (3, 16))
    labels = torch.tensor([0, 4, 2])
    return gpt, tokens, labels


def test_interfaces_and_label_checks():
    folder = _fixture_folder()
    _, tok, gpt, _, _ = _loaded(folder)
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gpt, ARModel)
    assert tok.family == gpt.family == "llamagen" and str(tok.image_size) in tok.preprocess_id
    gpt_t, tokens, labels = _tiny()
    assert gpt_t.null_class == 5  # the null row of a 5-class model trained with label dropout
    with scoring_null_class():  # accepted on explicit request: the null class is a row of the table
        null = gpt_t.token_nll(tokens, torch.tensor([5, 5, 5]))
    assert not torch.allclose(null, gpt_t.token_nll(tokens, labels))
    with pytest.raises(ValueError, match="null"):  # outside that request it is never scored as a real label
        gpt_t.token_nll(tokens, torch.tensor([5, 5, 5]))
    with pytest.raises(ValueError, match="null/CFG class"), scoring_null_class():
        gpt_t.token_nll(tokens, torch.tensor([0, 6, 1]))  # beyond the null row, even on request


def test_teacher_forcing_is_causal_and_aligned():
    gpt, tokens, labels = _tiny()
    base = gpt.token_nll(tokens, labels)
    changed = tokens.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 97
    nll = gpt.token_nll(changed, labels)
    assert torch.equal(nll[:, :5], base[:, :5])            # positions <= 4 never see token 5
    assert not torch.allclose(nll[:, 5], base[:, 5])       # position 5 scores the changed token itself
    assert not torch.allclose(nll[:, 6:], base[:, 6:])     # later positions condition on it
    other = gpt.token_nll(tokens, torch.tensor([1, 3, 0]))
    assert not torch.allclose(other[:, 0], base[:, 0])     # t_0 is predicted from the class token


def test_bf16_autocast_cpu():
    gpt, tokens, labels = _tiny()
    ref = gpt.token_nll(tokens, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = gpt.token_nll(tokens, labels)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref, atol=0.3, rtol=0.05)
    assert (low.double().sum() - ref.double().sum()).abs() / ref.double().sum() < 0.01


def test_tiny_chunks_give_the_same_nll():
    gpt, tokens, labels = _tiny()
    ref = gpt.token_nll(tokens, labels, chunk=16)
    for chunk in (1, 3, 7):
        torch.testing.assert_close(gpt.token_nll(tokens, labels, chunk=chunk), ref, atol=1e-5, rtol=0)
    with torch.inference_mode():
        logits = gpt(tokens, labels)
    direct = -torch.log_softmax(logits.double(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(ref.double(), direct, atol=1e-4, rtol=0)


def test_rope_table_by_hand():
    t = precompute_freqs_cis_2d(grid=24, head_dim=100)
    assert t.shape == (577, 50, 2) and torch.count_nonzero(t[0]) == 0
    w = torch.tensor([10000.0 ** (-i / 25) for i in range(25)])
    row1 = t[1 + 1]  # image token 1: row 0, column 1
    torch.testing.assert_close(row1[:25], torch.stack([torch.ones(25), torch.zeros(25)], -1))
    torch.testing.assert_close(row1[25:], torch.stack([torch.cos(w), torch.sin(w)], -1), atol=1e-6, rtol=0)
    row = t[1 + 2 * 24 + 5]  # row 2, column 5
    torch.testing.assert_close(row[:25, 1], torch.sin(2 * w), atol=1e-6, rtol=0)
    torch.testing.assert_close(row[25:, 0], torch.cos(5 * w), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- preprocessing


def test_center_crop_box_halving_then_bicubic():
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (530, 700, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    # spec: halve with BOX while the short side >= 2S, then bicubic to short side S (Python round), centre crop
    ref = img.resize((350, 265), Image.BOX).resize((175, 132), Image.BOX)
    scale = 128 / 132
    ref = np.asarray(ref.resize((round(175 * scale), round(132 * scale)), Image.BICUBIC))
    top, left = (ref.shape[0] - 128) // 2, (ref.shape[1] - 128) // 2
    out = center_crop_arr(img, 128)
    assert out.shape == (128, 128, 3)
    assert np.array_equal(out, ref[top : top + 128, left : left + 128])
    x = to_model_input(np.array([[[0, 255, 51]]], dtype=np.uint8))
    torch.testing.assert_close(x.flatten(), torch.tensor([-1.0, 1.0, -0.6]))
    gray = Image.fromarray(arr[:, :, 0])  # any PIL mode is converted to RGB first
    with torch.device("meta"):
        tok = FAM.build_tokenizer(FAM.config_for("llamagen-b-256"))
    assert tok.preprocess(gray).shape == (3, 256, 256) and tok.preprocess(gray).dtype == torch.float32
