"""`visbpp inspect` on runs of the conformance models: JSON schema, breakdowns, per-class, paired comparison."""

import json
import math

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from conformance_utils import FixtureSet, fixture_sets, require
from test_run_cli import _imagefolder, _own_args
from visbpp.core.analysis import inspection as I
from visbpp.core.store import results as R
from visbpp.tui.cli import app

runner = CliRunner()
KEYS = ["model_id", "run_id", "n_images", "bpp", "bits_mean", "by_position", "spatial", "by_group", "per_class",
        "class_info_bits", "raw_rate_bpp", "unigram_bpp", "unigram_bpp_mm", "ar_share", "baseline_note"]


def _run(family, tmp_path, monkeypatch, *extra):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    fx = FixtureSet(require(fixture_sets(family)[0].values[0]))
    _imagefolder(fx, tmp_path / "data", int(fx.config.get("num_classes", 10)))
    out = tmp_path / f"out-{family}"
    r = runner.invoke(app, ["run", *_own_args(fx, family), "--data", str(tmp_path / "data"), "--out", str(out),
                            "--device", "cpu", "--batch-size", "3", "--quiet", *extra])
    assert r.exit_code == 0, r.output
    return out, json.loads((out / "results.json").read_text())


def test_inspect_json_schema_and_values(tmp_path, monkeypatch):
    out, doc = _run("llamagen", tmp_path, monkeypatch, "--unconditional")
    mid = doc["models"][0]["model_id"]
    r = runner.invoke(app, ["inspect", str(out), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert list(got) == ["models"]
    m = got["models"][0]
    assert list(m) == KEYS and m["model_id"] == mid
    rows = R.read_rows(str(out))
    bits = np.array([x["bits"] for x in rows])
    assert m["n_images"] == len(rows) and m["bpp"] == doc["models"][0]["bpp"]
    assert m["bits_mean"] == pytest.approx(bits.mean(), rel=1e-12)
    assert sum(m["by_position"]) == pytest.approx(bits.mean(), rel=1e-12)
    g = int(math.isqrt(len(m["by_position"])))
    assert np.array(m["spatial"]).shape == (g, g)  # the token grid
    assert sum(map(sum, m["spatial"])) == pytest.approx(bits.mean(), rel=1e-12)
    assert m["by_group"] == {"all": pytest.approx(bits.mean(), rel=1e-12)}
    assert m["class_info_bits"] == doc["models"][0]["class_info_bits"] is not None
    # a model outside the registry: its cached tokens give the order-0 baseline, its vocabulary no raw rate
    assert m["raw_rate_bpp"] is None and m["unigram_bpp"] > 0 and "not a registry model" in m["baseline_note"]
    assert m["ar_share"] == pytest.approx(1 - m["bpp"] / m["unigram_bpp"], rel=1e-12)
    # per class by hand
    for c in m["per_class"]:
        rs = [x for x in rows if x["label"] == c["label"]]
        assert c["n"] == len(rs)
        assert c["bpp"] == pytest.approx(sum(x["bits"] for x in rs) / sum(3 * x["pixels"] for x in rs), rel=1e-12)
    # by model id: the results store's measurement of the same run
    r2 = runner.invoke(app, ["inspect", mid, "--json"])
    assert r2.exit_code == 0, r2.output
    assert json.loads(r2.output) == got


def test_inspect_var_groups_and_paired_with_itself(tmp_path, monkeypatch):
    out, doc = _run("var", tmp_path, monkeypatch)
    mid = doc["models"][0]["model_id"]
    r = runner.invoke(app, ["inspect", str(out), "--json", "--compare", mid, "--compare", mid])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    m = got["models"][0]
    assert m["spatial"] is None and list(m["by_group"]) == ["1x1", "2x2", "3x3", "4x4", "5x5"]
    assert sum(m["by_group"].values()) == pytest.approx(m["bits_mean"], rel=1e-12)
    assert m["class_info_bits"] is None  # not scored with --unconditional
    (p,) = got["paired"]
    assert p["n_common"] == m["n_images"] and p["mean_bits_diff"] == 0.0
    assert p["sign_test_p"] == 1.0
    # the fixture run has fewer than 10 images: no interval, the reason instead
    assert p["ci_low"] is None and p["ci_note"] == f"no CI: {p['n_common']} images (< 10)"
    assert p["bpp_common"][mid]["ci_low"] is None
    text = runner.invoke(app, ["inspect", str(out)])
    assert text.exit_code == 0 and "bits by group" in text.output and "5x5" in text.output


def test_sign_test_and_paired_bootstrap_against_independent_values():
    d = np.array([1.0, 2.0, 3.0, -1.0, 0.0, 4.0, 5.0, -2.0, 6.0])
    assert I.sign_test(d) == pytest.approx(stats.binomtest(6, 8).pvalue, rel=1e-12)
    assert I.sign_test(np.zeros(5)) == 1.0


def test_inspect_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    r = runner.invoke(app, ["inspect", "no-such-model"])
    assert r.exit_code == 2 and "`visbpp models` lists the model ids" in " ".join(r.output.split())
    assert "visbpp run" not in r.output
    r = runner.invoke(app, ["inspect", "micro-s"])   # a registered model not measured yet
    assert r.exit_code == 2 and "run `visbpp run --model micro-s` first" in " ".join(r.output.split())
    r = runner.invoke(app, ["inspect", "/nonexist"])
    assert r.exit_code == 2 and " ".join(r.output.split()).startswith("error: /nonexist: no such folder")
    assert "visbpp run --model" not in r.output
    (tmp_path / "half").mkdir()
    r = runner.invoke(app, ["inspect", str(tmp_path / "half")])
    assert r.exit_code == 2 and "no complete results.json" in r.output


def test_inspect_plots(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    out, _ = _run("rqtransformer", tmp_path, monkeypatch)
    r = runner.invoke(app, ["inspect", str(out), "--plot", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert any(n.startswith("bitmap_") for n in names) and any(n.startswith("groups_") for n in names)
    assert "per_class_bpp.png" in names and any(n.startswith("position_") for n in names)


def test_paired_bpp_cis_use_the_same_resamples_for_both_models():
    rng = np.random.default_rng(3)
    den = rng.integers(100, 300, size=30).astype(np.float64)
    a = rng.uniform(50, 150, size=30)
    b = a + 0.25 * den      # b's BPP is a's + 0.25 on every resample only when the resamples are shared
    (alo, ahi), (blo, bhi) = I.paired_bpp_cis(np.stack([a, b]), den)
    assert blo == pytest.approx(alo + 0.25, abs=1e-12) and bhi == pytest.approx(ahi + 0.25, abs=1e-12)
    assert alo < a.sum() / den.sum() < ahi
    assert I.paired_bpp_cis(np.stack([a[:9], b[:9]]), den[:9]) == [(None, None), (None, None)]


def test_inspect_names_the_run_and_where_the_class_information_is(tmp_path, monkeypatch):
    """A model target: the run the selection rule chose is named; its class information is not
    measured there, and the run of the same model that has it is named."""
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    base = ["run", "--model", "micro-s", "--device", "cpu", "--quiet"]
    assert runner.invoke(app, [*base, "--unconditional", "--limit", "20"]).exit_code == 0
    assert runner.invoke(app, base).exit_code == 0      # all 360 images: the rule's choice
    from visbpp.core.store import runs as RU

    runs = {r["n_images"]: r["run_id"] for r in RU.list_runs()}
    r = runner.invoke(app, ["inspect", "micro-s"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert f"run {runs[360]}, chosen by the selection rule (rule)" in text
    assert (f"class information: not measured in run {runs[360]}; run {runs[20]} of this model has it "
            f"(`visbpp inspect {runs[20]}`)") in text
    r = runner.invoke(app, ["inspect", runs[20]])
    assert r.exit_code == 0 and "class information bits(null) - bits(label)" in r.output


def test_bootstraps_in_blocks_are_the_one_draw(monkeypatch):
    """Resamples drawn in blocks (memory independent of n) are exactly those of one (resamples, n) draw."""
    from visbpp.core.store import summary as S

    n = 257
    bits = np.random.default_rng(3).gamma(2.0, 3.0, size=(2, n))
    den = np.full(n, 3.0 * 16 * 16)
    idx = np.random.default_rng(S.BOOTSTRAP_SEED).integers(0, n, size=(S.BOOTSTRAP_RESAMPLES, n))
    stats = bits[:, idx].sum(-1) / den[idx].sum(-1)
    want = [tuple(float(v) for v in np.quantile(s, [0.025, 0.975])) for s in stats]
    monkeypatch.setattr(S, "BLOCK_ELEMENTS", 7 * n + 3)   # blocks of 7 resamples, the last one shorter
    blocks = list(S.resample_blocks(n))
    assert len(blocks) == -(-S.BOOTSTRAP_RESAMPLES // 7) and max(len(b) for _, b in blocks) == 7
    assert np.array_equal(np.concatenate([b for _, b in blocks]), idx)      # the same draws, in order
    for got, w in zip(I.paired_bpp_cis(bits, den), want):   # equal up to the summation order of numpy
        assert got == pytest.approx(w, rel=1e-13)
    assert R.bootstrap_ci(bits[0], den) == pytest.approx(want[0], rel=1e-13)


def test_sign_test_of_many_images():
    """50,000 paired images (an ImageNet val run): the exact tail without overflowing a float."""
    d = np.where(np.arange(50_000) < 25_200, 1.0, -1.0)
    assert I.sign_test(d) == pytest.approx(stats.binomtest(24_800, 50_000).pvalue, rel=1e-9)
    assert 0.0 < I.sign_test(d) < 0.1
