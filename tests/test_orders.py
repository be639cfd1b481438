"""The scoring order as a run option: parsing, the per-order token layout, the pinned permutations, the
engine's per-order parts (headline = mean over the permutations, raster beside), results/inspect, the run
identity, the analysis' choice of run, the jobs' ``--order`` (refused by families without an order
axis), the CLI and the TUI's plan."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conformance_utils import conformance_root
from engine_fakes import FakeAR, FakeTokenizer, make_imagefolder
from visbpp.core.engine.run_types import RunSettings, ScoringJob
from visbpp.core.errors import ConfigError
from visbpp.core.interfaces import TokenLayout
from visbpp.core.layout import Order, layout_from_dict, layout_to_dict, order_layout, parse_order, position_nll
from visbpp.models.orders import PINNED, OrderScoring, permutation

LN2 = math.log(2)


# --------------------------------------------------------------------------- the option and the layout


def test_parse_order():
    assert parse_order("raster") == Order() and parse_order(" Perm:4 ").text == "perm:4"
    assert parse_order("perm:2").part_names == ("perm seed 0", "perm seed 1", "raster")
    assert parse_order("perm:2").seeds == (0, 1, None) and Order().seeds == (None,)
    for bad in ("perm:0", "perm:-1", "perm:x", "perm", "zigzag", "", 4, None):
        with pytest.raises(ConfigError, match="raster | perm:K"):
            parse_order(bad, "--order")


def test_order_layout_round_trip_and_other_layouts_unchanged():
    lay = order_layout((4, 4), parse_order("perm:3"))
    assert (lay.kind, lay.parts, lay.mean_parts, lay.length) == ("raster", 4, 3, 16)
    assert layout_from_dict(json.loads(json.dumps(layout_to_dict(lay)))) == lay
    assert order_layout((4, 4), Order()) == TokenLayout("raster", (4, 4))     # raster alone: a plain raster layout
    plain = layout_to_dict(TokenLayout("subtokens", (2, 2), parts=2, part_names=("a", "b")))
    assert "mean_parts" not in plain                                          # stored layouts of other models as before
    assert layout_from_dict(plain).mean_parts == 0


def test_position_nll_headline_is_the_float64_mean_of_the_averaged_orders():
    rng = np.random.default_rng(0)
    nll = rng.random((3, 5, 4)).astype(np.float32)
    lay = TokenLayout("raster", (1, 5), parts=4, part_names=("p0", "p1", "p2", "raster"), mean_parts=3)
    want = (nll[..., 0].astype(np.float64) + nll[..., 1] + nll[..., 2]) / 3
    np.testing.assert_allclose(position_nll(nll, lay), want, rtol=1e-15, atol=0)
    sub = TokenLayout("subtokens", (1, 5), parts=4)
    np.testing.assert_array_equal(position_nll(nll, sub), nll.sum(-1, dtype=np.float32))   # sub-tokens: the fp32 sum


def test_pinned_permutations_are_torch_randperm_and_the_fixtures():
    pinned = np.load(PINNED[256])
    for k in range(pinned.shape[0]):
        want = torch.randperm(256, generator=torch.Generator("cpu").manual_seed(k))
        assert torch.equal(permutation(256, k), want) and np.array_equal(pinned[k], want.numpy())
    assert torch.equal(permutation(256, pinned.shape[0]),   # beyond the pinned rows: the rule itself
                       torch.randperm(256, generator=torch.Generator("cpu").manual_seed(pinned.shape[0])))
    assert torch.equal(permutation(36, None), torch.arange(36))
    files = sorted(conformance_root().glob("*/perms_256.npy"))
    assert files, f"no perms_256.npy under {conformance_root()}"
    for f in files:   # the spec's pinned list (the conformance sets of ARPG and RandAR)
        assert np.array_equal(np.load(f)[: pinned.shape[0]], pinned), f


# --------------------------------------------------------------------------- the engine with a fake order model


class FakeOrderAR(OrderScoring, FakeAR):
    """FakeAR's table scored in any order: token i of the order is predicted from the previous one of that order."""

    def __init__(self, order: str, seed: int = 0):
        super().__init__(seed)
        self.order = parse_order(order)
        self.token_layout = order_layout((4, 4), self.order)

    def scored_nll(self, tokens, labels, perm):
        return super(OrderScoring, self).token_nll(tokens.gather(1, perm), labels)   # FakeAR on the reordered tokens


def _order_job(order: str) -> ScoringJob:
    return ScoringJob("fake-order", "fake", "fake-tok", FakeTokenizer, lambda tok: FakeOrderAR(order), order=order)


