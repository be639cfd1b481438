"""Pure logic behind the results table and the plots (no textual).

``load_bundle`` gathers the merged table (published + measured), the analysis and the rows
the table shows; ``fit_series`` / ``bilinear_view`` turn the analysis into what the plots
draw. All statistics come from ``visbpp.core.analysis.fits``; this module only evaluates the
fitted lines it reports.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from visbpp.core.analysis.plots import size_label
from visbpp.core.files import atomic_write_text

from .state import fmt_bpp, fmt_float

# (key, header) in display order; every key is a field of ResultRow
COLUMNS: tuple[tuple[str, str], ...] = (
    ("model_id", "Model"),
    ("group", "Group"),
    ("resolution", "Res"),
    ("fid", "FID"),
    ("rfid", "rFID"),
    ("reference_bpp", "ref BPP"),
    ("measured_bpp", "bpp"),
    ("ci", "bpp 95% CI"),
    ("bits_per_token", "bits_per_token"),
    ("n_images", "n"),
    ("raw_rate_bpp", "raw bpp"),
    ("unigram_bpp", "unigram"),
    ("ar_share", "AR share"),
)


MICRO_FID = "micro-FID"
# columns left out below 135 terminal columns (the model id names group and resolution; the detail pane
# under the table shows the baseline of the cursor row)
NARROW_DROP = ("group", "resolution", "raw_rate_bpp", "unigram_bpp", "ar_share")
MICRO_MARK = " µFID"   # suffix of micro-FID cells in the FID / rFID columns


def fid_metric(record: dict) -> str:
    """``"micro-FID"`` for rows whose quality figure is the micro zoo's micro-FID, else ``"FID"``."""
    return MICRO_FID if record.get("fid_metric") == MICRO_FID else "FID"


