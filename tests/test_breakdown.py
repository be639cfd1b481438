"""Token layouts of every family and the folding of per-token NLL into breakdowns (conformance models)."""

import math

import numpy as np
import pytest
import torch

from conformance_utils import FixtureSet, fixture_sets, require
from visbpp.core.analysis import breakdown as BD
from visbpp.core.interfaces import TokenLayout
from visbpp.core.labels import scoring_null_class
from visbpp.core.store import token_store as TS
from visbpp.models import get_family

FAMILIES = ("llamagen", "var", "rqtransformer", "taming", "openmagvit2", "ibq", "rar")
NULL = {"llamagen": True, "var": True, "openmagvit2": True, "ibq": True, "taming": False, "rqtransformer": False,
        "rar": True}


def _load(family):
    fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
    fam = get_family(family)
    tok = fam.load_tokenizer(str(fx.tokenizer_path), fx.config)
    ar = fam.load_transformer(str(fx.transformer_path), fx.config, tok)
    with torch.inference_mode():
        tokens = tok.encode(fx.expected["x"])
    return fx, tok, ar, tokens, torch.as_tensor(fx.labels, dtype=torch.long)


@pytest.mark.parametrize("family", FAMILIES)
def test_breakdowns_sum_to_the_image_bits(family):
    fx, tok, ar, tokens, labels = _load(family)
    layout = ar.token_layout
    assert isinstance(layout, TokenLayout) and layout.length == ar.tokens_per_image == tokens.shape[1]
    nll, parts, null = TS.score_batch(ar, tokens, labels)
    assert null is None
    assert torch.equal(nll, ar.token_nll(tokens, labels))  # what is stored is exactly the model's token_nll
    bits = (nll.double().sum(-1) / math.log(2)).numpy()    # the engine's per-image bits
    bd = BD.fold(parts, layout)
    np.testing.assert_allclose(bd.bits, bits, rtol=1e-12)
    np.testing.assert_allclose(bd.by_position.sum(1), bits, rtol=1e-12)
    assert bd.by_position.shape == (len(bits), layout.length)
    # sub-token totals are float64 sums of the parts; the image bits sum each position in fp32 first
    np.testing.assert_allclose(sum(bd.by_group.values()), bits, rtol=1e-12 if layout.parts == 1 else 1e-6)
    if layout.kind == "scales":
        assert bd.spatial is None
    else:
        assert bd.spatial.shape == (len(bits), *layout.grid)
        np.testing.assert_allclose(bd.spatial.sum((1, 2)), bits, rtol=1e-12)


def test_layouts_match_the_token_grids():
    _, tok, ar, _, _ = _load("llamagen")
    g = int(math.isqrt(tok.tokens_per_image))
    assert ar.token_layout == TokenLayout("raster", (g, g))
    _, _, ar, _, _ = _load("rqtransformer")
    assert ar.token_layout.kind == "depth" and ar.token_layout.grid + (ar.token_layout.depth,) == tuple(
        ar.cfg.block_size)
    _, _, ar, _, _ = _load("openmagvit2")
    assert ar.token_layout.parts == 2 and ar.token_layout.part_names == ("pre", "post")
    _, _, ar, _, _ = _load("var")
    assert ar.token_layout.scales == tuple(ar.patch_nums)


def test_var_per_scale_totals_match_the_fixture():
    fx, _, ar, _, labels = _load("var")
    want_nll = fx.expected["token_nll"].double().numpy()   # official code
    pn = fx.config["patch_nums"]
    nll = ar.token_nll(fx.expected["tokens"], labels).numpy()
    bd = BD.fold(nll, ar.token_layout)
    assert list(bd.by_group) == [f"{p}x{p}" for p in pn]
    start = 0
    for p in pn:
        want = want_nll[:, start:start + p * p].sum(1) / math.log(2)
        np.testing.assert_allclose(bd.by_group[f"{p}x{p}"], want, atol=1e-4 * p * p)
        start += p * p
    assert start == nll.shape[1]


