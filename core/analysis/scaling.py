"""Reducible bits: BPP against model size within a fixed tokenizer setting, and FID against the reducible part.

Per fit group with at least :data:`MIN_SIZES` distinct sizes, ``scipy.optimize.curve_fit`` fits

    bpp = E + A · N^(−α)        (N = AR parameters, from the table's ``params`` or the registry)

with E in [0, min bpp], A ≥ 0, α in [0, :data:`ALPHA_MAX`] (started from the best point of an α grid,
N scaled by its geometric mean inside the fit). E is the floor no model size removes, bpp − E the
reducible part. Intervals (95%):

* n = 3 (as many points as parameters): an exact fit, no interval;
* 4 ≤ n ≤ :data:`BOOTSTRAP_MAX_N`: percentile bootstrap over models (:data:`RESAMPLES` resamples of
  the group's models with replacement, seed :data:`SEED`; resamples with fewer than 3 distinct
  sizes are dropped and counted). With so few models each resample refits a handful of points:
  the interval shows how much E and α move with the models chosen, not a sampling distribution;
* larger n: asymptotic t intervals from curve_fit's covariance (n − 3 degrees of freedom).

Then FID is refitted over the rows of every fitted group against bpp and against bpp − E: one
line for all groups (``fid ~ x``) against a line per group (``fid ~ x * C(group)``), F test by
``anova_lm``. If the reducible part pulls the groups onto one line where raw BPP does not, the
one-line model is rejected for bpp and not for bpp − E.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import curve_fit
from statsmodels.stats.anova import anova_lm

from visbpp.core.analysis.regression import json_float, ols

MIN_SIZES = 3
ALPHA_MAX = 5.0
ALPHA_GRID = np.linspace(0.02, ALPHA_MAX, 250)
BOOTSTRAP_MAX_N = 9
RESAMPLES = 1000
SEED = 0
LEVEL = 0.95
MODEL = "bpp = E + A * N^-alpha (N = AR parameters)"


def power_law(n, e, a, alpha):
    """E + A·n^(−α)."""
    return e + a * np.power(n, -alpha)


@dataclass(frozen=True)
class PowerLaw:
    e: float
    a: float          # in BPP = E + A·N^−α with N in parameters
    alpha: float
    rss: float
    cov: np.ndarray | None   # of (E, A at the reference size, α); None for an exact fit
    at_bounds: tuple[str, ...] = ()   # parameters the fit ended on a bound of


def fit_power_law(n_params, bpp) -> PowerLaw:
    """Least-squares fit of bpp = E + A·N^−α (bounds as in the module doc)."""
    n = np.asarray(n_params, dtype=float)
    y = np.asarray(bpp, dtype=float)
    ref = float(np.exp(np.log(n).mean()))
    x = n / ref
    lo, hi = y.min(), y.max()
    z = np.power(x[None, :], -ALPHA_GRID[:, None])          # (grid, n): E and A by least squares at each α,
    zc = z - z.mean(1, keepdims=True)                        # kept inside their bounds
    ss = (zc * zc).sum(1)
    a = np.where(ss > 0, np.maximum(0.0, (zc @ (y - y.mean())) / np.where(ss > 0, ss, 1.0)), 0.0)
    e = np.clip(y.mean() - a * z.mean(1), 0.0, lo)
    i = int(np.argmin(((e[:, None] + a[:, None] * z - y) ** 2).sum(1)))
    e0, a0, alpha0 = float(e[i]), float(a[i]), float(ALPHA_GRID[i])
    eps = 1e-9 * max(hi, 1e-300)
    p0 = (min(max(e0, eps), lo - eps) if lo > 2 * eps else lo / 2, max(a0, eps), min(max(alpha0, 1e-6), ALPHA_MAX - 1e-6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # an exact fit has no covariance (OptimizeWarning)
        p, cov = curve_fit(power_law, x, y, p0=p0, bounds=([0.0, 0.0, 0.0], [lo, np.inf, ALPHA_MAX]),
                           method="trf", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=20000)
    e, a_ref, alpha = (float(v) for v in p)
    rss = float(((power_law(x, e, a_ref, alpha) - y) ** 2).sum())
    tol = 1e-6
    bounds = tuple(name for name, at in (("E = 0", e <= tol * hi), ("E = min bpp", e >= lo - tol * hi),
                                          ("A = 0", a_ref <= tol * hi), ("alpha = 0", alpha <= 1e-6),
                                          ("alpha = max", alpha >= ALPHA_MAX - 1e-6)) if at)
    cov = cov if np.all(np.isfinite(cov)) else None
    return PowerLaw(e, a_ref * ref ** alpha, alpha, rss, cov, bounds)


@dataclass(frozen=True)
class ScalingFit:
    group: str
    n: int
    models: tuple[str, ...]
    params: tuple[float, ...]
    bpp: tuple[float, ...]
    e: float | None = None
    a: float | None = None
    alpha: float | None = None
    rss: float | None = None
    e_ci: tuple[float, float] | None = None
    alpha_ci: tuple[float, float] | None = None
    ci_method: str = ""
    resamples_used: int | None = None
    at_bounds: tuple[str, ...] = ()
    note: str = ""

    @property
    def fitted(self) -> bool:
        return self.e is not None

    def reducible(self) -> tuple[float, ...]:
        return tuple(b - self.e for b in self.bpp) if self.fitted else ()

    def to_dict(self) -> dict:
        pair = (lambda c: [json_float(c[0]), json_float(c[1])] if c else None)
        return {"group": self.group, "n": self.n, "models": list(self.models), "params": list(self.params),
                "bpp": list(self.bpp), "fitted": self.fitted, "E": json_float(self.e), "A": json_float(self.a),
                "alpha": json_float(self.alpha), "rss": json_float(self.rss), "E_ci": pair(self.e_ci),
                "alpha_ci": pair(self.alpha_ci), "ci_method": self.ci_method, "resamples_used": self.resamples_used,
                "at_bounds": list(self.at_bounds), "reducible_bpp": [json_float(v) for v in self.reducible()],
                "note": self.note}


def _bootstrap(n_params: np.ndarray, y: np.ndarray) -> tuple[tuple, tuple, int]:
    rng = np.random.default_rng(SEED)
    memo: dict[tuple, tuple[float, float] | None] = {}
    es, alphas = [], []
    for _ in range(RESAMPLES):
        idx = tuple(sorted(rng.integers(0, len(y), size=len(y))))
        if idx not in memo:
            i = np.asarray(idx)
            if len(np.unique(n_params[i])) < MIN_SIZES:
                memo[idx] = None
            else:
                f = fit_power_law(n_params[i], y[i])
                memo[idx] = (f.e, f.alpha)
        if memo[idx] is not None:
            es.append(memo[idx][0])
            alphas.append(memo[idx][1])
    q = [(1 - LEVEL) / 2, (1 + LEVEL) / 2]
    return tuple(float(v) for v in np.quantile(es, q)), tuple(float(v) for v in np.quantile(alphas, q)), len(es)


def fit_group(name: str, models, n_params, bpp) -> ScalingFit:
    n_params = np.asarray(n_params, dtype=float)
    y = np.asarray(bpp, dtype=float)
    base = dict(group=name, n=len(y), models=tuple(models), params=tuple(float(v) for v in n_params),
                bpp=tuple(float(v) for v in y))
    distinct = len(np.unique(n_params))
    if distinct < MIN_SIZES:
        return ScalingFit(**base, note=f"{distinct} distinct size{'s' if distinct != 1 else ''} < {MIN_SIZES}")
    f = fit_power_law(n_params, y)
    e_ci = alpha_ci = None
    used = None
    if len(y) <= MIN_SIZES:
        method = f"none: {len(y)} points for 3 parameters (an exact fit)"
    elif len(y) <= BOOTSTRAP_MAX_N:
        e_ci, alpha_ci, used = _bootstrap(n_params, y)
        method = (f"percentile bootstrap over models ({RESAMPLES} resamples, seed {SEED}; {used} with at least "
                  f"{MIN_SIZES} distinct sizes refitted): n = {len(y)} is small")
    elif f.cov is not None:
        t = stats.t.ppf((1 + LEVEL) / 2, len(y) - 3)
        se = np.sqrt(np.diag(f.cov))
        e_ci, alpha_ci = (f.e - t * se[0], f.e + t * se[0]), (f.alpha - t * se[2], f.alpha + t * se[2])
        method = f"asymptotic t ({len(y) - 3} df) from curve_fit's covariance"
    else:
        method = "none: curve_fit gave no covariance"
    return ScalingFit(**base, e=f.e, a=f.a, alpha=f.alpha, rss=f.rss, e_ci=e_ci, alpha_ci=alpha_ci,
                      ci_method=method, resamples_used=used, at_bounds=f.at_bounds)


def params_column(table: pd.DataFrame) -> pd.Series:
    """AR parameters per row: the table's ``params``, else the registry card of the row's model id."""
    from visbpp.core.registry import catalog

    given = pd.to_numeric(table["params"], errors="coerce") if "params" in table.columns else None
    out = []
    for i, mid in enumerate(table.get("model_id", pd.Series([None] * len(table), index=table.index))):
        v = given.iloc[i] if given is not None else float("nan")
        if pd.isna(v) and isinstance(mid, str) and mid:
            try:
                v = float(catalog.get_card(mid).params)
            except catalog.UnknownModelError:
                pass
        out.append(float(v) if pd.notna(v) and float(v) > 0 else float("nan"))
    return pd.Series(out, index=table.index, dtype="float64")


@dataclass(frozen=True)
class OneLine:
    """FID against x over several groups: one line vs a line per group."""

    x: str
    n: int
    r2: float | None = None
    aic: float | None = None
    slope: float | None = None
    f: float | None = None
    p_value: float | None = None
    df_num: float | None = None
    df_den: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {"x": self.x, "n": self.n, "r2": json_float(self.r2), "aic": json_float(self.aic), "slope": json_float(self.slope),
                "separate_lines_f": json_float(self.f), "separate_lines_p": json_float(self.p_value),
                "df_num": json_float(self.df_num), "df_den": json_float(self.df_den), "note": self.note}


def one_line(data: pd.DataFrame, x: str) -> OneLine:
    groups = data["group"].nunique()
    one = ols(f"fid ~ {x}", data)
    out = OneLine(x, len(data), r2=float(one.rsquared), aic=float(one.aic), slope=float(one.params[x]))
    if groups < 2:
        return replace(out, note="one group only: no separate lines to compare")
    sep = ols(f"fid ~ {x} * C(group)", data)
    if sep.df_resid < 1:
        return replace(out, note="no residual degrees of freedom for a line per group")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = anova_lm(one, sep).iloc[1]
    return replace(out, f=float(row["F"]), p_value=float(row["Pr(>F)"]), df_num=float(row["df_diff"]),
                   df_den=float(row["df_resid"]))


@dataclass(frozen=True)
class ReducibleRefit:
    groups: tuple[str, ...]
    raw: OneLine | None
    reducible: OneLine | None
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.raw is None or self.reducible is None or self.raw.p_value is None or self.reducible.p_value is None:
            return self.note or "not tested"
        rej = (lambda ol: ol.p_value < 1 - LEVEL)
        if rej(self.raw) and not rej(self.reducible):
            return "bpp − E pulls the groups onto one line where raw bpp does not"
        if not rej(self.raw) and not rej(self.reducible):
            return "one line fits both raw bpp and bpp − E (separate lines not needed for either)"
        if rej(self.reducible) and not rej(self.raw):
            return "raw bpp fits one line, bpp − E does not"
        return "neither raw bpp nor bpp − E puts the groups on one line"

    def to_dict(self) -> dict:
        return {"groups": list(self.groups), "raw": self.raw.to_dict() if self.raw else None,
                "reducible": self.reducible.to_dict() if self.reducible else None, "verdict": self.verdict,
                "note": self.note}


@dataclass(frozen=True)
class ScalingResult:
    fits: tuple[ScalingFit, ...]
    refit: ReducibleRefit
    note: str = ""

    def to_dict(self) -> dict:
        return {"model": MODEL, "min_sizes": MIN_SIZES, "alpha_max": ALPHA_MAX, "level": LEVEL,
                "groups": [f.to_dict() for f in self.fits], "fid_vs_reducible": self.refit.to_dict(), "note": self.note}


def scaling(table: pd.DataFrame) -> ScalingResult:
    """The power law per group of a validated table and FID against the reducible part (module doc)."""
    params = params_column(table)
    fits, note = [], ""
    if params.isna().all():
        note = "no AR parameter counts (a params column or registry model ids): no size scaling fitted"
    for name in dict.fromkeys(table["group"]):
        mask = (table["group"] == name) & params.notna()
        if mask.sum() == 0:
            continue
        sub = table[mask]
        fits.append(fit_group(str(name), sub["label"], params[mask], sub["bpp"]))
    fitted = [f for f in fits if f.fitted]
    if len(fitted) < 2:
        refit = ReducibleRefit(tuple(f.group for f in fitted), None, None,
                               note=f"needs at least 2 groups with a scaling fit, have {len(fitted)}")
        return ScalingResult(tuple(fits), refit, note)
    red = {lab: r for f in fitted for lab, r in zip(f.models, f.reducible())}
    data = table[table["label"].isin(red)].reset_index(drop=True).copy()
    data["bpp_reducible"] = [red[lab] for lab in data["label"]]
    refit = ReducibleRefit(tuple(f.group for f in fitted), one_line(data, "bpp"), one_line(data, "bpp_reducible"))
    return ScalingResult(tuple(fits), refit, note)


def curve(fit: ScalingFit, steps: int = 60) -> tuple[list[float], list[float]]:
    """The fitted curve over the group's size range (log-spaced), for plots."""
    if not fit.fitted:
        return [], []
    lo, hi = min(fit.params), max(fit.params)
    n = np.exp(np.linspace(math.log(lo), math.log(hi), steps))
    return [float(v) for v in n], [float(v) for v in power_law(n, fit.e, fit.a, fit.alpha)]
