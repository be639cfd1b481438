"""Rich tables of the analyses beyond the straight line (``report.beyond_sections``, the ``analyze --json``
keys ``forms``, ``scaling``, ``baseline``, ``pairs``, ``validity``).

One table builder per topic, from the JSON dicts; ``compact=True`` drops the columns an 80-column
terminal has no room for (the TUI's Stats tab), the full form is ``visbpp analyze``'s output."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

FORM_SHORT = {"linear": "linear", "log-linear": "log-lin", "log-log": "log-log", "bilinear": "bilin"}


def _f(v: Any, fmt: str = ".3g") -> str:
    return "–" if v is None else format(v, fmt)


def _peq(v: Any) -> str:
    """"p = 0.0123" or "p < 1e-4"."""
    return "p = –" if v is None else ("p < 1e-4" if v < 1e-4 else f"p = {v:.4f}")


def _ci(c: Any, fmt: str = ".5g") -> str:
    if not c:
        return "–"
    g = (lambda v: "0" if abs(v) < 1e-12 else format(v, fmt))
    return f"[{g(c[0])}, {g(c[1])}]"


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.0f}%"


def _table(title: str, *cols: tuple[str, str]) -> Table:
    """Columns (name, justify): right-justified numbers and the first column (a name) never wrap."""
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
              padding=(0, 1, 0, 0), title_style="bold")
    for i, (name, justify) in enumerate(cols):
        t.add_column(name, justify=justify, no_wrap=justify == "right" or i == 0)
    return t


# ------------------------------------------------------------------------------------------ forms

def forms_table(forms: dict, metric: str = "FID", compact: bool = False) -> Table:
    """ΔAIC of each form per scope (0 = lowest AIC) and the best leave-one-out form."""
    names = [f["form"] for f in forms.get("forms", [])]
    t = _table(f"Functional form of {metric} vs BPP: ΔAIC (0 = best; LOO: lowest leave-one-out RMSE)",
               ("scope", "left"), ("n", "right"), *((FORM_SHORT.get(n, n), "right") for n in names),
               ("LOO", "left"))
    for c in forms.get("comparisons", []):
        d = c.get("delta_aic") or {}
        t.add_row(c["scope"], str(c["n"]), *(_f(d.get(n), ".1f") for n in names), FORM_SHORT.get(c.get("best_loo"), "–"))
    return t


def forms_details(forms: dict) -> Table:
    t = _table("Forms in detail (AIC/BIC on the FID scale; LOO = leave-one-out prediction error)",
               ("scope", "left"), ("form", "left"), ("AIC", "right"), ("BIC", "right"), ("R²", "right"),
               ("LOO RMSE", "right"), ("LOO MAE", "right"))
    for c in forms.get("comparisons", []):
        fits = c.get("fits", [])
        for i, f in enumerate(fits):
            if f.get("fitted"):
                t.add_row(c["scope"] if i == 0 else "", f["formula"], _f(f["aic"], ".2f"), _f(f["bic"], ".2f"),
                          _f(f["r2"], ".3f"), _f(f["loo_rmse"], ".3f"), _f(f["loo_mae"], ".3f"),
                          end_section=i == len(fits) - 1)
            else:
                t.add_row(c["scope"] if i == 0 else "", f["formula"], "–", "–", "–", "–", "–",
                          end_section=i == len(fits) - 1, style="dim")
    return t


def forms_verdicts(forms: dict) -> list[Text]:
    out = [Text(f"{c['scope']}: {c['verdict']}") for c in forms.get("comparisons", [])]
    return out + [Text(forms.get("note", ""), style="dim")]


# ------------------------------------------------------------------------------------------ scaling

def scaling_table(scaling: dict, compact: bool = False) -> Table | Text:
    if not any(g.get("fitted") for g in scaling.get("groups", [])):
        return Text("Size scaling bpp = E + A·N^−α: no group fitted", style="dim")
    cols = [("group", "left"), ("n", "right"), ("E", "right"), ("E 95% CI", "right"), ("α", "right"),
            ("α 95% CI", "right")]
    if not compact:
        cols.append(("A", "right"))
    t = _table("Size scaling per group: bpp = E + A·N^−α (E: the floor; bpp − E: reducible)", *cols)
    for g in scaling.get("groups", []):
        if not g.get("fitted"):
            continue
        row = [g["group"], str(g["n"]), _f(g["E"], ".5g"), _ci(g["E_ci"], ".5g"), _f(g["alpha"], ".3g"),
               _ci(g["alpha_ci"], ".3g")]
        if not compact:
            row.append(_f(g["A"], ".3g"))
        t.add_row(*row)
    return t


def scaling_notes(scaling: dict, compact: bool = False) -> list[Text]:
    out = []
    if compact:
        out.append(Text("CIs: bootstrap over models for small n, none for an exact 3-point fit "
                        "(visbpp analyze names each method)", style="dim"))
    for g in scaling.get("groups", []):
        if g.get("fitted") and compact and g["at_bounds"]:
            out.append(Text(f"{g['group']}: at bound {', '.join(g['at_bounds'])}", style="dim"))
        elif g.get("fitted") and not compact:
            bits = [f"CI: {g['ci_method']}"] + ([f"at bound: {', '.join(g['at_bounds'])}"] if g["at_bounds"] else [])
            out.append(Text(f"{g['group']}: " + "; ".join(bits), style="dim"))
    skipped = [f"{g['group']} ({g['note']})" for g in scaling.get("groups", []) if not g.get("fitted")]
    if skipped:
        out.append(Text("not fitted: " + "; ".join(skipped), style="dim"))
    r = scaling.get("fid_vs_reducible") or {}
    for key, label in (("raw", "FID ~ bpp"), ("reducible", "FID ~ (bpp − E)")):
        ol = r.get(key)
        if ol:
            line = f"{label} over {', '.join(r['groups'])} (n = {ol['n']}): R² {_f(ol['r2'], '.3f')}"
            if ol.get("separate_lines_f") is not None:
                line += (f"; a line per group vs one: F({ol['df_num']:g}, {ol['df_den']:g}) = "
                         f"{_f(ol['separate_lines_f'], '.3g')}, {_peq(ol['separate_lines_p'])}")
            out.append(Text(line))
    if r.get("raw"):
        out.append(Text(f"reducible bits: {r.get('verdict')}", style="bold"))
    elif r.get("note") and any(g.get("fitted") for g in scaling.get("groups", [])):
        out.append(Text(f"FID against bpp − E: not fitted ({r['note']})", style="dim"))
    if scaling.get("note"):
        out.append(Text(scaling["note"], style="dim"))
    return out


# ------------------------------------------------------------------------------------------ baseline

def baseline_table(baseline: dict, compact: bool = False) -> Table | Text:
    if not any(m["raw_rate_bpp"] is not None or m["unigram_bpp"] is not None for m in baseline.get("models", [])):
        return Text("What the AR context buys: no raw rate or token baseline for these models", style="dim")
    cols = [("model", "left"), ("bpp", "right"), ("raw rate", "right"), ("unigram", "right")]
    if not compact:
        cols += [("unigram MM", "right"), ("codes seen", "right")]
    cols.append(("AR share", "right"))
    t = _table("What the AR context buys (bits / (3·H·W); unigram: order-0 baseline of the run's tokens)", *cols)
    for m in baseline.get("models", []):
        row = [m["model_id"], _f(m["bpp"], ".6f"), _f(m["raw_rate_bpp"], ".5f"), _f(m["unigram_bpp"], ".5f")]
        if not compact:
            row += [_f(m["unigram_bpp_mm"], ".5f"),
                    "–" if m["codes_seen"] is None else f"{m['codes_seen']}/{m['vocab_size']}"]
        row.append(_pct(m["ar_share"]))
        t.add_row(*row, style="" if m["unigram_bpp"] is not None else "dim")
    return t


def baseline_notes(baseline: dict) -> list[Text]:
    notes: dict[str, list[str]] = {}
    for m in baseline.get("models", []):
        if m.get("note"):
            notes.setdefault(m["note"], []).append(m["model_id"])
    out = [Text(f"AR share = {baseline.get('ar_share', '')}", style="dim")]
    for n, ms in notes.items():
        who = ", ".join(ms) if len(ms) <= 4 else f"{len(ms)} models ({', '.join(ms[:3])}, ...)"
        out.append(Text(f"{who}: {n}", style="dim"))
    return out


# ------------------------------------------------------------------------------------------ pairs

def pairs_table(pairs: dict, metric: str = "FID", compact: bool = False) -> Table | Text:
    if not pairs.get("pairs"):
        return Text(f"Same tokenizer, different AR model: no pairs ({pairs.get('note', '')})", style="dim")
    cols = [("first", "left"), ("second", "left"), ("kind", "left")]
    cols += [] if compact else [("tokenizer", "left")]
    cols += [("ΔBPP", "right"), (f"Δ{metric}", "right")]
    t = _table(f"Same tokenizer, different AR model: Δ = second − first (*: BPP sources or {metric} guidance differ)",
               *cols)
    t.columns[1].no_wrap = True
    for p in pairs["pairs"]:
        row = [p["a"], p["b"] + ("" if p["comparable"] else " *"), p["kind"]]
        row += [] if compact else [p["tokenizer"]]
        row += [f"{p['d_bpp']:+.2e}", f"{p['d_fid']:+.3g}"]
        t.add_row(*row)
    return t


def pairs_summary(pairs: dict) -> list[Text]:
    if not pairs.get("pairs"):
        return []
    line = f"{pairs['n_comparable']} comparable pair(s)"
    if pairs.get("sign_n"):
        line += (f"; ΔBPP and ΔFID share their sign in {pairs['same_sign']}/{pairs['sign_n']} "
                 f"(binomial {_peq(pairs['sign_p'])})")
    if pairs.get("pearson_r") is not None:
        line += f"; Pearson r = {pairs['pearson_r']:.3f} ({_peq(pairs['pearson_p'])})"
    return [Text(line)]


# ------------------------------------------------------------------------------------------ validity

def validity_table(validity: dict, metric: str = "FID", compact: bool = False) -> Table:
    lofo, lomo = validity.get("leave_one_family_out") or {}, validity.get("leave_one_model_out") or {}
    level = f"{100 * validity.get('level', 0.95):g}%"
    cols = [("held out", "left"), ("n", "right"), ("family out", "right"), ("MAE", "right")]
    cols += [] if compact else [("PI width", "right")]
    cols += [("model out", "right"), ("MAE", "right")]
    cols += [] if compact else [("PI width", "right")]
    t = _table(f"Predictive validity of {validity.get('formula', '')}: held-out {metric}s inside their {level} "
               f"prediction intervals, mean |error|" + ("" if compact else ", mean interval width"), *cols)

    def cells(s: dict, pct: bool = False) -> list[str]:
        cover = ("–" if s.get("coverage") is None else
                 f"{s['covered']}/{s['n_predicted']}" + (f" ({_pct(s['coverage'])})" if pct else ""))
        return [cover, _f(s.get("mae"), ".3g")] + ([] if compact else [_f(s.get("mean_pi_width"), ".3g")])

    by = {f["family"]: f for f in lomo.get("families", [])}
    for f in lofo.get("families", []):
        t.add_row(f["family"], str(f["n"]), *cells(f), *cells(by.get(f["family"], {})),
                  style="" if f["coverage"] is not None else "dim")
    a, b = lofo.get("overall", {}), lomo.get("overall", {})
    t.add_row("all", str(b.get("n_predicted", 0)), *cells(a, True), *cells(b, True), style="bold")
    return t


def validity_notes(validity: dict) -> list[Text]:
    out = [Text(validity["note"], style="dim")] if validity.get("note") else []
    for key in ("leave_one_family_out", "leave_one_model_out"):
        for f in (validity.get(key) or {}).get("families", []):
            if f.get("note"):
                out.append(Text(f"{key.replace('_', ' ')}, {f['family']}: {f['note']}", style="dim"))
    return out


def prediction_coverage(prediction: dict) -> str:
    """The empirical coverage of ``--predict``'s interval, from the leave-one-model-out predictions."""
    c = prediction.get("pi_coverage_leave_one_model_out") or {}
    if not c.get("n_predicted"):
        return "its empirical coverage is unknown (no leave-one-model-out predictions)"
    return (f"such intervals covered {c['covered']} of {c['n_predicted']} held-out models ({_pct(c['coverage'])}) "
            f"in leave-one-model-out")