def _direct_bits(path: str, label: int, seed) -> float:
    from visbpp.core.engine.data import load_image

    tok = FakeTokenizer()
    t = tok.encode(tok.preprocess(load_image(path))[None])
    with torch.inference_mode():
        nll = FakeAR(0).token_nll(t[:, permutation(t.shape[1], seed)], torch.tensor([label]))
    return float(nll.double().sum() / LN2)


def test_engine_stores_each_order_and_reports_the_permutation_mean(tmp_path):
    from visbpp.core.analysis import inspection as I
    from visbpp.core.engine.runner import run
    from visbpp.core.store import token_store as TS

    data = tmp_path / "data"
    images = make_imagefolder(str(data))
    settings = RunSettings(data=str(data), out_dir=str(tmp_path / "out"), device="cpu", batch_size=3, workers=0)
    res = run([_order_job("perm:3")], settings)
    assert not res.cancelled
    want = {rel: [_direct_bits(str(data / rel), lab, s) for s in (0, 1, 2, None)] for rel, lab in images}
    for r in res.per_image:   # headline = mean over the permutations, never the raster order
        assert r["bits"] == pytest.approx(np.mean(want[r["image"]][:3]), rel=1e-9)
    (s,) = res.models
    per_order = np.array([want[rel] for rel, _ in images]).mean(0)
    assert s["order"] == "perm:3" and list(s["order_bits"]) == ["perm seed 0", "perm seed 1", "perm seed 2", "raster"]
    np.testing.assert_allclose(list(s["order_bits"].values()), per_order, rtol=1e-6)
    assert s["order_std_bits"] == pytest.approx(np.std(per_order[:3], ddof=1), rel=1e-5)
    assert s["order_bpp"]["raster"] == pytest.approx(per_order[3] / (3 * 8 * 8), rel=1e-6)
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["results"]["fake-order"]["order_bpp"] == s["order_bpp"]
    nll, entry = TS.load(str(tmp_path / "out"), "fake-order")
    assert nll.shape == (len(images), 16, 4) and entry["layout"]["mean_parts"] == 3
    rep = I.model_report(I.resolve(str(tmp_path / "out"))[0])
    assert rep["orders"]["raster_bits"] == pytest.approx(per_order[3], rel=1e-6)
    assert rep["orders"]["headline_bits"] == pytest.approx(per_order[:3].mean(), rel=1e-6)
    assert rep["bits_mean"] == pytest.approx(per_order[:3].mean(), rel=1e-9)


def test_orders_are_part_of_the_run_identity_and_the_analysis_prefers_the_permutation_mean(tmp_path):
    from visbpp.core.engine.runner import run
    from visbpp.core.store.runs import select_measured

    data = tmp_path / "data"
    make_imagefolder(str(data))
    settings = RunSettings(data=str(data), device="cpu", batch_size=4, workers=0)
    first = run([_order_job("perm:2")], settings)
    again = run([_order_job("perm:2")], settings)
    assert again.already_finished and again.run_id == first.run_id
    raster = run([_order_job("raster")], settings)          # newer, but one order
    assert not raster.already_finished and raster.run_id != first.run_id
    assert raster.models[0]["order"] == "raster" and "order_bits" not in raster.models[0]
    assert raster.per_image[0]["bits"] != first.per_image[0]["bits"]
    plain = run([ScoringJob("fake-order", "fake", "fake-tok", FakeTokenizer, lambda tok: FakeAR(0))], settings)
    assert plain.run_id not in (first.run_id, raster.run_id) and "order" not in plain.models[0]
    sel = select_measured()
    (e,) = [e for e in sel.entries if e["model_id"] == "fake-order"]
    assert e["run_id"] == first.run_id and e["order"] == "perm:2"     # perm:2 over the newer raster and order-less runs
    assert any("order perm:2" in n for n in sel.notes)


# --------------------------------------------------------------------------- jobs, CLI, TUI


@pytest.fixture
def ckdir(tmp_path):
    """Stand-in files named like the released checkpoints (the jobs only resolve and hash them)."""
    from visbpp.core.registry.catalog import get_card, get_tokenizer_card

    d = tmp_path / "ck"
    d.mkdir()
    for mid in ("arpg-l", "llamagen-b-256", "randar-l-maskgit", "rar-b", "randar-xl"):
        card = get_card(mid)
        for f in (card.files[0], get_tokenizer_card(card.tokenizer_id).file):
            (d / f.filename).write_bytes(f.filename.encode())
    return str(d)


