"""FID against BPP: per-group fits, ANCOVA, global linear and bilinear models (statsmodels).

All regression is done by statsmodels' formula API; this module only selects rows, calls it
and collects the numbers into typed results whose ``to_dict()`` is the JSON of ``visbpp
analyze --json``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.anova import anova_lm

from visbpp.core.analysis.finetune import FinetunePair, finetune_pairs
from visbpp.core.analysis.paper import paper_analysis
from visbpp.core.analysis.regression import json_float, ols
from visbpp.core.analysis.table import TableError, bpp_basis, one_metric, validate

__all__ = [
    "AnalysisResult", "AncovaResult", "ComparisonResult", "GlobalResult", "GroupFit", "ModelFit", "Prediction",
    "ProvenanceWarning", "TableError", "analyze", "MIN_GROUP_N",
]

MIN_GROUP_N = 3          # groups with fewer models are listed without a fit
LINEAR = "fid ~ bpp"
BILINEAR = "fid ~ bpp + rfid"


def _pair(lo: Any, hi: Any) -> list[float | None]:
    return [json_float(lo), json_float(hi)]


# ---------------------------------------------------------------------------------------------
# result types

@dataclass(frozen=True)
class GroupFit:
    """FID ~ bpp within one group (a fixed tokenizer setting)."""

    group: str
    n: int
    models: tuple[str, ...]
    slope: float | None = None
    intercept: float | None = None
    r2: float | None = None
    pearson_r: float | None = None
    p_value: float | None = None          # of the slope
    slope_ci: tuple[float, float] | None = None   # 95 %
    note: str = ""                        # why it was not fitted

    @property
    def fitted(self) -> bool:
        return self.slope is not None

    def to_dict(self) -> dict:
        return {
            "group": self.group, "n": self.n, "models": list(self.models), "fitted": self.fitted,
            "slope": json_float(self.slope), "intercept": json_float(self.intercept), "r2": json_float(self.r2),
            "pearson_r": json_float(self.pearson_r), "p_value": json_float(self.p_value),
            "slope_ci": _pair(*self.slope_ci) if self.slope_ci else None, "note": self.note,
        }


@dataclass(frozen=True)
class AncovaResult:
    """Separate slopes per group vs one common slope (F test of the interaction)."""

    groups: tuple[str, ...]
    n: int
    common_slope: float | None = None
    common_slope_p_value: float | None = None
    r2_common: float | None = None
    r2_separate: float | None = None
    ssr_common: float | None = None
    ssr_separate: float | None = None
    f: float | None = None
    p_value: float | None = None
    df_num: float | None = None
    df_den: float | None = None
    note: str = ""

    @property
    def fitted(self) -> bool:
        return self.f is not None

    def to_dict(self) -> dict:
        return {
            "groups": list(self.groups), "n": self.n, "fitted": self.fitted,
            "common_formula": "fid ~ bpp + C(group)", "separate_formula": "fid ~ bpp * C(group)",
            "common_slope": json_float(self.common_slope), "common_slope_p_value": json_float(self.common_slope_p_value),
            "r2_common": json_float(self.r2_common), "r2_separate": json_float(self.r2_separate),
            "ssr_common": json_float(self.ssr_common), "ssr_separate": json_float(self.ssr_separate),
            "f": json_float(self.f), "p_value": json_float(self.p_value),
            "df_num": json_float(self.df_num), "df_den": json_float(self.df_den), "note": self.note,
        }


@dataclass(frozen=True)
class ModelFit:
    """One global OLS model with its influence diagnostics."""

    formula: str
    n: int
    r2: float
    adj_r2: float
    aic: float
    bic: float
    coef: dict[str, float]
    pvalues: dict[str, float]
    conf_int: dict[str, tuple[float, float]]
    cooks_distance: dict[str, float]
    cooks_threshold: float
    outliers: tuple[str, ...]             # labels with Cook's distance above the threshold
    fit: Any = field(default=None, repr=False, compare=False)   # statsmodels results object

    def to_dict(self) -> dict:
        return {
            "formula": self.formula, "n": self.n, "r2": json_float(self.r2), "adj_r2": json_float(self.adj_r2),
            "aic": json_float(self.aic), "bic": json_float(self.bic),
            "coef": {k: json_float(v) for k, v in self.coef.items()},
            "pvalues": {k: json_float(v) for k, v in self.pvalues.items()},
            "conf_int": {k: _pair(*v) for k, v in self.conf_int.items()},
            "cooks_distance": {k: json_float(v) for k, v in self.cooks_distance.items()},
            "cooks_threshold": json_float(self.cooks_threshold), "outliers": list(self.outliers),
        }


@dataclass(frozen=True)
class Prediction:
    """The bilinear model's FID for a new model's BPP and rFID, with intervals."""

    bpp: float
    rfid: float
    fid: float
    ci: tuple[float, float]     # confidence interval of the mean
    pi: tuple[float, float]     # prediction interval of a new observation
    alpha: float = 0.05

    def to_dict(self) -> dict:
        return {"bpp": self.bpp, "rfid": self.rfid, "fid": json_float(self.fid), "ci": _pair(*self.ci),
                "pi": _pair(*self.pi), "level": 1 - self.alpha}


@dataclass(frozen=True)
class GlobalResult:
    n: int
    linear: ModelFit
    bilinear: ModelFit | None
    rfid_f: float | None = None           # F test: does adding rFID improve on FID ~ bpp?
    rfid_f_p_value: float | None = None
    rfid_df_num: float | None = None
    rfid_df_den: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        return {
            "n": self.n, "linear": self.linear.to_dict(),
            "bilinear": self.bilinear.to_dict() if self.bilinear else None,
            "rfid_f_test": None if self.rfid_f is None else {
                "f": json_float(self.rfid_f), "p_value": json_float(self.rfid_f_p_value),
                "df_num": json_float(self.rfid_df_num), "df_den": json_float(self.rfid_df_den)},
            "note": self.note,
        }


@dataclass(frozen=True)
class ComparisonResult:
    """A named set of models that share one AR recipe across tokenizers (the table's ``compare``
    column): FID ~ bpp and FID ~ rfid over its rows, and both global models on them alone, which
    tests the rFID term at a fixed AR model."""

    name: str
    n: int
    models: tuple[str, ...]
    fid_vs_bpp: GroupFit
    fid_vs_rfid: GroupFit
    models_fit: GlobalResult | None = None   # linear, bilinear and the rFID F test on these rows
    note: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "n": self.n, "models": list(self.models),
                "fid_vs_bpp": self.fid_vs_bpp.to_dict(), "fid_vs_rfid": self.fid_vs_rfid.to_dict(),
                "models_fit": self.models_fit.to_dict() if self.models_fit else None, "note": self.note}


@dataclass(frozen=True)
class ProvenanceWarning:
    """A fit that mixes FID protocols, evaluation resolutions or BPP sources."""

    kind: str                   # "fid_protocol" | "eval_resolution" | "bpp_source" | "bpp_provenance"
    fit: str                    # "global" or a group name
    values: tuple[tuple[str, tuple[str, ...]], ...]   # (value, models having it)

    @property
    def message(self) -> str:
        what = {"fid_protocol": "FID protocols", "eval_resolution": "FID evaluation resolutions",
                "bpp_source": "BPP sources", "bpp_provenance": "",
                "bpp_basis": "BPPs measured differently (preprocessing, images, image count)"}[self.kind]
        where = "the global fit" if self.fit == "global" else f"group {self.fit!r}"
        parts = [f"{v} ({len(ms)}: {', '.join(ms)})" for v, ms in self.values]
        if self.kind == "bpp_provenance":  # a note on how the table's BPPs of these models were measured
            return "the fits use published-table BPPs " + "; ".join(f"({len(ms)}: {', '.join(ms)}) {v}"
                                                                  for v, ms in self.values)
        return f"{where} mixes {what}: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "fit": self.fit, "message": self.message,
                "values": [{"value": v, "models": list(ms)} for v, ms in self.values]}


@dataclass(frozen=True)
class AnalysisResult:
    groups: tuple[GroupFit, ...]
    ancova: AncovaResult
    global_: GlobalResult
    warnings: tuple[ProvenanceWarning, ...]
    table: pd.DataFrame = field(repr=False, compare=False)   # the validated rows, with label/group
    notes: tuple[str, ...] = ()
    paper: dict = field(default_factory=dict, compare=False)  # core/analysis/paper.py: the paper's own analyses
    comparisons: tuple[ComparisonResult, ...] = ()
    fid_source: str | None = None             # which published FID set was fitted (None: a user table)
    finetunes: tuple[FinetunePair, ...] = ()  # base model vs fine-tune per size, where both rows are fitted

    def predict(self, bpp: float, rfid: float, alpha: float = 0.05) -> Prediction:
        """Predicted FID of the bilinear model for a new model's BPP and rFID."""
        if self.global_.bilinear is None:
            raise TableError(f"no prediction: the bilinear fit is not available ({self.global_.note})")
        for name, v in (("bpp", bpp), ("rfid", rfid)):
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise TableError(f"prediction: {name} must be a finite number, got {v!r}")
        if not 0 < alpha < 1:
            raise TableError(f"prediction: alpha must be between 0 and 1, got {alpha!r}")
        sf = self.global_.bilinear.fit.get_prediction(
            pd.DataFrame({"bpp": [float(bpp)], "rfid": [float(rfid)]})).summary_frame(alpha=alpha)
        r = sf.iloc[0]
        return Prediction(float(bpp), float(rfid), float(r["mean"]),
                          (float(r["mean_ci_lower"]), float(r["mean_ci_upper"])),
                          (float(r["obs_ci_lower"]), float(r["obs_ci_upper"])), alpha)

    def to_dict(self) -> dict:
        return {
            "n": int(len(self.table)),
            "groups": [g.to_dict() for g in self.groups],
            "ancova": self.ancova.to_dict(),
            "global": self.global_.to_dict(),
            "warnings": [w.to_dict() for w in self.warnings],
            "notes": list(self.notes),
            "paper": self.paper,
            "bpp_basis": _bases(self.table),
            "comparisons": [c.to_dict() for c in self.comparisons],
            "fid_source": self.fid_source,
            "finetunes": [p.to_dict() for p in self.finetunes],
        }