# ------------------------------------------------------------------------------------------ assembled

def renderables(sections: dict, metric: str = "FID", compact: bool = False) -> list[RenderableType]:
    """Every topic: a table and its notes, in the order forms, scaling, baseline, pairs, validity."""
    out: list[RenderableType] = []
    if sections.get("forms"):
        out += [Text(""), forms_table(sections["forms"], metric, compact)]
        if not compact:
            out.append(forms_details(sections["forms"]))
        out += forms_verdicts(sections["forms"])
    if sections.get("scaling"):
        out += [Text(""), scaling_table(sections["scaling"], compact), *scaling_notes(sections["scaling"], compact)]
    if sections.get("baseline"):
        out += [Text(""), baseline_table(sections["baseline"], compact), *baseline_notes(sections["baseline"])]
    if sections.get("pairs"):
        out += [Text(""), pairs_table(sections["pairs"], metric, compact), *pairs_summary(sections["pairs"])]
    if sections.get("validity"):
        out += [Text(""), validity_table(sections["validity"], metric, compact), *validity_notes(sections["validity"])]
    return out


def render(console: Console, sections: dict, metric: str = "FID") -> None:
    console.print("\n[bold]Beyond the straight line[/bold]")
    for r in renderables(sections, metric):
        console.print(r)
