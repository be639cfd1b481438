"""Analyses beyond the straight line on the published table and on synthetic data: functional forms,
size scaling, shared-tokenizer pairs and predictive validity, every number against statsmodels or
scipy called here."""

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from scipy.optimize import curve_fit
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.outliers_influence import OLSInfluence

from visbpp.core.analysis import forms as F
from visbpp.core.analysis import pairs as P
from visbpp.core.analysis import scaling as S
from visbpp.core.analysis import validity as V
from visbpp.core.analysis.table import fit_rows, merged_table, validate
from visbpp.core.registry import catalog


@pytest.fixture(scope="module")
def published():
    return validate(fit_rows(merged_table(None, "published"))[0])


def _ols(formula, data):
    return smf.ols(formula, data=data).fit()


# ------------------------------------------------------------------------------------------- forms

SM_FORMULAS = {"linear": "fid ~ bpp", "log-linear": "fid ~ np.log(bpp)", "log-log": "np.log(fid) ~ np.log(bpp)",
               "bilinear": "fid ~ bpp + rfid"}


def _loo_by_refit(data, formula, log_response):
    errs = []
    for i in range(len(data)):
        fit = _ols(formula, data.drop(index=data.index[i]))
        y = float(np.asarray(fit.predict(data.iloc[[i]]))[0])
        errs.append((math.exp(y) if log_response else y) - data["fid"].iloc[i])
    e = np.array(errs)
    return math.sqrt(np.mean(e ** 2)), np.mean(np.abs(e))


def test_forms_on_the_published_table_match_statsmodels(published):
    res = F.forms(published)
    scopes = [c.scope for c in res.comparisons]
    assert scopes == ["global", "RQ-Transformer", "LlamaGen-384", "VAR"]   # groups with >= 3 models
    for c in res.comparisons:
        data = published if c.scope == "global" else published[published["group"] == c.scope]
        data = data.reset_index(drop=True)
        assert c.n == len(data)
        for f in c.fits:
            if f.form == "bilinear" and c.scope != "global":
                assert not f.fitted and f.aic is None   # rFID is constant within a group
                continue
            fit = _ols(SM_FORMULAS[f.form], data)
            shift = 2 * np.log(data["fid"]).sum() if f.form == "log-log" else 0.0
            assert f.aic == pytest.approx(fit.aic + shift, rel=1e-10)
            assert f.bic == pytest.approx(fit.bic + shift, rel=1e-10)
            assert f.r2 == pytest.approx(fit.rsquared, rel=1e-10)
            assert list(f.coef.values()) == pytest.approx(list(fit.params.values), rel=1e-9)
            rmse, mae = _loo_by_refit(data, SM_FORMULAS[f.form], f.form == "log-log")
            assert f.loo_rmse == pytest.approx(rmse, rel=1e-9) and f.loo_mae == pytest.approx(mae, rel=1e-9)
            if f.form != "log-log":   # linear in FID: leave-one-out residuals are statsmodels' PRESS residuals
                press = OLSInfluence(fit).resid_press
                assert f.loo_rmse == pytest.approx(math.sqrt(np.mean(press ** 2)), rel=1e-9)
        fitted = {f.form: f.aic for f in c.fits if f.fitted}
        assert c.best_aic == min(fitted, key=fitted.get)
        assert c.delta_aic()[c.best_aic] == 0.0
        assert c.best_aic in c.verdict and c.best_loo in c.verdict


def test_log_log_aic_is_the_lognormal_likelihood_of_fid(published):
    """The Jacobian shift puts log-log on the FID scale: its AIC is that of a log-normal model of FID."""
    f = F.fit_form(published, F.FORMS[2])
    fit = _ols("np.log(fid) ~ np.log(bpp)", published)
    sigma = math.sqrt(fit.ssr / len(published))   # the maximum-likelihood scale
    llf = stats.lognorm.logpdf(published["fid"], s=sigma, scale=np.exp(fit.fittedvalues)).sum()
    assert f.aic == pytest.approx(-2 * llf + 2 * 2, rel=1e-9)   # statsmodels counts the 2 coefficients