def test_jobs_resolve_the_order_and_share_tokenizer_keys(ckdir):
    from visbpp.models import jobs as J

    arpg = J.job_for_card("arpg-l", ckdir)
    assert arpg.order == "perm:4"                                       # the family default
    assert J.job_for_card("arpg-l", ckdir, order="RASTER").order == "raster"
    assert J.job_for_card("llamagen-b-256", ckdir).order is None
    assert arpg.tokenizer_key == J.job_for_card("llamagen-b-256", ckdir).tokenizer_key == \
        J.job_for_card("randar-xl", ckdir).tokenizer_key                # LlamaGen-256's cached tokens
    assert J.job_for_card("randar-l-maskgit", ckdir).tokenizer_key != J.job_for_card("rar-b", ckdir).tokenizer_key
    with pytest.raises(ConfigError, match="llamagen models have no order axis.*arpg, randar"):
        J.job_for_card("llamagen-b-256", ckdir, order="raster")
    with pytest.raises(ConfigError, match="--order: 'perm:x' is not a scoring order"):
        J.job_for_card("arpg-l", ckdir, order="perm:x")
    assert J.resolve_order("randar", None, {"order": "perm:2"}) == "perm:2"
    assert J.resolve_order("randar", "raster", {"order": "perm:2"}) == "raster"
    assert J.resolve_order("arpg", None, {"order": {"convention": "fixture notes"}}) == "perm:4"


def test_job_from_config_order_keeps_the_model_id(tmp_path):
    from visbpp.models import jobs as J

    folder = conformance_root() / "arpg"
    if not folder.is_dir():
        pytest.fail(f"conformance set {folder} missing")
    args = ("arpg", str(folder / "config.json"), str(folder / "tokenizer.pt"), str(folder / "transformer.pt"))
    a, b = J.job_from_config(*args), J.job_from_config(*args, order="raster")
    assert (a.order, b.order) == ("perm:4", "raster") and a.model_id == b.model_id
    with pytest.raises(ConfigError, match="no order axis"):
        J.job_from_config("llamagen", str(conformance_root() / "llamagen" / "config.json"),
                          str(conformance_root() / "llamagen" / "tokenizer.pt"),
                          str(conformance_root() / "llamagen" / "transformer.pt"), order="raster")


def test_cli_refuses_order_for_families_without_one_and_lists_the_models(tmp_path):
    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    (tmp_path / "data" / "c0").mkdir(parents=True)
    r = CliRunner().invoke(app, ["run", "--model", "llamagen-b-256", "--order", "raster", "--data",
                                 str(tmp_path / "data"), "--device", "cpu"])
    assert r.exit_code == 2 and "no order axis" in r.output and "--order applies to" in r.output
    r = CliRunner().invoke(app, ["run", "--model", "arpg-l", "--order", "sideways", "--data", str(tmp_path / "data")])
    assert r.exit_code == 2 and "raster | perm:K" in r.output
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0
    for mid in ("arpg-l", "arpg-xl", "arpg-xxl", "randar-l-llamagen", "randar-xl", "randar-l-maskgit"):
        assert mid in r.output


def test_tui_plan_gives_the_order_to_order_families_only(ckdir):
    from visbpp.models.jobs import plan_jobs
    from visbpp.tui import settings as st

    ui = st.UISettings(order="raster")
    plan = plan_jobs(["arpg-l", "llamagen-b-256", "randar-l-maskgit"], ckdir, order=st.order_option(ui))
    assert not plan.errors and [j.order for j in plan.jobs] == ["raster", None, "raster"]
    default = plan_jobs(["arpg-l"], ckdir, order=st.order_option(st.UISettings()))
    assert default.jobs[0].order == "perm:4"


def test_tui_own_models_get_the_order_of_their_family_only():
    """The TUI's own checkpoints (``--config`` style) in the one plan: the order setting reaches the
    random-order family's model, the other family's model keeps none (and is not refused)."""
    from visbpp.models.jobs import plan_jobs
    from visbpp.tui.state import CustomModel, own_jobs

    def own(family: str) -> CustomModel:
        folder = conformance_root() / family
        if not folder.is_dir():
            pytest.fail(f"conformance set {folder} missing")
        return CustomModel(f"mine-{family}", family, str(folder / "config.json"), str(folder / "tokenizer.pt"),
                           str(folder / "transformer.pt"))

    custom = [own("arpg"), own("llamagen")]
    plan = plan_jobs([m.label for m in custom], None, own_jobs(custom), order="perm:2")
    assert not plan.errors and not plan.missing
    assert [(j.model_id, j.order) for j in plan.jobs] == [("mine-arpg", "perm:2"), ("mine-llamagen", None)]
    assert plan_jobs(["mine-arpg"], None, own_jobs(custom)).jobs[0].order == "perm:4"   # the family default


def test_tui_settings_keep_a_valid_order(tmp_path):
    from visbpp.tui import settings as st

    path = tmp_path / "s.json"
    st.save_settings(st.UISettings(order="perm:8"), path)
    assert st.load_settings(path)[0].order == "perm:8"
    path.write_text(json.dumps({"order": "diagonal"}))
    assert st.load_settings(path)[0].order == "default"