def test_openmagvit2_subtokens_are_the_models_factorised_nll():
    _, _, ar, tokens, labels = _load("openmagvit2")
    _, parts, _ = TS.score_batch(ar, tokens, labels)
    np.testing.assert_array_equal(parts, ar.subtoken_nll(tokens, labels).numpy())
    bd = BD.fold(parts, ar.token_layout)
    np.testing.assert_allclose(bd.by_group["pre"], np.asarray(parts)[:, :, 0].astype(np.float64).sum(1) / math.log(2))


@pytest.mark.parametrize("family", FAMILIES)
def test_null_class_scoring(family):
    _, _, ar, tokens, labels = _load(family)
    _, parts, null = TS.score_batch(ar, tokens, labels, unconditional=True)
    if not NULL[family]:
        assert ar.null_class is None and null is None
        return
    assert ar.null_class == ar.num_classes
    with pytest.raises(ValueError, match="null"):  # never scored as a real label ...
        TS.score_batch(ar, tokens, torch.full_like(labels, ar.num_classes))
    with scoring_null_class():  # ... only on explicit request
        direct = TS.score_batch(ar, tokens, torch.full_like(labels, ar.num_classes))[1]
    np.testing.assert_array_equal(null, direct)   # = the NLL computed with the null label directly
    assert not np.array_equal(null, parts)


def test_fold_rejects_a_wrong_shape_and_handles_hand_values():
    lay = TokenLayout("depth", (1, 2), depth=2)
    nll = np.array([[1.0, 2.0, 3.0, 4.0]]) * math.log(2)   # bits 1,2 | 3,4 (depth fastest)
    bd = BD.fold(nll, lay)
    np.testing.assert_allclose(bd.spatial, [[[3.0, 7.0]]])
    np.testing.assert_allclose([bd.by_group["depth 0"][0], bd.by_group["depth 1"][0]], [4.0, 6.0])
    with pytest.raises(ValueError, match="token layout"):
        BD.fold(np.zeros((1, 5)), lay)
    m = BD.mean_breakdown(np.concatenate([nll, 3 * nll]), lay, rows_per_step=1)
    assert m["bits"] == pytest.approx(20.0) and m["spatial"][0] == pytest.approx([6.0, 14.0])


def test_var_label_dropout_forward_averages_to_paper_expected_bpp():
    """The paper's VAR evaluation ran the forward with cond_drop_rate 0.1: its expectation is
    0.9 bpp(label) + 0.1 bpp(null); visbpp itself never drops labels."""
    fx, tok, ar, _, labels = _load("var")
    assert ar.cond_drop_rate == 0.0
    tokens = fx.expected["tokens"]
    B, pixels = len(labels), 3 * tok.image_size ** 2
    a, b = ar.token_nll(tokens, labels), ar.token_nll(tokens, labels)
    assert torch.equal(a, b)  # scoring is deterministic: no label is ever replaced
    bpp = float(a.double().sum() / LN2_ / (B * pixels))
    with scoring_null_class():
        null = ar.token_nll(tokens, torch.full_like(labels, ar.null_class))
    bpp_null = float(null.double().sum() / LN2_ / (B * pixels))
    want = TS.paper_expected_bpp(bpp, bpp_null)
    g = torch.Generator().manual_seed(1234)
    reps = []
    for _ in range(8):  # 50 repetitions of the 4-image batch per forward (images are scored independently)
        drop = torch.rand(50, B, generator=g) < 0.1  # the official forward: each label -> null with p = 0.1
        lab = torch.where(drop, torch.full((50, B), ar.num_classes), labels.expand(50, B)).reshape(-1)
        with scoring_null_class():
            nll = ar.token_nll(tokens.repeat(50, 1), lab).double().sum(1).view(50, B)
        reps.extend((nll.sum(1) / LN2_ / (B * pixels)).tolist())
    reps = np.array(reps)
    se = reps.std(ddof=1) / np.sqrt(len(reps))
    assert se > 0 and abs(reps.mean() - want) < 3 * se
    assert abs(want - bpp) > 3 * se  # the test can tell the two apart


LN2_ = math.log(2)