def test_forms_global_verdict_on_the_published_table(published):
    glob = F.forms(published).comparisons[0]
    aics = {f: _ols(SM_FORMULAS[f], published).aic for f in SM_FORMULAS}
    aics["log-log"] += 2 * np.log(published["fid"]).sum()
    best = min(aics, key=aics.get)
    assert glob.best_aic == best == "log-log"   # the straight line is not the best description
    assert glob.delta_aic()["linear"] == pytest.approx(aics["linear"] - aics[best], rel=1e-9)
    assert glob.delta_aic()["linear"] > F.AIC_TIE


def test_forms_small_and_degenerate_tables():
    df = validate(pd.DataFrame({"family": ["A"] * 3, "size": ["s", "m", "l"], "resolution": [256] * 3,
                                "fid": [0.0, 2.0, 3.0], "rfid": [1.0] * 3, "bpp": [0.3, 0.2, 0.1]}))
    c = F.forms(df).comparisons
    assert [x.scope for x in c] == ["global"]      # the one group is the global comparison
    by = {f.form: f for f in c[0].fits}
    assert by["log-log"].note == "an FID is 0: ln FID undefined" and not by["log-log"].fitted
    assert "needs at least 4 rows" in by["bilinear"].note
    assert by["linear"].fitted and by["linear"].loo_rmse is not None   # 2-point refits are exact lines


# ------------------------------------------------------------------------------------------- scaling

def _scipy_best(n, y):
    """curve_fit called here from many starts (the same bounds), the least-squares optimum."""
    ref = np.exp(np.log(n).mean())
    x = n / ref
    lo = y.min()
    best = None
    for e0, a0 in itertools.product((0.0, 0.5, 0.9, 0.99), (0.05, 0.3, 1.0, 2.0, 4.0)):
        p0 = (max(min(e0 * lo, lo * (1 - 1e-9)), lo * 1e-9), max(y.max() - e0 * lo, 1e-9), a0)
        p, _ = curve_fit(S.power_law, x, y, p0=p0, bounds=([0, 0, 0], [lo, np.inf, S.ALPHA_MAX]),
                         method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=20000)
        rss = ((S.power_law(x, *p) - y) ** 2).sum()
        if best is None or rss < best[0]:
            best = (rss, p[0], p[1] * ref ** p[2], p[2])
    return best


@pytest.mark.parametrize("group", ["LlamaGen-384", "VAR"])
def test_scaling_on_published_rows_matches_scipy(published, group):
    sub = published[published["group"] == group]
    n = np.array([catalog.get_card(m).params for m in sub["model_id"]], dtype=float)
    y = sub["bpp"].to_numpy()
    fit = next(f for f in S.scaling(published).fits if f.group == group)
    rss, e, a, alpha = _scipy_best(n, y)
    assert fit.n == 4 and fit.params == tuple(n)
    assert fit.rss <= rss * (1 + 1e-6) + 1e-30
    assert fit.e == pytest.approx(e, rel=1e-6, abs=1e-12)
    assert fit.alpha == pytest.approx(alpha, rel=1e-4)
    assert fit.a == pytest.approx(a, rel=1e-3)
    assert fit.reducible() == pytest.approx(tuple(y - fit.e), rel=1e-12)
    assert "bootstrap over models" in fit.ci_method and fit.e_ci[0] <= fit.e_ci[1]


def test_scaling_published_groups_and_fid_against_the_reducible_part(published):
    res = S.scaling(published)
    by = {f.group: f for f in res.fits}
    assert not by["LlamaGen-256"].fitted and not by["VQGAN (Taming)"].fitted
    assert by["RQ-Transformer"].fitted and by["RQ-Transformer"].e_ci is None   # 3 points, 3 parameters
    assert "E = min bpp" in by["VAR"].at_bounds   # VAR's d30 BPP above d24's: the floor sits at the lowest BPP
    assert res.refit.groups == ("RQ-Transformer", "LlamaGen-384", "VAR")
    rows = published[published["group"].isin(res.refit.groups)].reset_index(drop=True).copy()
    rows["x"] = [b - by[g].e for b, g in zip(rows["bpp"], rows["group"])]
    for ol, x in ((res.refit.raw, "bpp"), (res.refit.reducible, "x")):
        one, sep = _ols(f"fid ~ {x}", rows), _ols(f"fid ~ {x} * C(group)", rows)
        row = anova_lm(one, sep).iloc[1]
        assert ol.r2 == pytest.approx(one.rsquared, rel=1e-9) and ol.aic == pytest.approx(one.aic, rel=1e-9)
        assert ol.f == pytest.approx(row["F"], rel=1e-9) and ol.p_value == pytest.approx(row["Pr(>F)"], rel=1e-9)
    assert res.refit.verdict == "neither raw bpp nor bpp − E puts the groups on one line"


