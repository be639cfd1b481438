"""The statistics of an analysis (``AnalysisResult.to_dict()``) as Rich tables for the Statistics tab.

Pure rendering: per-group fits (slope ± 95% CI, R², Pearson r, n), the ANCOVA (separate vs common
slopes), the global linear and bilinear models (coefficients with p-values, R², AIC), the
models whose Cook's distance exceeds the threshold, then one compact table per analysis beyond
the straight line (``beyond_view``: forms, scaling, baseline, pairs, validity)."""

from __future__ import annotations

from typing import Any, Sequence

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from . import beyond_view


def _f(v: Any, fmt: str = ".3f") -> str:
    return "-" if v is None else format(v, fmt)


def _p(v: Any) -> str:
    return "-" if v is None else (f"{v:.2e}" if v < 1e-3 else f"{v:.3f}")


def group_table(analysis: dict) -> Table:
    t = Table("group", "n", "slope", "95% CI", "R²", "r", "p", title="Per-group fits  FID = a + b·BPP",
              title_justify="left", expand=False, pad_edge=False, box=box.SIMPLE_HEAD)
    for g in analysis.get("groups", []):
        ci = g.get("slope_ci")
        t.add_row(str(g.get("group")), str(g.get("n")), _f(g.get("slope"), ".1f"),
                  f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "-", _f(g.get("r2")), _f(g.get("pearson_r")),
                  _p(g.get("p_value")), style="" if g.get("fitted") else "dim")
    return t


def ancova_text(analysis: dict) -> Text:
    a = analysis.get("ancova") or {}
    if not a.get("fitted"):
        return Text(f"ANCOVA (separate vs common slope): not fitted{': ' + a['note'] if a.get('note') else ''}",
                    style="dim")
    return Text.assemble(("ANCOVA ", "bold"), f"separate vs common slope over {len(a.get('groups', []))} groups, "
                         f"n={a.get('n')}: F({_f(a.get('df_num'), '.0f')}, {_f(a.get('df_den'), '.0f')}) = "
                         f"{_f(a.get('f'), '.2f')}, p = {_p(a.get('p_value'))}; common slope "
                         f"{_f(a.get('common_slope'), '.1f')} (p = {_p(a.get('common_slope_p_value'))}); "
                         f"R² common {_f(a.get('r2_common'))} vs separate {_f(a.get('r2_separate'))}")


def global_table(analysis: dict) -> Table | Text:
    g = analysis.get("global") or {}
    models = [(name, g.get(name)) for name in ("linear", "bilinear") if g.get(name)]
    if not models:
        return Text("Global models: not fitted" + (f" ({g['note']})" if g.get("note") else ""), style="dim")
    t = Table("model", "term", "coef", "p", "R²", "AIC", title="Global models", title_justify="left", box=box.SIMPLE_HEAD,
              pad_edge=False)
    for name, m in models:
        first = True
        for term, c in (m.get("coef") or {}).items():
            t.add_row(f"{name} ({m.get('formula')}, n={m.get('n')})" if first else "", term, _f(c, ".2f"),
                      _p((m.get("pvalues") or {}).get(term)), _f(m.get("r2")) if first else "",
                      _f(m.get("aic"), ".1f") if first else "", end_section=False)
            first = False
        t.add_section()
    return t


def outlier_text(analysis: dict) -> Text:
    g = analysis.get("global") or {}
    out = Text.assemble(("Cook's distance ", "bold"))
    parts = []
    for name in ("linear", "bilinear"):
        m = g.get(name)
        if not m:
            continue
        cooks = m.get("cooks_distance") or {}
        flagged = ", ".join(f"{o} ({cooks.get(o, 0):.2f})" for o in m.get("outliers", [])) or "none"
        parts.append(f"{name}: above {_f(m.get('cooks_threshold'), '.2f')}: {flagged}")
    out.append("; ".join(parts) if parts else "-")
    f = g.get("rfid_f_test")
    if f:
        out.append(f"\nAdding rFID to FID ~ BPP: F({_f(f.get('df_num'), '.0f')}, {_f(f.get('df_den'), '.0f')}) = "
                   f"{_f(f.get('f'), '.2f')}, p = {_p(f.get('p_value'))}")
    return out


def outliers(analysis: dict | None) -> set[str]:
    """Model labels flagged by Cook's distance in either global model."""
    g = (analysis or {}).get("global") or {}
    return {o for name in ("linear", "bilinear") for o in ((g.get(name) or {}).get("outliers") or [])}


def statistics(analysis: dict | None, fid_source: str = "paper", warnings: Sequence[str] = (),
               runs_used: Sequence[str] = ()) -> Group:
    """The Stats tab; ``warnings`` (every fit and selection warning, in full: the toasts only count
    them) and ``runs_used`` (which run each measured BPP comes from) close it."""
    tail: list = [Text("")] + [Text(f"⚠ {w}", style="yellow") for w in warnings] if warnings else []
    if runs_used:
        tail += [Text(""), Text("Measured BPP from (the selection rule of `visbpp runs`):", style="bold")]
        tail += [Text(f"  {n}", style="dim") for n in runs_used]
    if not analysis:
        return Group(Text("No analysis yet (the table is still loading, or too few models have an FID)."), *tail)
    parts: list = [Text(f"FID set: {fid_source}  ·  r = Pearson correlation  ·  CI = 95% confidence interval",
                        style="dim"), group_table(analysis), ancova_text(analysis), Text(""),
                   global_table(analysis), outlier_text(analysis)]
    parts += beyond_view.renderables(analysis, "FID", compact=True)
    micro = analysis.get("micro")
    if micro and micro.get("groups"):
        t = group_table(micro)
        t.title = "Micro zoo  micro-FID = a + b·BPP (its own scale, never mixed with FID)"
        parts += [Text(""), t]
    return Group(*parts, *tail)