# ---------------------------------------------------------------------------------------------
# fitting

def _fit_group(name: str, g: pd.DataFrame, x: str = "bpp") -> GroupFit:
    n, models = len(g), tuple(g["label"])
    if n < MIN_GROUP_N:
        return GroupFit(name, n, models, note=f"n = {n} < {MIN_GROUP_N}")
    if g[x].nunique() < 2:
        return GroupFit(name, n, models, note=f"all models have the same {x}: no slope")
    fit = ols(f"fid ~ {x}", g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = stats.pearsonr(g[x], g["fid"]).statistic
    lo, hi = fit.conf_int(alpha=0.05).loc[x]
    return GroupFit(name, n, models, slope=float(fit.params[x]), intercept=float(fit.params["Intercept"]),
                    r2=float(fit.rsquared), pearson_r=float(r), p_value=float(fit.pvalues[x]),
                    slope_ci=(float(lo), float(hi)))


def _comparisons(df: pd.DataFrame) -> tuple[ComparisonResult, ...]:
    """One result per name in the optional ``compare`` column ("; "-separated names per row) whose
    rows span at least two rFIDs (tokenizers); a set on one tokenizer (models scoring the same
    tokens in other orders, or a single row) has no tokenizer to compare (its models meet in
    ``pairs.py``'s same-tokenizer pairs)."""
    if "compare" not in df.columns:
        return ()
    names: dict[str, list[int]] = {}
    for i, v in enumerate(df["compare"]):
        for name in (str(v).split(";") if isinstance(v, str) else ()):
            if name.strip():
                names.setdefault(name.strip(), []).append(i)
    out = []
    for name, rows in names.items():
        sub = df.iloc[rows].reset_index(drop=True)
        if sub["rfid"].nunique() < 2:
            continue
        n, models = len(sub), tuple(sub["label"])
        by_bpp, by_rfid = _fit_group(name, sub, "bpp"), _fit_group(name, sub, "rfid")
        if n < MIN_GROUP_N:
            out.append(ComparisonResult(name, n, models, by_bpp, by_rfid, note=f"n = {n} < {MIN_GROUP_N}"))
            continue
        glob = _global(sub)
        out.append(ComparisonResult(name, n, models, by_bpp, by_rfid, glob, glob.note))
    return tuple(out)


def _ancova(df: pd.DataFrame, fitted: list[str]) -> AncovaResult:
    sub = df[df["group"].isin(fitted)]
    if len(fitted) < 2:
        return AncovaResult(tuple(fitted), len(sub), note=f"needs at least 2 fitted groups, have {len(fitted)}")
    common = ols("fid ~ bpp + C(group)", sub)
    separate = ols("fid ~ bpp * C(group)", sub)
    if separate.df_resid < 1:
        return AncovaResult(tuple(fitted), len(sub), note="no residual degrees of freedom for separate slopes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = anova_lm(common, separate)
    row = tab.iloc[1]
    return AncovaResult(
        tuple(fitted), len(sub), common_slope=float(common.params["bpp"]),
        common_slope_p_value=float(common.pvalues["bpp"]), r2_common=float(common.rsquared),
        r2_separate=float(separate.rsquared), ssr_common=float(common.ssr), ssr_separate=float(separate.ssr),
        f=float(row["F"]), p_value=float(row["Pr(>F)"]), df_num=float(row["df_diff"]), df_den=float(row["df_resid"]),
    )


def _model_fit(formula: str, df: pd.DataFrame) -> ModelFit:
    fit = ols(formula, df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cooks = fit.get_influence().cooks_distance[0]
    n = len(df)
    threshold = 4.0 / n
    labels = list(df["label"])
    cd = {lab: float(c) for lab, c in zip(labels, cooks)}
    ci = fit.conf_int(alpha=0.05)
    return ModelFit(
        formula=formula, n=n, r2=float(fit.rsquared), adj_r2=float(fit.rsquared_adj), aic=float(fit.aic),
        bic=float(fit.bic), coef={k: float(v) for k, v in fit.params.items()},
        pvalues={k: float(v) for k, v in fit.pvalues.items()},
        conf_int={k: (float(ci.loc[k, 0]), float(ci.loc[k, 1])) for k in fit.params.index},
        cooks_distance=cd, cooks_threshold=threshold,
        outliers=tuple(lab for lab, c in zip(labels, cooks) if math.isfinite(c) and c > threshold), fit=fit,
    )


def _global(df: pd.DataFrame) -> GlobalResult:
    n = len(df)
    linear = _model_fit(LINEAR, df)
    design = np.column_stack([np.ones(n), df["bpp"].to_numpy(), df["rfid"].to_numpy()])
    if n < 4:
        return GlobalResult(n, linear, None, note=f"FID ~ bpp + rfid needs at least 4 models, have {n}")
    if np.linalg.matrix_rank(design) < 3:
        return GlobalResult(n, linear, None,
                            note="FID ~ bpp + rfid not fitted: rfid is constant or collinear with bpp")
    bilinear = _model_fit(BILINEAR, df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = anova_lm(linear.fit, bilinear.fit).iloc[1]
    return GlobalResult(n, linear, bilinear, rfid_f=float(row["F"]), rfid_f_p_value=float(row["Pr(>F)"]),
                        rfid_df_num=float(row["df_diff"]), rfid_df_den=float(row["df_resid"]))


# ---------------------------------------------------------------------------------------------
# provenance

def _provenance_column(df: pd.DataFrame) -> pd.Series | None:
    if "fid_provenance" in df.columns:
        return df["fid_provenance"].fillna("").astype(str)
    if "fid_source" in df.columns or "fid_protocol" in df.columns:
        src = df.get("fid_source", pd.Series([""] * len(df), index=df.index)).fillna("").astype(str)
        pro = df.get("fid_protocol", pd.Series([""] * len(df), index=df.index)).fillna("").astype(str)
        return pd.Series([f"{s}; {p}" if s and p else (s or p) for s, p in zip(src, pro)], index=df.index)
    return None


def _eval_res_column(df: pd.DataFrame) -> pd.Series | None:
    if "fid_eval_resolution" not in df.columns:
        return None
    vals = pd.to_numeric(df["fid_eval_resolution"], errors="coerce")
    return pd.Series([f"{int(v)}" if pd.notna(v) else "unstated" for v in vals], index=df.index)


def _mix(kind: str, fit: str, values: pd.Series, labels: pd.Series) -> ProvenanceWarning | None:
    """A warning when the rows carry two or more distinct stated values ("unstated" rows are
    listed with them but do not count as a value of their own)."""
    groups: dict[str, list[str]] = {}
    for v, lab in zip(values, labels):
        groups.setdefault(v or "unstated", []).append(lab)
    if len([v for v in groups if v != "unstated"]) < 2:
        return None
    return ProvenanceWarning(kind, fit, tuple((v, tuple(ms)) for v, ms in groups.items()))


def provenance_warnings(df: pd.DataFrame, fits: list[str]) -> list[ProvenanceWarning]:
    """Warnings for every fit (``"global"`` or a group name) whose rows mix FID protocols,
    stated FID evaluation resolutions or BPP sources (measured vs published)."""
    cols = {"fid_protocol": _provenance_column(df), "eval_resolution": _eval_res_column(df),
            "bpp_source": df["bpp_source"].fillna("").astype(str) if "bpp_source" in df.columns else None,
            "bpp_basis": bpp_basis(df)}
    out = []
    for fit in fits:
        mask = pd.Series(True, index=df.index) if fit == "global" else df["group"] == fit
        for kind, col in cols.items():
            if col is None:
                continue
            w = _mix(kind, fit, col[mask], df.loc[mask, "label"])
            if w is not None:
                out.append(w)
    if "bpp_provenance" in df.columns:  # table BPPs measured otherwise than `visbpp run` does: one note, last
        notes: dict[str, list[str]] = {}
        for v, lab in zip(df["bpp_provenance"].fillna("").astype(str), df["label"]):
            if v:
                notes.setdefault(v, []).append(lab)
        if notes:
            out.append(ProvenanceWarning("bpp_provenance", "global", tuple((v, tuple(ms)) for v, ms in notes.items())))
    return out


# ---------------------------------------------------------------------------------------------
# entry point

def _degenerate(data: pd.DataFrame) -> tuple[str, ...]:
    """TableError for inputs no fit can use (constant bpp or fid); notes for duplicate rows."""
    for col in ("bpp", "fid"):
        v = data[col].to_numpy()
        if v.max() - v.min() <= 1e-12 * max(abs(v.max()), abs(v.min()), 1e-300):
            raise TableError(f"every row has the same {col} ({v[0]:g}): FID against BPP cannot be fitted")
    key = ["family", "size", "resolution", "fid", "rfid", "bpp"]
    dup = data[data.duplicated(key, keep=False)]
    notes = []
    for _, g in dup.groupby(key, sort=False):
        notes.append(f"duplicate rows: {', '.join(g['label'])} have the same family, size, resolution, fid, rfid "
                     f"and bpp; each copy counts in the fits (remove duplicates unless they are separate models)")
    return tuple(notes)


def _bases(df: pd.DataFrame) -> list[dict]:
    """What the fitted BPPs were measured on (preprocessing, images, count) and which models, when known."""
    col = bpp_basis(df)
    if col is None:
        return []
    out: dict[str, list[str]] = {}
    for b, lab in zip(col, df["label"]):
        out.setdefault(b or "unstated", []).append(str(lab))
    return [{"basis": b, "models": ms} for b, ms in out.items()]


class MixedBppError(TableError):
    """The fits would combine BPPs of different preprocessings, image sets or image counts."""


def analyze(df: pd.DataFrame, notes: tuple[str, ...] | list[str] = (), allow_mixed: bool = False,
            fid_source: str | None = None, metric: str | None = None) -> AnalysisResult:
    """Validate ``df`` (columns family, size, resolution, fid, rfid, bpp; optional group, model_id,
    provenance columns) and run every fit. Only the rows of one quality metric are fitted
    (``fid_metric``; :func:`~visbpp.core.analysis.table.one_metric`: ``metric``, else FID when
    present); the others are named in a note. Bad input raises :class:`TableError`; BPPs measured
    with different preprocessings, on different images or image counts (``bpp_preprocess``,
    ``bpp_image_set``, ``bpp_n_images``) raise :class:`MixedBppError` unless ``allow_mixed``,
    which fits them with a ``bpp_basis`` warning instead."""
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"expected a pandas DataFrame, got {type(df).__name__}")
    df, left_out = one_metric(df, metric)
    data = validate(df)
    notes = tuple(notes) + tuple(left_out) + _degenerate(data)
    basis = bpp_basis(data)
    mixed = _mix("bpp_basis", "global", basis, data["label"]) if basis is not None else None
    if mixed is not None and not allow_mixed:
        raise MixedBppError(f"not fitted: {mixed.message}. Measure every model the same way (visbpp run "
                            f"--preprocess, same images), or fit them anyway with --allow-mixed")
    order = list(dict.fromkeys(data["group"]))
    groups = tuple(_fit_group(name, data[data["group"] == name]) for name in order)
    fitted = [g.group for g in groups if g.fitted]
    ancova = _ancova(data, fitted)
    glob = _global(data)
    warns = provenance_warnings(data, ["global"] + fitted)
    return AnalysisResult(groups, ancova, glob, tuple(warns), data, tuple(notes), paper_analysis(data),
                          _comparisons(data), fid_source, tuple(finetune_pairs(data)))