@pytest.mark.parametrize("n_sizes,method", [(12, "asymptotic"), (6, "bootstrap")])
def test_scaling_recovers_known_parameters_within_their_cis(n_sizes, method):
    e, a, alpha = 0.012, 40.0, 0.55
    n = np.geomspace(5e7, 5e9, n_sizes)
    rng = np.random.default_rng(7)
    clean = e + a * n ** -alpha
    y = clean + rng.normal(0, 2e-6, n_sizes)
    fit = S.fit_group("synthetic", [f"m{i}" for i in range(n_sizes)], n, y)
    assert method in fit.ci_method
    assert fit.e_ci[0] <= e <= fit.e_ci[1]
    assert fit.alpha_ci[0] <= alpha <= fit.alpha_ci[1]
    assert fit.e == pytest.approx(e, rel=0.02) and fit.alpha == pytest.approx(alpha, rel=0.2)
    rss, e2, _, alpha2 = _scipy_best(n, y)
    assert fit.e == pytest.approx(e2, rel=1e-6) and fit.alpha == pytest.approx(alpha2, rel=1e-5)
    if method == "asymptotic":   # curve_fit's covariance and the t quantile, computed here
        ref = np.exp(np.log(n).mean())
        p, cov = curve_fit(S.power_law, n / ref, y, p0=(e2, 1e-4, alpha2), bounds=([0, 0, 0], [y.min(), np.inf, 5]),
                           method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15)
        half = stats.t.ppf(0.975, n_sizes - 3) * math.sqrt(cov[0, 0])
        assert fit.e_ci == pytest.approx((p[0] - half, p[0] + half), rel=1e-4)


def test_scaling_needs_three_sizes_and_parameter_counts():
    df = validate(pd.DataFrame({"family": ["A"] * 3, "size": ["s", "m", "l"], "resolution": [256] * 3,
                                "fid": [3.0, 2.0, 1.0], "rfid": [1.0] * 3, "bpp": [0.3, 0.2, 0.1]}))
    res = S.scaling(df)
    assert "no AR parameter counts" in res.note and not any(f.fitted for f in res.fits)
    df["params"] = [1e8, 1e8, 3e8]
    assert S.scaling(df).fits[0].note == "2 distinct sizes < 3"


# ------------------------------------------------------------------------------------------- pairs

def test_pairs_on_the_published_table_are_empty_with_a_note(published):
    res = P.shared_tokenizer_pairs(published)
    assert res.pairs == () and res.n_comparable == 0
    assert "llamagen-b-256 / llamagen-b-384" in res.note and "llamagen-vq16 at 256 vs 384 px" in res.note


@pytest.fixture
def new_family_cards(monkeypatch):
    """Two cards of a made-up family on LlamaGen-256's tokenizer (what a new family's card module adds)."""
    b, l_ = catalog.get_card("llamagen-b-256"), catalog.get_card("llamagen-l-256")
    new = (dataclasses.replace(l_, id="zz-l-256", family_label="ZZ", aliases=(), in_published_table=False,
                               params=int(l_.params * 1.2), base_model=None, group=None),
           dataclasses.replace(b, id="zz-b-256", family_label="ZZ", aliases=(), in_published_table=False,
                               params=int(b.params * 0.9), base_model=None, group=None),
           dataclasses.replace(b, id="zz-b-256-ft", family_label="ZZ", aliases=(), in_published_table=False,
                               base_model="zz-b-256", group=None))
    models, toks = catalog._all()
    monkeypatch.setattr(catalog, "_all", lambda: (models + new, toks))
    return new


