"""RandAR family: official-code conformance in every order (LlamaGen-token and MaskGIT-token sets),
real-size manifests, RandAR's own MaskGIT preprocessing, loading and config errors, the end-to-end CLI
per order, cards.

Fixture sets: every folder named ``randar`` or ``randar-*``; each set's ``config.json`` names its
``tokenizer_kind`` (``llamagen`` or ``maskgit``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import random_order_checks as C
from conformance_utils import fixture_sets, manifests, require
from visbpp.core.errors import ConfigError
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.registry.catalog import fit_group, get_card, get_tokenizer_card, model_cards
from visbpp.models import get_family
from visbpp.models.llamagen.preprocess import preprocess_id as llamagen_preprocess_id
from visbpp.models.orders import permutation
from visbpp.models.randar import RandARMaskGIT, maskgit_config, tokenizer_kind
from visbpp.models.rar.config import MaskGITConfig
from visbpp.models.rar.preprocess import eval_preprocess, eval_preprocess_id

FAM = get_family("randar")
SETS = fixture_sets("randar")


@pytest.mark.parametrize("folder", SETS)
def test_conformance_preprocess(folder):
    C.check_preprocess("randar", folder)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_tokens_and_recon(folder):
    C.check_tokens_and_recon("randar", folder)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_nll_every_order(folder):
    C.check_nll("randar", folder)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_instruction_tokens_and_both_files(folder):
    fs, _, gen, _, labels = C.loaded("randar", require(folder))
    e = fs.expected
    L = e["tokens"].shape[1]
    if "instruction_tokens_raster" in e:
        with torch.inference_mode():
            torch.testing.assert_close(gen.instruction_tokens(torch.arange(L)[None])[0], e["instruction_tokens_raster"],
                                       atol=1e-5, rtol=0)
    for name in ("transformer.safetensors", "transformer.pt"):   # the released format and a .pt of the same dict
        if (fs.folder / name).exists():
            other = FAM.load_transformer(str(fs.folder / name), fs.config)
            torch.testing.assert_close(other.scored_nll(e["tokens"], labels, e["perm_batch"]),
                                       e["token_nll_perm_batch"], atol=C.NATS, rtol=0)


@pytest.mark.parametrize("manifest", manifests("randar"))
def test_manifest_keys_shapes_params(manifest):
    C.check_manifest("randar", manifest, ("llamagen-vq16", "randar-maskgit-vqgan"))


@pytest.mark.parametrize("folder", SETS)
def test_end_to_end_cli_each_order(folder, tmp_path):
    C.check_end_to_end("randar", folder, tmp_path)


# --------------------------------------------------------------------------- the MaskGIT row's preprocessing


def _first():
    return C.loaded("randar", require(next((p.values[0] for p in SETS if p.values[0] is not None), None)))


def test_maskgit_row_uses_the_adm_crop_in_unit_range():
    """The MaskGIT-token row feeds RAR's tokenizer the ADM crop in [0, 1] (not RAR's resize + crop)."""
    fs, *_ = _first()
    raw = fs.folder / "preprocess_raw.npy"
    if not raw.exists() or "preprocess_maskgit_input" not in fs.expected:
        require(None)
    img = Image.fromarray(np.load(raw))
    size = fs.config["image_size"]
    with torch.device("meta"):
        tok = RandARMaskGIT(MaskGITConfig(image_size=size))
        real = FAM.build_tokenizer(FAM.config_for("randar-l-maskgit"))
    assert isinstance(real, RandARMaskGIT) and real.family == "randar" and real.image_size == 256
    x = tok.preprocess(img)
    assert torch.equal(x, fs.expected["preprocess_maskgit_input"])
    assert not torch.equal(eval_preprocess(img, size), x)   # RAR's resize + centre crop gives other pixels
    assert len({tok.preprocess_id, eval_preprocess_id(size), llamagen_preprocess_id(size)}) == 3


def test_tokenizer_kind_and_maskgit_config_checks():
    cfg = FAM.config_for("randar-l-maskgit")
    assert tokenizer_kind(cfg) == "maskgit" and tokenizer_kind(FAM.config_for("randar-xl")) == "llamagen"
    assert tokenizer_kind({k: v for k, v in cfg.items() if k != "tokenizer_kind"}) == "maskgit"   # read off the section
    m = maskgit_config(cfg)
    assert (m.codebook_size, m.z_channels, m.grid) == (1024, 256, 16)
    for key, value, match in (("embedding_dim", 128, "embedding_dim"), ("num_resolutions", 4, "num_resolutions")):
        bad = json.loads(json.dumps(cfg))
        bad["tokenizer"][key] = value
        with pytest.raises(ConfigError, match=match):
            FAM.build_tokenizer(bad)
    with pytest.raises(ConfigError, match="tokenizer_kind"):
        FAM.parse_config({**cfg, "tokenizer_kind": "vqgan"})
    wrong = {**cfg, "transformer": {**cfg["transformer"], "vocab_size": 16384}}   # LlamaGen-token generator on MaskGIT
    with pytest.raises(ConfigError, match="vocab_size 16384"):
        FAM.build_transformer(wrong)


def test_raw_labels_and_interfaces():
    fs, tok, gen, _, labels = _first()
    e = fs.expected
    tokens = e["tokens"]
    B, L = tokens.shape
    assert gen.cls_embedding.embedding_table.weight.shape[0] == fs.config["transformer"]["num_classes"] + 1
    shifted = gen.scored_nll(tokens, (labels + 1) % gen.num_classes, torch.arange(L).expand(B, L))
    assert (shifted - e["token_nll"]).abs().max() > 1e-2   # class id = raw label: another label gives other NLL
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gen, ARModel)
    perm = permutation(L, 0).expand(B, L)
    j = L // 2
    changed = tokens.clone()
    changed[torch.arange(B), perm[:, j]] = (changed[torch.arange(B), perm[:, j]] + 1) % gen.vocab_size
    base, nll = gen.scored_nll(tokens, labels, perm), gen.scored_nll(changed, labels, perm)
    assert torch.equal(nll[:, :j], base[:, :j]) and not torch.allclose(nll[:, j], base[:, j])   # causal, aligned


def test_cards_configs_and_groups():
    cards = {c.id: c for c in model_cards("randar")}
    assert list(cards) == ["randar-l-llamagen", "randar-xl", "randar-l-maskgit"]
    assert [c.fid.value for c in cards.values()] == [2.65, 2.27, 2.47]
    assert [fit_group(c) for c in cards.values()] == ["RandAR-LlamaGen", "RandAR-LlamaGen", "RandAR-MaskGIT"]
    tok = get_tokenizer_card("randar-maskgit-vqgan")
    rar_tok = get_tokenizer_card("rar-maskgit-vqgan")
    assert tok.file == rar_tok.file and tok.params == rar_tok.params and tok.family == "randar"   # same file, own tokens
    assert cards["randar-l-maskgit"].rfid.value == 2.28 and cards["randar-xl"].rfid.value == 2.19
    llamagen_section = get_family("llamagen").config_for("llamagen-b-256")["tokenizer"]
    assert FAM.config_for("randar-xl")["tokenizer"] == llamagen_section   # shared token cache with LlamaGen-256
    assert cards["randar-l-llamagen"].compare == get_card("llamagen-l-256").compare and not cards["randar-l-maskgit"].compare
    assert get_card("RandAR-L").id == "randar-l-llamagen"
    with pytest.raises(KeyError, match="not a RandAR model"):
        FAM.config_for("arpg-l")
