"""Publication figures for ``visbpp analyze --plot DIR`` (matplotlib, an optional extra).

Three figures: the global FID vs BPP scatter with its fit, every group with its own fit line,
and the bilinear model's fitted vs observed FID with its equation (95% CIs). Each group has its
own marker and colour, points carry the model size, Cook's-distance outliers a red ring, and
the legend stands outside the axes. matplotlib is imported only when called.
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
    markers = {g.name: plots.MPL_MARKERS[i % len(plots.MPL_MARKERS)] for i, g in enumerate(groups)}
    flagged = plots.outlier_labels(result)
    lin = result.global_.linear

    def points(ax, series, label_of=lambda p: p.name) -> None:
        """Each group with its own marker and colour, its points labelled with the model size; Cook's
        outliers ringed in red; drawn after the lines (markers over the lines)."""
        for p in series:
            ax.scatter(p.x, p.y, color=colors[p.name], marker=markers[p.name], label=label_of(p), s=28, zorder=3)
            for x, y, size in zip(p.x, p.y, p.sizes):
                ax.annotate(size, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=6, color=colors[p.name])
        out = [(x, y) for p in series for x, y, lab in zip(p.x, p.y, p.labels) if lab in flagged]
        if out:
            ax.scatter([o[0] for o in out], [o[1] for o in out], s=90, facecolors="none", edgecolors="red",
                       linewidths=1.0, zorder=4, label="Cook's-distance outlier")

    def legend(ax) -> None:   # outside the axes, never over the data
        ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)

    # 1. global FID vs BPP
    fig, ax = plt.subplots(figsize=(6.5, 4))
    line = plots.global_fit_line(result)
    ax.plot(line.x, line.y, color="black", lw=1.2, ls="--", label=f"FID ~ BPP (R$^2$ = {lin.r2:.3f})", zorder=2)
    points(ax, groups)
    ax.locator_params(axis="x", nbins=5)
    ax.set_xlabel("bpp = bits / (3·H·W)")
    ax.set_ylabel("FID")
    ax.set_title("FID vs BPP, all models (labels: model size)")
    legend(ax)
    written += _save(fig, out, "global_fid_vs_bpp")
    plt.close(fig)

    # 2. every group with its fit line
    fig, ax = plt.subplots(figsize=(6.5, 4))
    fits = {g.group: g for g in result.groups}
    for ln in plots.group_fit_lines(result):
        ax.plot(ln.x, ln.y, color=colors[ln.name], lw=1.2, zorder=2)
    points(ax, groups, lambda p: p.name + (f" (R$^2$ = {fits[p.name].r2:.3f})" if fits[p.name].fitted
                                           else f" (n = {len(p.x)})"))
    ax.locator_params(axis="x", nbins=5)
    ax.set_xlabel("bpp = bits / (3·H·W)")
    ax.set_ylabel("FID")
    ax.set_title("FID vs BPP per tokenizer setting (labels: model size)")
    legend(ax)
    written += _save(fig, out, "groups_fid_vs_bpp")
    plt.close(fig)

    # 3. bilinear model: fitted vs observed, with its equation
    bp = plots.bilinear_points(result)
    fig, ax = plt.subplots(figsize=(6, 4.8))
    if bp:
        lo = min(v for p in bp for v in p.x + p.y)
        hi = max(v for p in bp for v in p.x + p.y)
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls=":", label="y = x", zorder=2)
        points(ax, bp)
        b = result.global_.bilinear
        ax.set_title(f"FID ~ BPP + rFID (R$^2$ = {b.r2:.3f})")
        ax.text(0.0, -0.2, plots.bilinear_equation(result), transform=ax.transAxes, fontsize=6.5, va="top")
        legend(ax)
    else:
        ax.text(0.5, 0.5, result.global_.note or "bilinear fit not available", ha="center", va="center",
                wrap=True, transform=ax.transAxes)
    ax.set_xlabel("observed FID")
    ax.set_ylabel("fitted FID")
    written += _save(fig, out, "bilinear_predicted_vs_observed")
    plt.close(fig)
    return written