def test_pairs_from_card_data(new_family_cards):
    bpp = {"llamagen-b-256": 0.0143, "llamagen-l-256": 0.0140, "zz-l-256": 0.0138, "zz-b-256": 0.0145,
           "zz-b-256-ft": 0.0141, "llamagen-l-384": 0.0133}
    fid = {"llamagen-b-256": 8.69, "llamagen-l-256": 4.21, "zz-l-256": 3.9, "zz-b-256": 9.5, "zz-b-256-ft": 6.0,
           "llamagen-l-384": 5.01}
    # only model_id, bpp and fid: tokenizer, resolution, parameters and base come from the cards
    df = pd.DataFrame({"model_id": list(bpp), "bpp": list(bpp.values()), "fid": list(fid.values())})
    res = P.shared_tokenizer_pairs(df)
    got = [(p.a, p.b, p.kind) for p in res.pairs]
    assert got == [("zz-b-256", "zz-b-256-ft", P.FINE_TUNE), ("llamagen-b-256", "zz-b-256", P.SAME_SIZE),
                   ("llamagen-b-256", "zz-b-256-ft", P.SAME_SIZE), ("llamagen-l-256", "zz-l-256", P.SAME_SIZE)]
    for p in res.pairs:
        assert p.d_bpp == bpp[p.b] - bpp[p.a] and p.d_fid == fid[p.b] - fid[p.a]
        assert p.tokenizer == "llamagen-vq16@256" and p.comparable
    d_bpp = np.array([p.d_bpp for p in res.pairs])
    d_fid = np.array([p.d_fid for p in res.pairs])
    same = int(((d_bpp > 0) == (d_fid > 0)).sum())
    assert (res.same_sign, res.sign_n) == (same, 4)
    assert res.sign_p == pytest.approx(stats.binomtest(same, 4, 0.5).pvalue, rel=1e-12)
    r = stats.pearsonr(d_bpp, d_fid)
    assert res.pearson_r == pytest.approx(r.statistic, rel=1e-12) and res.pearson_p == pytest.approx(r.pvalue, rel=1e-9)


def test_pairs_need_the_same_resolution_and_size_class():
    df = pd.DataFrame({"model_id": ["a", "b", "c"], "tokenizer_id": ["t", "t", "t"], "resolution": [256, 256, 384],
                       "params": [100e6, 160e6, 100e6], "bpp": [0.1, 0.09, 0.08], "fid": [3.0, 2.0, 1.0]})
    res = P.shared_tokenizer_pairs(df)   # a/b: ratio 1.6 > 1.5; a/c: other resolution
    assert res.pairs == () and "a / c (t at 256 vs 384 px)" in res.note
    df.loc[1, "params"] = 150e6
    assert [(p.a, p.b) for p in P.shared_tokenizer_pairs(df).pairs] == [("a", "b")]


# ------------------------------------------------------------------------------------------- validity

def test_leave_one_family_out_matches_statsmodels(published):
    res = V.validity(published)
    assert res.formula == "fid ~ bpp + rfid"
    preds = []
    for fam in dict.fromkeys(published["family"]):
        out = next(f for f in res.lofo.families if f.family == fam)
        train, test = published[published["family"] != fam], published[published["family"] == fam]
        sf = _ols("fid ~ bpp + rfid", train).get_prediction(test).summary_frame(alpha=0.05)
        assert [p.predicted for p in out.predictions] == pytest.approx(list(sf["mean"]), rel=1e-9)
        assert [p.pi[0] for p in out.predictions] == pytest.approx(list(sf["obs_ci_lower"]), rel=1e-9)
        assert [p.pi[1] for p in out.predictions] == pytest.approx(list(sf["obs_ci_upper"]), rel=1e-9)
        inside = ((test["fid"].to_numpy() >= sf["obs_ci_lower"].to_numpy())
                  & (test["fid"].to_numpy() <= sf["obs_ci_upper"].to_numpy()))
        d = out.to_dict()
        assert d["covered"] == inside.sum() and d["coverage"] == pytest.approx(inside.mean())
        assert d["mae"] == pytest.approx(np.abs(sf["mean"].to_numpy() - test["fid"].to_numpy()).mean(), rel=1e-9)
        preds += list(inside)
    assert res.lofo.overall()["coverage"] == pytest.approx(np.mean(preds))


