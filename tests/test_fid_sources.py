"""Which published FID is fitted (`analyze --fid {paper,readme,noguidance}`), base vs fine-tune pairs,
and the provenance of the table's VAR BPPs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from typer.testing import CliRunner

from visbpp.core.analysis.fits import analyze
from visbpp.core.analysis.table import TableError, choose_fid, fit_rows, merged_table
from visbpp.core.registry import catalog
from visbpp.tui.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_json(r) -> dict:
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def fake_results(monkeypatch):
    store: list[dict] = []
    from visbpp.core.analysis import table

    monkeypatch.setattr(table, "measured_results", lambda cache_dir=None, **kw: list(store))
    return store


def test_choose_fid_per_source():
    c = catalog.get_card
    want = {  # (paper, readme, noguidance), from the cards' sources
        "llamagen-b-256": (8.69, 5.46, None),
        "llamagen-xxl-384": (2.89, 2.34, None),
        "llamagen-3b-384": (2.18, 2.18, 9.38),
        "var-d16": (3.30, 3.55, None),
        "var-d30": (1.92, 1.97, None),
        "rq-1.4b": (11.56, None, 11.56),
        "rq-1.4b-50e": (8.71, 8.71, 8.71),
        "cca-llamagen-b-384": (7.04, 7.04, 7.04),
        "cca-var-d30": (2.54, 2.54, 2.54),
    }
    for mid, vals in want.items():
        got = tuple(None if (p := choose_fid(c(mid), s)) is None else p.value for s in ("paper", "readme", "noguidance"))
        assert got == vals, mid
    assert choose_fid(c("llamagen-3b-384"), "noguidance").guidance == "none"
    with pytest.raises(TableError, match="unknown FID source 'bogus'.*paper, readme, noguidance"):
        choose_fid(c("var-d16"), "bogus")


def test_readme_fit_equals_statsmodels_on_the_readme_values():
    df = merged_table(fid_source="readme")
    assert set(df["fid_choice"]) == {"readme"}
    rows, notes = fit_rows(df)
    # the published rows without a README FID of their own drop out, listed in one note
    dropped = sorted(set(df.model_id) - set(rows.model_id))
    assert dropped == ["rq-1.4b", "rq-481m", "rq-821m", "taming-1.4b"]
    assert notes == ["left out of the fits, no FID of source 'readme' published: "
                     "taming-1.4b, rq-481m, rq-821m, rq-1.4b"]
    res = analyze(rows, notes=notes, fid_source="readme")
    assert res.fid_source == "readme" and res.to_dict()["fid_source"] == "readme"
    # README FIDs of the four LlamaGen _384 files and the table's BPPs
    lg = pd.DataFrame({"fid": [6.09, 3.07, 2.62, 2.34], "bpp": [0.0137373, 0.0133479, 0.0131801, 0.0131356]})
    fit = smf.ols("fid ~ bpp", lg).fit()
    g = next(g for g in res.groups if g.group == "LlamaGen-384")
    assert g.n == 4 and g.slope == pytest.approx(fit.params["bpp"], rel=1e-9)
    var = pd.DataFrame({"fid": [3.55, 2.95, 2.33, 1.97], "bpp": [0.0303021, 0.0296986, 0.0293080, 0.0297070]})
    g = next(g for g in res.groups if g.group == "VAR")
    assert g.slope == pytest.approx(smf.ols("fid ~ bpp", var).fit().params["bpp"], rel=1e-9)


def test_cli_fid_choice_printed_and_in_json():
    d = one_json(invoke("analyze", "--json", "--fid", "readme"))
    assert d["fid_source"] == "readme" and d["n"] == 10
    assert any("no FID of source 'readme'" in n for n in d["notes"])
    assert one_json(invoke("analyze", "--json"))["fid_source"] == "paper"
    r = invoke("analyze", "--no-plots", "--fid", "noguidance")
    assert r.exit_code == 0 and "FID set fitted: noguidance" in r.stdout and "--fid noguidance" in r.stdout
    r = invoke("analyze", "--fid", "bogus")
    assert r.exit_code == 2 and "paper" in r.output and "noguidance" in r.output


def test_cli_fid_with_a_csv_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("family,size,resolution,fid,rfid,bpp\nA,1,256,3,1,0.01\nA,2,256,2,1,0.02\nA,3,256,1,1,0.03\n")
    r = invoke("analyze", str(p), "--fid", "readme")
    assert r.exit_code == 2 and "--fid" in r.stderr and r.stderr.count("\n") == 1


def _measure(store, bpps: dict[str, float]) -> None:
    for mid, b in bpps.items():
        store.append({"model_id": mid, "bpp": b, "n_images": 1000, "run_id": f"r-{mid}"})


CCA_BPP = {"cca-llamagen-b-384": 0.01380, "cca-llamagen-l-384": 0.01340, "cca-llamagen-xl-384": 0.01325,
           "cca-llamagen-xxl-384": 0.01321, "cca-llamagen-3b-384": 0.01310,
           "cca-var-d16": 0.03010, "cca-var-d20": 0.02950, "cca-var-d24": 0.02920, "cca-var-d30": 0.02900}
BASE_BPP = {"llamagen-b-384": 0.01370, "llamagen-l-384": 0.01330, "llamagen-xl-384": 0.01315,
            "llamagen-xxl-384": 0.01311, "llamagen-3b-384": 0.01300,
            "var-d16": 0.03000, "var-d20": 0.02940, "var-d24": 0.02910, "var-d30": 0.02890}


def test_set_all_noguidance_fits_the_cca_groups(fake_results):
    _measure(fake_results, {**CCA_BPP, **BASE_BPP})
    # RQ-Transformer's no-guidance FIDs come with the paper table's BPPs (paper preprocessing, 50k images),
    # the CCA rows with measured ones: refused unless asked for, then fitted with a warning
    r = invoke("analyze", "--set", "all", "--fid", "noguidance", "--json")
    assert r.exit_code == 2 and "measured differently" in r.stderr and "--allow-mixed" in r.stderr
    d = one_json(invoke("analyze", "--set", "all", "--fid", "noguidance", "--json", "--allow-mixed"))
    assert any(w["kind"] == "bpp_basis" for w in d["warnings"])
    by = {g["group"]: g for g in d["groups"]}
    lg = pd.DataFrame({"fid": [7.04, 3.43, 3.10, 3.12, 2.69], "bpp": [CCA_BPP[k] for k in list(CCA_BPP)[:5]]})
    assert by["CCA-LlamaGen-384"]["n"] == 5
    assert by["CCA-LlamaGen-384"]["slope"] == pytest.approx(smf.ols("fid ~ bpp", lg).fit().params["bpp"], rel=1e-9)
    assert by["CCA-VAR"]["n"] == 4 and by["CCA-VAR"]["slope"] is not None
    # the only base model with a FID without guidance is LlamaGen-3B (9.38): one comparable pair
    pairs = d["finetunes"]
    assert [(p["model"], p["base"]) for p in pairs] == [("cca-llamagen-3b-384", "llamagen-3b-384")]
    p = pairs[0]
    assert p["d_bpp"] == pytest.approx(0.01310 - 0.01300, abs=1e-15) and p["d_fid"] == pytest.approx(2.69 - 9.38)
    assert p["comparable"] is True and p["fid_guidance"] == p["base_fid_guidance"] == "none"


def test_paper_set_all_shows_base_vs_cca_per_size(fake_results):
    _measure(fake_results, {**CCA_BPP, **BASE_BPP})
    d = one_json(invoke("analyze", "--set", "all", "--json", "--allow-mixed"))  # measured + table BPPs
    pairs = {p["model"]: p for p in d["finetunes"]}
    assert set(pairs) == set(CCA_BPP)
    for mid, p in pairs.items():
        card = catalog.get_card(mid)
        base = catalog.get_card(card.base_model)
        assert p["base"] == base.id
        assert p["d_bpp"] == pytest.approx(CCA_BPP[mid] - BASE_BPP[base.id], abs=1e-15)
        assert p["d_fid"] == pytest.approx(card.fid.value - base.fid.value)
        assert p["comparable"] is False  # CCA without guidance against the base's FID with guidance
    r = invoke("analyze", "--set", "all", "--no-plots", "--allow-mixed")
    assert "Same tokenizer, different AR model" in r.stdout and "cca-var-d16 *" in r.stdout   # * : not comparable


def test_export_writes_the_fid_choice(tmp_path, fake_results):
    _measure(fake_results, CCA_BPP)
    out = tmp_path / "m.csv"
    r = invoke("export", str(out), "--fid", "noguidance")
    assert r.exit_code == 0, r.stderr
    df = pd.read_csv(out)
    assert set(df["fid_choice"]) == {"noguidance"}
    assert df.loc[df.model_id == "cca-var-d20", "fid"].item() == 3.02
    assert np.isnan(df.loc[df.model_id == "var-d20", "fid"].item())   # no FID without guidance published
    assert df.loc[df.model_id == "cca-var-d20", "base_model"].item() == "var-d20"


def test_models_lists_cca_with_base():
    r = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert r.exit_code == 0 and "cca-llamagen-xl-384" in r.stdout and "base llamagen-xl-384" in r.stdout
    d = one_json(invoke("models", "--json"))
    m = next(m for m in d["models"] if m["id"] == "cca-var-d24")
    assert m["base_model"] == "var-d24" and m["fid"]["guidance"] == "none" and m["fid"]["value"] == 2.63
    v = next(m for m in d["models"] if m["id"] == "var-d24")
    assert "10% label dropout" in v["reference_bpp_note"]


def test_var_table_bpp_provenance_noted_only_when_the_table_bpp_is_fitted(fake_results):
    card = catalog.get_card("var-d16")
    assert card.reference_bpp_provenance.label_dropout == 0.1
    df = merged_table()
    assert (df.loc[df.family == "VAR", "bpp_provenance"] != "").all()
    assert (df.loc[df.family != "VAR", "bpp_provenance"] == "").all()
    # all four VAR models measured: the fit uses no table VAR BPP, so no note
    _measure(fake_results, {"var-d16": 0.030, "var-d20": 0.0295, "var-d24": 0.0292, "var-d30": 0.0291})
    d = one_json(invoke("analyze", "--set", "all", "--json", "--allow-mixed"))
    assert not [w for w in d["warnings"] if w["kind"] == "bpp_provenance"]
    r = invoke("analyze", "--no-plots")
    assert "label dropout" in r.stdout and "var-d16" in r.stdout
