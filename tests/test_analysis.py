"""Analysis and merged table: the published table reproduces the published numbers; for
tables built here, every number equals statsmodels' own fit computed independently."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from visbpp.core.analysis.fits import MixedBppError, TableError, analyze
from visbpp.core.analysis.table import assign_groups, eval_resolution, fit_rows, merged_table, read_csv, validate, write_csv
from visbpp.core.registry import catalog
from visbpp.core.registry.catalog import Published

# The published table, as printed in the foundation issue: family, size, resolution, FID, rFID, BPP.
PUBLISHED_TEXT = """\
VQGAN (Taming)|1.4B|256|15.78|4.98|0.0102383
RQ-Transformer|481M|256|15.72|4.73|0.0116929
RQ-Transformer|821M|256|13.11|4.73|0.0116453
RQ-Transformer|1.4B|256|11.56|4.73|0.0116167
LlamaGen|111M_256 (B)|256|8.69|2.19|0.0143224
LlamaGen|111M_384 (B)|384|12.89|0.94|0.0137373
LlamaGen|343M_256 (L)|256|4.21|2.19|0.0139988
LlamaGen|343M_384 (L)|384|5.01|0.94|0.0133479
LlamaGen|775M_384 (XL)|384|3.42|0.94|0.0131801
LlamaGen|1.4B_384 (XXL)|384|2.89|0.94|0.0131356
VAR|310M (d16)|256|3.30|1.78|0.0303021
VAR|600M (d20)|256|2.57|1.78|0.0296986
VAR|1B (d24)|256|2.09|1.78|0.0293080
VAR|2B (d30)|256|1.92|1.78|0.0297070
"""

# The published analysis (slope, R², Pearson ρ) per group.
PUBLISHED_FITS = {
    "LlamaGen-384": (4, 16798.9, 0.979, 0.989),
    "RQ-Transformer": (3, 54590.6, 0.999, 0.999),
    "VAR": (4, 1277.7, 0.719, 0.848),
}


def published_frame() -> pd.DataFrame:
    rows = [line.split("|") for line in PUBLISHED_TEXT.strip().splitlines()]
    df = pd.DataFrame(rows, columns=["family", "size", "resolution", "fid", "rfid", "bpp"])
    for c in ("resolution", "fid", "rfid", "bpp"):
        df[c] = pd.to_numeric(df[c])
    return df


# ---------------------------------------------------------------------------------------------
# the bundled table

def test_bundled_table_is_the_published_table():
    df = merged_table()
    assert len(df) == 14
    got = {(r.family, r.size): (r.resolution, r.fid, r.rfid, r.bpp) for r in df.itertuples()}
    want = {(r.family, r.size): (r.resolution, r.fid, r.rfid, r.bpp) for r in published_frame().itertuples()}
    assert got == want
    assert (df["bpp"] == df["reference_bpp"]).all()
    assert set(df["bpp_source"]) == {"published table"}


@pytest.mark.parametrize("frame", ["bundled", "literal"])
def test_published_numbers_reproduced(frame):
    df = merged_table() if frame == "bundled" else published_frame()
    res = analyze(df)
    by = {g.group: g for g in res.groups}
    for name, (n, slope, r2, rho) in PUBLISHED_FITS.items():
        g = by[name]
        assert g.n == n and g.fitted
        assert abs(g.slope - slope) / slope < 1e-3, (name, g.slope)
        assert abs(g.r2 - r2) <= 0.0015, (name, g.r2)
        assert abs(g.pearson_r - rho) <= 0.0015, (name, g.pearson_r)
    for name, n in (("LlamaGen-256", 2), ("VQGAN (Taming)", 1)):
        assert by[name].n == n and not by[name].fitted and by[name].slope is None
        assert by[name].to_dict()["slope"] is None
    assert set(by) == set(PUBLISHED_FITS) | {"LlamaGen-256", "VQGAN (Taming)"}
    assert abs(res.global_.linear.r2 - 0.446) <= 0.0015
    assert abs(res.global_.bilinear.r2 - 0.746) <= 0.0015
    assert res.global_.bilinear.pvalues["rfid"] < 0.05
    assert res.global_.rfid_f_p_value < 0.05
    assert res.ancova.groups == ("RQ-Transformer", "LlamaGen-384", "VAR")
    if frame == "literal":  # a user table carries no BPP provenance
        assert res.warnings == ()
    else:  # the table's VAR BPPs were scored with label dropout: noted for every fit using them
        assert [(w.kind, w.fit) for w in res.warnings] == [("bpp_provenance", "global")]
        w = res.warnings[0]
        assert [ms for _, ms in w.values] == [("var-d16", "var-d20", "var-d24", "var-d30")]
        assert "10% label dropout" in w.message


def test_published_set_unchanged_by_measured_results():
    measured = [{"model_id": c.id, "bpp": c.reference_bpp * 1.2} for c in catalog.model_cards(published_only=True)]
    base = analyze(merged_table()).to_dict()
    df = merged_table(measured, "published")
    assert (df["bpp"] == df["reference_bpp"]).all()
    assert np.allclose(df["measured_bpp"], df["reference_bpp"] * 1.2)
    assert analyze(df).to_dict() == base


# ---------------------------------------------------------------------------------------------
# tables built here vs statsmodels itself

def random_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    specs = [("Alpha", 256, 5), ("Alpha", 512, 4), ("Beta", 256, 3), ("Gamma", 256, 6), ("Delta", 256, 2)]
    for fam, res, n in specs:
        slope, icept, rfid = rng.normal(2000, 800), rng.normal(5, 2), rng.uniform(0.5, 5)
        for i in range(n):
            bpp = rng.uniform(0.01, 0.03)
            rows.append({"model_id": f"{fam.lower()}-{res}-{i}", "family": fam, "size": f"s{i}", "resolution": res, "rfid": rfid, "bpp": bpp,
                         "fid": icept + slope * bpp + 1.5 * rfid + rng.normal(0, 0.8)})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_number_equals_statsmodels(seed):
    df = random_table(seed)
    res = analyze(df)
    close = lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)  # noqa: E731

    groups = df.assign(group=[f"{f}-{r}" if f == "Alpha" else f for f, r in zip(df.family, df.resolution)])
    by = {g.group: g for g in res.groups}
    assert set(by) == set(groups["group"])
    for name, sub in groups.groupby("group"):
        g = by[name]
        assert g.n == len(sub)
        if len(sub) < 3:
            assert not g.fitted
            continue
        fit = smf.ols("fid ~ bpp", data=sub).fit()
        ci = fit.conf_int(0.05).loc["bpp"]
        assert close(g.slope, fit.params["bpp"]) and close(g.intercept, fit.params["Intercept"])
        assert close(g.r2, fit.rsquared) and close(g.p_value, fit.pvalues["bpp"])
        assert close(g.slope_ci[0], ci[0]) and close(g.slope_ci[1], ci[1])
        assert close(g.pearson_r, stats.pearsonr(sub["bpp"], sub["fid"])[0])

    fitted = groups[groups.groupby("group")["group"].transform("size") >= 3]
    common = smf.ols("fid ~ bpp + C(group)", data=fitted).fit()
    separate = smf.ols("fid ~ bpp * C(group)", data=fitted).fit()
    tab = anova_lm(common, separate)
    a = res.ancova
    assert a.n == len(fitted) and set(a.groups) == set(fitted["group"])
    assert close(a.f, tab["F"].iloc[1]) and close(a.p_value, tab["Pr(>F)"].iloc[1])
    assert a.df_num == tab["df_diff"].iloc[1] and a.df_den == tab["df_resid"].iloc[1]
    assert close(a.common_slope, common.params["bpp"])
    assert close(a.r2_common, common.rsquared) and close(a.r2_separate, separate.rsquared)

    lin = smf.ols("fid ~ bpp", data=df).fit()
    bil = smf.ols("fid ~ bpp + rfid", data=df).fit()
    for mine, ref in ((res.global_.linear, lin), (res.global_.bilinear, bil)):
        assert mine.n == len(df)
        for attr, want in (("r2", ref.rsquared), ("adj_r2", ref.rsquared_adj), ("aic", ref.aic), ("bic", ref.bic)):
            assert close(getattr(mine, attr), want), attr
        for k in ref.params.index:
            assert close(mine.coef[k], ref.params[k]) and close(mine.pvalues[k], ref.pvalues[k])
        cooks = ref.get_influence().cooks_distance[0]
        labels = list(df["model_id"])
        assert all(close(mine.cooks_distance[lab], c) for lab, c in zip(labels, cooks))
        assert set(mine.outliers) == {lab for lab, c in zip(labels, cooks) if c > 4 / len(df)}
    f_tab = anova_lm(lin, bil)
    assert close(res.global_.rfid_f, f_tab["F"].iloc[1]) and close(res.global_.rfid_f_p_value, f_tab["Pr(>F)"].iloc[1])

    new = pd.DataFrame({"bpp": [0.02], "rfid": [2.0]})
    sf = bil.get_prediction(new).summary_frame(alpha=0.05).iloc[0]
    p = res.predict(0.02, 2.0)
    assert close(p.fid, sf["mean"]) and close(p.pi[0], sf["obs_ci_lower"]) and close(p.pi[1], sf["obs_ci_upper"])
    assert close(p.ci[0], sf["mean_ci_lower"]) and close(p.ci[1], sf["mean_ci_upper"])


def test_labels_are_unique():
    df = random_table(5).drop(columns="model_id")
    labels = validate(df)["label"]
    assert labels.is_unique
    assert "Alpha s0 @256" in set(labels) and "Beta s0" in set(labels)


def test_to_dict_is_plain_json():
    import json

    d = analyze(random_table(3)).to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d) >= {"groups", "ancova", "global", "warnings"}
    assert set(d["global"]) >= {"n", "linear", "bilinear"}
    assert set(d["global"]["bilinear"]["coef"]) == {"Intercept", "bpp", "rfid"}
    for g in d["groups"]:
        assert set(g) >= {"group", "n", "slope", "intercept", "r2", "pearson_r", "p_value", "slope_ci"}


# ---------------------------------------------------------------------------------------------
# groups

def test_group_rule():
    df = pd.DataFrame({
        "family": ["A", "A", "A", "B", "B", "C"],
        "resolution": [256, 384, 384, 256, 256, 512],
        "group": [None, None, "custom", None, "", None],
    })
    assert assign_groups(df) == ["A-256", "A-384", "custom", "B", "B", "C"]
    assert assign_groups(df.drop(columns="group")) == ["A-256", "A-384", "A-384", "B", "B", "C"]


def test_explicit_group_column_wins_in_analysis():
    df = random_table(4)
    df["group"] = ["one" if i % 2 else "two" for i in range(len(df))]
    res = analyze(df)
    assert {g.group for g in res.groups} == {"one", "two"}
    sub = df[df.group == "one"]
    assert math.isclose(next(g for g in res.groups if g.group == "one").slope,
                        smf.ols("fid ~ bpp", data=sub).fit().params["bpp"], rel_tol=1e-9)


# ---------------------------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("mutate, needle", [
    (lambda d: d.drop(columns=["rfid"]), "missing column 'rfid'"),
    (lambda d: d.assign(bpp=d.bpp.astype(object).where(d.index != 4, "abc")), "column 'bpp', row 5"),
    (lambda d: d.assign(fid=d.fid.where(d.index != 2, np.nan)), "column 'fid', row 3"),
    (lambda d: d.iloc[:0], "no rows"),
    (lambda d: d.iloc[:1], "only 1 row"),
    (lambda d: d.assign(resolution=d.resolution.where(d.index != 0, 255.5)), "column 'resolution', row 1"),
    (lambda d: d.assign(bpp=d.bpp.where(d.index != 1, -0.1)), "column 'bpp', row 2"),
])
def test_bad_input(mutate, needle):
    with pytest.raises(TableError) as e:
        analyze(mutate(published_frame()))
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_input_names_model():
    df = published_frame().assign(model_id=[f"m{i}" for i in range(14)])
    df.loc[6, "rfid"] = np.nan
    with pytest.raises(TableError, match=r"column 'rfid', row 7, m6: missing value"):
        validate(df)


def test_read_csv_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TableError, match="empty"):
        read_csv(empty)
    with pytest.raises(TableError, match="no such file"):
        read_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    published_frame().to_csv(bad, index=False)
    lines = bad.read_text().splitlines()
    lines[3] = lines[3].replace("13.11", "thirteen")
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(TableError, match=r"column 'fid', row 3 \(line 4 of the file\).*'thirteen' is not a number"):
        read_csv(bad)


# ---------------------------------------------------------------------------------------------
# model sets, provenance, export

def _with_extra_cards(monkeypatch, *extra):
    models, toks = catalog._all()
    monkeypatch.setattr(catalog, "_all", lambda: (models + tuple(extra), toks))


def _extra(base_id: str, new_id: str, fid: float, source: str, protocol: str, eval_resolution: int | None = None):
    return dataclasses.replace(catalog.get_card(base_id), id=new_id, aliases=(), in_published_table=False,
                               reference_bpp=None, fid=Published(fid, source, protocol, eval_resolution=eval_resolution),
                               alt_fid=(), group=None)


def test_set_all_warns_on_mixed_protocols(monkeypatch):
    _with_extra_cards(monkeypatch,
                      _extra("llamagen-b-256", "x-llamagen-256", 3.1, "test README", "cfg 4.0, evaluated at 512", 512))
    measured = [{"model_id": "x-llamagen-256", "bpp": 0.0138}, {"model_id": "nonexistent", "bpp": 0.01}]
    df = merged_table(measured, "all")
    assert len(df) == 15
    row = df[df.model_id == "x-llamagen-256"].iloc[0]
    assert row.group == "LlamaGen-256" and row.bpp == 0.0138 and row.bpp_source == "measured"
    with pytest.raises(MixedBppError, match="x-llamagen-256"):  # measured (official, unknown images) vs the table's
        analyze(fit_rows(df)[0])
    res = analyze(fit_rows(df)[0], allow_mixed=True)
    kinds = {(w.kind, w.fit) for w in res.warnings}
    assert {("fid_protocol", "global"), ("fid_protocol", "LlamaGen-256"), ("bpp_source", "LlamaGen-256"),
            ("bpp_basis", "global")} <= kinds
    w = next(w for w in res.warnings if (w.kind, w.fit) == ("fid_protocol", "LlamaGen-256"))
    assert dict(w.values)["cfg 4.0, evaluated at 512"] == ("x-llamagen-256",)
    assert "x-llamagen-256" in w.message and "mixes FID protocols" in w.message
    # eval resolutions: 512 stated here against 256 stated by the VAR rows of the table
    assert ("eval_resolution", "global") in kinds
    # published set: the extra card is not in it
    assert len(merged_table(measured, "published")) == 14


def test_fit_rows_leaves_out_incomplete_rows(monkeypatch):
    card = dataclasses.replace(_extra("var-d16", "x-var-512", 2.6, "paper", "evaluated at 512", 512),
                               resolution=512, rfid=None, tokenizer_id="none")
    _with_extra_cards(monkeypatch, card)
    df = merged_table([{"model_id": "x-var-512", "bpp": 0.02}], "all")
    rows, notes = fit_rows(df)
    assert len(rows) == 14 and notes == ["x-var-512: left out of the fits (no rfid)"]
    assert set(df[df.family == "VAR"]["group"]) == {"VAR-256", "VAR-512"}


def test_eval_resolution_is_the_typed_field_never_parsed_from_prose():
    assert eval_resolution(Published(1.0, "README", "sampled at 384, evaluated at 256", eval_resolution=256)) == 256
    assert eval_resolution(Published(1.0, "paper Table 2 (ImageNet 512x512)", "")) is None  # prose is not read
    assert eval_resolution(None) is None
    with pytest.raises(ValueError, match="metric"):
        Published(1.0, "x", metric="fid")


def test_every_card_states_its_provenance():
    for c in catalog.model_cards(None):
        for p in (c.fid, *c.alt_fid):
            if p is None:  # a card without a published FID (reAR-S/B): scored for BPP, not fitted
                continue
            assert p.metric == ("micro-FID" if c.family == "micro" else "FID"), c.id
            assert p.guidance == "none" or p.guidance == "unknown" or p.guidance.startswith("cfg"), (c.id, p.guidance)
        assert c.arch or c.family == "micro", c.id  # the architecture lives on the card
    llamagen = catalog.get_card("llamagen-b-384")
    assert llamagen.alt_fid[0].guidance == "cfg 2.0" and llamagen.alt_fid[0].eval_resolution == 256
    assert catalog.get_card("var-d36").fid.eval_resolution == 512


def test_write_csv_atomic_roundtrip(tmp_path):
    df = merged_table()
    out = write_csv(df, tmp_path / "table.csv")
    assert sorted(os.listdir(tmp_path)) == ["table.csv"]
    back = pd.read_csv(out)
    assert list(back.columns) == list(df.columns)
    assert np.allclose(back["bpp"], df["bpp"], rtol=1e-9) and list(back["model_id"]) == list(df["model_id"])
    assert analyze(read_csv(out)).to_dict()["groups"] == analyze(df).to_dict()["groups"]
    with pytest.raises(TableError, match="does not exist"):
        write_csv(df, tmp_path / "nope" / "t.csv")


def test_degenerate_fits_are_reported_not_faked():
    df = random_table(6)
    df.loc[df.family == "Gamma", "bpp"] = 0.02          # no BPP spread in one group
    df["rfid"] = 1.0                                     # rFID constant: bilinear model not identifiable
    res = analyze(df)
    gamma = next(g for g in res.groups if g.group == "Gamma")
    assert not gamma.fitted and "same bpp" in gamma.note
    assert res.global_.bilinear is None and "rfid" in res.global_.note
    assert res.to_dict()["global"]["bilinear"] is None
    with pytest.raises(TableError, match="bilinear fit is not available"):
        res.predict(0.02, 1.0)
    only = analyze(random_table(6).query("family == 'Gamma'"))
    assert only.ancova.note.startswith("needs at least 2 fitted groups") and only.ancova.f is None
