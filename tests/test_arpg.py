"""ARPG family: official-code conformance in every order, real-size manifests, the causal-mask trap,
loading and config errors, the end-to-end CLI per order, cards.

Fixture sets: every folder named ``arpg`` or ``arpg-*`` (``conformance_utils.fixture_sets("arpg")``).
"""

from __future__ import annotations

import json

import pytest
import torch

import random_order_checks as C
from conformance_utils import fixture_sets, manifests, require
from visbpp.core.errors import ConfigError
from visbpp.core.interfaces import ARModel, Family, ImageTokenizer
from visbpp.core.labels import scoring_null_class
from visbpp.core.registry.build import finish
from visbpp.core.registry.catalog import fit_group, get_card, model_cards
from visbpp.core.registry.checkpoint_io import CheckpointError
from visbpp.models import get_family
from visbpp.models.orders import permutation

FAM = get_family("arpg")
SETS = fixture_sets("arpg")


@pytest.mark.parametrize("folder", SETS)
def test_conformance_preprocess(folder):
    C.check_preprocess("arpg", folder)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_tokens_and_recon(folder):
    C.check_tokens_and_recon("arpg", folder)


@pytest.mark.parametrize("folder", SETS)
def test_conformance_nll_every_order(folder):
    C.check_nll("arpg", folder)


@pytest.mark.parametrize("folder", SETS)
def test_class_ids_and_embedding_rows(folder):
    fs, _, gen, _, labels = C.loaded("arpg", require(folder))
    t = fs.config["transformer"]
    V, n_cls = t["vocab_size"], t["num_classes"]
    assert gen.embeddings.weight.shape[0] == V + n_cls + 3
    if "condition_ids" in fs.expected:   # class y is row y + V + 1
        assert torch.equal(labels + V + 1, fs.expected["condition_ids"][:, 0])
    assert gen.null_class == n_cls       # label index of row V + C + 1 (CFG), scored only on request


@pytest.mark.parametrize("manifest", manifests("arpg"))
def test_manifest_keys_shapes_params(manifest):
    C.check_manifest("arpg", manifest, ("llamagen-vq16",))


@pytest.mark.parametrize("folder", SETS)
def test_end_to_end_cli_each_order(folder, tmp_path):
    C.check_end_to_end("arpg", folder, tmp_path)


# --------------------------------------------------------------------------- the model's own properties


def _first():
    return C.loaded("arpg", require(next((p.values[0] for p in SETS if p.values[0] is not None), None)))


def test_causal_and_target_aware():
    """Row j sees the class and the tokens scored before it, and the *position* of its own target, never its
    value (the eval-mode non-causal attention of upstream would see it: the spec's trap)."""
    fs, _, gen, _, labels = _first()
    tokens = fs.expected["tokens"]
    B, L = tokens.shape
    perm = permutation(L, 1).expand(B, L)
    base = gen.scored_nll(tokens, labels, perm)
    j = L // 3
    changed = tokens.clone()
    cell = perm[:, j]
    changed[torch.arange(B), cell] = (changed[torch.arange(B), cell] + 1) % gen.vocab_size
    nll = gen.scored_nll(changed, labels, perm)
    assert torch.equal(nll[:, :j], base[:, :j])          # earlier rows never see the changed token
    assert not torch.allclose(nll[:, j], base[:, j])      # row j scores it
    assert not torch.allclose(nll[:, j + 1:], base[:, j + 1:])
    swapped = perm.clone()                                # same inputs before j, another target position at j
    swapped[:, [j, j + 1]] = swapped[:, [j + 1, j]]
    other = gen.scored_nll(tokens, labels, swapped)
    assert torch.equal(other[:, :j], base[:, :j]) and not torch.allclose(other[:, j], base[:, j + 1])


def test_order_nll_is_per_cell_and_headline_is_the_permutation_mean():
    fs, _, gen, _, labels = _first()
    tokens = fs.expected["tokens"]
    B, L = tokens.shape
    model = FAM.build_transformer({**fs.config, "order": "perm:3"})
    model.load_state_dict(gen.state_dict())
    model = finish(model)   # the CPU linears of the loaded ``gen``: the same arithmetic
    assert model.token_layout.part_names == ("perm seed 0", "perm seed 1", "perm seed 2", "raster")
    parts = model.order_nll(tokens, labels)
    assert parts.shape == (B, L, 4)
    for k, seed in enumerate((0, 1, 2, None)):
        perm = permutation(L, seed)
        torch.testing.assert_close(parts[:, perm, k], gen.scored_nll(tokens, labels, perm.expand(B, L)), atol=0, rtol=0)
    torch.testing.assert_close(model.token_nll(tokens, labels).double(), parts[..., :3].double().mean(-1),
                               atol=1e-6, rtol=0)


