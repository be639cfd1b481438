"""`analyze --set all` with measured GigaTok BPPs: per-tokenizer groups and the fixed-GPT-B
comparison across the five tokenizers (FID ~ bpp, FID ~ rfid, bilinear), checked against statsmodels."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.stats.anova import anova_lm
from typer.testing import CliRunner

from visbpp.core.analysis.fits import analyze
from visbpp.core.analysis.table import fit_rows, merged_table
from visbpp.core.registry import catalog
from visbpp.tui.cli import app

# made-up measured BPPs (bits / 3HW) for the eight GigaTok models
MEASURED = {
    "gigatok-b-ss": 0.01280, "gigatok-b-sb": 0.01262, "gigatok-b-bl": 0.01231, "gigatok-b-bl-dino": 0.01236,
    "gigatok-b-xlxxl": 0.01249, "gigatok-xl-bl": 0.01190, "gigatok-xxl-bl": 0.01175, "gigatok-xxl-xlxxl": 0.01201,
}
# measured like the published table's BPPs (paper preprocessing, the whole ImageNet val set), so
# `analyze` may fit them together with the table's rows
_PROTOCOL = {"preprocess": "paper", "subset": {"n_classes": 1000, "n_selected": 50000}, "n_images": 50000}


def _measured(ids=MEASURED) -> list[dict]:
    return [{"model_id": k, "bpp": MEASURED[k], **_PROTOCOL} for k in ids]


@pytest.fixture
def fake_results(monkeypatch, tmp_path):
    monkeypatch.setenv("VISBPP_HOME", str(tmp_path / "home"))
    from visbpp.core.analysis import table

    monkeypatch.setattr(table, "measured_results", lambda cache_dir=None, **kw: _measured())


def _gpt_b_points() -> pd.DataFrame:
    rows = []
    for c in catalog.model_cards("gigatok"):
        if "GigaTok GPT-B" in c.compare:
            rfid = catalog.get_tokenizer_card(c.tokenizer_id).rfid[0][1].value
            rows.append({"fid": c.fid.value, "rfid": rfid, "bpp": MEASURED[c.id]})
    return pd.DataFrame(rows)


def test_gpt_b_comparison_equals_statsmodels():
    df, _ = fit_rows(merged_table(_measured(), "all"))
    r = analyze(df)
    (cp,) = r.comparisons
    assert cp.name == "GigaTok GPT-B" and cp.n == 5
    assert sorted(cp.models) == sorted(c.id for c in catalog.model_cards("gigatok") if c.id.startswith("gigatok-b-"))
    pts = _gpt_b_points()
    for x, g in (("bpp", cp.fid_vs_bpp), ("rfid", cp.fid_vs_rfid)):
        ref = smf.ols(f"fid ~ {x}", pts).fit()
        assert g.slope == pytest.approx(ref.params[x], rel=1e-9) and g.r2 == pytest.approx(ref.rsquared, rel=1e-9)
        assert g.p_value == pytest.approx(ref.pvalues[x], rel=1e-9)
    lin, bil = smf.ols("fid ~ bpp", pts).fit(), smf.ols("fid ~ bpp + rfid", pts).fit()
    gf = cp.models_fit
    for k in ("Intercept", "bpp", "rfid"):
        assert gf.bilinear.coef[k] == pytest.approx(bil.params[k], rel=1e-9)
    assert gf.bilinear.r2 == pytest.approx(bil.rsquared, rel=1e-9)
    assert gf.rfid_f == pytest.approx(anova_lm(lin, bil).iloc[1]["F"], rel=1e-9)
    groups = {g.group: g for g in r.groups}
    assert groups["GigaTok B-L"].n == 3 and groups["GigaTok B-L"].fitted
    assert groups["GigaTok XL-XXL"].n == 2 and not groups["GigaTok XL-XXL"].fitted
    assert json.loads(json.dumps(r.to_dict()))["comparisons"][0]["models_fit"]["bilinear"]["n"] == 5


def test_comparison_with_fewer_points_is_reported_not_fitted():
    few = ("gigatok-b-ss", "gigatok-b-sb")
    df, _ = fit_rows(merged_table(_measured(few), "published"))
    assert "compare" in df.columns and not analyze(df).comparisons  # published rows carry no comparison
    df, _ = fit_rows(merged_table(_measured(few), "all"))
    (cp,) = analyze(df).comparisons
    assert cp.n == 2 and not cp.fid_vs_bpp.fitted and cp.models_fit is None and "n = 2" in cp.note


def test_cli_analyze_set_all_shows_the_comparison(fake_results):
    r = CliRunner().invoke(app, ["analyze", "--set", "all", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout.strip().splitlines()[-1])
    (cp,) = d["comparisons"]
    assert cp["name"] == "GigaTok GPT-B" and cp["n"] == 5
    ref = smf.ols("fid ~ rfid", _gpt_b_points()).fit()
    assert cp["fid_vs_rfid"]["slope"] == pytest.approx(ref.params["rfid"], rel=1e-9)
    r = CliRunner().invoke(app, ["analyze", "--set", "all", "--no-plots"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "Fixed AR model, tokenizers compared: GigaTok GPT-B (n = 5" in out
    assert "FID ~ rfid" in out and "FID ~ bpp + rfid on GigaTok GPT-B" in out and "adding rFID" in out
