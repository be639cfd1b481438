"""Is FID linear in BPP at all? Four functional forms compared per group and over all rows.

Forms (statsmodels OLS on a validated table; the design matrices are built here, columns as named):

* ``linear``      FID = a + b·BPP                     (the paper's straight line)
* ``log-linear``  FID = a + b·ln BPP
* ``log-log``     ln FID = a + b·ln BPP               (a power law FID = e^a·BPP^b)
* ``bilinear``    FID = a + b0·BPP + b1·rFID          (the paper's bilinear model)

They are compared by AIC and BIC on the FID scale: the log-log model is fitted to ln FID, so its
log-likelihood is moved to the FID scale with the Jacobian of the transform
(llf_FID = llf_lnFID − Σ ln FID_i, i.e. AIC and BIC grow by 2·Σ ln FID_i), which makes all four
comparable. And by leave-one-out prediction error on the FID scale (each row predicted by the
form fitted to the others; log-log predictions are exp of the predicted ln FID): RMSE and MAE.
The verdict names the form with the lowest AIC, says when another is within 2 AIC units
(indistinguishable by AIC), and which form predicts best out of sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

from visbpp.core.analysis.regression import json_float

AIC_TIE = 2.0   # AIC differences below this do not separate two forms (Burnham & Anderson)


@dataclass(frozen=True)
class Form:
    name: str
    formula: str          # over the columns fid, bpp, rfid, log_fid, log_bpp
    log_response: bool = False

    @property
    def k(self) -> int:
        """Number of coefficients (intercept included)."""
        return 1 + self.formula.split("~")[1].count("+") + 1


FORMS = (
    Form("linear", "fid ~ bpp"),
    Form("log-linear", "fid ~ log_bpp"),
    Form("log-log", "log_fid ~ log_bpp", log_response=True),
    Form("bilinear", "fid ~ bpp + rfid"),
)
JACOBIAN_NOTE = ("AIC/BIC on the FID scale: log-log's are its ln-FID values + 2·Σ ln FID (Jacobian); "
                 "leave-one-out errors on the FID scale")


@dataclass(frozen=True)
class FormFit:
    form: str
    formula: str
    n: int
    k: int
    aic: float | None = None
    bic: float | None = None
    r2: float | None = None          # on the form's own response (ln FID for log-log)
    coef: dict[str, float] = field(default_factory=dict)
    loo_rmse: float | None = None
    loo_mae: float | None = None
    loo_note: str = ""
    note: str = ""                   # why it was not fitted

    @property
    def fitted(self) -> bool:
        return self.aic is not None

    def to_dict(self) -> dict:
        return {"form": self.form, "formula": self.formula, "n": self.n, "k": self.k, "fitted": self.fitted,
                "aic": json_float(self.aic), "bic": json_float(self.bic), "r2": json_float(self.r2),
                "coef": {k: json_float(v) for k, v in self.coef.items()}, "loo_rmse": json_float(self.loo_rmse),
                "loo_mae": json_float(self.loo_mae), "loo_note": self.loo_note, "note": self.note}


@dataclass(frozen=True)
class FormComparison:
    scope: str                       # "global" or a group name
    n: int
    models: tuple[str, ...]
    fits: tuple[FormFit, ...]

    def _fitted(self) -> list[FormFit]:
        return [f for f in self.fits if f.fitted]

    @property
    def best_aic(self) -> str | None:
        fs = self._fitted()
        return min(fs, key=lambda f: f.aic).form if fs else None

    @property
    def best_loo(self) -> str | None:
        fs = [f for f in self._fitted() if f.loo_rmse is not None]
        return min(fs, key=lambda f: f.loo_rmse).form if fs else None

    def delta_aic(self) -> dict[str, float]:
        fs = self._fitted()
        if not fs:
            return {}
        lo = min(f.aic for f in fs)
        return {f.form: f.aic - lo for f in fs}

    @property
    def verdict(self) -> str:
        fs = self._fitted()
        if not fs:
            return "no form fitted"
        d = self.delta_aic()
        best = self.best_aic
        ties = [name for name, v in d.items() if name != best and v < AIC_TIE]
        others = ", ".join(f"{name} +{v:.1f}" for name, v in sorted(d.items(), key=lambda t: t[1]) if name != best)
        if ties:
            text = f"AIC does not separate {best} from {', '.join(ties)} (ΔAIC < {AIC_TIE:g}"
            text += f"; {others})" if others else ")"
        else:
            text = f"{best} fits best by AIC" + (f" (ΔAIC {others})" if others else "")
        loo = self.best_loo
        if loo is not None:
            text += f"; leave-one-out prediction favours {loo}"
        return text

    def to_dict(self) -> dict:
        return {"scope": self.scope, "n": self.n, "models": list(self.models),
                "fits": [f.to_dict() for f in self.fits], "delta_aic": {k: json_float(v) for k, v in self.delta_aic().items()},
                "best_aic": self.best_aic, "best_loo": self.best_loo, "verdict": self.verdict}


@dataclass(frozen=True)
class FormsResult:
    comparisons: tuple[FormComparison, ...]     # global first, then each group with >= MIN_N rows

    def to_dict(self) -> dict:
        return {"forms": [{"form": f.name, "formula": f.formula} for f in FORMS], "note": JACOBIAN_NOTE,
                "min_n": MIN_N, "comparisons": [c.to_dict() for c in self.comparisons]}


MIN_N = 3   # a group needs this many rows (as for the per-group straight line)


def _design(data: pd.DataFrame, form: Form) -> np.ndarray:
    cols = [c.strip() for c in form.formula.split("~")[1].split("+")]
    return np.column_stack([np.ones(len(data))] + [data[c].to_numpy(dtype=float) for c in cols])


def _why_not(data: pd.DataFrame, form: Form) -> str:
    """Why ``form`` cannot be fitted to ``data`` ("" when it can)."""
    n = len(data)
    if n < form.k + 1:
        return f"n = {n}: needs at least {form.k + 1} rows for {form.k} coefficients and a residual"
    if form.log_response and (data["fid"] <= 0).any():
        return "an FID is 0: ln FID undefined"
    if np.linalg.matrix_rank(_design(data, form)) < form.k:
        return "predictors constant or collinear"
    return ""


def _loo(data: pd.DataFrame, form: Form) -> tuple[float | None, float | None, str]:
    """RMSE and MAE of leave-one-out predictions of FID (an OLS refit without each row)."""
    x = _design(data, form)
    y = data["log_fid" if form.log_response else "fid"].to_numpy(dtype=float)
    errs = []
    for i in range(len(data)):
        keep = np.arange(len(data)) != i
        if keep.sum() < form.k or np.linalg.matrix_rank(x[keep]) < form.k:
            return None, None, f"without {data['label'].iloc[i]} the predictors are collinear or too few"
        pred = float(x[i] @ sm.OLS(y[keep], x[keep]).fit().params)
        errs.append((math.exp(pred) if form.log_response else pred) - float(data["fid"].iloc[i]))
    e = np.asarray(errs)
    return float(np.sqrt(np.mean(e ** 2))), float(np.mean(np.abs(e))), ""


def fit_form(data: pd.DataFrame, form: Form) -> FormFit:
    """One form on ``data`` (columns label, fid, bpp, rfid)."""
    data = _with_logs(data)
    n = len(data)
    why = _why_not(data, form)
    if why:
        return FormFit(form.name, form.formula, n, form.k, note=why)
    cols = ["Intercept"] + [c.strip() for c in form.formula.split("~")[1].split("+")]
    fit = sm.OLS(data["log_fid" if form.log_response else "fid"].to_numpy(dtype=float), _design(data, form)).fit()
    shift = 2.0 * float(np.log(data["fid"]).sum()) if form.log_response else 0.0
    rmse, mae, loo_note = _loo(data, form)
    return FormFit(form.name, form.formula, n, form.k, aic=float(fit.aic) + shift, bic=float(fit.bic) + shift,
                   r2=float(fit.rsquared), coef={k: float(v) for k, v in zip(cols, fit.params)},
                   loo_rmse=rmse, loo_mae=mae, loo_note=loo_note)


def _with_logs(data: pd.DataFrame) -> pd.DataFrame:
    if "log_bpp" in data.columns:
        return data
    out = data.reset_index(drop=True).copy()
    out["log_bpp"] = np.log(out["bpp"].astype(float))
    with np.errstate(divide="ignore"):
        out["log_fid"] = np.log(out["fid"].astype(float))
    return out


def compare(data: pd.DataFrame, scope: str) -> FormComparison:
    data = _with_logs(data)
    return FormComparison(scope, len(data), tuple(data["label"]), tuple(fit_form(data, f) for f in FORMS))


def forms(table: pd.DataFrame) -> FormsResult:
    """Every form over all rows of a validated table, then per group with at least :data:`MIN_N` rows
    (a group holding every row is the global comparison already)."""
    out = [compare(table, "global")]
    for name in dict.fromkeys(table["group"]):
        sub = table[table["group"] == name]
        if MIN_N <= len(sub) < len(table):
            out.append(compare(sub, str(name)))
    return FormsResult(tuple(out))