def test_bad_inputs_are_clear_errors():
    fs, tok, gen, _, labels = _first()
    tokens = fs.expected["tokens"]
    B, L = tokens.shape
    ident = torch.arange(L).expand(B, L)
    with pytest.raises(ValueError, match="permutation"):
        gen.scored_nll(tokens, labels, torch.zeros(B, L, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, %d\)" % L):
        gen.scored_nll(tokens[:, :-1], labels, ident[:, :-1])
    with pytest.raises(ValueError, match="null"):
        gen.scored_nll(tokens, torch.full_like(labels, gen.num_classes), ident)
    with scoring_null_class():   # the null row on explicit request (--unconditional)
        assert torch.isfinite(gen.scored_nll(tokens, torch.full_like(labels, gen.num_classes), ident)).all()
    assert isinstance(FAM, Family) and isinstance(tok, ImageTokenizer) and isinstance(gen, ARModel)
    assert not gen.training and all(p.dtype == torch.float32 and not p.requires_grad for p in gen.parameters())


def test_wrong_files_and_configs(tmp_path):
    fs, *_ = _first()
    with pytest.raises(CheckpointError, match="tokenizer file"):
        FAM.load_transformer(str(fs.tokenizer_path), fs.config)
    sd = torch.load(fs.transformer_path, weights_only=True)["state_dict"]
    bare = tmp_path / "bare.pt"
    torch.save({**sd, "freqs_cis": torch.zeros(3)}, bare)    # bare dict with a stray RoPE table: loads
    FAM.load_transformer(str(bare), fs.config)
    missing = tmp_path / "missing.pt"
    torch.save({"state_dict": {k: v for k, v in sd.items() if k != "layers.to_k.weight"}}, missing)
    with pytest.raises(CheckpointError, match="layers.to_k.weight"):   # strict, unlike upstream
        FAM.load_transformer(str(missing), fs.config)
    for change, match in (({"order": "perm:0"}, "not a scoring order"), ({"order": "zigzag"}, "raster | perm:K"),
                          ({"transformer": {**fs.config["transformer"], "n_layer": 3}}, "even"),
                          ({"transformer": {**fs.config["transformer"], "block_size": 49}}, "block_size 49"),
                          ({"tokenizer": {**fs.config["tokenizer"], "codebok_size": 1}}, "codebok_size")):
        with pytest.raises(ConfigError, match=match):
            FAM.build_transformer({**fs.config, **change})


def test_cards_configs_and_groups():
    cards = model_cards("arpg")
    assert [c.id for c in cards] == ["arpg-l", "arpg-xl", "arpg-xxl"]
    assert [c.fid.value for c in cards] == [2.44, 2.10, 1.94]
    assert [c.fid.guidance for c in cards] == ["cfg 4.5", "cfg 6.0", "cfg 7.5"]
    assert [c.alt_fid[0].value for c in cards] == [2.38, 2.02, 1.91]
    for c in cards:
        cfg = FAM.config_for(c.id)
        assert fit_group(c) == "ARPG" and c.rfid.value == 2.19 and c.tokenizer_id == "llamagen-vq16"
        assert cfg["tokenizer"] == get_family("llamagen").config_for("llamagen-b-256")["tokenizer"]   # shared token cache
        assert set(c.compare) == set(get_card("llamagen-b-256").compare) == set(get_card("llamagen-l-256").compare)
    assert get_card("ARPG-XL").id == "arpg-xl" and get_card("arpg_1b").id == "arpg-xxl"
    with pytest.raises(KeyError, match="not an ARPG model"):
        FAM.config_for("llamagen-b-256")
    json.dumps(FAM.config_for("arpg-l"))   # plain data


def test_llamagen_256_token_set_meets_in_same_tokenizer_pairs():
    """LlamaGen-B/L-256 (raster) and the random-order models share one tokenizer (one rFID): their
    ``compare`` set is no tokenizer comparison, even once measured; the models of one size class on
    those tokens pair up in ``pairs.py``, with the measured BPPs and the cards' FIDs."""
    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.pairs import SAME_SIZE, SIZE_RATIO, shared_tokenizer_pairs
    from visbpp.core.analysis.table import fit_rows, merged_table
    from visbpp.core.registry.cards.llamagen import COMPARE_VQ16_256

    bpp = {"arpg-l": 0.01372, "arpg-xl": 0.01361, "arpg-xxl": 0.01350, "randar-l-llamagen": 0.01380, "randar-xl": 0.01366}
    whole_val = {"n_classes": 1000, "n_selected": 50000}
    measured = [{"model_id": k, "bpp": v, "n_images": 50000, "run_id": f"r{i}", "preprocess": "paper", "subset": whole_val}
                for i, (k, v) in enumerate(bpp.items())]
    df = fit_rows(merged_table(measured, "all"))[0]
    res = analyze(df)
    assert not [c for c in res.comparisons if c.name == COMPARE_VQ16_256]
    assert {g.group for g in res.groups} >= {"ARPG", "RandAR-LlamaGen"}
    members = [get_card(m) for m in [*bpp, "llamagen-b-256", "llamagen-l-256"]]
    assert {c.tokenizer_id for c in members} == {"llamagen-vq16"} and {c.resolution for c in members} == {256}
    want = {frozenset((x.id, y.id)) for i, x in enumerate(members) for y in members[i + 1:]
            if max(x.params, y.params) / min(x.params, y.params) <= SIZE_RATIO}
    got = {frozenset((p.a, p.b)): p for p in shared_tokenizer_pairs(df).pairs if p.a in bpp or p.b in bpp}
    assert set(got) == want and frozenset(("llamagen-l-256", "randar-l-llamagen")) in want
    for p in got.values():
        assert p.kind == SAME_SIZE and p.tokenizer == "llamagen-vq16@256"
        for mid, b, f in ((p.a, p.bpp_a, p.fid_a), (p.b, p.bpp_b, p.fid_b)):
            assert b == pytest.approx(bpp.get(mid, get_card(mid).reference_bpp), rel=1e-12)
            assert f == pytest.approx(get_card(mid).fid.value, rel=1e-12)
