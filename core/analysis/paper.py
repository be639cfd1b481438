"""The published paper's own analyses of FID against BPP, computed the way its analysis script does.

Paper: "Compression of Visual Tokens Represents Image Generation Quality Linearly"
(code: github.com/Const1357/vision-compression-intelligence, ``analysis/analyze_results.py``).

On a validated table (``visbpp.core.analysis.table.validate``: columns group, label, fid, rfid, bpp):

* **slope test**: with centred ``bpp_c = bpp - mean(bpp)`` over all rows, the interaction model
  ``fid ~ bpp_c * C(group)`` against the common-slope model ``fid ~ bpp_c + C(group)``
  (``anova_lm``), on *every* group of the table, single-model groups included (their slope is
  then not identified; statsmodels' pseudo-inverse gives the minimum-norm solution, as in the
  paper's script). Groups are levels in sorted order, the first one the treatment baseline.
* **per-group slopes** from the interaction model (baseline slope + interaction term) and a
  **Wald test** of every pair's slope difference (``results.wald_test`` with statsmodels'
  defaults, i.e. an F test for OLS; the paper calls its statistic ``wald_chi2``), listed by
  increasing p-value. A group with fewer than two distinct BPPs has no identified slope: its
  slope is None and its pairs are marked not identifiable (no statistic, no p-value), where the
  paper's script reports numbers of the pseudo-inverse's stand-in.
* **nested global models** ``fid ~ bpp_c``, ``fid ~ bpp_c + rfid_c``, ``fid ~ bpp_c * rfid_c``
  (rFID centred too), each compared with the previous one by ``anova_lm``.
* **VAR subsets**: Pearson r and the OLS line of FID on BPP over VAR d16/d20/d24 (3 points) and
  with d30 (4 points).
* **slope vs rFID**: per group with at least 3 models, the OLS slope of FID on BPP and the mean
  rFID; Pearson r of the two across those groups.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.anova import anova_lm

from visbpp.core.analysis.regression import json_float, ols
from visbpp.core.registry.cards import PAPER_REPOSITORY, PAPER_TITLE

SLOPE_VS_RFID_MIN_N = 3
NESTED = ("fid ~ bpp_c", "fid ~ bpp_c + rfid_c", "fid ~ bpp_c * rfid_c")
# The VAR rows of the paper's subsets (its size names in brackets): d16 (310M), d20 (600M), d24 (1B); d30 (2B).
VAR_SUBSET3 = ("d16", "d20", "d24")
VAR_SUBSET4 = VAR_SUBSET3 + ("d30",)


def _anova(small, big) -> tuple[float | None, float | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = anova_lm(small, big).iloc[1]
    return json_float(row["F"]), json_float(row["Pr(>F)"])


def _pearson(x, y) -> float | None:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return None
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return json_float(np.corrcoef(x, y)[0, 1])


def _line(x, y) -> dict:
    """OLS FID = slope * BPP + intercept with R^2 and Pearson r (None where undefined)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"n": int(len(x)), "slope": None, "intercept": None, "r2": None, "pearson_r": None}
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / sst if sst > 0 else None
    return {"n": int(len(x)), "slope": json_float(slope), "intercept": json_float(intercept), "r2": json_float(r2),
            "pearson_r": _pearson(x, y)}


def _centred(data: pd.DataFrame) -> pd.DataFrame:
    d = pd.DataFrame({"group": data["group"].astype(str).to_numpy(), "fid": data["fid"].astype(float).to_numpy(),
                      "bpp": data["bpp"].astype(float).to_numpy(), "rfid": data["rfid"].astype(float).to_numpy(),
                      "label": data["label"].astype(str).to_numpy()})
    d["bpp_c"] = d["bpp"] - d["bpp"].mean()
    d["rfid_c"] = d["rfid"] - d["rfid"].mean()
    return d


