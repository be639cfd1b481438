"""`visbpp analyze --json` key `paper` against the paper's analyses recomputed here with statsmodels,
step by step as its analysis script does them (its own family labels, its formulas and calls)."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from typer.testing import CliRunner

from test_analysis import published_frame
from visbpp.tui.cli import app

runner = CliRunner()

# The script's family labels (LlamaGen split by image size) -> visbpp's group names.
PAPER_FAMILY = {"VQ-GAN": "VQGAN (Taming)", "RQ-Transformer": "RQ-Transformer", "LlamaGen_256": "LlamaGen-256",
                "LlamaGen_384": "LlamaGen-384", "VAR": "VAR"}


def paper_frame() -> pd.DataFrame:
    df = published_frame()
    fam = {"VQGAN (Taming)": "VQ-GAN", "RQ-Transformer": "RQ-Transformer", "VAR": "VAR"}
    df["Family"] = [fam.get(f, f"LlamaGen_{r}") for f, r in zip(df["family"], df["resolution"])]
    df["ModelSize"] = [s.split(" (d")[0] for s in df["size"]]   # VAR: 310M, 600M, 1B, 2B as in the script
    return df.rename(columns={"fid": "FID", "rfid": "RFID", "bpp": "BPP"})


def expected(df: pd.DataFrame) -> dict:
    quiet = warnings.catch_warnings()
    quiet.__enter__()
    warnings.simplefilter("ignore")
    try:
        d = df[["Family", "BPP", "FID", "RFID", "ModelSize"]].copy()
        d["BPP_c"] = d["BPP"] - d["BPP"].mean()
        d["RFID_c"] = d["RFID"] - d["RFID"].mean()
        full = smf.ols("FID ~ BPP_c * C(Family)", data=d).fit()
        reduced = smf.ols("FID ~ BPP_c + C(Family)", data=d).fit()
        an = sm.stats.anova_lm(reduced, full)
        groups = sorted(d["Family"].unique())
        base = groups[0]

        def terms(g):
            return ["BPP_c"] + ([f"BPP_c:C(Family)[T.{g}]"] if g != base else [])

        slopes = {g: sum(full.params[t] for t in terms(g)) for g in groups}
        names = list(full.params.index)
        pairs = {}
        for g1, g2 in itertools.combinations(groups, 2):
            R = np.zeros((1, len(names)))
            for t in terms(g1):
                R[0, names.index(t)] += 1
            for t in terms(g2):
                R[0, names.index(t)] -= 1
            w = full.wald_test(R)
            pairs[(g1, g2)] = (slopes[g1] - slopes[g2], float(np.ravel(w.statistic)[0]), float(np.ravel(w.pvalue)[0]))
        m1 = smf.ols("FID ~ BPP_c", data=d).fit()
        m2 = smf.ols("FID ~ BPP_c + RFID_c", data=d).fit()
        m3 = smf.ols("FID ~ BPP_c * RFID_c", data=d).fit()
        a12, a23 = sm.stats.anova_lm(m1, m2), sm.stats.anova_lm(m2, m3)
        nested = [(m1, None, None), (m2, a12["F"].iloc[1], a12["Pr(>F)"].iloc[1]),
                  (m3, a23["F"].iloc[1], a23["Pr(>F)"].iloc[1])]
        var = d[d["Family"] == "VAR"]
        subsets = {}
        for key, sizes in (("subset3", ["310M", "600M", "1B"]), ("subset4", ["310M", "600M", "1B", "2B"])):
            s = var[var["ModelSize"].isin(sizes)]
            fit = smf.ols("FID ~ BPP", data=s).fit()
            subsets[key] = (np.corrcoef(s["BPP"], s["FID"])[0, 1], fit.params["BPP"], fit.params["Intercept"],
                            fit.rsquared)
        fam = [(smf.ols("FID ~ BPP", data=g).fit().params["BPP"], g["RFID"].mean())
               for _, g in d.groupby("Family") if len(g) >= 3]
        r = np.corrcoef([f[0] for f in fam], [f[1] for f in fam])[0, 1]
        return {"F": an["F"].iloc[1], "p": an["Pr(>F)"].iloc[1], "slopes": slopes, "pairs": pairs, "nested": nested,
                "subsets": subsets, "slope_vs_rfid": (r, len(fam))}
    finally:
        quiet.__exit__(None, None, None)


def close(a, b, rel=1e-6):
    return a == pytest.approx(b, rel=rel, abs=1e-9)


def test_paper_section_equals_the_scripts_computation():
    r = runner.invoke(app, ["analyze", "--json"])
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    p = d["paper"]
    e = expected(paper_frame())
    assert set(p["groups"]) == {g["group"] for g in d["groups"]} == set(PAPER_FAMILY.values())
    assert close(p["slope_test"]["F"], e["F"]) and close(p["slope_test"]["p"], e["p"])
    assert p["slope_test"]["F"] == pytest.approx(46.61, abs=0.01)  # single-model groups included (the script's way)
    # Taming is the table's one group of n = 1: its slope is not identified, nor any test against it
    lone = [g for g in e["slopes"] if (paper_frame()["Family"] == g).sum() == 1]
    assert lone == ["VQ-GAN"] and p["not_identified"] == [PAPER_FAMILY["VQ-GAN"]]
    for fam, v in e["slopes"].items():
        assert p["slopes"][PAPER_FAMILY[fam]] is None if fam in lone else close(p["slopes"][PAPER_FAMILY[fam]], v)
    got = {(x["group1"], x["group2"]): x for x in p["pairwise"]}
    assert len(got) == len(e["pairs"]) == 10
    for (g1, g2), (diff, stat, pv) in e["pairs"].items():
        x = got[(PAPER_FAMILY[g1], PAPER_FAMILY[g2])]
        if lone[0] in (g1, g2):
            assert not x["identifiable"] and x["wald_chi2"] is None and x["pvalue"] is None and x["diff"] is None
            assert x["note"] == "not identifiable: VQGAN (Taming) has n = 1 (a slope needs two distinct BPPs)"
        else:
            assert x["identifiable"] and close(x["diff"], diff) and close(x["wald_chi2"], stat)
            assert close(x["pvalue"], pv), (g1, g2, x)
    tested = [x["pvalue"] for x in p["pairwise"] if x["identifiable"]]
    assert len(tested) == 6 and tested == sorted(tested) and p["pairwise"][:6] == [x for x in p["pairwise"] if x["identifiable"]]
    assert [m["formula"] for m in p["nested"]] == ["fid ~ bpp_c", "fid ~ bpp_c + rfid_c", "fid ~ bpp_c * rfid_c"]
    for m, (fit, f, pv) in zip(p["nested"], e["nested"]):
        assert close(m["r2"], fit.rsquared) and close(m["adj_r2"], fit.rsquared_adj) and close(m["aic"], fit.aic)
        if f is None:
            assert m["f_vs_previous"] is None and m["p_vs_previous"] is None
        else:
            assert close(m["f_vs_previous"], f) and close(m["p_vs_previous"], pv)
    for key, (rr, slope, icpt, r2) in e["subsets"].items():
        s = p["var_subsets"][key]
        assert close(s["pearson_r"], rr) and close(s["slope"], slope) and close(s["intercept"], icpt)
        assert close(s["r2"], r2)
    assert p["var_subsets"]["subset3"]["models"] == ["var-d16", "var-d20", "var-d24"]
    rr, n = e["slope_vs_rfid"]
    assert close(p["slope_vs_rfid"]["pearson_r"], rr) and p["slope_vs_rfid"]["n"] == n == 3
    # the table's BPPs: one basis, the paper's protocol on the whole val set
    assert [b["basis"] for b in d["bpp_basis"]] == ["paper preprocessing on ImageNet val, all 50000 images (50000 scored)"]
    assert len(d["bpp_basis"][0]["models"]) == 14


def test_paper_section_in_text_output():
    r = runner.invoke(app, ["analyze", "--no-plots"])
    assert r.exit_code == 0, r.output
    out = " ".join(r.stdout.split())
    assert "Compression of Visual Tokens Represents Image Generation Quality Linearly" in out
    assert "Slope similarity on centred bpp" in out and "Nested global models" in out
    assert "VAR 3-point subset" in out and "Slope vs mean rFID" in out
    assert "not identifiable: VQGAN (Taming) (one BPP each: no slope of its own)" in out
    assert out.count("not identifiable") == 5   # the caption and Taming's four pairs


def test_paper_section_on_a_user_table(tmp_path):
    """A CSV with the script's own labels as groups gives the same numbers under those names."""
    df = paper_frame()
    csv = tmp_path / "t.csv"
    pd.DataFrame({"family": df["family"], "size": df["size"], "resolution": df["resolution"], "fid": df["FID"],
                  "rfid": df["RFID"], "bpp": df["BPP"], "group": df["Family"]}).to_csv(csv, index=False)
    r = runner.invoke(app, ["analyze", str(csv), "--json"])
    assert r.exit_code == 0, r.stderr
    p = json.loads(r.stdout)["paper"]
    e = expected(df)
    assert p["baseline"] == "LlamaGen_256" and close(p["slope_test"]["F"], e["F"])
    got = {(x["group1"], x["group2"]): x for x in p["pairwise"]}
    for k, (diff, stat, pv) in e["pairs"].items():
        if "VQ-GAN" in k:
            assert got[k]["pvalue"] is None and not got[k]["identifiable"]
        else:
            assert close(got[k]["wald_chi2"], stat) and close(got[k]["diff"], diff) and close(got[k]["pvalue"], pv)


