"""Figures of the analyses beyond the straight line for ``visbpp analyze --plot DIR`` (matplotlib).

One figure per topic, drawn from ``report.beyond_sections`` (the ``analyze --json`` keys) and the
fitted table: ``forms_fid_vs_bpp``, ``scaling_bpp_vs_params``, ``baseline_bits``,
``pairs_delta_bpp_vs_delta_fid``, ``validity_predicted_vs_observed`` (PNG and PDF each)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from .figures import _pyplot, _save

FORM_CURVES = {"linear": lambda c, x: c["Intercept"] + c["bpp"] * x,
               "log-linear": lambda c, x: c["Intercept"] + c["log_bpp"] * np.log(x),
               "log-log": lambda c, x: np.exp(c["Intercept"] + c["log_bpp"] * np.log(x))}


def _colors(groups) -> dict[str, str]:
    return {g: f"C{i % 10}" for i, g in enumerate(dict.fromkeys(groups))}


def _note(ax, text: str) -> None:
    wrapped = "\n".join(line for para in text.split("\n") for line in textwrap.wrap(para, 55))
    ax.text(0.5, 0.5, wrapped, ha="center", va="center", fontsize=7, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _forms(plt, result, forms: dict, metric: str):
    t = result.table
    colors = _colors(t["group"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for g, c in colors.items():
        sub = t[t["group"] == g]
        ax.scatter(sub["bpp"], sub["fid"], color=c, s=24, label=g)
    glob = next((c for c in forms.get("comparisons", []) if c["scope"] == "global"), None)
    x = np.linspace(float(t["bpp"].min()), float(t["bpp"].max()), 200)
    styles = {"linear": "-", "log-linear": "--", "log-log": ":"}
    for f in (glob or {}).get("fits", []):
        if f["fitted"] and f["form"] in FORM_CURVES:
            d = glob["delta_aic"].get(f["form"])
            ax.plot(x, FORM_CURVES[f["form"]](f["coef"], x), color="black", lw=1.1, ls=styles[f["form"]],
                    label=f"{f['formula']} (ΔAIC {d:.1f})")
    bil = next((f for f in (glob or {}).get("fits", []) if f["form"] == "bilinear" and f["fitted"]), None)
    if bil is not None:
        ax.plot([], [], " ", label=f"{bil['formula']} (ΔAIC {glob['delta_aic']['bilinear']:.1f}; not a curve in BPP)")
    ax.set_xlabel("bpp = bits / (3·H·W)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs BPP: which functional form?")
    ax.locator_params(axis="x", nbins=5)
    ax.legend(fontsize=6, frameon=False)
    return fig


def _scaling(plt, result, scaling: dict, metric: str):
    fits = [g for g in scaling.get("groups", []) if g["fitted"]]
    if not fits:
        fig, ax = plt.subplots(figsize=(4.5, 3))
        _note(ax, "no group with at least 3 sizes: no scaling fit")
        return fig
    panels = len(fits) + 1   # + FID against the reducible part
    cols = min(4, panels)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.9 * rows), squeeze=False)
    for ax, g in zip(axes.flat, fits):
        n = np.asarray(g["params"], dtype=float)
        ax.scatter(n, g["bpp"], s=22, color="C0", zorder=3)
        nn = np.exp(np.linspace(math.log(n.min()), math.log(n.max()), 80))
        ax.plot(nn, g["E"] + g["A"] * nn ** (-g["alpha"]), color="black", lw=1.1,
                label=f"E + A·N^−α, α = {g['alpha']:.2f}")
        ax.axhline(g["E"], color="C3", ls="--", lw=1, label=f"E = {g['E']:.5g}")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_title(g["group"], fontsize=9)
        ax.set_xlabel("AR parameters N", fontsize=8)
        ax.set_ylabel("bpp", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False)
    ax = list(axes.flat)[len(fits)]
    fid = dict(zip(result.table["label"], result.table["fid"]))
    for i, g in enumerate(fits):
        ax.scatter(g["reducible_bpp"], [fid[m] for m in g["models"]], s=22, color=f"C{i % 10}", label=g["group"])
    verdict = (scaling.get("fid_vs_reducible") or {}).get("verdict", "")
    ax.set_title("\n".join(textwrap.wrap(f"{metric} vs bpp − E: {verdict}", 40)), fontsize=7)
    ax.set_xlabel("reducible bpp − E", fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, frameon=False)
    for ax in list(axes.flat)[panels:]:
        ax.axis("off")
    fig.suptitle("BPP against model size: floor E and reducible part", fontsize=10)
    fig.tight_layout()
    return fig


def _baseline(plt, baseline: dict):
    ms = [m for m in baseline.get("models", []) if m["raw_rate_bpp"] is not None or m["bpp"] is not None]
    fig, ax = plt.subplots(figsize=(6, 0.3 * max(len(ms), 3) + 1.2))
    if not ms:
        _note(ax, "no model with a raw rate or BPP")
        return fig
    y = np.arange(len(ms))
    h = 0.27
    series = (("raw_rate_bpp", "raw index rate", "C7"), ("unigram_bpp", "order-0 (unigram) baseline", "C1"),
              ("bpp", "AR model (bpp)", "C0"))
    for k, (key, label, color) in enumerate(series):
        vals = [m[key] if m[key] is not None else 0.0 for m in ms]
        if any(m[key] is not None for m in ms):
            ax.barh(y + (1 - k) * h, vals, height=h, color=color, label=label)
    top = max(max(v for v in (m["raw_rate_bpp"], m["unigram_bpp"], m["bpp"]) if v is not None) for m in ms)
    for i, m in enumerate(ms):
        if m["ar_share"] is not None:
            ax.text(top * 1.02, y[i], f"AR share {100 * m['ar_share']:.0f}%", va="center", fontsize=7)
    ax.set_xlim(0, top * 1.25)
    ax.set_yticks(y, [m["model_id"] for m in ms], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("bits / (3·H·W)")
    ax.set_title("What the AR context buys over the token code")
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3)
    return fig


def _pairs(plt, pairs: dict, metric: str):
    fig, ax = plt.subplots(figsize=(4.8, 4))
    ps = pairs.get("pairs", [])
    if not ps:
        _note(ax, "no shared-tokenizer pairs in this table\n" + pairs.get("note", ""))
        ax.set_title("Same tokenizer, different AR model")
        return fig
    for p in ps:
        ax.scatter(p["d_bpp"], p["d_fid"], color="C0" if p["comparable"] else "C7", s=24)
        ax.annotate(p["b"], (p["d_bpp"], p["d_fid"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("ΔBPP (second − first)")
    ax.set_ylabel(f"Δ{metric}")
    ax.set_title("Same tokenizer, different AR model (grey: not comparable)", fontsize=9)
    return fig


def _validity(plt, validity: dict, metric: str):
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 4), sharey=False)
    for ax, key, title in ((axes[0], "leave_one_family_out", "leave one family out"),
                           (axes[1], "leave_one_model_out", "leave one model out")):
        sch = validity.get(key) or {}
        preds = [p for f in sch.get("families", []) for p in f.get("predictions", [])]
        if not preds:
            _note(ax, f"{title}: no predictions")
            continue
        colors = _colors(p["family"] for p in preds)
        for fam, c in colors.items():
            pp = [p for p in preds if p["family"] == fam]
            obs = [p["fid"] for p in pp]
            pred = [p["predicted"] for p in pp]
            err = np.array([[p["predicted"] - p["pi"][0] for p in pp], [p["pi"][1] - p["predicted"] for p in pp]])
            ax.errorbar(obs, pred, yerr=err, fmt="o", ms=4, color=c, lw=0.8, capsize=2, label=fam)
        lo = min(p["fid"] for p in preds)
        hi = max(p["fid"] for p in preds)
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls=":")
        o = sch.get("overall", {})
        ax.set_title(f"{title}: {o.get('covered')}/{o.get('n_predicted')} inside the "
                     f"{100 * validity.get('level', 0.95):g}% PI, MAE {o.get('mae', 0):.2f}", fontsize=8)
        ax.set_xlabel(f"observed {metric}")
        ax.set_ylabel(f"predicted {metric} ({validity.get('formula', '')})", fontsize=8)
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    return fig


def write_beyond_figures(result, sections: dict, out_dir: str | Path, metric: str = "FID") -> list[Path]:
    """The five figures (PNG and PDF each) into ``out_dir`` (created if needed)."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for stem, draw in (("forms_fid_vs_bpp", lambda: _forms(plt, result, sections["forms"], metric)),
                       ("scaling_bpp_vs_params", lambda: _scaling(plt, result, sections["scaling"], metric)),
                       ("baseline_bits", lambda: _baseline(plt, sections["baseline"])),
                       ("pairs_delta_bpp_vs_delta_fid", lambda: _pairs(plt, sections["pairs"], metric)),
                       ("validity_predicted_vs_observed", lambda: _validity(plt, sections["validity"], metric))):
        fig = draw()
        written += _save(fig, out, stem)
        plt.close(fig)
    return written