def slope_tests(d: pd.DataFrame) -> dict:
    """Slope-similarity F test, per-group slopes and pairwise Wald tests (see the module doc)."""
    groups = sorted(d["group"].unique())
    out: dict[str, Any] = {"groups": groups, "baseline": groups[0] if groups else None,
                           "slope_test": None, "slopes": {}, "pairwise": [], "not_identified": [], "note": ""}
    if len(groups) < 2:
        out["note"] = f"needs at least 2 groups, have {len(groups)}"
        return out
    full = ols("fid ~ bpp_c * C(group)", d)
    reduced = ols("fid ~ bpp_c + C(group)", d)
    if full.df_resid < 1:
        out["note"] = "no residual degrees of freedom for separate slopes"
        return out
    f, p = _anova(reduced, full)
    out["slope_test"] = {"F": f, "p": p, "df_num": json_float(full.df_model - reduced.df_model),
                         "df_den": json_float(full.df_resid), "n": int(len(d))}
    names = list(full.params.index)

    def terms(g: str) -> list[str]:
        return ["bpp_c"] + ([f"bpp_c:C(group)[T.{g}]"] if g != groups[0] else [])

    slopes = {g: float(sum(full.params.get(t, 0.0) for t in terms(g))) for g in groups}
    # a group's own slope is estimated only from two or more distinct BPPs (else the pseudo-inverse's
    # minimum-norm value stands in for it): no slope, and no test against it, is reported
    unidentified = [g for g in groups if d.loc[d["group"] == g, "bpp_c"].nunique() < 2]
    out["slopes"] = {g: None if g in unidentified else json_float(v) for g, v in slopes.items()}
    out["not_identified"] = unidentified
    rows = []
    for g1, g2 in itertools.combinations(groups, 2):
        lone = [g for g in (g1, g2) if g in unidentified]
        if lone:
            n = ", ".join(f"{g} has n = {int((d['group'] == g).sum())}" for g in lone)
            rows.append({"group1": g1, "group2": g2, "slope1": out["slopes"][g1], "slope2": out["slopes"][g2],
                         "diff": None, "wald_chi2": None, "pvalue": None, "identifiable": False,
                         "note": f"not identifiable: {n} (a slope needs two distinct BPPs)"})
            continue
        r = np.zeros((1, len(names)))
        for t in terms(g1):
            if t in names:
                r[0, names.index(t)] += 1.0
        for t in terms(g2):
            if t in names:
                r[0, names.index(t)] -= 1.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = full.wald_test(r, scalar=True)
        rows.append({"group1": g1, "group2": g2, "slope1": json_float(slopes[g1]), "slope2": json_float(slopes[g2]),
                     "diff": json_float(slopes[g1] - slopes[g2]),
                     "wald_chi2": json_float(np.atleast_1d(test.statistic)[0]),
                     "pvalue": json_float(np.atleast_1d(test.pvalue)[0]), "identifiable": True, "note": ""})
    rows.sort(key=lambda r: math.inf if r["pvalue"] is None else r["pvalue"])  # stable: pair order on ties
    out["pairwise"] = rows
    return out


def nested_models(d: pd.DataFrame) -> list[dict]:
    """The three nested global models, each with the ANOVA F test against the previous one."""
    out, prev = [], None
    for formula in NESTED:
        fit = ols(formula, d)
        f, p = _anova(prev, fit) if prev is not None else (None, None)
        out.append({"formula": formula, "n": int(len(d)), "r2": json_float(fit.rsquared), "adj_r2": json_float(fit.rsquared_adj),
                    "aic": json_float(fit.aic), "f_vs_previous": f, "p_vs_previous": p,
                    "coef": {k: json_float(v) for k, v in fit.params.items()}})
        prev = fit
    return out


_VAR_PAPER_SIZES = {"310m": "d16", "600m": "d20", "1b": "d24", "2b": "d30"}


def _var_depth(row: pd.Series) -> str | None:
    """"d16" ... for a VAR row, from its model id or size ("var-d16", "310M (d16)", the paper's "310M")."""
    text = f"{row.get('model_id', '') if isinstance(row.get('model_id'), str) else ''} {row['size']}".lower()
    m = re.search(r"\bd(\d+)\b", text)
    if m:
        return f"d{m.group(1)}"
    return _VAR_PAPER_SIZES.get(str(row["size"]).strip().lower())


def _var_rows(data: pd.DataFrame, sizes: tuple[str, ...]) -> pd.DataFrame:
    keep = [str(r["family"]).strip().lower() == "var" and _var_depth(r) in sizes for _, r in data.iterrows()]
    return data[keep]


def var_subsets(data: pd.DataFrame) -> dict | None:
    """Pearson r and OLS line of FID on BPP over the paper's VAR 3-point and 4-point subsets."""
    out = {}
    for key, sizes in (("subset3", VAR_SUBSET3), ("subset4", VAR_SUBSET4)):
        g = _var_rows(data, sizes)
        if len(g) < 2:
            continue
        out[key] = {"models": list(g["label"]), **_line(g["bpp"], g["fid"])}
    return out or None


def slope_vs_rfid(d: pd.DataFrame, min_n: int = SLOPE_VS_RFID_MIN_N) -> dict:
    """Per-group slope (groups with >= min_n models) against the group's mean rFID."""
    fams = []
    for g in sorted(d["group"].unique()):
        sub = d[d["group"] == g]
        if len(sub) < min_n:
            continue
        fams.append({"group": g, "n": int(len(sub)), "slope": _line(sub["bpp"], sub["fid"])["slope"],
                     "rfid_mean": json_float(sub["rfid"].mean())})
    ok = [f for f in fams if f["slope"] is not None]
    r = _pearson([f["slope"] for f in ok], [f["rfid_mean"] for f in ok]) if len(ok) >= 2 else None
    return {"pearson_r": r, "n": len(ok), "min_n": min_n, "groups": fams}


def paper_analysis(data: pd.DataFrame) -> dict:
    """Every analysis of the paper's script on a validated table, as one JSON-ready dict."""
    d = _centred(data)
    st = slope_tests(d)
    return {
        "source": f"{PAPER_TITLE} ({PAPER_REPOSITORY}, analysis/analyze_results.py)",
        "n": int(len(d)),
        "groups": st["groups"],
        "baseline": st["baseline"],
        "slope_test": st["slope_test"],
        "slopes": st["slopes"],
        "pairwise": st["pairwise"],
        "not_identified": st["not_identified"],
        "nested": nested_models(d),
        "var_subsets": var_subsets(data),
        "slope_vs_rfid": slope_vs_rfid(d),
        "note": st["note"],
    }