@dataclass(frozen=True)
class ResultRow:
    model_id: str
    group: str = ""
    resolution: int | None = None
    fid: float | None = None
    rfid: float | None = None
    reference_bpp: float | None = None
    measured_bpp: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    bits_per_token: float | None = None
    n_images: int | None = None
    fid_metric: str = "FID"            # "micro-FID" for the micro zoo: never shown as plain FID
    fid_choice: str = ""               # which published FID set the fid is from (paper, readme, noguidance)
    raw_rate_bpp: float | None = None  # visbpp.core.analysis.baseline: the token code without and with the AR model
    unigram_bpp: float | None = None
    unigram_bpp_mm: float | None = None
    ar_share: float | None = None
    baseline_note: str = ""

    @property
    def micro(self) -> bool:
        return self.fid_metric == MICRO_FID

    def _fid_cell(self, v: float | None) -> str:
        return fmt_float(v) + (MICRO_MARK if self.micro and v is not None else "")

    @property
    def ci(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            from visbpp.core.store.results import MIN_CI_IMAGES

            return f"n<{MIN_CI_IMAGES}" if self.n_images is not None and self.n_images < MIN_CI_IMAGES else "-"
        return f"{self.ci_low:.6f}-{self.ci_high:.6f}"

    @property
    def ci_short(self) -> str:
        """The CI as ± its half-width (two significant digits): the narrow table's form."""
        if self.ci_low is None or self.ci_high is None:
            return "-"
        return f"±{(self.ci_high - self.ci_low) / 2:.1e}"

    def cells(self, narrow: bool = False) -> tuple[str, ...]:
        if narrow:
            mark = lambda v: fmt_float(v) + ("µ" if self.micro and v is not None else "")  # noqa: E731
            return (self.model_id, mark(self.fid), mark(self.rfid), fmt_bpp(self.reference_bpp, 6),
                    fmt_bpp(self.measured_bpp, 6), self.ci_short, fmt_float(self.bits_per_token, 3),
                    str(self.n_images) if self.n_images is not None else "-")
        return (
            self.model_id, self.group or "-", str(self.resolution or "-"), self._fid_cell(self.fid),
            self._fid_cell(self.rfid),
            fmt_bpp(self.reference_bpp), fmt_bpp(self.measured_bpp), self.ci,
            fmt_float(self.bits_per_token, 3), str(self.n_images) if self.n_images is not None else "-",
            fmt_bpp(self.raw_rate_bpp, 5), fmt_bpp(self.unigram_bpp, 5), fmt_share(self.ar_share),
        )

    def baseline_detail(self) -> str:
        """The detail pane's line: the token code's rates beside the model's BPP."""
        if self.raw_rate_bpp is None and self.unigram_bpp is None:
            return f"{self.model_id}: no token baseline" + (f" ({self.baseline_note})" if self.baseline_note else "")
        text = f"{self.model_id}: raw index rate {fmt_bpp(self.raw_rate_bpp, 5)} bpp"
        if self.unigram_bpp is not None:
            text += (f" · order-0 baseline {fmt_bpp(self.unigram_bpp, 5)} (Miller–Madow {fmt_bpp(self.unigram_bpp_mm, 5)})"
                     f" · model {fmt_bpp(self.measured_bpp, 5)} · AR share {fmt_share(self.ar_share)}")
        elif self.baseline_note:
            text += f"; {self.baseline_note}"
        return text

    def sort_value(self, key: str):
        return self.ci_low if key == "ci" else getattr(self, key)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _int(v: Any) -> int | None:
    f = _num(v)
    return None if f is None else int(f)


def fmt_share(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def build_rows(records: Sequence[dict], measured: Sequence[dict], baselines: dict | None = None) -> list[ResultRow]:
    """One row per merged-table record, measured values joined by model id; measured models
    absent from the merged table (custom checkpoints) are appended. ``baselines``: model id ->
    ``TokenBaseline`` (``visbpp.core.analysis.baseline``) for the baseline columns."""
    rows = _build_rows(records, measured)
    if not baselines:
        return rows
    return [replace(r, **baselines[r.model_id].values(), baseline_note=baselines[r.model_id].note)
            if r.model_id in baselines else r for r in rows]


def _build_rows(records: Sequence[dict], measured: Sequence[dict]) -> list[ResultRow]:
    meas = {m.get("model_id"): m for m in measured}
    rows: list[ResultRow] = []
    seen: set[str] = set()
    for r in records:
        mid = str(r.get("model_id", ""))
        m = meas.get(mid, {})
        seen.add(mid)
        rows.append(ResultRow(
            model_id=mid, group=str(r.get("group") or ""), resolution=_int(r.get("resolution")),
            fid=_num(r.get("fid")), rfid=_num(r.get("rfid")),
            reference_bpp=_num(r.get("reference_bpp", r.get("bpp"))),
            measured_bpp=_num(r.get("measured_bpp", m.get("bpp"))),
            ci_low=_num(m.get("bpp_ci_low")), ci_high=_num(m.get("bpp_ci_high")),
            bits_per_token=_num(m.get("bits_per_token")), n_images=_int(m.get("n_images")),
            fid_metric=fid_metric(r), fid_choice=str(r.get("fid_choice") or ""),
        ))
    for mid, m in meas.items():
        if mid in seen or not mid:
            continue
        rows.append(ResultRow(
            model_id=str(mid), group=str(m.get("family") or ""), resolution=_int(m.get("resolution")),
            measured_bpp=_num(m.get("bpp")), ci_low=_num(m.get("bpp_ci_low")), ci_high=_num(m.get("bpp_ci_high")),
            bits_per_token=_num(m.get("bits_per_token")), n_images=_int(m.get("n_images")),
        ))
    return rows


def sort_rows(rows: Sequence[ResultRow], key: str, reverse: bool = False) -> list[ResultRow]:
    """Sorted by column ``key``; empty cells always last."""
    present = [r for r in rows if r.sort_value(key) is not None]
    empty = [r for r in rows if r.sort_value(key) is None]
    return sorted(present, key=lambda r: r.sort_value(key), reverse=reverse) + empty


@dataclass
class Bundle:
    """Everything the results table and plots need, computed off the UI thread."""

    rows: list[ResultRow] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)      # merged table as records (plot points)
    measured: list[dict] = field(default_factory=list)
    analysis: dict | None = None                           # AnalysisResult.to_dict()
    analysis_obj: Any = None
    series: list = field(default_factory=list)             # GroupSeries per fit group
    micro_series: list = field(default_factory=list)       # micro-FID groups (measured micro models)
    micro_analysis: dict | None = None                     # their own analysis: never mixed with FID
    bilinear: Any = None                                   # BilinearView or None
    error: str | None = None
    notes: list[str] = field(default_factory=list)         # the run selection's warnings (core/store/runs.py)
    runs_used: list[str] = field(default_factory=list)     # its notes: which run each measurement comes from


def analysis_warnings(bundle: Bundle, skip_kinds: Sequence[str] = ()) -> list[str]:
    """The run selection's warnings and the analysis' (fits mixing FID protocols, evaluation
    resolutions or BPP sources; notes on how the published BPPs were measured), as text; ``skip_kinds``:
    analysis warning kinds left out."""
    out = list(bundle.notes)
    for a in (bundle.analysis, bundle.micro_analysis):
        for w in (a or {}).get("warnings", []):
            if isinstance(w, dict) and w.get("kind") in skip_kinds:
                continue
            out.append(w["message"] if isinstance(w, dict) else str(w))
    return out


TOAST_CHARS = 60   # a warning toast is one line: the start of the first warning, the count, where to read them


def toast_line(warnings: Sequence[str]) -> str:
    """One line for a toast of ``warnings`` (their full text is in the Stats tab)."""
    first = " ".join(warnings[0].split())
    head = first.split(":")[0] if ":" in first[:TOAST_CHARS] else first
    head = head if len(head) <= TOAST_CHARS else head[:TOAST_CHARS - 1].rstrip() + "…"
    more = f" (+{len(warnings) - 1} more)" if len(warnings) > 1 else ""
    return f"{head}{more} · 5 Stats"


def merge_measured(stored: Sequence[dict], live: Sequence[dict]) -> list[dict]:
    """The store's selection (``visbpp.core.store.runs``: the same rule as ``analyze`` and ``export``),
    plus ``live`` summaries only of models the store does not hold yet."""
    by_id = {m.get("model_id"): m for m in stored}
    for m in live:
        by_id.setdefault(m.get("model_id"), m)
    return list(by_id.values())


def load_bundle(cache_dir: str | None, model_set: str = "published", live: Sequence[dict] = (),
                fid_source: str = "paper") -> Bundle:
    """Measured results from the store (+ ``live`` summaries of the current run) + merged table +
    analysis (of the rows with an FID of ``fid_source``) + what the plots draw. Errors are captured in
    ``Bundle.error`` (shown in the UI)."""
    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.report import analysis_document
    from visbpp.core.analysis.table import fit_rows, merged_table
    from visbpp.core.store.runs import select_measured

    b = Bundle()
    try:
        sel = select_measured(cache_dir)
        b.measured, b.notes = merge_measured(sel.entries, live), list(sel.warnings)
        b.runs_used = [n for n in sel.notes if n not in sel.warnings]
    except Exception as e:  # noqa: BLE001 - a damaged store must not stop the table
        b.measured = list(live)
        b.error = f"results store: {type(e).__name__}: {e}"
    micro_records: list[dict] = []
    try:
        df = merged_table(b.measured, model_set=model_set, fid_source=fid_source)
        df = df[[fid_metric(r) != MICRO_FID for r in df.to_dict("records")]].reset_index(drop=True)
        df, left_out = fit_rows(df)
        b.records = _records(df)
        b.analysis_obj = analyze(df, notes=left_out, allow_mixed=True, fid_source=fid_source)  # mixing: warnings
        b.analysis = analysis_document(b.analysis_obj, source=f"bundled table, --set {model_set}, --fid {fid_source}",
                                       model_set=model_set, preprocess=None, measured=b.measured)
        micro_records, b.micro_analysis = _micro(b.measured)
    except Exception as e:  # noqa: BLE001 - shown in the UI, the app keeps running
        b.error = f"analysis: {type(e).__name__}: {e}"
    try:
        base = _baselines(b.records + micro_records, b.measured)
    except OSError as e:  # an unreadable token cache: the rows show "-" and the notes say why
        base = {}
        b.notes.append(f"token baselines not computed: {e}")
    b.rows = build_rows(b.records + micro_records, b.measured, base)
    b.series = fit_series(b.records, b.analysis)
    b.micro_series = fit_series(micro_records, b.micro_analysis, metric=MICRO_FID)
    b.bilinear = bilinear_view(b.analysis_obj)
    if b.analysis is not None and b.micro_analysis is not None:
        b.analysis = {**b.analysis, "micro": b.micro_analysis}
    return b


def _baselines(records: list[dict], measured: list[dict]) -> dict:
    """model id -> TokenBaseline for the rows of the table and the measured models."""
    import pandas as pd

    from visbpp.core.analysis.baseline import baselines

    table = pd.DataFrame.from_records(records, columns=["model_id", "bpp"]) if records else None
    return baselines(table, measured).by_model()


def _records(df) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict("records")


def _micro(measured: Sequence[dict]) -> tuple[list[dict], dict | None]:
    """Measured micro-zoo rows (micro-FID against measured BPP) and their own analysis.

    They are kept apart from the FID table: micro-FID and FID are different scales, so the
    micro group is fitted on its own and never enters the global FID models."""
    from visbpp.core.analysis.fits import analyze
    from visbpp.core.analysis.table import MODEL_SETS, merged_table

    df_all = merged_table(list(measured), model_set="micro" if "micro" in MODEL_SETS else "all")

    recs = _records(df_all)
    keep = [fid_metric(r) == MICRO_FID and r.get("measured_bpp") is not None for r in recs]
    sub = df_all[keep].reset_index(drop=True)
    if sub.empty:
        return [], None
    try:
        from visbpp.core.analysis.report import analysis_document

        analysis = analysis_document(analyze(sub, allow_mixed=True), source="bundled table, --set micro",  # mixed
                                     model_set="micro", preprocess=None, measured=measured)  # bases: warnings
    except Exception:  # noqa: BLE001 - too few models for the global models: points without a line
        analysis = None
    return _records(sub), analysis


# ---------------------------------------------------------------- plots


@dataclass(frozen=True)
class GroupSeries:
    group: str
    bpp: tuple[float, ...]
    fid: tuple[float, ...]
    line: tuple[tuple[float, float], tuple[float, float]] | None   # fitted line over the group's BPP range
    label: str                                                     # "LlamaGen-384 R²=0.979 r=0.989"
    names: tuple[str, ...] = ()                                    # short size label of each point ("B", "d16")
    ids: tuple[str, ...] = ()                                      # label of each point as the analysis names it


def fit_series(records: Sequence[dict], analysis: dict | None, metric: str = "FID") -> list[GroupSeries]:
    fits = {g.get("group"): g for g in (analysis or {}).get("groups", [])}
    groups: dict[str, list[tuple[float, float, str, str]]] = {}
    for r in records:
        x, y = _num(r.get("bpp")), _num(r.get("fid"))
        if x is None or y is None:
            continue
        groups.setdefault(str(r.get("group") or r.get("family")), []).append(
            (x, y, size_label(r.get("size") or r.get("model_id") or ""), str(r.get("label") or r.get("model_id") or "")))
    out = []
    for g, pts in groups.items():
        pts.sort()
        xs, ys = tuple(p[0] for p in pts), tuple(p[1] for p in pts)
        f = fits.get(g) or {}
        slope, icpt = _num(f.get("slope")), _num(f.get("intercept"))
        line = None
        name = f"{g} [{metric}]" if metric != "FID" else g
        label = f"{name} (n={len(pts)}, no fit)"
        if slope is not None and icpt is not None:
            line = ((xs[0], icpt + slope * xs[0]), (xs[-1], icpt + slope * xs[-1]))
            label = f"{name} R²={fmt_float(_num(f.get('r2')), 3)} r={fmt_float(_num(f.get('pearson_r')), 3)}"
        out.append(GroupSeries(g, xs, ys, line, label, tuple(p[2] for p in pts), tuple(p[3] for p in pts)))
    return out


@dataclass(frozen=True)
class BilinearView:
    """Observed FID (x, as in the CLI and PNG figures) against the bilinear model's fitted FID (y),
    one series per fit group (in the fit plot's group order), and the fitted equation with its CIs."""

    series: tuple                   # core.analysis.plots.Points per group: x observed, y fitted, sizes
    r2_linear: float | None
    r2_bilinear: float | None
    equation: str = ""              # "FID = a ± b·BPP ± c·rFID; 95% CIs: ..."

    @property
    def observed(self) -> tuple[float, ...]:
        return tuple(x for p in self.series for x in p.x)

    @property
    def predicted(self) -> tuple[float, ...]:
        return tuple(y for p in self.series for y in p.y)

    @property
    def title(self) -> str:
        return f"FID ~ BPP + rFID: R² linear {fmt_float(self.r2_linear, 3)} vs bilinear {fmt_float(self.r2_bilinear, 3)}"

    @property
    def short_title(self) -> str:
        return f"bilinear R² {fmt_float(self.r2_bilinear, 3)} (lin {fmt_float(self.r2_linear, 3)})"


def bilinear_view(analysis_obj: Any) -> BilinearView | None:
    """The bilinear model FID ~ BPP + rFID of an ``AnalysisResult`` (None without that fit)."""
    from visbpp.core.analysis import plots

    glob = getattr(analysis_obj, "global_", None)
    if glob is None or glob.bilinear is None:
        return None
    return BilinearView(tuple(plots.bilinear_points(analysis_obj)), _num(glob.linear.r2), _num(glob.bilinear.r2),
                        plots.bilinear_equation(analysis_obj) or "")


# ---------------------------------------------------------------- export


def export_table(measured: Sequence[dict], path: str | os.PathLike, fid_source: str = "paper") -> Path:
    """The table ``visbpp export --fid FID_SOURCE`` writes (``visbpp.core.analysis.report.export_frame``, --set all) for ``measured``."""
    from visbpp.core.analysis.report import export_frame
    from visbpp.core.analysis.table import write_csv

    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{p} is a folder; give a file name such as {p / 'visbpp_results.csv'}")
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_csv(export_frame(list(measured), "all", fid_source), p)


def export_json(analysis: dict | None, path: str | os.PathLike) -> Path:
    if not analysis:
        raise ValueError("no analysis to export yet (the analysis module reported nothing)")
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{p} is a folder; give a file name such as {p / 'visbpp_analysis.json'}")
    atomic_write_text(p, json.dumps(analysis, indent=2, default=str))
    return p
