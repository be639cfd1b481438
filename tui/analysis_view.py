"""Terminal rendering of the analysis and the registry (Rich tables, plotext plots)."""

from __future__ import annotations

from typing import Callable, Iterable

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from visbpp.core.analysis import plots
from visbpp.core.analysis.fits import AnalysisResult, Prediction
from visbpp.core.registry.catalog import ModelCard, Published, TokenizerCard

from . import beyond_view
from .cli_tables import fit_by_dropping


def _f(v: float | None, fmt: str = ".4g") -> str:
    return "–" if v is None else format(v, fmt)


def _g(v: float, digits: int = 4) -> str:
    """Significant digits without scientific notation for values up to 1e7."""
    if v != 0 and (abs(v) >= 1e7 or abs(v) < 1e-4):
        return f"{v:.{digits}g}"
    s = f"{v:.{digits}g}"
    return f"{v:.0f}" if "e" in s else s


def _p(v: float | None) -> str:
    if v is None:
        return "–"
    return "<1e-4" if v < 1e-4 else f"{v:.4f}"


def _table(title: str, **kw) -> Table:
    opts = dict(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    opts.update(kw)
    return Table(title="\n" + title, title_justify="left", **opts)


# ---------------------------------------------------------------------------------------------
# analyze

def metric_name(r: AnalysisResult) -> str:
    """"micro-FID" when every fitted row is a micro-zoo figure, else "FID" (never mix the two names)."""
    metric = r.table.get("fid_metric") if hasattr(r.table, "get") else None
    if metric is not None and len(metric) and (metric == "micro-FID").all():
        return "micro-FID"
    return "FID"


def render(console: Console, r: AnalysisResult, source: str, prediction: Prediction | None = None,
           show_plots: bool = True, sections: dict | None = None) -> None:
    """The fits of ``r``; ``sections``: the analyses beyond the straight line (``report.beyond_sections``)."""
    m = metric_name(r)
    console.print(f"[bold]{m} vs BPP[/bold] — {source}, {len(r.table)} models")
    if r.fid_source is not None:
        console.print(f"FID set fitted: {r.fid_source} (--fid {r.fid_source})")

    t = _table(f"Per group: {m} ~ bpp (r: Pearson; p: of the slope)")
    t.add_column("group", no_wrap=True)
    for col in ("n", "slope", "slope 95% CI", "intercept", "R²", "r", "p"):
        t.add_column(col, justify="right", no_wrap=True)
    unfitted = []
    for g in r.groups:
        if g.fitted:
            ci = f"[{_g(g.slope_ci[0])}, {_g(g.slope_ci[1])}]"
            t.add_row(g.group, str(g.n), _g(g.slope, 6), ci, _g(g.intercept), _f(g.r2, ".3f"),
                      _f(g.pearson_r, ".3f"), _p(g.p_value))
        else:
            t.add_row(g.group, str(g.n), *(["–"] * 6), style="dim")
            unfitted.append(f"{g.group} ({g.note})")
    console.print(t)
    if unfitted:
        console.print("not fitted: " + "; ".join(unfitted), style="dim")

    a = r.ancova
    if a.fitted:
        console.print(
            f"ANCOVA over {', '.join(a.groups)} (n = {a.n}): separate slopes vs common slope "
            f"F({a.df_num:g}, {a.df_den:g}) = {a.f:.4g}, p = {_p(a.p_value)}; "
            f"common slope {a.common_slope:.5g} (p = {_p(a.common_slope_p_value)}), "
            f"R² common {a.r2_common:.3f} vs separate {a.r2_separate:.3f}")
    else:
        console.print(f"ANCOVA: not fitted ({a.note})", style="dim")

    g = r.global_
    t = _table(f"Global fits (n = {g.n})")
    t.add_column("model", no_wrap=True)
    for col in ("R²", "adj. R²", "AIC", "BIC"):
        t.add_column(col, justify="right", no_wrap=True)
    c = _table("Coefficients")
    c.add_column("model", no_wrap=True)
    c.add_column("term", no_wrap=True)
    for col in ("coef", "95% CI", "p"):
        c.add_column(col, justify="right", no_wrap=True)
    for m in (g.linear, g.bilinear):
        if m is None:
            t.add_row("fid ~ bpp + rfid", "–", "–", "–", "–")
            continue
        t.add_row(m.formula, f"{m.r2:.3f}", f"{m.adj_r2:.3f}", f"{m.aic:.2f}", f"{m.bic:.2f}")
        for i, (k, v) in enumerate(m.coef.items()):
            lo, hi = m.conf_int[k]
            c.add_row(m.formula if i == 0 else "", k, f"{v:.5g}", f"[{lo:.4g}, {hi:.4g}]", _p(m.pvalues[k]),
                      end_section=i == len(m.coef) - 1)
    console.print(t)
    if g.bilinear is None:
        console.print(f"fid ~ bpp + rfid: {g.note}", style="dim")
    console.print(c)
    for m in (g.linear, g.bilinear):
        if m is not None and m.outliers:
            console.print(f"Cook's distance > 4/n = {m.cooks_threshold:.3f} in {m.formula}: "
                          + ", ".join(f"{lab} ({m.cooks_distance[lab]:.2f})" for lab in m.outliers))
    if g.rfid_f is not None:
        console.print(f"Adding rFID: F({g.rfid_df_num:g}, {g.rfid_df_den:g}) = {g.rfid_f:.4g}, "
                      f"p = {_p(g.rfid_f_p_value)}")
    _render_comparisons(console, r, metric_name(r))
    if prediction is not None:
        pr = prediction
        lvl = f"{(1 - pr.alpha) * 100:g}%"
        console.print(f"[bold]Prediction[/bold] for bpp = {pr.bpp:g}, rFID = {pr.rfid:g}: FID = {pr.fid:.3f} "
                      f"({lvl} CI of the mean [{pr.ci[0]:.3f}, {pr.ci[1]:.3f}], "
                      f"{lvl} prediction interval [{pr.pi[0]:.3f}, {pr.pi[1]:.3f}])")
        if sections is not None:
            cover = {**pr.to_dict(), "pi_coverage_leave_one_model_out":
                     sections["validity"]["leave_one_model_out"]["overall"]}
            console.print(f"  {beyond_view.prediction_coverage(cover)}")
    render_paper(console, r.paper)
    if sections is not None:
        beyond_view.render(console, sections, metric_name(r))
    for w in r.warnings:
        console.print(Text("warning: " + w.message, style="yellow"))
    for n in r.notes:
        console.print(Text("note: " + n, style="dim"))
    if show_plots:
        render_plots(console, r)


def render_paper(console: Console, p: dict) -> None:
    """The paper's own analyses (``visbpp.core.analysis.paper``)."""
    if not p:
        return
    console.print(f"\n[bold]The paper's analyses[/bold] ({p['source']}), n = {p['n']}")
    st = p.get("slope_test")
    if st:
        slopes = ", ".join(f"{g} {_g(v, 5) if v is not None else '–'}" for g, v in p["slopes"].items())
        console.print(f"Slope similarity on centred bpp, all {len(p['groups'])} groups (baseline {p['baseline']}): "
                      f"F({st['df_num']:g}, {st['df_den']:g}) = {_f(st['F'])}, p = {_p(st['p'])}; slopes: {slopes}")
        t = _table("Pairwise slope differences (Wald test on the interaction model)")
        for col, j in (("group 1", "left"), ("group 2", "left"), ("diff", "right"), ("wald_chi2", "right"),
                       ("p", "right")):
            t.add_column(col, justify=j, no_wrap=True)
        for row in p["pairwise"]:
            if row.get("identifiable", True):
                t.add_row(row["group1"], row["group2"], _f(row["diff"], ".5g"), _f(row["wald_chi2"]), _p(row["pvalue"]))
            else:
                t.add_row(row["group1"], row["group2"], "–", "–", "not identifiable")
        lone = p.get("not_identified") or []
        if lone:
            t.caption = f"not identifiable: {', '.join(lone)} (one BPP each: no slope of its own)"
        console.print(t)
    elif p.get("note"):
        console.print(f"Slope similarity test: not computed ({p['note']})", style="dim")
    t = _table("Nested global models (centred bpp, rFID; F test against the previous model)")
    t.add_column("model", no_wrap=True)
    for col in ("R²", "adj. R²", "AIC", "F", "p"):
        t.add_column(col, justify="right", no_wrap=True)
    for m in p["nested"]:
        t.add_row(m["formula"], _f(m["r2"], ".4f"), _f(m["adj_r2"], ".4f"), _f(m["aic"], ".2f"),
                  _f(m["f_vs_previous"]), _p(m["p_vs_previous"]))
    console.print(t)
    for key, sub in (p.get("var_subsets") or {}).items():
        console.print(f"VAR {key.removeprefix('subset')}-point subset ({', '.join(sub['models'])}): "
                      f"r = {_f(sub['pearson_r'], '.4f')}, R² = {_f(sub['r2'], '.4f')}, slope {_f(sub['slope'], '.5g')}")
    sv = p["slope_vs_rfid"]
    console.print(f"Slope vs mean rFID across the {sv['n']} groups with n >= {sv['min_n']}: "
                  f"Pearson r = {_f(sv['pearson_r'], '.4f')}")
def _render_comparisons(console: Console, r: AnalysisResult, m: str) -> None:
    """Models sharing one AR recipe across tokenizers: the rFID term at a fixed AR model."""
    for cp in r.comparisons:
        t = _table(f"Fixed AR model, tokenizers compared: {cp.name} (n = {cp.n}: {', '.join(cp.models)})")
        t.add_column("fit", no_wrap=True)
        for col in ("slope", "slope 95% CI", "R²", "r", "p"):
            t.add_column(col, justify="right", no_wrap=True)
        for label, g in ((f"{m} ~ bpp", cp.fid_vs_bpp), (f"{m} ~ rfid", cp.fid_vs_rfid)):
            if g.fitted:
                t.add_row(label, _g(g.slope, 6), f"[{_g(g.slope_ci[0])}, {_g(g.slope_ci[1])}]", _f(g.r2, ".3f"),
                          _f(g.pearson_r, ".3f"), _p(g.p_value))
            else:
                t.add_row(label, *(["–"] * 5), style="dim")
        console.print(t)
        gf = cp.models_fit
        if gf is not None and gf.bilinear is not None:
            b = gf.bilinear
            console.print(f"{m} ~ bpp + rfid on {cp.name}: R² {b.r2:.3f} (linear {gf.linear.r2:.3f}); "
                          + ", ".join(f"{k} {b.coef[k]:.5g} (p = {_p(b.pvalues[k])})" for k in ("bpp", "rfid"))
                          + (f"; adding rFID: F({gf.rfid_df_num:g}, {gf.rfid_df_den:g}) = {gf.rfid_f:.4g}, "
                             f"p = {_p(gf.rfid_f_p_value)}" if gf.rfid_f is not None else ""))
        elif cp.note:
            console.print(f"{cp.name}: {cp.note}", style="dim")
def _plot_width(console: Console) -> int:
    return max(40, min(console.width, 100))


def _plotext_canvas(draw: Callable, console: Console, title: str, xlabel: str, ylabel: str) -> Text:
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(_plot_width(console), 20)
    if not console.is_terminal or console.no_color:
        plt.theme("clear")
    draw(plt)
    plt.title(title)
    plt.xlabel(xlabel)
    plt.ylabel(ylabel)
    canvas = plt.build()
    plt.clear_figure()
    return Text.from_ansi(canvas)


_style = plots.style
RICH_COLORS = plots.RICH_COLORS


def _legend(entries: list[tuple[str, str, str]], outliers: set[str]) -> Text:
    """The legend below a plot (never over the data): glyph in its colour, then the name."""
    t = Text()
    for glyph, color, name in entries:
        t.append("  " if t.plain else "").append(glyph + " ", style=RICH_COLORS.get(color, color))
        t.append(name.replace(" ", "\u00a0"))
    if outliers:
        t.append("  " + plots.OUTLIER_MARKER + " ", style="bold red")
        t.append(f"Cook's-distance outlier ({', '.join(sorted(outliers))})")
    return t


def render_plots(console: Console, r: AnalysisResult) -> None:
    pts = plots.group_points(r)
    lines = {ln.name: ln for ln in plots.group_fit_lines(r)}
    flagged = plots.outlier_labels(r)
    labels = console.width >= 100

    def scatter(plt, series: list) -> None:
        xs = [x for p in series for x in p.x]
        for i, p in enumerate(series):   # after every line: markers over the lines
            marker, _, color = _style(i)
            if labels:   # beside the marker, never on it
                for x, y, size in zip(p.x, p.y, p.sizes):
                    at, side = plots.label_place(x, min(xs), max(xs), _plot_width(console))
                    plt.text(size, at, y, color=color, alignment=side)
            plt.scatter(list(p.x), list(p.y), marker=marker, color=color)
            out = [(x, y) for x, y, lab in zip(p.x, p.y, p.labels) if lab in flagged]
            if out:
                plt.scatter([o[0] for o in out], [o[1] for o in out], marker=plots.OUTLIER_MARKER, color="red")

    def groups(plt):
        gl = plots.global_fit_line(r)
        plt.plot(list(gl.x), list(gl.y), marker=".", color="gray")
        for i, p in enumerate(pts):
            if p.name in lines:
                plt.plot(list(lines[p.name].x), list(lines[p.name].y), marker="braille", color=_style(i)[2])
        scatter(plt, pts)

    m = metric_name(r)
    entries = [(g, c, p.name) for i, p in enumerate(pts) for _, g, c in [_style(i)]]
    console.print(_plotext_canvas(groups, console, f"{m} vs BPP (groups and fits; sizes labelled)",
                                  "bpp = bits / (3·H·W)", m))
    console.print(_legend(entries + [("·", "gray", f"global fit (R² {r.global_.linear.r2:.3f})")],
                          {x for x in flagged if x in set(r.table["label"])}))
    bp = plots.bilinear_points(r)
    if not bp:
        return

    def bilinear(plt):
        lo, hi = min(v for p in bp for v in p.x + p.y), max(v for p in bp for v in p.x + p.y)
        plt.plot([lo, hi], [lo, hi], marker="braille", color="gray")
        scatter(plt, bp)

    console.print(_plotext_canvas(bilinear, console, f"{m} ~ bpp + rfid (R² {r.global_.bilinear.r2:.3f}): "
                                  f"fitted vs observed", f"observed {m}", f"fitted {m}"))
    console.print(_legend(entries + [("⠒", "gray", "y = x")], set()))
    console.print(plots.bilinear_equation(r, m), highlight=False)


# ---------------------------------------------------------------------------------------------
# models

def checkpoint_status(card: ModelCard, checkpoint_dir: str | None = None) -> str:
    """The files column of ``visbpp models``: missing / present / verified, and size on disk."""
    from visbpp.core.registry.checkpoints import summary_status

    word, size = summary_status(card, checkpoint_dir)
    if not size:
        return str(word)
    return f"{word} ({size / 1e9:.2f} GB)" if size >= 1e8 else f"{word} ({size / 1e6:.1f} MB)"


def _pub(p: Published | None) -> dict | None:
    return None if p is None else {"value": p.value, "source": p.source, "protocol": p.protocol,
                                   "guidance": p.guidance, "origin": p.origin}


def card_dict(c: ModelCard) -> dict:
    from visbpp.core.registry import catalog

    return {
        "id": c.id, "family": c.family_label, "size": c.size, "params": c.params, "resolution": c.resolution,
        "tokens_per_image": c.tokens_per_image, "tokenizer_id": c.tokenizer_id, "group": catalog.fit_group(c),
        "fid": _pub(c.fid), "rfid": _pub(c.rfid), "alt_fid": [_pub(p) for p in c.alt_fid],
        "reference_bpp": c.reference_bpp, "in_published_table": c.in_published_table,
        "aliases": list(c.aliases), "checkpoints": checkpoint_status(c), "base_model": c.base_model,
        "reference_bpp_note": c.reference_bpp_provenance.note if c.reference_bpp_provenance else None,
    }


def tokenizer_dict(t: TokenizerCard) -> dict:
    return {"id": t.id, "family": t.family, "params": t.params, "codebook_size": t.codebook_size,
            "downsample": t.downsample, "rfid": [{"resolution": r, **_pub(p)} for r, p in t.rfid]}


class _Sources:
    """Numbered footnotes for the sources of published values."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def ref(self, p: Published | None) -> Text:
        if p is None:
            return Text("–")
        key = p.source + (f"; {p.protocol}" if p.protocol else "")
        n = self.items.setdefault(key, len(self.items) + 1)
        unit = " µFID" if "micro-FID" in p.protocol else ""  # the micro zoo's figure is never shown as FID
        return Text(f"{p.value:g}{unit} [{n}]")


MODELS_DROP_ORDER = ("tokens", "res", "params", "family")   # narrow terminals: the id, values and files stay


def render_models(console: Console, cards: Iterable[ModelCard], tokenizers: Iterable[TokenizerCard],
                  checkpoint_dir: str | None = None) -> None:
    cards = list(cards)
    status = [checkpoint_status(c, checkpoint_dir) for c in cards]
    show_status = any(s is not None for s in status)
    src = _Sources()
    t = _table("Models (FID in parentheses: other published values; µFID: micro-FID, not FID; \\[n]: source; "
               "files: checkpoints)",
               box=None)
    t.add_column("id", no_wrap=True)
    t.add_column("family")
    for col in ("params", "res", "tokens"):
        t.add_column(col, justify="right", no_wrap=True)
    for col in ("FID", "rFID"):
        t.add_column(col)
    t.add_column("ref BPP", justify="right", no_wrap=True)
    if show_status:
        t.add_column("files")
    for c, s in zip(cards, status):
        fid = src.ref(c.fid)
        for p in c.alt_fid:
            fid.append(f"\n({src.ref(p).plain})", style="dim")
        family = c.family_label + (f"\nbase {c.base_model}" if c.base_model else "")
        row = [c.id, family, c.params_label, str(c.resolution), str(c.tokens_per_image), fid,
               src.ref(c.rfid), "–" if c.reference_bpp is None else f"{c.reference_bpp:.7f}"]
        if show_status:
            row.append(s or "")
        t.add_row(*row)
    dropped = fit_by_dropping(console, t, MODELS_DROP_ORDER)
    if dropped:
        t.caption = f"left out at {console.width} columns: {', '.join(dropped)} (a wider terminal or --json shows them)"
    console.print(t)
    from visbpp.core.analysis.report import REFERENCE_BPP_LEGEND

    console.print(Text(REFERENCE_BPP_LEGEND, style="dim"))
    tt = _table("Tokenizers")
    for col in ("id", "family", "params", "codebook", "downsample", "rFID at resolution"):
        tt.add_column(col, no_wrap=col in ("id", "family"))
    for tok in tokenizers:
        rf = Text(", ".join(f"{r}: {src.ref(p).plain}" for r, p in tok.rfid) or "–")
        tt.add_row(tok.id, tok.family, f"{tok.params / 1e6:.1f}M", str(tok.codebook_size), str(tok.downsample), rf)
    dropped = fit_by_dropping(console, tt, ("downsample", "params", "codebook"))
    if dropped:
        tt.caption = f"left out at {console.width} columns: {', '.join(dropped)}"
    console.print(tt)
    console.print("Sources:")
    for text, n in src.items.items():
        console.print(Text(f"[{n}] {text}"), soft_wrap=False)
