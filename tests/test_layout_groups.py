"""Named position groups of a token layout: validation, storage (old stored layouts unchanged) and folding."""

import math

import numpy as np
import pytest

from visbpp.core.analysis import breakdown as BD
from visbpp.core.interfaces import TokenLayout
from visbpp.core.layout import layout_from_dict, layout_to_dict

# What runs stored before named groups existed (index.json / meta.json of a LlamaGen and a VAR run).
OLD_RASTER = {"kind": "raster", "grid": [2, 3], "scales": [], "depth": 1, "parts": 1, "part_names": []}
OLD_SCALES = {"kind": "scales", "grid": None, "scales": [1, 2], "depth": 1, "parts": 1, "part_names": []}


def test_layouts_without_groups_store_and_read_as_before():
    for old, layout in ((OLD_RASTER, TokenLayout("raster", (2, 3))), (OLD_SCALES, TokenLayout("scales", scales=(1, 2)))):
        assert layout_from_dict(old) == layout
        assert layout_to_dict(layout) == old  # byte-for-byte the stored form of earlier runs
    assert layout_from_dict(None, 5) == TokenLayout("sequence", (1, 5))


def test_groups_round_trip_and_validate():
    layout = TokenLayout("raster", (2, 3), group_names=("first", "rest"), group_of=(0, 1, 1, 0, 1, 1))
    d = layout_to_dict(layout)
    assert d == {**OLD_RASTER, "groups": {"names": ["first", "rest"], "of": [0, 1, 1, 0, 1, 1]}}
    assert layout_from_dict(d) == layout
    assert "group_of" not in repr(layout)  # a per-position list stays out of messages
    with pytest.raises(ValueError, match="group_of names a group for 5 positions, the layout has 6"):
        TokenLayout("raster", (2, 3), group_names=("a",), group_of=(0,) * 5)
    with pytest.raises(ValueError, match="outside the 2 group names"):
        TokenLayout("raster", (2, 3), group_names=("a", "b"), group_of=(0, 1, 2, 0, 0, 0))
    with pytest.raises(ValueError, match="outside the 0 group names"):
        TokenLayout("raster", (2, 3), group_of=(0,) * 6)  # indices without names
    with pytest.raises(ValueError, match="for 0 positions"):
        TokenLayout("raster", (2, 3), group_names=("a",))  # names without indices


def test_fold_by_named_groups_by_hand():
    rng = np.random.default_rng(0)
    nll = rng.uniform(0.5, 9.0, (4, 6)).astype(np.float32)
    of = (1, 0, 1, 1, 0, 1)
    layout = TokenLayout("raster", (2, 3), group_names=("b", "a"), group_of=of)
    bd = BD.fold(nll, layout)
    bits = nll.astype(np.float64) / math.log(2)
    assert list(bd.by_group) == ["b", "a"]  # the names replace the raster's "all"
    np.testing.assert_allclose(bd.by_group["b"], bits[:, [1, 4]].sum(1), rtol=1e-12)
    np.testing.assert_allclose(bd.by_group["a"], bits[:, [0, 2, 3, 5]].sum(1), rtol=1e-12)
    np.testing.assert_allclose(bd.spatial, bits.reshape(4, 2, 3), rtol=1e-12)  # positions stay raster cells
    mean = BD.mean_breakdown(nll, layout, rows_per_step=3)
    assert mean["by_group"] == {"b": pytest.approx(bits[:, [1, 4]].sum(1).mean(), rel=1e-12),
                                "a": pytest.approx(bits[:, [0, 2, 3, 5]].sum(1).mean(), rel=1e-12)}
    # on a layout with sub-tokens the groups sum each position's parts
    sub = rng.uniform(0.1, 4.0, (2, 6, 2)).astype(np.float32)
    layout = TokenLayout("subtokens", (2, 3), parts=2, part_names=("p", "q"), group_names=("b", "a"), group_of=of)
    got = BD.fold(sub, layout).by_group
    per_pos = sub.astype(np.float32).sum(-1, dtype=np.float32).astype(np.float64) / math.log(2)
    np.testing.assert_allclose(got["a"], per_pos[:, [0, 2, 3, 5]].sum(1), rtol=1e-12)
    assert list(got) == ["b", "a"]


def test_groups_beside_scoring_orders():
    """A layout with both extensions: named position groups over the headline (the mean of the averaged
    orders per cell) and every scoring order beside them; both stored, read back, and the inspection's
    order report reads the orders only."""
    from visbpp.core.analysis.inspection import order_report

    of = (0, 1, 1, 0, 1, 1)
    layout = TokenLayout("raster", (2, 3), parts=3, part_names=("perm seed 0", "perm seed 1", "raster"), mean_parts=2,
                         group_names=("first", "rest"), group_of=of)
    d = layout_to_dict(layout)
    assert d == {**OLD_RASTER, "parts": 3, "part_names": ["perm seed 0", "perm seed 1", "raster"], "mean_parts": 2,
                 "groups": {"names": ["first", "rest"], "of": list(of)}}
    assert layout_from_dict(d) == layout
    with pytest.raises(ValueError, match="mean_parts = 4 must lie in"):
        TokenLayout("raster", (2, 3), parts=3, mean_parts=4)
    nll = np.random.default_rng(1).uniform(0.5, 9.0, (4, 6, 3)).astype(np.float32)
    bd = BD.fold(nll, layout)
    bits = nll.astype(np.float64) / math.log(2)
    head = bits[:, :, :2].mean(-1)   # per cell: the mean of the two permutations' NLL
    assert list(bd.by_group) == ["first", "rest", "perm seed 0", "perm seed 1", "raster"]
    np.testing.assert_allclose(bd.by_group["first"], head[:, [0, 3]].sum(1), rtol=1e-12)
    np.testing.assert_allclose(bd.by_group["rest"], head[:, [1, 2, 4, 5]].sum(1), rtol=1e-12)
    for k, name in enumerate(layout.part_names):
        np.testing.assert_allclose(bd.by_group[name], bits[:, :, k].sum(1), rtol=1e-12)
    np.testing.assert_allclose(bd.bits, head.sum(1), rtol=1e-12)
    m = BD.mean_breakdown(nll, layout)["by_group"]
    rep = order_report({k: m[k] for k in layout.part_names}, layout.part_names[:2], "perm:2")
    assert set(rep["bits"]) == set(layout.part_names)
    assert rep["headline_bits"] == pytest.approx(bits[:, :, :2].sum(1).mean(0).mean(), rel=1e-12)
    assert rep["raster_bits"] == pytest.approx(bits[:, :, 2].sum(1).mean(), rel=1e-12)