def test_leave_one_model_out_matches_statsmodels(published):
    res = V.validity(published)
    inside, errs = [], []
    for i in range(len(published)):
        sf = _ols("fid ~ bpp + rfid", published.drop(index=i)).get_prediction(published.iloc[[i]]).summary_frame(alpha=0.05)
        fid = published["fid"].iloc[i]
        inside.append(sf["obs_ci_lower"].iloc[0] <= fid <= sf["obs_ci_upper"].iloc[0])
        errs.append(abs(sf["mean"].iloc[0] - fid))
    o = res.lomo.overall()
    assert (o["n_predicted"], o["covered"]) == (14, sum(inside))
    assert o["mae"] == pytest.approx(np.mean(errs), rel=1e-9)
    fam = next(f for f in res.lomo.families if f.family == "VAR")
    assert [p.label for p in fam.predictions] == ["var-d16", "var-d20", "var-d24", "var-d30"]


def test_validity_falls_back_to_the_linear_model_when_rfid_is_constant():
    df = validate(pd.DataFrame({"family": ["A", "A", "B", "B", "C"], "size": list("abcde"), "resolution": [256] * 5,
                                "fid": [5.0, 4.0, 3.5, 2.0, 1.0], "rfid": [1.0] * 5,
                                "bpp": [0.5, 0.4, 0.35, 0.2, 0.12]}))
    res = V.validity(df)
    assert res.formula == "fid ~ bpp" and "FID ~ bpp used instead" in res.note
    c = next(f for f in res.lofo.families if f.family == "C")
    sf = _ols("fid ~ bpp", df[df.family != "C"]).get_prediction(df[df.family == "C"]).summary_frame(alpha=0.05)
    assert c.predictions[0].pi == pytest.approx((sf["obs_ci_lower"].iloc[0], sf["obs_ci_upper"].iloc[0]), rel=1e-9)


# ------------------------------------------------------------------------------------------- front-ends

def test_analyze_json_carries_every_topic_and_the_prediction_coverage(published):
    import json

    from typer.testing import CliRunner

    from visbpp.tui.cli import app

    r = CliRunner().invoke(app, ["analyze", "--json", "--predict", "0.013", "1.0"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["forms"] == F.forms(published).to_dict()
    assert d["scaling"] == S.scaling(published).to_dict()
    assert d["pairs"] == P.shared_tokenizer_pairs(published).to_dict() and d["pairs"]["pairs"] == []
    assert d["validity"] == V.validity(published).to_dict()
    assert [m["model_id"] for m in d["baseline"]["models"]] == list(published["model_id"])
    var = next(m for m in d["baseline"]["models"] if m["model_id"] == "var-d16")
    assert var["raw_rate_bpp"] == pytest.approx(680 * 12 / (3 * 256 * 256)) and var["unigram_bpp"] is None
    assert d["prediction"]["pi_coverage_leave_one_model_out"] == V.validity(published).lomo.overall()
    text = CliRunner().invoke(app, ["analyze", "--no-plots", "--predict", "0.013", "1.0"]).stdout
    cov = V.validity(published).lomo.overall()
    assert f"such intervals covered {cov['covered']} of {cov['n_predicted']} held-out models" in text
    for needle in ("Functional form of FID vs BPP", "global: AIC", "Size scaling per group", "reducible bits:",
                   "What the AR context buys", "no pairs (no two models share a tokenizer", "Predictive validity"):
        assert needle in text


def test_scaling_bootstrap_interval_is_the_percentile_of_scipy_refits(published):
    """The same resamples of the 4 LlamaGen-384 models (seed, count), each refitted here by curve_fit."""
    sub = published[published["group"] == "LlamaGen-384"]
    n = np.array([catalog.get_card(m).params for m in sub["model_id"]], dtype=float)
    y = sub["bpp"].to_numpy()
    rng = np.random.default_rng(S.SEED)
    memo, es, alphas = {}, [], []
    for _ in range(S.RESAMPLES):
        idx = tuple(sorted(rng.integers(0, 4, size=4)))
        if len(set(idx)) < 3:
            continue
        if idx not in memo:
            _, e, _, alpha = _scipy_best(n[list(idx)], y[list(idx)])
            memo[idx] = (e, alpha)
        es.append(memo[idx][0])
        alphas.append(memo[idx][1])
    fit = next(f for f in S.scaling(published).fits if f.group == "LlamaGen-384")
    assert fit.resamples_used == len(es)
    assert fit.e_ci == pytest.approx(tuple(np.quantile(es, [0.025, 0.975])), rel=1e-6)
    assert fit.alpha_ci == pytest.approx(tuple(np.quantile(alphas, [0.025, 0.975])), rel=1e-4)
