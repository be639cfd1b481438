"""Publication figures for ``visbpp analyze --plot DIR`` (matplotlib, an optional extra).

Three figures: the global FID vs BPP scatter with its fit, every group with its own fit line,
and the bilinear model's predicted vs observed FID. matplotlib is imported only when called.
"""

from __future__ import annotations

from pathlib import Path

from visbpp.core.analysis import plots
from visbpp.core.analysis.fits import AnalysisResult

FORMATS = ("png", "pdf")


from visbpp.core.errors import VisbppError  # noqa: E402


class FiguresUnavailable(VisbppError, RuntimeError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise FiguresUnavailable(
            "--plot needs matplotlib, which is not installed; install the extra: pip install 'visbpp[plot]'"
        ) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = []
    for fmt in FORMATS:
        p = out / f"{stem}.{fmt}"
        fig.savefig(p, dpi=200, bbox_inches="tight")
        paths.append(p)
    return paths


def write_figures(result: AnalysisResult, out_dir: str | Path) -> list[Path]:
    """Write the three figures (PNG and PDF each) into ``out_dir`` (created if needed)."""
    plt = _pyplot()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--plot {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    groups = plots.group_points(result)
    colors = {g.name: f"C{i % 10}" for i, g in enumerate(groups)}
    lin = result.global_.linear

    # 1. global FID vs BPP
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for g in groups:
        ax.scatter(g.x, g.y, color=colors[g.name], label=g.name, s=28)
    line = plots.global_fit_line(result)
    ax.plot(line.x, line.y, color="black", lw=1.2, ls="--",
            label=f"FID ~ BPP (R$^2$ = {lin.r2:.3f})")
    ax.locator_params(axis="x", nbins=5)
    ax.set_xlabel("bpp = bits / (3·H·W)")
    ax.set_ylabel("FID")
    ax.set_title("FID vs BPP, all models")
    ax.legend(fontsize=7, frameon=False)
    written += _save(fig, out, "global_fid_vs_bpp")
    plt.close(fig)

    # 2. every group with its fit line
    fig, ax = plt.subplots(figsize=(5.5, 4))
    fits = {g.group: g for g in result.groups}
    for g in groups:
        ax.scatter(g.x, g.y, color=colors[g.name], s=28,
                   label=g.name + (f" (R$^2$ = {fits[g.name].r2:.3f})" if fits[g.name].fitted else f" (n = {len(g.x)})"))
    for ln in plots.group_fit_lines(result):
        ax.plot(ln.x, ln.y, color=colors[ln.name], lw=1.2)
    ax.locator_params(axis="x", nbins=5)
    ax.set_xlabel("bpp = bits / (3·H·W)")
    ax.set_ylabel("FID")
    ax.set_title("FID vs BPP per tokenizer setting")
    ax.legend(fontsize=7, frameon=False)
    written += _save(fig, out, "groups_fid_vs_bpp")
    plt.close(fig)

    # 3. bilinear model: predicted vs observed
    bp = plots.bilinear_points(result)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if bp is not None:
        label_group = dict(zip(result.table["label"], result.table["group"]))
        for name in colors:
            idx = [i for i, lab in enumerate(bp.labels) if label_group[lab] == name]
            ax.scatter([bp.x[i] for i in idx], [bp.y[i] for i in idx], color=colors[name], label=name, s=28)
        lo = min(min(bp.x), min(bp.y))
        hi = max(max(bp.x), max(bp.y))
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls=":", label="y = x")
        b = result.global_.bilinear
        ax.set_title(f"FID ~ BPP + rFID (R$^2$ = {b.r2:.3f})")
        ax.legend(fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, result.global_.note or "bilinear fit not available", ha="center", va="center",
                wrap=True, transform=ax.transAxes)
    ax.set_xlabel("observed FID")
    ax.set_ylabel("predicted FID")
    written += _save(fig, out, "bilinear_predicted_vs_observed")
    plt.close(fig)
    return written