def _measurement(run_id: str, model_id: str, bpp: float, preprocess: str | None, n: int = 50000) -> dict:
    m = {"model_id": model_id, "family": "llamagen", "resolution": 256, "n_images": n, "sum_bits": 1.0, "bpp": bpp,
         "bits_per_pixel": 3 * bpp, "bits_per_token": 1.0, "bpp_ci_low": bpp, "bpp_ci_high": bpp,
         "images_skipped": 0, "reference_bpp": None, "dtype": "fp32"}
    meta = {"dtype": "fp32", "subset": {"data": "/data/imagenet/val", "layout": "imagefolder", "limit": None,
                                        "per_class": None, "n_selected": n, "n_classes": 1000}}
    if preprocess is not None:  # None: a run written before the protocol was recorded ("official")
        m["preprocess"] = meta["preprocess"] = preprocess
    return {"run_id": run_id, "complete": True, "finished_at": "2026-01-01T00:00:00Z", "models": [m],
            "skipped": [], "metadata": meta}


def test_fits_never_mix_preprocessings_silently(tmp_path, monkeypatch):
    from visbpp.core.store import results as R

    home = tmp_path / "home"
    monkeypatch.setenv("VISBPP_HOME", str(home))
    # measured the paper's way on the whole val set: the same basis as the table's BPPs, fitted
    R.store(_measurement("r1", "llamagen-b-256", 0.0143, "paper"), [], str(home))
    r = runner.invoke(app, ["analyze", "--set", "all", "--json"])
    assert r.exit_code == 0, r.stderr
    assert "bpp_basis" not in {w["kind"] for w in json.loads(r.stdout)["warnings"]}
    # another model measured with the official transform: refused, naming it, nothing written
    R.store(_measurement("r2", "llamagen-l-256", 0.0139, None), [], str(home))
    figs = tmp_path / "figs"
    r = runner.invoke(app, ["analyze", "--set", "all", "--json", "--plot", str(figs)])
    assert r.exit_code == 2 and r.stdout == "" and not figs.exists()
    line = r.stderr.strip()
    assert line.count("\n") == 0 and "llamagen-l-256" in line and "official preprocessing" in line
    assert "paper preprocessing" in line and "--allow-mixed" in line
    # asking for one protocol's measurements only: fitted, the official run left out
    r = runner.invoke(app, ["analyze", "--set", "all", "--json", "--preprocess", "paper"])
    assert r.exit_code == 0, r.stderr
    assert [b["basis"].split(" ")[0] for b in json.loads(r.stdout)["bpp_basis"]] == ["paper"]
    # the same with a different image count (a --limit run of the paper protocol)
    R.store(_measurement("r3", "llamagen-xl-384", 0.0131, "paper", n=5000), [], str(home))
    r = runner.invoke(app, ["analyze", "--set", "all", "--no-plots"])
    assert r.exit_code == 2 and "(5000 scored) (1: llamagen-xl-384)" in r.stderr
    # asked for explicitly: fitted, with the reason as a warning
    r = runner.invoke(app, ["analyze", "--set", "all", "--json", "--allow-mixed"])
    assert r.exit_code == 0, r.stderr
    w = [w for w in json.loads(r.stdout)["warnings"] if w["kind"] == "bpp_basis"]
    assert {x["fit"] for x in w} >= {"global", "LlamaGen-384"} and "llamagen-l-256" in w[0]["message"]
    # export says so and carries the basis columns
    out = tmp_path / "t.csv"
    r = runner.invoke(app, ["export", str(out)])
    assert r.exit_code == 0 and "measured differently" in r.stderr
    df = pd.read_csv(out).set_index("model_id")
    assert df.loc["llamagen-b-256", "bpp_preprocess"] == "paper" and df.loc["llamagen-b-256", "bpp_n_images"] == 50000
    assert df.loc["llamagen-l-256", "bpp_preprocess"] == "official" and df.loc["var-d16", "bpp_preprocess"] == "paper"
    assert df.loc["llamagen-xl-384", "bpp_n_images"] == 5000
