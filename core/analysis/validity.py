"""Predictive validity: does BPP (with rFID) predict the FID of models the fit has not seen?

* **leave one family out**: for each family, the bilinear model FID = a + b0·BPP + b1·rFID is fitted
  (statsmodels OLS) to the other families' rows and predicts the held-out family's FIDs with 95%
  prediction intervals (``get_prediction(...).summary_frame``: ``obs_ci_lower/upper``);
* **leave one model out**: the same for each row alone.

Reported per held-out family: the share of its FIDs inside their intervals (coverage), the mean
absolute error and the mean interval width (a wide interval covers cheaply); and over all predictions. A well-calibrated 95% interval covers about 95%; the
leave-one-model-out coverage is the empirical coverage of the interval ``analyze --predict``
gives. When the bilinear model cannot be fitted to the whole table (rFID constant or collinear with
BPP, fewer than 4 rows), FID = a + b·BPP is used instead and ``formula`` says so. A held-out set whose
training rows leave no residual degree of freedom or a rank-deficient design is listed without
predictions, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from visbpp.core.analysis.fits import BILINEAR, LINEAR
from visbpp.core.analysis.regression import json_float

LEVEL = 0.95


@dataclass(frozen=True)
class HeldOut:
    label: str
    family: str
    fid: float
    predicted: float
    pi: tuple[float, float]

    @property
    def inside(self) -> bool:
        return self.pi[0] <= self.fid <= self.pi[1]

    def to_dict(self) -> dict:
        return {"label": self.label, "family": self.family, "fid": self.fid, "predicted": json_float(self.predicted),
                "pi": [json_float(self.pi[0]), json_float(self.pi[1])], "inside": self.inside}


def _summary(preds: list[HeldOut]) -> dict:
    if not preds:
        return {"n_predicted": 0, "covered": 0, "coverage": None, "mae": None, "mean_pi_width": None}
    inside = sum(p.inside for p in preds)
    return {"n_predicted": len(preds), "covered": inside, "coverage": inside / len(preds),
            "mae": float(np.mean([abs(p.predicted - p.fid) for p in preds])),
            "mean_pi_width": float(np.mean([p.pi[1] - p.pi[0] for p in preds]))}


@dataclass(frozen=True)
class FamilyResult:
    family: str
    n: int
    n_train: int
    predictions: tuple[HeldOut, ...] = ()
    note: str = ""

    def to_dict(self) -> dict:
        return {"family": self.family, "n": self.n, "n_train": self.n_train, **_summary(list(self.predictions)),
                "predictions": [p.to_dict() for p in self.predictions], "note": self.note}


@dataclass(frozen=True)
class Scheme:
    name: str                              # "leave one family out" | "leave one model out"
    families: tuple[FamilyResult, ...]     # per family (leave-one-model-out: its models' predictions)

    def predictions(self) -> list[HeldOut]:
        return [p for f in self.families for p in f.predictions]

    def overall(self) -> dict:
        return _summary(self.predictions())

    def to_dict(self) -> dict:
        return {"scheme": self.name, "overall": self.overall(), "families": [f.to_dict() for f in self.families]}


@dataclass(frozen=True)
class ValidityResult:
    formula: str
    lofo: Scheme
    lomo: Scheme
    note: str = ""

    def to_dict(self) -> dict:
        return {"formula": self.formula, "level": LEVEL, "leave_one_family_out": self.lofo.to_dict(),
                "leave_one_model_out": self.lomo.to_dict(), "note": self.note}


def _k(formula: str) -> int:
    return 2 + formula.split("~")[1].count("+")


def _design(data: pd.DataFrame, formula: str) -> np.ndarray:
    cols = [c.strip() for c in formula.split("~")[1].split("+")]
    return np.column_stack([np.ones(len(data))] + [data[c].to_numpy(dtype=float) for c in cols])


def _why_not(train: pd.DataFrame, formula: str) -> str:
    k = _k(formula)
    if len(train) < k + 1:
        return f"{len(train)} training rows: a {k}-coefficient fit with a prediction interval needs {k + 1}"
    if np.linalg.matrix_rank(_design(train, formula)) < k:
        return "training rows' predictors are constant or collinear"
    return ""


def _predict(train: pd.DataFrame, test: pd.DataFrame, formula: str) -> tuple[HeldOut, ...]:
    """OLS of ``formula`` on ``train`` (statsmodels, the design built here: the formula is ``fid ~ a [+ b]``)."""
    fit = sm.OLS(train["fid"].to_numpy(dtype=float), _design(train, formula)).fit()
    sf = fit.get_prediction(_design(test, formula)).summary_frame(alpha=1 - LEVEL)
    return tuple(HeldOut(str(lab), str(fam), float(f), float(m), (float(lo), float(hi)))
                 for lab, fam, f, m, lo, hi in zip(test["label"], test["family"], test["fid"], sf["mean"],
                                                   sf["obs_ci_lower"], sf["obs_ci_upper"]))


def _held_out(data: pd.DataFrame, mask: pd.Series, family: str, formula: str) -> FamilyResult:
    train, test = data[~mask], data[mask]
    why = _why_not(train, formula)
    if why:
        return FamilyResult(family, len(test), len(train), note=why)
    return FamilyResult(family, len(test), len(train), _predict(train, test, formula))


def choose_formula(table: pd.DataFrame) -> tuple[str, str]:
    """The bilinear formula when it can be fitted to the whole table, else the linear one (and why)."""
    why = _why_not(table, BILINEAR)
    return (BILINEAR, "") if not why else (LINEAR, f"FID ~ bpp + rfid not fittable on the whole table ({why}): "
                                                   f"FID ~ bpp used instead")


def validity(table: pd.DataFrame) -> ValidityResult:
    """Both schemes on a validated table (columns label, family, fid, bpp, rfid)."""
    data = table.reset_index(drop=True)
    formula, note = choose_formula(data)
    fams = list(dict.fromkeys(data["family"]))
    lofo = Scheme("leave one family out",
                  tuple(_held_out(data, data["family"] == f, str(f), formula) for f in fams))
    lomo_rows: dict[str, list[HeldOut]] = {f: [] for f in fams}
    lomo_notes: dict[str, list[str]] = {f: [] for f in fams}
    for i in range(len(data)):
        r = _held_out(data, pd.Series(data.index == i, index=data.index), str(data["family"].iloc[i]), formula)
        lomo_rows[data["family"].iloc[i]] += list(r.predictions)
        if r.note:
            lomo_notes[data["family"].iloc[i]].append(f"{data['label'].iloc[i]}: {r.note}")
    n_fam = data["family"].value_counts()
    lomo = Scheme("leave one model out", tuple(
        FamilyResult(str(f), int(n_fam[f]), len(data) - 1, tuple(lomo_rows[f]), "; ".join(lomo_notes[f])) for f in fams))
    return ValidityResult(formula, lofo, lomo, note)
